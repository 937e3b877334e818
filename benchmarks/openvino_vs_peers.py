"""netdsl -> OpenVINO against its peers, in one process, interleaved, same network and weights.

    python benchmarks/openvino_vs_peers.py                       # resnet50, mobilenet_v2, bert
    python benchmarks/openvino_vs_peers.py --models resnet50 --rounds 3

Engines (float32, CPU, default thread counts):
  netdsl-ov   netdsl graph lowered to OpenVINO opset (this project), INFERENCE_PRECISION_HINT=f32
  onnx-ov     the same network exported to ONNX (netdsl.export_onnx), read by ov.convert_model,
              compiled with the same properties
  ort         ONNX Runtime CPU on the same ONNX file (all graph optimizations)
  torch       PyTorch eager: the graph's ops executed as torch calls with the same weights
  netdsl-ov-bf16 (opt-in) netdsl-ov at precision bf16, OpenVINO's default on CPUs with bf16

Prints batch-1 latency (median, p90), batch-8 throughput, compile times, and the ratios of
netdsl-ov against each peer (> 1.00x means netdsl-ov is faster). Outputs are cross-checked first.
Models are the examples' ``network()`` functions (examples/resnet50.py, mobilenet_v2.py, bert.py).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netdsl  # noqa: E402
from feeds import dims, make_feeds  # noqa: E402
from netdsl.backends import openvino as ovb  # noqa: E402



# ---- engines: each gives (batch-1 call, batch-8 "many" call over a list of feeds, compile seconds) ----
# Batch 8 is measured as throughput: OpenVINO in its THROUGHPUT mode (streams, several requests in
# flight through AsyncInferQueue), ONNX Runtime and PyTorch by back-to-back calls (intra-op threads).
N_INFLIGHT = 8  # batch-8 requests per throughput measurement


def netdsl_ov(graph: Any, precision: str = "f32") -> tuple[Callable, Callable, float]:
    t0 = time.perf_counter()
    m1 = ovb.compile(graph, precision=precision, hint="latency", dynamic=dims(graph, 1))
    m8 = ovb.compile(graph, precision=precision, hint="throughput", dynamic=dims(graph, 8))
    return m1, m8.run_many, time.perf_counter() - t0


def onnx_ov(onnx_path: str, graph: Any) -> tuple[Callable, Callable, float]:
    import openvino as ov
    t0 = time.perf_counter()
    core = ov.Core()

    def build(batch: int, hint: str) -> Any:
        model = ov.convert_model(onnx_path)
        model.reshape({p.get_any_name(): ov.PartialShape([d if isinstance(d, int) else d.evaluate(dims(graph, batch)) for d in v.shape])
                       for p, v in zip(model.inputs, graph.inputs)})
        return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": hint})

    c1, c8 = build(1, "LATENCY"), build(8, "THROUGHPUT")
    req = c1.create_infer_request()
    names = [o.get_any_name() for o in c1.outputs]

    def run1(f: dict) -> dict:
        res = req.infer(f)
        return {n: res[o] for n, o in zip(names, c1.outputs)}

    def run8(feeds: list) -> list:
        q = ov.AsyncInferQueue(c8, int(c8.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        out: list = [None] * len(feeds)
        q.set_callback(lambda r, i: out.__setitem__(i, {n: r.get_tensor(o).data.copy()
                                                        for n, o in zip(names, c8.outputs)}))
        for i, f in enumerate(feeds):
            q.start_async(f, i)
        q.wait_all()
        return out

    return run1, run8, time.perf_counter() - t0


def ort_options() -> Any:
    """ONNX Runtime's session options for the peer: all graph optimizations, default threads -- except
    under a CPU affinity mask (``taskset``), where its default (one thread per core of the machine)
    would oversubscribe the allowed cores: then one thread per allowed CPU, as OpenVINO does by itself."""
    import onnxruntime as rt
    so = rt.SessionOptions()
    so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if allowed and allowed < (os.cpu_count() or allowed):
        so.intra_op_num_threads = allowed
    return so


def ort(onnx_path: str) -> tuple[Callable, Callable, float]:
    import onnxruntime as rt
    t0 = time.perf_counter()
    sess = rt.InferenceSession(onnx_path, ort_options(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    run1 = lambda f: dict(zip(names, sess.run(None, f)))  # noqa: E731
    return run1, (lambda feeds: [run1(f) for f in feeds]), time.perf_counter() - t0


class TorchEager:
    """The graph's ops as PyTorch eager calls, weights as torch tensors (what a torch model runs)."""

    def __init__(self, graph: Any):
        import torch
        import torch.nn.functional as tf
        self.torch, self.F, self.graph = torch, tf, graph
        self.consts: dict[str, Any] = {}
        for n in graph.nodes:
            if n.op == "parameter":
                self.consts[n.outputs[0].name] = torch.from_numpy(np.ascontiguousarray(graph.params[n.attrs["name"]].value()))
            elif n.op == "constant":
                self.consts[n.outputs[0].name] = torch.from_numpy(np.ascontiguousarray(n.attrs["value"]))
            elif not hasattr(self, "_" + n.op):
                raise NotImplementedError(f"torch peer: op {n.op} not mapped")

    def __call__(self, feeds: dict) -> dict:
        torch = self.torch
        with torch.inference_mode():
            env = dict(self.consts)
            for k, v in feeds.items():
                env[k] = torch.from_numpy(v)
            for n in self.graph.nodes:
                if n.op in ("parameter", "constant"):
                    continue
                args = [None if v is None else env[v.name] for v in n.inputs]
                res = getattr(self, "_" + n.op)(n, *args)
                for v, r in zip(n.outputs, res if isinstance(res, (list, tuple)) else [res]):
                    env[v.name] = r
            return {v.name: env[v.name].numpy() for v in self.graph.outputs}

    # the ops the benchmark models use
    def _conv(self, n, x, w, b=None):
        a = n.attrs
        nd = x.dim() - 2
        pads = a["pads"] or (0,) * (2 * nd)
        assert tuple(pads[:nd]) == tuple(pads[nd:]), "asymmetric padding"
        return self.F.conv2d(x, w, b, a["strides"] or 1, tuple(pads[:nd]), a["dilations"] or 1, a["groups"])

    def _batch_norm(self, n, x, s, b, m, v):
        return self.F.batch_norm(x, m, v, s, b, False, 0.0, n.attrs["eps"])

    def _relu(self, n, x): return self.F.relu(x)
    def _clip(self, n, x): return self.torch.clamp(x, n.attrs["min"], n.attrs["max"])
    def _tanh(self, n, x): return self.torch.tanh(x)
    def _gelu(self, n, x): return self.F.gelu(x, approximate=n.attrs["approximate"])
    def _add(self, n, a, b): return a + b
    def _sub(self, n, a, b): return a - b
    def _mul(self, n, a, b): return a * b
    def _dropout(self, n, x): return x
    def _identity(self, n, x): return x
    def _linear(self, n, x, w, b=None): return self.F.linear(x, w, b)
    def _matmul(self, n, a, b): return a @ b
    def _softmax(self, n, x): return self.torch.softmax(x, n.attrs["axis"])
    def _flatten(self, n, x): return self.torch.flatten(x, n.attrs["start"], n.attrs["end"])
    def _transpose(self, n, x): return x.permute(*n.attrs["perm"])
    def _squeeze(self, n, x): return x.squeeze(tuple(n.attrs["axes"]))
    def _embedding(self, n, ids, t): return self.F.embedding(ids.long(), t)
    def _global_avg_pool(self, n, x): return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)

    def _cast(self, n, x):
        return x.to(getattr(self.torch, n.attrs["dtype"].value))

    def _reshape(self, n, x):
        return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(n.attrs["shape"])])

    def _max_pool(self, n, x):
        a = n.attrs
        nd = x.dim() - 2
        pads = a["pads"] or (0,) * (2 * nd)
        return self.F.max_pool2d(x, a["kernel"], a["strides"] or a["kernel"], tuple(pads[:nd]), ceil_mode=a["ceil_mode"])

    def _layer_norm(self, n, x, s=None, b=None):
        shape = x.shape[n.attrs["axis"] % x.dim():]
        return self.F.layer_norm(x, shape, s, b, n.attrs["eps"])

    def _slice(self, n, x):
        a = n.attrs
        idx = [slice(None)] * x.dim()
        axes = a["axes"] if a["axes"] is not None else range(len(a["starts"]))
        steps = a["steps"] or (1,) * len(a["starts"])
        for st, en, ax, sp in zip(a["starts"], a["ends"], axes, steps):
            idx[ax] = slice(st, min(en, 2 ** 62), sp)
        return x[tuple(idx)]

    def _attention(self, n, q, k, v, mask=None):
        return self.F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=n.attrs["scale"],
                                                   is_causal=n.attrs["causal"])


