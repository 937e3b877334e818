"""From a model file and a checkpoint to the first result: where the time goes, cold and with a cache.

    python benchmarks/startup.py                    # BERT-base (examples/bert.py), 5 runs of each
    python benchmarks/startup.py --model resnet50 --runs 3

Each run is a fresh Python process (bytecode already compiled) that loads the example's model file,
binds a safetensors checkpoint of it (random weights, written once beforehand) and runs one input
(BERT: batch 1, 128 tokens) on OpenVINO in float32. Printed per phase, median over the runs (wall
seconds, and CPU seconds of the process):

  import numpy      NumPy's own import (the engine needs it too)
  import netdsl     ``import netdsl`` after NumPy
  define + bind    the model file's ``network()`` and ``load_weights`` (no tensor data is read)
  import openvino  the engine's own import and start (``ov.Core()``)
  lower            netdsl's OpenVINO backend import and its graph -> ``ov.Model`` (checkpoint
                   weights are shared with the model, not copied)
  compile          OpenVINO's ``compile_model``
  first inference  the first request (OpenVINO prepares its kernels for the shape)

netdsl's overhead = import netdsl + define + bind + lower, shown as a ratio to OpenVINO's compile
(goal: at most 0.2), also with NumPy's import added. The peer, in the same run (processes alternating):
OpenVINO alone from an IR of the same network (float32 weights written beforehand) -- import openvino
(which imports NumPy itself) + ``ov.Core()``, ``read_model``, ``compile_model`` with netdsl's
properties, the first inference -- and netdsl's overhead against it = netdsl's total to the first
result minus OpenVINO's. The same pair again with OpenVINO's telemetry declined (``CI=true`` in both
processes): by default ``import openvino`` forks a process that sends a telemetry event; on a
machine with few free cores that process takes CPU time from whatever runs next: netdsl's lowering
in netdsl's run, OpenVINO's read and compile in the peer's. ``--diagnose`` adds two more pairs: the peer importing NumPy first (as netdsl's
run does), and both with one BLAS thread (``import numpy`` starts OpenBLAS threads that spin for
about 0.1 s). Then the same run with ``cache_dir``: "cold" fills an empty cache, "warm" is a
second process finding the compiled model there (served without lowering), measured from the
start of the script to its first result (goal for BERT-base: under 0.5 s). ``--static`` compiles for
the fed shape instead of leaving the batch and sequence dims dynamic.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r'''
import json, os, sys, time
t = [time.perf_counter()]; c = [time.process_time()]
def mark():
    t.append(time.perf_counter()); c.append(time.process_time())
import numpy
mark()
import netdsl
mark()
sys.path.insert(0, os.path.join(ROOT, "examples"))
import importlib
net = importlib.import_module(MODEL).network(**NET_ARGS)
net.load_weights(WEIGHTS)
mark()
import openvino
openvino.Core()  # the engine's own start (netdsl's core() makes its own below)
mark()
data = numpy.load(FEEDS)
feeds = {k: data[k] for k in data.files}
t[-1] = time.perf_counter(); c[-1] = time.process_time()  # reading the feeds counts nowhere
from netdsl.backends.openvino import runtime  # netdsl's backend modules: netdsl's time
runtime.core()
if CACHE:
    m = runtime.compile(net.graph, cache_dir=CACHE, dynamic=DYNAMIC)
    mark(); mark()
    lowered = not m.from_cache
else:
    from netdsl.backends.openvino.lower import lower
    ov_model = lower(net.graph, dynamic=DYNAMIC)
    mark()
    compiled = runtime.compile_ov_model(ov_model, "CPU")
    m = runtime.OpenVINOModel(net.graph, ov_model, compiled)
    mark()
    lowered = True
out = m(feeds)
mark()
print(json.dumps({"wall": t, "cpu": c, "lowered": lowered}))
'''

PEER = r'''
import json, time
t = [time.perf_counter()]; c = [time.process_time()]
def mark():
    t.append(time.perf_counter()); c.append(time.process_time())
if NUMPY_FIRST:
    import numpy
import openvino
core = openvino.Core()
mark()
model = core.read_model(XML)
mark()
compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
mark()
import numpy
data = numpy.load(FEEDS)
feeds = {k: data[k] for k in data.files}  # a few ms: netdsl's run counts them too
compiled(feeds)
mark()
print(json.dumps({"wall": t, "cpu": c}))
'''
PEER_PHASES = ("import openvino (+ numpy)", "read IR", "compile", "first inference")

PHASES = ("import numpy", "import netdsl", "define + bind", "import openvino", "lower", "compile",
          "first inference")


# conditions netdsl and the peer are measured under besides the defaults (environment of both processes)
TELEMETRY_OFF = {"CI": "true"}  # OpenVINO's telemetry declines in CI: no process forked at `import openvino`
VARIANTS = {  # --diagnose: (label, environment of both, peer imports NumPy before openvino as netdsl's run does)
    "numpy-first": ("the peer imports NumPy first, as netdsl's run does", {}, True),
    "blas1": ("OPENBLAS_NUM_THREADS=1 in both (no BLAS threads started by `import numpy`)",
              {"OPENBLAS_NUM_THREADS": "1"}, False),
}


def child(model: str, net_args: dict, weights: str, feeds: str, cache: str, dynamic: Any, xml: str = "",
          env_extra: Optional[dict] = None, numpy_first: bool = False) -> dict:
    """One fresh process: netdsl from model file to first result, or (``xml``) OpenVINO alone from the IR."""
    code = (f"ROOT={ROOT!r}; MODEL={model!r}; NET_ARGS={net_args!r}; WEIGHTS={weights!r}; FEEDS={feeds!r}; "
            f"CACHE={cache!r}; DYNAMIC={dynamic!r}; XML={xml!r}; NUMPY_FIRST={numpy_first!r}\n"
            + (PEER if xml else CHILD))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {}))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if r.returncode:
        raise SystemExit(f"child failed:\n{r.stderr[-3000:]}")
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d["wall_d"] = list(np.diff(d["wall"]))
    d["cpu_d"] = list(np.diff(d["cpu"]))
    return d


def vs_peer(runs: list, peers: list, indent: str = "  ") -> None:
    """Print netdsl's overhead against the peer's processes (totals' medians), wall and CPU."""
    for label, key in (("wall", "wall"), ("CPU", "cpu")):
        tot = float(np.median([r[key][-1] - r[key][0] for r in runs]))
        ptot = float(np.median([r[key][-1] - r[key][0] for r in peers]))
        pcomp = float(np.median([r[f"{key}_d"][2] for r in peers]))
        print(f"{indent}netdsl overhead vs OpenVINO alone ({label}): {tot:.3f} - {ptot:.3f} = {tot - ptot:.3f} s = "
              f"{(tot - ptot) / pcomp:.2f}x OpenVINO's compile (goal <= 0.2x)")


def prepare(model: str, seq: int, tmp: str) -> tuple:
    """(network kwargs, checkpoint path, feeds path) for ``model``: random weights saved as safetensors."""
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import importlib
    from safetensors.numpy import save_file
    from feeds import make_feeds
    net_args = {"weights": None} if model == "lenet" else {}
    net = importlib.import_module(model).network(**net_args)
    net.init_random(0)
    weights = os.path.join(tmp, f"{model}.safetensors")
    save_file({k: np.ascontiguousarray(p.value()) for k, p in net.graph.params.items()}, weights)
    feeds = os.path.join(tmp, "feeds.npz")
    np.savez(feeds, **make_feeds(net.graph, 1, np.random.default_rng(0), seq))
    from netdsl.weights.identity import RECENT_S
    time.sleep(RECENT_S)  # a checkpoint written just now is not cached (identity.py): as if written before
    return net_args, weights, feeds


def write_ir(model: str, net_args: dict, weights: str, dynamic: Any, tmp: str) -> str:
    """The network bound to ``weights`` as an OpenVINO IR (float32 weights), for OpenVINO alone to read."""
    import importlib
    import openvino
    from netdsl.backends.openvino.lower import lower
    net = importlib.import_module(model).network(**net_args)
    net.load_weights(weights)
    xml = os.path.join(tmp, f"{model}.xml")
    openvino.save_model(lower(net.graph, dynamic=dynamic), xml, compress_to_fp16=False)
    return xml


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bert")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--static", action="store_true", help="compile for the fed shape (batch 1, --seq)")
    ap.add_argument("--diagnose", action="store_true",
                    help="also measure the overhead with the peer importing NumPy first, and with one BLAS thread")
    args = ap.parse_args(argv)
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "netdsl"),
                    os.path.join(ROOT, "examples")], check=False, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        net_args, weights, feeds = prepare(args.model, args.seq, tmp)
        import importlib
        g = importlib.import_module(args.model).network(**net_args).graph
        dynamic = {s: (1 if s == "N" else args.seq) for s in g.symbols} if args.static else None
        print(f"{args.model}: {os.cpu_count()} CPUs, checkpoint {os.path.getsize(weights) / 1e6:.0f} MB, "
              f"{'static' if args.static else 'dynamic'} shapes, {args.runs} runs (medians; wall s / CPU s)")
        xml = write_ir(args.model, net_args, weights, dynamic, tmp)
        plain, peer = [], []
        for _ in range(args.runs):  # alternating, so that both see the same machine
            plain.append(child(args.model, net_args, weights, feeds, "", dynamic))
            peer.append(child(args.model, net_args, weights, feeds, "", dynamic, xml))
        wall = np.median([r["wall_d"] for r in plain], axis=0)
        cpu = np.median([r["cpu_d"] for r in plain], axis=0)
        for name, w, c in zip(PHASES, wall, cpu):
            print(f"  {name:<16} {w:7.3f} {c:7.3f}")
        pw = np.median([r["wall_d"] for r in peer], axis=0)
        pc = np.median([r["cpu_d"] for r in peer], axis=0)
        print("  OpenVINO alone (its IR of the same network, same properties):")
        for name, w, c in zip(PEER_PHASES, pw, pc):
            print(f"    {name:<26} {w:7.3f} {c:7.3f}")
        vs_peer(plain, peer)
        for label, ph in (("wall", wall), ("CPU", cpu)):
            own = ph[1] + ph[2] + ph[4]
            print(f"  netdsl overhead ({label}): import netdsl + define + bind + lower = {own:.3f} s = "
                  f"{own / ph[5]:.2f}x OpenVINO's compile; with NumPy's import {own + ph[0]:.3f} s = "
                  f"{(own + ph[0]) / ph[5]:.2f}x")
        print(f"  total to first result {sum(wall):.3f} s")
        variants = [("telemetry-off", ("OpenVINO's telemetry declined (CI=true) in both: `import openvino` forks "
                                       "no process", TELEMETRY_OFF, False))]
        variants += list(VARIANTS.items()) if args.diagnose else []
        for _key, (label, env_extra, numpy_first) in variants:
            vp, vq = [], []
            for _ in range(args.runs):
                vp.append(child(args.model, net_args, weights, feeds, "", dynamic, env_extra=env_extra))
                vq.append(child(args.model, net_args, weights, feeds, "", dynamic, xml, env_extra=env_extra,
                                numpy_first=numpy_first))
            print(f"  {label}:")
            vs_peer(vp, vq, "    ")
        cold, warm = [], []
        for i in range(args.runs):
            cache = os.path.join(tmp, f"cache{i}")
            cold.append(child(args.model, net_args, weights, feeds, cache, dynamic))
            warm.append(child(args.model, net_args, weights, feeds, cache, dynamic))
            if warm[-1]["lowered"]:
                raise SystemExit("the second process lowered the model again: not served from the cache")
        for name, runs in (("cache cold (fills it)", cold), ("cache warm (2nd process)", warm)):
            tot = float(np.median([r["wall"][-1] - r["wall"][0] for r in runs]))
            ph = np.median([r["wall_d"] for r in runs], axis=0)
            cp = np.median([r["cpu_d"] for r in runs], axis=0)
            print(f"  {name:<25} first result after {tot:.3f} s; wall / CPU s: imports "
                  f"{ph[0] + ph[1] + ph[3]:.3f} / {cp[0] + cp[1] + cp[3]:.3f}, define + bind {ph[2]:.3f} / {cp[2]:.3f}, "
                  f"compile or cache {ph[4] + ph[5]:.3f} / {cp[4] + cp[5]:.3f}, first inference {ph[6]:.3f} / {cp[6]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
