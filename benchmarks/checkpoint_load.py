"""Checkpoint loading: bind a ~1 GB checkpoint in each format, read every tensor, report GB/s and peak RSS.

For each format a checkpoint of ``--size-mb`` (default 1024; .wts, a hex text format, uses
``--wts-size-mb``, default 128) is written for a network of ``--layers`` Linear layers, then a FRESH
subprocess opens it, binds it to the network (``load_weights``) and reads every parameter the way a
backend does (``param.value()`` copied into a scratch buffer). Reported: bind time, read throughput
(weight bytes / (bind + read) seconds) and peak RSS (VmHWM) as a multiple of the weight bytes, next
to the peers measured the same way: ``safetensors.numpy.load_file`` and ``torch.load`` (plain and
``mmap=True``). The file was just written, so reads come from the page cache (warm) for every
contender alike. Goals: >= 1 GB/s, peak RSS <= 1.3x the weight bytes.

    python benchmarks/checkpoint_load.py [--size-mb 1024] [--formats safetensors,npz,...] [--dir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FORMATS = ["safetensors", "npz", "pytorch", "pytorch-legacy", "hdf5", "onnx", "caffe", "darknet", "wts"]


def _dims(size_mb: float, layers: int) -> int:
    """Square Linear layers (d x d weights + d bias) totalling about size_mb."""
    per = size_mb * 1e6 / 4 / layers
    return max(8, int(per ** 0.5))


def _tensors(d: int, layers: int) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for i in range(layers):
        out[f"layers.{i}.weight"] = rng.standard_normal((d, d), dtype=np.float32)
        out[f"layers.{i}.bias"] = rng.standard_normal(d, dtype=np.float32)
    return out


def network(d: int, layers: int):
    from netdsl import layers as nn
    seq = nn.Sequential(*[nn.Linear(d, d) for _ in range(layers)], name="layers")
    return seq.build({"x": (1, d)})


def write(fmt: str, path: str, t: dict, cfg_path: str) -> dict:
    """Write ``t`` as ``fmt``; returns binding options needed to map its names to the network."""
    if fmt == "safetensors":
        from safetensors.numpy import save_file
        save_file(t, path)
    elif fmt == "npz":
        np.savez(path, **t)
    elif fmt in ("pytorch", "pytorch-legacy"):
        import torch
        torch.save({k: torch.from_numpy(v) for k, v in t.items()}, path,
                   _use_new_zipfile_serialization=fmt == "pytorch")
    elif fmt == "hdf5":
        import h5py
        with h5py.File(path, "w") as f:
            for k, v in t.items():
                f[k.replace(".", "/")] = v
        return {"rename": [("/", ".")]}
    elif fmt == "onnx":
        from netdsl.weights.protobuf import enc_field
        body = b"".join(enc_field(5, b"".join(enc_field(1, int(x)) for x in v.shape) + enc_field(2, 1)
                                  + enc_field(8, k) + enc_field(9, v.tobytes())) for k, v in t.items())
        with open(path, "wb") as f:
            f.write(enc_field(1, 8) + enc_field(7, body))
    elif fmt == "caffe":
        from netdsl.weights.caffe import encode_caffemodel
        n = len(t) // 2
        layers = [(f"layers.{i}", "InnerProduct", [t[f"layers.{i}.weight"], t[f"layers.{i}.bias"]]) for i in range(n)]
        with open(path, "wb") as f:
            f.write(encode_caffemodel(layers))
    elif fmt == "darknet":
        n = len(t) // 2
        d = t["layers.0.bias"].shape[0]
        with open(cfg_path, "w") as f:
            f.write(f"[net]\nheight=1\nwidth=1\nchannels={d}\n" + "[connected]\noutput=%d\n" % d * n)
        with open(path, "wb") as f:
            f.write(struct.pack("<3iq", 0, 2, 5, 0))
            for i in range(n):
                f.write(t[f"layers.{i}.bias"].tobytes())
                f.write(t[f"layers.{i}.weight"].tobytes())
        return {"rename": [(r"^(\d+)\.fc\.", r"layers.\1.")], "cfg": cfg_path}
    elif fmt == "wts":
        from netdsl.weights import write_wts
        write_wts(path, t)
    return {}


def _rss() -> tuple[int, int]:
    """(current RSS, peak RSS) in bytes from /proc/self/status."""
    cur = peak = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return cur, peak


def child(args: argparse.Namespace) -> None:
    opts = json.loads(args.opts)
    d, layers = args.d, args.layers
    if args.mode == "netdsl":
        import netdsl  # noqa: F401
        from netdsl.weights import load_weights
        net = network(d, layers)
        base = _rss()[0]
        t0 = time.perf_counter()
        rep = load_weights(net, args.path, **opts)
        t_bind = time.perf_counter() - t0
        scratch = np.empty(d * d, np.float32)
        total = 0
        for p in net.graph.params.values():
            v = p.value()
            np.copyto(scratch[:v.size].reshape(v.shape), v)  # what a backend does with the weights
            total += v.nbytes
        t_all = time.perf_counter() - t0
        assert rep.ok
    else:
        if args.mode == "safetensors.numpy":
            from safetensors.numpy import load_file
            base = _rss()[0]
            t0 = time.perf_counter()
            tensors = load_file(args.path)
        else:
            import torch
            base = _rss()[0]
            t0 = time.perf_counter()
            tensors = torch.load(args.path, weights_only=True, mmap=args.mode == "torch.load(mmap)")
            tensors = {k: v.numpy() for k, v in tensors.items()}
        t_bind = time.perf_counter() - t0
        scratch = np.empty(d * d, np.float32)
        total = 0
        for v in tensors.values():
            np.copyto(scratch[:v.size].reshape(v.shape), v)
            total += v.nbytes
        t_all = time.perf_counter() - t0
    print(json.dumps({"bind_s": t_bind, "total_s": t_all, "bytes": total, "peak": _rss()[1], "base": base}))


def measure(mode: str, path: str, d: int, layers: int, opts: dict) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--mode", mode, "--path", path, "--d", str(d),
           "--layers", str(layers), "--opts", json.dumps(opts)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise RuntimeError(f"{mode} on {path} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=1024)
    ap.add_argument("--wts-size-mb", type=float, default=128)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--dir", default=None, help="where to write the checkpoints (default: a temp dir)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="netdsl", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--d", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--opts", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    work = args.dir or tempfile.mkdtemp(prefix="netdsl_ckpt_bench_")
    os.makedirs(work, exist_ok=True)
    print(f"{'format':<16} {'contender':<20} {'MB':>7} {'bind s':>7} {'total s':>8} {'GB/s':>6} "
          f"{'peak RSS MB':>11} {'RSS/weights':>11}")
    try:
        for fmt in args.formats.split(","):
            size = args.wts_size_mb if fmt == "wts" else args.size_mb
            d = _dims(size, args.layers)
            t = _tensors(d, args.layers)
            ext = {"pytorch": "pt", "pytorch-legacy": "pth", "hdf5": "h5", "darknet": "weights",
                   "caffe": "caffemodel"}.get(fmt, fmt)
            path = os.path.join(work, f"bench.{ext}")
            try:
                opts = write(fmt, path, t, os.path.join(work, "bench.cfg"))
            except ImportError as e:
                print(f"{fmt:<16} skipped: {e}")
                continue
            del t
            contenders = ["netdsl"]
            if fmt == "safetensors":
                contenders.append("safetensors.numpy")
            if fmt in ("pytorch", "pytorch-legacy"):
                contenders += ["torch.load"] + (["torch.load(mmap)"] if fmt == "pytorch" else [])
            for mode in contenders:
                try:
                    r = measure(mode, path, d, args.layers, opts)
                except (RuntimeError, ImportError) as e:
                    print(f"{fmt:<16} {mode:<20} failed: {str(e)[-200:]}")
                    continue
                gbs = r["bytes"] / r["total_s"] / 1e9
                print(f"{fmt:<16} {mode:<20} {r['bytes'] / 1e6:7.0f} {r['bind_s']:7.3f} {r['total_s']:8.3f} "
                      f"{gbs:6.2f} {r['peak'] / 1e6:11.0f} {r['peak'] / r['bytes']:11.2f}", flush=True)
            for f in os.listdir(work):
                os.remove(os.path.join(work, f))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
