"""``netdsl serve``: deploy a network on Ray Serve behind the Open Inference Protocol (KServe v2)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .common import add_model_args, num_streams_arg, parse_dynamic, prepare

COMMAND, ORDER = "serve", 36


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serving.ray_app import StartupStopped, serve
    net = prepare(args)
    opts: dict = {}
    if args.dynamic:
        opts["dynamic"] = parse_dynamic(args.dynamic, args.backend)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C (e.g. while start-up hangs) aborts
            raise KeyboardInterrupt
        stop.set()

    # installed before start-up: the routes answer 'ready' a moment before Serve's run() returns, and a
    # Ctrl-C in between must stop the server cleanly too
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        served = serve(net, backend=args.backend, replicas=args.replicas, address=args.address, host=args.host,
                       port=args.port, name=args.name, version=args.version, max_batch_size=args.max_batch_size,
                       batch_wait_ms=args.batch_wait_ms, threads=args.threads, replica_cpus=args.replica_cpus,
                       precision=args.precision, hint=args.hint, num_streams=args.num_streams, **opts)
    except BaseException as e:
        for s, h in old.items():
            signal.signal(s, h)
        if isinstance(e, StartupStopped) and stop.is_set():  # a SIGTERM during ray.init: as one after it
            print("stopping ...", file=sys.stderr, flush=True)
            return 0
        raise
    for s in old:  # again: Ray's start-up may have put its own handlers in
        signal.signal(s, on_signal)
    try:
        print(f"serving {served}; Ctrl-C stops", flush=True)
        print(f"  health: {served.url}/v2/health/ready  infer: POST {served.url}/v2/models/{served.name}/infer",
              flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        print("stopping ...", file=sys.stderr, flush=True)
        served.shutdown()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="serve a network on Ray Serve (Open Inference Protocol / KServe v2)",
                       description="Deploy the network on Ray Serve: each replica compiles it once, concurrent "
                                   "requests are batched, and the HTTP routes are those of the Open Inference "
                                   "Protocol (KServe v2), so tritonclient.http and KServe clients work unchanged. "
                                   "Starts a local Ray instance unless --address names a cluster.")
    add_model_args(p, backend=False)
    p.add_argument("--backend", choices=("openvino",), default="openvino", help="engine in every replica")
    p.add_argument("--replicas", type=int, default=1, help="number of replicas (default 1)")
    p.add_argument("--address", help="existing Ray cluster (e.g. auto, ray://head:10001); default: a local instance")
    p.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1; 0.0.0.0 for all interfaces)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--name", help="model name in the URL (default: the network's name)")
    p.add_argument("--version", default="1", help="model version (default 1)")
    p.add_argument("--max-batch-size", dest="max_batch_size", type=int, default=8,
                   help="requests batched into one inference at most (default 8)")
    p.add_argument("--batch-wait-ms", dest="batch_wait_ms", type=float, default=2.0,
                   help="how long a batch waits for more requests (default 2 ms)")
    p.add_argument("--threads", type=int, help="inference threads per replica (default: the CPUs shared out)")
    p.add_argument("--replica-cpus", dest="replica_cpus", type=float, help="Ray CPUs reserved per replica")
    p.add_argument("--precision", default="f32", help="OpenVINO inference precision (f32 | bf16 | f16 | auto)")
    p.add_argument("--hint", default="latency", choices=("latency", "throughput"), help="OpenVINO performance hint")
    p.add_argument("--num-streams", dest="num_streams", type=num_streams_arg, metavar="N",
                   help="OpenVINO streams per replica (a positive integer, or auto)")
    p.add_argument("--dynamic", action="append", metavar="SYM=LO:HI", help="range of a symbolic dim in the IR")
    p.set_defaults(fn=cmd_serve)