# ---- timing ------------------------------------------------------------------------------------------
def max_err(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)


def bench_model(name: str, rounds: int, iters: int, engines_wanted: list[str], seed: int = 0) -> dict:
    mod = importlib.import_module(name)
    net = mod.network(batch="N")
    net.init_random(seed)
    g = net.graph
    rng = np.random.default_rng(seed)
    feeds = {1: make_feeds(g, 1, rng), 8: make_feeds(g, 8, rng)}
    tmp = tempfile.mkdtemp(prefix=f"bench_{name}_")
    onnx_path = os.path.join(tmp, f"{name}.onnx")
    print(f"\n== {name}: {len(g.nodes)} nodes; exporting ONNX ...", flush=True)
    t0 = time.perf_counter()
    netdsl.export_onnx(net, onnx_path)
    print(f"   netdsl.export_onnx {time.perf_counter() - t0:.1f} s", flush=True)

    engines: dict[str, tuple] = {}
    compile_s: dict[str, float] = {}
    for e in engines_wanted:
        try:
            if e == "netdsl-ov":
                f1, f8, c = netdsl_ov(g)
            elif e == "netdsl-ov-bf16":  # OpenVINO's own CPU default precision (not float32!)
                f1, f8, c = netdsl_ov(g, "bf16")
            elif e == "onnx-ov":
                f1, f8, c = onnx_ov(onnx_path, g)
            elif e == "ort":
                f1, f8, c = ort(onnx_path)
            elif e == "torch":
                t0 = time.perf_counter()
                f1 = TorchEager(g)
                f8, c = (lambda fn: lambda feeds: [fn(f) for f in feeds])(f1), time.perf_counter() - t0
            else:
                raise ValueError(e)
        except Exception as ex:  # a peer that cannot run is reported, not fatal
            print(f"   {e}: unavailable ({type(ex).__name__}: {str(ex)[:200]})")
            continue
        engines[e] = (f1, f8)
        compile_s[e] = c
        print(f"   {e}: ready (compile {c:.2f} s for batch 1 and batch 8)", flush=True)

    many = [feeds[8]] * N_INFLIGHT
    ref = {1: engines["netdsl-ov"][0](feeds[1]), 8: engines["netdsl-ov"][1](many)[0]}
    for e, (f1, f8) in engines.items():
        for b, out in ((1, f1(feeds[1])), (8, f8(many)[-1])):
            err = max_err({k: out[k] for k in ref[b]}, ref[b])
            scale = max(float(np.max(np.abs(v))) for v in ref[b].values())
            print(f"   check {e:10s} batch {b}: max abs diff vs netdsl-ov {err:.2e} (|out| <= {scale:.1f})")
            if err > (5e-2 if "bf16" in e else 1e-2) * max(scale, 1.0):
                raise SystemExit(f"{name}: {e} disagrees with netdsl-ov ({err})")

    lat: dict[str, list] = {e: [] for e in engines}
    b8: dict[str, list] = {e: [] for e in engines}
    names = list(engines)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
        for e in order:
            f1, f8 = engines[e]
            f1(feeds[1])  # warm
            for _ in range(iters):
                t = time.perf_counter()
                f1(feeds[1])
                lat[e].append(time.perf_counter() - t)
            t = time.perf_counter()
            f8(many)
            b8[e].append((time.perf_counter() - t) / len(many))
        print(f"   round {r + 1}/{rounds} done", flush=True)
    res = {}
    for e in engines:
        res[e] = {"median_ms": 1e3 * float(np.median(lat[e])), "p90_ms": 1e3 * float(np.percentile(lat[e], 90)),
                  "b8_ips": 8 / float(np.median(b8[e])), "compile_s": compile_s[e]}
    return res


