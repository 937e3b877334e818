"""netdsl serve (Ray Serve, Open Inference Protocol over HTTP) against the same model called in-process.

    python benchmarks/serve_ray.py                                   # ResNet-50, 1/2/4 replicas
    python benchmarks/serve_ray.py --model lenet --replicas 1,2 --requests 400

One process: the network (seeded random weights) is compiled with OpenVINO at f32 and called directly
by ``--concurrency`` threads (the in-process peer; also once sequentially, and with batches of
``--max-batch-size``: what Serve's batching does, without HTTP and Ray), then served on a local Ray
instance with 1, 2 and 4 replicas and driven by ``--concurrency`` tritonclient.http.aio clients sending
batch-1 binary requests. Prints requests/s and client-side p50/p99 latency for each, and the ratios
against the in-process peer under the same concurrency (> 1.00x: serving is faster). Answers are
checked against the in-process model first; the in-process peers are measured again next to each
served run, and each served row is compared with the peers of its own round. The load generator, Ray's HTTP proxy and the replicas
share the machine's cores with each other: on a small machine that is part of what is measured.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import netdsl as nd  # noqa: E402


def stats(lat: list, seconds: float) -> dict:
    a = np.asarray(lat) * 1e3
    return {"rps": len(lat) / seconds, "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))}


def in_process(model, x: np.ndarray, requests: int, concurrency: int) -> dict:
    """``concurrency`` threads calling the compiled model (one infer request per thread)."""
    lat: list = []
    lock = threading.Lock()
    left = [requests]

    def worker() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            t0 = time.perf_counter()
            model(data=x)
            with lock:
                lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats(lat, time.perf_counter() - t0)


async def http_load(url: str, name: str, x: np.ndarray, requests: int, concurrency: int) -> dict:
    import tritonclient.http.aio as tha
    client = tha.InferenceServerClient(url, conn_limit=concurrency, conn_timeout=300.0)
    lat: list = []
    left = [requests]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            inp = tha.InferInput("data", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            t0 = time.perf_counter()
            await client.infer(name, [inp])
            lat.append(time.perf_counter() - t0)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return stats(lat, time.perf_counter() - t0)
    finally:
        await client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet50", help="examples/<model>.py (its network(batch='N'))")
    ap.add_argument("--replicas", default="1,2,4")
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--batch-wait-ms", type=float, default=5.0)
    args = ap.parse_args()

    import importlib
    mod = importlib.import_module(args.model)
    net = mod.network(batch="N", weights=None)
    net.init_random(0)
    x = np.random.default_rng(0).standard_normal((1,) + tuple(net.graph.inputs[0].shape[1:])).astype(np.float32)
    model = nd.compile(net, "openvino", precision="f32", hint="latency")
    out_name = net.graph.outputs[0].name
    want = model(data=x)[out_name]
    for _ in range(3):
        model(data=x)
    xb = np.repeat(x, args.max_batch_size, axis=0)

    def peers() -> tuple:
        """The in-process peers, measured again next to each served run (a shared machine drifts)."""
        threads = in_process(model, x, args.requests, args.concurrency)
        b = in_process(model, xb, max(1, args.requests // args.max_batch_size), 1)
        return threads, {"rps": b["rps"] * args.max_batch_size, "p50": b["p50"], "p99": b["p99"]}

    rows = [("in-process, 1 caller", in_process(model, x, args.requests, 1), None)]

    import ray
    import tritonclient.http as th
    from netdsl.serving import serve
    ray.init(include_dashboard=False, logging_level="warning", log_to_driver=False)
    try:
        port = free_port()  # Serve's HTTP proxy keeps the port it started with
        for r in (int(v) for v in args.replicas.split(",")):
            t0 = time.perf_counter()
            served = serve(net, replicas=r, port=port, max_batch_size=args.max_batch_size,
                           batch_wait_ms=args.batch_wait_ms)
            deploy = time.perf_counter() - t0
            try:
                c = th.InferenceServerClient(f"127.0.0.1:{port}")
                inp = th.InferInput("data", list(x.shape), "FP32")
                inp.set_data_from_numpy(x)
                for _ in range(2 * r):  # warm every replica, check the answer
                    err = float(np.abs(c.infer(net.graph.name, [inp]).as_numpy(out_name) - want).max())
                    assert err < 1e-3, f"served answer differs from the in-process model by {err}"
                c.close()
                threads, batched = peers()
                rows.append((f"in-process, {args.concurrency} threads", threads, None))
                rows.append((f"in-process, batches of {args.max_batch_size}", batched, None))
                res = asyncio.run(http_load(f"127.0.0.1:{port}", net.graph.name, x, args.requests, args.concurrency))
                res["deploy_s"] = deploy
                rows.append((f"Ray Serve, {r} replica(s)", res, (threads, batched)))
            finally:
                served.shutdown()
    finally:
        from ray import serve as rserve
        rserve.shutdown()
        ray.shutdown()

    print(f"model {args.model}, batch-1 requests, {args.requests} requests, concurrency {args.concurrency}, "
          f"max batch {args.max_batch_size}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          "OpenVINO f32")
    print("| setup | requests/s | p50 ms | p99 ms | req/s vs threads / batched (same round) | deploy s |")
    print("|---|---|---|---|---|---|")
    for name, s, peer in rows:
        vs = f"{s['rps'] / peer[0]['rps']:.2f}x / {s['rps'] / peer[1]['rps']:.2f}x" if peer else "-"
        dep = f"{s['deploy_s']:.1f}" if "deploy_s" in s else "-"
        print(f"| {name} | {s['rps']:.1f} | {s['p50']:.1f} | {s['p99']:.1f} | {vs} | {dep} |")


if __name__ == "__main__":
    main()
