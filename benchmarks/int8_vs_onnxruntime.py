"""netdsl INT8 on OpenVINO against ONNX Runtime's own static INT8 quantizer and ONNX Runtime float32,
in one process, same networks, weights and calibration data.

    python benchmarks/int8_vs_onnxruntime.py                          # resnet50, mobilenet_v2, bert
    python benchmarks/int8_vs_onnxruntime.py --models resnet50 --iters 20

Engines:
  netdsl-int8  netdsl.quantize (percentile calibration on OpenVINO f32, per-channel int8 weights)
               compiled by OpenVINO (latency hint at batch 1, throughput hint + AsyncInferQueue at 8)
  ort-int8     onnxruntime.quantization.quantize_static on the exported float model (QDQ,
               per-channel, its defaults otherwise), same calibration batches
  ort-f32      ONNX Runtime on the exported float model (all graph optimizations)

Prints batch-1 latency (median), batch-8 throughput (images or sequences per second, ``--requests``
batch-8 requests per measurement), how often INT8 top-1 agrees with float32 for the classifiers and
the SQNR of the first output against float32 (random weights and inputs: no real data ships for these
models), and the ratios of netdsl-int8 against each peer (> 1.00x: netdsl-int8 is faster). BERT runs
at sequence length 128.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netdsl as nd  # noqa: E402
from netdsl.backends import openvino as ovb  # noqa: E402
from netdsl.passes import optimize  # noqa: E402
from feeds import dims, make_feeds  # noqa: E402
from openvino_vs_peers import ort  # noqa: E402

def ort_int8(onnx_path: str, calib: list, out_path: str) -> tuple:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib)

        def get_next(self) -> Any:
            return next(self.it, None)

    t0 = time.perf_counter()
    quantize_static(onnx_path, out_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8)
    q = time.perf_counter() - t0
    run1, run8, _ = ort(out_path)
    return run1, run8, q


def netdsl_int8(net: Any, calib: list) -> tuple:
    t0 = time.perf_counter()
    q = nd.quantize(net, calib, method="percentile", backend="openvino", report=False)
    tq = time.perf_counter() - t0
    g = q.graph
    m1 = ovb.compile(g, hint="latency", dynamic=dims(g, 1))
    m8 = ovb.compile(g, hint="throughput", dynamic=dims(g, 8))
    return m1, m8.run_many, tq


def timed(fn: Any, arg: Any, iters: int) -> list:
    fn(arg)  # warm-up
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn(arg)
        out.append(time.perf_counter() - t)
    return out


def first(out: dict) -> np.ndarray:
    return np.asarray(next(iter(out.values())), np.float64)


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-30)))


def bench(name: str, iters: int, calib_batches: int, requests: int, seed: int = 0) -> dict:
    mod = importlib.import_module(name)
    net = mod.network(batch="N")
    net.init_random(seed)
    rng = np.random.default_rng(seed)
    calib = [make_feeds(net.graph, 8, rng) for _ in range(calib_batches)]
    one = make_feeds(net.graph, 1, rng)
    eight = [make_feeds(net.graph, 8, rng) for _ in range(requests)]
    engines: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as d:
        f32 = os.path.join(d, f"{name}.onnx")
        nd.export_onnx(optimize(net.graph), f32)  # batch norms folded, as ORT's quantizer expects
        engines["netdsl-int8"] = netdsl_int8(net, calib)
        engines["ort-int8"] = ort_int8(f32, calib, os.path.join(d, f"{name}.int8.onnx"))
        engines["ort-f32"] = ort(f32)
        res: dict[str, dict] = {}
        ref = [first(o) for o in engines["ort-f32"][1](eight)]
        for e, (run1, run8, prep) in engines.items():
            lat = timed(run1, one, iters)
            thr = timed(run8, eight, max(2, iters // 4))
            got = [first(o) for o in run8(eight)]
            top1 = float(np.mean([np.mean(g.argmax(-1) == r.argmax(-1)) for g, r in zip(got, ref)]))
            sq = sqnr_db(np.concatenate([r.ravel() for r in ref]), np.concatenate([g.ravel() for g in got]))
            res[e] = {"b1_ms": 1e3 * float(np.median(lat)), "b8_per_s": 8 * len(eight) / float(np.median(thr)),
                      "prep_s": prep, "top1": top1 if ref[0].ndim == 2 else float("nan"), "sqnr": sq}
    return res


def main(argv: list | None = None) -> int:
    import logging
    logging.getLogger().setLevel(logging.ERROR)  # ORT's quantizer logs advice on the root logger
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet50,mobilenet_v2,bert")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--calib-batches", type=int, default=4)
    ap.add_argument("--requests", type=int, default=16, help="batch-8 requests per throughput measurement")
    args = ap.parse_args(argv)
    print(f"CPU cores: {os.cpu_count()}")
    for name in args.models.split(","):
        r = bench(name, args.iters, args.calib_batches, args.requests)
        print(f"\n{name}")
        print(f"  {'engine':<12} {'b1 ms':>9} {'b8 /s':>9} {'top1=f32':>9} {'SQNR dB':>8} {'prep s':>8}")
        for e, v in r.items():
            print(f"  {e:<12} {v['b1_ms']:9.2f} {v['b8_per_s']:9.1f} {v['top1']:9.3f} {v['sqnr']:8.1f} "
                  f"{v['prep_s']:8.2f}")
        n = r["netdsl-int8"]
        for peer in ("ort-int8", "ort-f32"):
            p = r[peer]
            print(f"  netdsl-int8 vs {peer}: b1 {p['b1_ms'] / n['b1_ms']:.2f}x, b8 {n['b8_per_s'] / p['b8_per_s']:.2f}x")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