def report(name: str, res: dict) -> list[str]:
    ours = res.get("netdsl-ov")
    lines = [f"| {name} | engine | b1 median ms | b1 p90 ms | b8 img/s | compile s | netdsl-ov speed-up (b1 median / b8) |",
             "|---|---|---|---|---|---|---|"]
    for e, r in res.items():
        ratio = "-" if e == "netdsl-ov" or ours is None else \
            f"{r['median_ms'] / ours['median_ms']:.2f}x / {ours['b8_ips'] / r['b8_ips']:.2f}x"
        lines.append(f"| {name} | {e} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['b8_ips']:.1f} | "
                     f"{r['compile_s']:.2f} | {ratio} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet50,mobilenet_v2,bert")
    ap.add_argument("--engines", default="netdsl-ov,onnx-ov,ort,torch",
                    help="also: netdsl-ov-bf16 (OpenVINO's default CPU precision; not float32)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=8, help="batch-1 calls per engine per round")
    args = ap.parse_args(argv)
    import openvino as ov
    print(f"openvino {ov.__version__}; {os.cpu_count()} CPUs; float32 everywhere; interleaved rounds={args.rounds}")
    all_lines = []
    for m in args.models.split(","):
        res = bench_model(m.strip(), args.rounds, args.iters, args.engines.split(","))
        lines = report(m.strip(), res)
        print("\n".join(lines), flush=True)
        all_lines += lines if not all_lines else lines[2:]
    print("\nsummary (markdown):\n" + "\n".join(all_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
