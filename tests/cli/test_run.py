"""netdsl run: outputs, --input files, first call vs steady state, dynamic ranges."""
from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import LENET


def test_run_reference_prob_sums_to_one(tmp_path, cli):
    out_file = tmp_path / "out.npz"
    rc, out, err = cli("run", LENET, "--backend", "reference", "--output", out_file)
    assert rc == 0, err
    assert "prob: float32 (1, 10)" in out
    prob = np.load(out_file)["prob"]
    assert prob.shape == (1, 10) and abs(prob.sum() - 1) < 1e-5 and prob.min() > 0


def test_run_with_input_file(tmp_path, cli):
    x = np.random.default_rng(3).standard_normal((1, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    rc, _, err = cli("run", LENET, "--input", f"data={tmp_path / 'x.npy'}", "-o", tmp_path / "o.npz")
    assert rc == 0, err
    assert np.load(tmp_path / "o.npz")["prob"].shape == (1, 10)


def test_first_call_and_steady_state_reported_apart(cli):
    rc, out, _ = cli("run", LENET, "--repeat", "3")
    assert rc == 0
    assert "first call" in out and "steady state" in out and "median of 3 further calls" in out
    rc, out, _ = cli("run", LENET, "--repeat", "0")
    assert rc == 0 and "first call" in out and "steady state" not in out


def test_unbound_weights_error(tmp_path, cli):
    model = tmp_path / "m.py"
    model.write_text("import netdsl as nd\n\ndef network():\n    net = nd.Network('m')\n"
                     "    x = net.input('x', (1, 4))\n    net.output(nd.linear(x, net.parameter('w', (2, 4))), 'y')\n"
                     "    return net\n")
    rc, _, err = cli("run", model)
    assert rc == 2 and "--random-weights" in err
    assert cli("run", model, "--random-weights")[0] == 0


def test_feed_outside_the_dynamic_range_is_a_netdsl_error(tmp_path, cli, dyn_model):
    pytest.importorskip("openvino", reason="openvino is not installed")
    rc, _, err = cli("run", dyn_model, "--random-weights", "--backend", "openvino", "--dynamic", "N=1:4",
                     "--dim", "N=8")
    assert rc == 2 and "--dim N=8 is outside --dynamic N=1:4" in err
    np.save(tmp_path / "x8.npy", np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32))
    rc, _, err = cli("run", dyn_model, "--random-weights", "--backend", "openvino", "--dynamic", "N=1:4",
                     "--input", f"x={tmp_path / 'x8.npy'}")
    assert rc == 2, err
    assert "input 'x': dim N=8 is outside the range 1..4" in err and "Can not clone" not in err
    rc, out, err = cli("run", dyn_model, "--random-weights", "--backend", "openvino", "--dynamic", "N=1:4",
                       "--dim", "N=3")
    assert rc == 0 and "y: float32 (3, 4)" in out, err


def test_run_and_bench_report_the_precision_the_engine_computes_in(cli):
    """``--precision auto`` lets OpenVINO pick; the user is told what its convolutions really run in."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    import netdsl as nd
    from netdsl.cli.common import load_model
    rt = nd.compile(load_model(LENET), "openvino", precision="auto").compiled.get_runtime_model()
    want = {op.get_rt_info()["runtimePrecision"].astype(str) for op in rt.get_ordered_ops()
            if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    assert len(want) == 1
    want = want.pop()
    rc, out, err = cli("run", LENET, "--backend", "openvino", "--precision", "f32")
    assert rc == 0 and "; computes in f32" in out, out + err
    rc, out, err = cli("run", LENET, "--backend", "openvino", "--precision", "auto")
    assert rc == 0 and f"; computes in {want}" in out, out + err
    rc, out, err = cli("bench", LENET, "--backend", "openvino", "--precision", "auto", "-n", "2", "--json")
    assert rc == 0 and json.loads(out)["engine"]["effective_precision"] == want, out


@pytest.mark.parametrize("streams", ["2", "auto"])
def test_num_streams_a_count_or_auto_runs_on_openvino(tmp_path, cli, streams):
    """--num-streams takes what OpenVINO's compile takes: a positive integer or auto (auto was refused)."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    np.save(tmp_path / "x.npy", np.random.default_rng(5).standard_normal((1, 1, 28, 28)).astype(np.float32))
    feed = f"data={tmp_path / 'x.npy'}"
    rc, _, err = cli("run", LENET, "--backend", "reference", "--input", feed, "-o", tmp_path / "r.npz")
    assert rc == 0, err
    rc, _, err = cli("run", LENET, "--backend", "openvino", "--num-streams", streams, "--input", feed,
                     "-o", tmp_path / "o.npz")
    assert rc == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["prob"], np.load(tmp_path / "r.npz")["prob"], atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_run_layer_precision_keeps_the_layer_f32_in_openvino(cli, tmp_path, dtype):
    """`netdsl run --precision bf16 --layer-precision fc1=TYPE` on OpenVINO: the model the command compiles
    runs fc1 in f32 and fc2 in bf16 (OpenVINO's runtime model). float64 pins as a cast to float64 does
    (float32): it was accepted and then ran the layer in bf16."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    from netdsl.backends import get_backend
    from netdsl.cli import build_parser
    from netdsl.cli.common import backend_options, prepare
    from .test_build import ISLAND_MODEL
    model = tmp_path / "island.py"
    model.write_text(ISLAND_MODEL)
    argv = ["run", str(model), "--random-weights", "--backend", "openvino", "--precision", "bf16"]
    rc, out, err = cli(*argv, "--layer-precision", f"fc1={dtype}")
    assert rc == 0 and "y: float32" in out, out + err

    def runtime(extra):
        args = build_parser().parse_args(argv + extra)
        m = get_backend("openvino").compile(prepare(args).graph, **backend_options(args, "openvino"))
        return {n.get_friendly_name(): n.get_rt_info()["runtimePrecision"].astype(str)
                for n in m.compiled.get_runtime_model().get_ordered_ops()}
    if runtime([])["fc1"] != "bf16":
        pytest.skip("this CPU runs bf16 inference in f32: no island to tell apart")
    kept = runtime(["--layer-precision", f"fc1={dtype}"])
    assert kept["fc1"] == "f32" and kept["fc2"] == "bf16", kept
