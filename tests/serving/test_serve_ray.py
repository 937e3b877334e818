"""`netdsl serve examples/lenet.py --replicas 2` on a local Ray instance, driven by tritonclient.http:
health and metadata routes, concurrent inference requests (binary and JSON) compared one by one with
the float64 reference, nothing dropped, bad requests answered with the tensor's name, clean shutdown."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from netdsl.compare import assert_close

from .nets import EXAMPLES, ROOT, lenet, ref

pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'netdsl[serve]')")
th = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
from tritonclient.utils import InferenceServerException  # noqa: E402

REQUESTS = 48


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "netdsl.cli", "serve", os.path.join(EXAMPLES, "lenet.py"),
                                 "--replicas", "2", "--port", str(port)], stdout=f, stderr=subprocess.STDOUT)
    client = th.InferenceServerClient(f"127.0.0.1:{port}", concurrency=8, network_timeout=120.0)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"netdsl serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if client.is_model_ready("lenet"):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"netdsl serve not ready after 300 s:\n{log.read_text()[-4000:]}")
            time.sleep(1.0)
        yield client, proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        client.close()


def test_health_and_metadata(server):
    client, _, _ = server
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("lenet", "1")
    meta = client.get_model_metadata("lenet")
    assert meta["inputs"] == [{"name": "data", "datatype": "FP32", "shape": [1, 1, 28, 28]}]
    assert meta["outputs"] == [{"name": "prob", "datatype": "FP32", "shape": [1, 10]}]
    assert client.get_model_config("lenet")["max_batch_size"] == 0


def test_concurrent_requests_match_the_reference(server):
    client, _, _ = server
    net = lenet(batch=1)  # the same network and checkpoint the server loaded
    rng = np.random.default_rng(30)
    xs = [rng.standard_normal((1, 1, 28, 28)).astype(np.float32) for _ in range(REQUESTS)]
    pending = []
    for k, x in enumerate(xs):
        inp = th.InferInput("data", [1, 1, 28, 28], "FP32")
        inp.set_data_from_numpy(x, binary_data=k % 4 != 3)  # every fourth request as JSON
        out = th.InferRequestedOutput("prob", binary_data=k % 3 != 2)
        pending.append(client.async_infer("lenet", [inp], outputs=[out], request_id=str(k)))
    results = [p.get_result(block=True, timeout=120) for p in pending]  # raises for a failed request
    assert len(results) == REQUESTS
    for k, (x, r) in enumerate(zip(xs, results)):
        assert r.get_response()["id"] == str(k)
        assert_close(r.as_numpy("prob"), ref(net, {"data": x})["prob"], "float32", what=f"request {k}")


def test_bad_request_names_the_input(server):
    client, _, _ = server
    inp = th.InferInput("data", [1, 1, 27, 28], "FP32")
    inp.set_data_from_numpy(np.ones((1, 1, 27, 28), np.float32))
    with pytest.raises(InferenceServerException, match="input 'data'"):
        client.infer("lenet", [inp])
    with pytest.raises(InferenceServerException, match="unknown model 'resnet'"):
        client.get_model_metadata("resnet")


def test_stops_cleanly_on_sigint(server):
    _, proc, log = server
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 0, log.read_text()[-4000:]


def test_cluster_that_cannot_be_joined_is_a_usage_error(tmp_path):
    """--address of a cluster started by `ray start --head` (token authentication by default) joined without
    its token: one netdsl error naming the address and what to set, not an internal error."""
    import shutil
    import tempfile
    ray_bin = shutil.which("ray")
    if ray_bin is None:
        pytest.skip("the ray command line is not installed")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="nr")  # short: Ray's unix socket paths must stay under 108 bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--port", str(port), "--node-ip-address",
                             "127.0.0.1", "--include-dashboard=false", "--num-cpus", "1", "--temp-dir", temp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:  # until its GCS port takes connections
            assert head.poll() is None and time.time() < deadline, "ray start --head did not come up"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        r = subprocess.run([sys.executable, "-m", "netdsl.cli", "serve", os.path.join(EXAMPLES, "lenet.py"),
                            "--address", f"127.0.0.1:{port}", "--port", str(_free_port())],
                           capture_output=True, text=True, timeout=300, env={**env, "PYTHONPATH": ROOT})
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"cannot join the Ray cluster at '127.0.0.1:{port}'" in r.stderr and "RAY_AUTH_MODE=token" in r.stderr


def test_address_where_nothing_listens_fails_at_once():
    """ray.init on an address with no cluster retries for minutes; serve says so within seconds."""
    port = _free_port()
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "netdsl.cli", "serve", os.path.join(EXAMPLES, "lenet.py"),
                        "--address", f"ray://127.0.0.1:{port}", "--port", str(_free_port())],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"nothing accepts connections at 127.0.0.1:{port}" in r.stderr and time.time() - t0 < 60


def test_a_port_in_use_is_one_clear_error_and_the_handlers_are_restored(capsys):
    """Serve's proxy failing to bind came back from inside Ray as an internal error (exit 4) after Ray had
    started; the Ctrl-C/SIGTERM handlers installed for start-up are put back on the way out."""
    from netdsl.cli import main
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        rc = main(["serve", os.path.join(EXAMPLES, "lenet.py"), "--port", str(port)])
    err = capsys.readouterr().err
    assert rc == 2 and f"cannot serve on 127.0.0.1:{port}" in err and "internal error" not in err, err
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("bad", [0, -2, 1.5, "many"])
def test_bad_num_streams_is_refused_before_ray_starts(bad):
    """A bad num_streams reached each replica's compile (the replicas failed inside Ray, Serve retrying)."""
    import ray
    from netdsl.errors import NetdslError
    from netdsl.serving.ray_app import serve
    with pytest.raises(NetdslError, match=rf"num_streams={bad!r}: give a positive integer or 'auto'"):
        serve(lenet(), num_streams=bad, port=_free_port())
    assert not ray.is_initialized()


def test_sigterm_during_start_up_reaches_the_handler_installed_before_it():
    """ray.init put Ray's own SIGTERM handler in (it logs and exits 15), so a SIGTERM during `netdsl serve`'s
    start-up killed it instead of stopping it cleanly; the Python handlers installed before are put back."""
    script = (
        "import os, signal, ray\n"
        "from netdsl.serving.ray_app import _init_ray\n"
        "seen = []\n"
        "signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))\n"
        "_init_ray(ray, None)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "ray.shutdown()\n"
        "print('handled', seen == [signal.SIGTERM])\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0 and "handled True" in r.stdout, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])


def _children(pid: int) -> list:
    """The names of the processes whose parent is ``pid`` (from /proc)."""
    names = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            names.append(name)
    return names


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to see Ray's processes start")
def test_sigterm_during_ray_init_stops_netdsl_serve_cleanly(tmp_path):
    """A SIGTERM while ray.init runs (Ray's own handler in: it exited 15) stops `netdsl serve` as one after
    start-up does: 'stopping ...', exit 0, no traceback; Ray's processes are shut down."""
    log = tmp_path / "serve.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "netdsl.cli", "serve", os.path.join(EXAMPLES, "lenet.py"),
                                 "--port", str(_free_port())], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": ROOT})
    try:
        deadline = time.monotonic() + 120
        while not any("gcs_server" in n for n in _children(proc.pid)):  # ray.init is starting Ray's processes
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0 and "stopping ..." in text and "Traceback" not in text and "serving " not in text, (code, text[-4000:])
