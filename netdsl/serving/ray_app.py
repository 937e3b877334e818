"""Serving a network on Ray Serve behind the Open Inference Protocol (KServe v2).

    served = serve(net, backend="openvino", replicas=2)      # a local Ray instance unless address=...
    # tritonclient.http.InferenceServerClient("127.0.0.1:8000").infer("lenet", inputs)
    served.shutdown()

The driver writes the network's artifact (OpenVINO IR) once and hands its bytes to every replica
(:class:`Replica`), which compiles it once and answers :mod:`.protocol`'s routes. Requests are batched
with ``ray.serve.batch``: requests whose inputs agree on every dim but the batch dim are concatenated
along it and run as one inference. Ray and Ray Serve are imported here, on first use only
(``pip install "netdsl[serve]"``).
"""
from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..backends.base import import_engine
from ..errors import NetdslError
from .interface import Interface, check_model_name, check_version
from .protocol import Endpoint

BACKENDS = ("openvino",)
INSTALL = 'pip install "ray[serve]" (or pip install "netdsl[serve]")'


def _ray() -> tuple:
    ray = import_engine("ray", "serving on Ray", INSTALL)
    serve = import_engine("ray.serve", "serving on Ray", INSTALL)
    return ray, serve


# ---- one replica -----------------------------------------------------------------------------------
class Replica:
    """A Ray Serve replica: compiles the artifact once, answers the protocol, batches inferences."""

    def __init__(self, spec: dict):
        from ray import serve
        self.spec = spec
        self._dir = tempfile.TemporaryDirectory(prefix="netdsl-replica-")
        for fname, data in spec["files"].items():
            with open(os.path.join(self._dir.name, fname), "wb") as f:
                f.write(data)
        t0 = time.perf_counter()
        self.model = _load(spec["backend"], self._dir.name, spec["options"])
        self.compile_seconds = time.perf_counter() - t0
        iface = Interface.of(self.model.graph)
        self.batch = iface.batch
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netdsl-infer")
        mbs = int(spec["max_batch_size"])
        self._batched = serve.batch(max_batch_size=max(mbs, 1),
                                    batch_wait_timeout_s=float(spec["batch_wait_s"]))(self._run_batch)
        self.endpoint = Endpoint(iface, self._infer, self.model.check_inputs, version=str(spec["version"]),
                                 platform=f"netdsl_{spec['backend']}", config=spec["config"],
                                 server_version=spec["netdsl_version"])

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response
        body = await request.body()
        resp = await self.endpoint.handle(request.method, request.url.path, dict(request.headers), body)
        return Response(content=resp.body, status_code=resp.status, headers=resp.headers)

    async def _infer(self, feeds: dict) -> dict:
        out = await self._batched(feeds)
        if isinstance(out, Exception):  # this request's group failed; the other groups went through
            raise out
        return out

    async def _run_batch(self, items: list) -> list:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, run_batch, self.model.run, items, self.batch)

    def check_health(self) -> None:
        """Ray Serve's health check: the compiled model is there."""
        if self.model is None:
            raise RuntimeError("model not loaded")


def run_batch(run: Any, items: list, batch: Optional[str]) -> list:
    """Run checked feeds: those that agree on every dim but the batch dim are concatenated along it and
    run as one inference, then split again. A failing group gives its error to each of its requests."""
    results: list = [None] * len(items)
    for group in _groups(items, batch):
        feeds = items[group[0]] if len(group) == 1 else \
            {k: np.concatenate([items[i][k] for i in group]) for k in items[group[0]]}
        try:
            out = run(feeds)
        except Exception as e:
            for i in group:
                results[i] = e
            continue
        start = 0
        for i in group:
            n = next(iter(items[i].values())).shape[0] if len(group) > 1 else 0
            results[i] = out if len(group) == 1 else {k: v[start:start + n] for k, v in out.items()}
            start += n
    return results


def _groups(items: list, batch: Optional[str]) -> list:
    """Indices of ``items`` grouped by the shapes of their feeds without the batch dim (each item alone
    when the network has no batch dim)."""
    if batch is None:
        return [[i] for i in range(len(items))]
    groups: dict = defaultdict(list)
    for i, feeds in enumerate(items):
        key = tuple((k, a.shape[1:], a.dtype.str) for k, a in sorted(feeds.items()))
        groups[key].append(i)
    return list(groups.values())


def _load(backend: str, folder: str, options: dict) -> Any:
    if backend == "openvino":
        from ..backends.openvino import load_ir
        return load_ir(os.path.join(folder, "model.xml"), **options)
    raise NetdslError(f"serving backend {backend!r} is not one of {', '.join(BACKENDS)}")


# ---- the driver ----------------------------------------------------------------------------------------
@dataclass
class Served:
    """A network deployed on Ray Serve: its URL, and ``shutdown()`` to take it down."""

    name: str
    url: str
    replicas: int
    app: str
    started_ray: bool

    def shutdown(self) -> None:
        """Delete the application; stop Serve and Ray when :func:`serve` started them."""
        ray, serve = _ray()
        try:
            serve.delete(self.app)
        finally:
            if self.started_ray:
                serve.shutdown()
                ray.shutdown()

    def __str__(self) -> str:
        return f"model '{self.name}' on {self.replicas} replica(s) at {self.url}/v2/models/{self.name}"


def _http_address(host: str, port: int) -> tuple:
    """Where Serve's HTTP proxy really listens (Ray keeps the options of a Serve already running)."""
    try:
        from ray.serve.context import _get_global_client
        cfg = _get_global_client().http_config
        return str(cfg.host), int(cfg.port)
    except Exception:  # a Ray version without this internal: trust the request
        return host, port


def artifact_files(graph: Any, backend: str, **build_options: Any) -> dict:
    """{file name: bytes} of the artifact every replica compiles (the OpenVINO IR)."""
    from .artifacts import plugin_ops
    if backend not in BACKENDS:
        raise NetdslError(f"serving backend {backend!r} is not one of {', '.join(BACKENDS)}")
    ops = plugin_ops(graph)
    if ops:
        node, p = ops[0]
        raise NetdslError(f"{p.describe()} (layer '{node.name}'): serving networks with plugin layers on Ray is not "
                          "supported; export a repository (export_triton / export_ovms) instead")
    from ..backends import openvino
    with tempfile.TemporaryDirectory(prefix="netdsl-serve-") as d:
        openvino.build(graph, os.path.join(d, "model.xml"), **build_options)
        out = {}
        for fname in sorted(os.listdir(d)):
            with open(os.path.join(d, fname), "rb") as f:
                out[fname] = f.read()
    return out


def _reachable(address: Optional[str], timeout: float = 5.0) -> None:
    """Refuse a ``host:port`` / ``ray://host:port`` address where nothing accepts connections (``ray.init``
    would retry there for minutes); ``auto``, ``local`` and None are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return
    import socket
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise NetdslError(f"cannot join the Ray cluster at {address!r}: nothing accepts connections at "
                          f"{host}:{port} ({e.strerror or e}); is it running (ray start --head)?") from None


def _port_free(host: str, port: int) -> None:
    """Refuse a ``host``/``port`` that something already listens on (Serve's proxy failed to bind there
    after Ray had started, with Ray's own error)."""
    import socket
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host.strip("[]"), int(port)))
    except OSError as e:
        raise NetdslError(f"cannot serve on {host}:{port}: {e.strerror or e}; give another --port") from None


class StartupStopped(NetdslError):
    """A SIGTERM during ``ray.init`` stopped :func:`serve`'s start-up; the caller's own SIGTERM handler has
    run (``netdsl serve``'s: stop cleanly) and Ray is shut down."""


def _init_ray(ray: Any, address: Optional[str]) -> None:
    """``ray.init`` on ``address`` (None: a local instance); a cluster it cannot join is a netdsl error."""
    _reachable(address)
    # ray.init puts Ray's own SIGTERM handler in (it exits 15): put back the Python handlers the caller
    # installed (netdsl serve's, which stop the server cleanly) after it, and hand them a SIGTERM that
    # arrived during it (Ray's handler then ended ray.init with SystemExit)
    mine = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)
            if callable(signal.getsignal(s)) and threading.current_thread() is threading.main_thread()}
    try:
        ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=False)
    except ConnectionError as e:
        msg = f"cannot join the Ray cluster at {address!r} ({e}): is it running (ray start --head)?"
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            msg += (" A cluster using token authentication (the default of ray start) is joined with "
                    "RAY_AUTH_MODE=token set here and its token in ~/.ray/auth_token or $RAY_AUTH_TOKEN")
        raise NetdslError(msg) from None
    except SystemExit as e:
        if signal.SIGTERM not in mine or not _from_ray_sigterm(e):
            raise
        for s, h in mine.items():
            signal.signal(s, h)
        mine[signal.SIGTERM](signal.SIGTERM, None)
        ray.shutdown()  # the processes ray.init had started
        raise StartupStopped("a SIGTERM during ray.init stopped the start-up") from None
    for s, h in mine.items():
        signal.signal(s, h)


def _from_ray_sigterm(e: SystemExit) -> bool:
    """Whether ``e`` was raised by one of Ray's own SIGTERM handlers (``sigterm_handler`` in ray/)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code if tb is not None else None
    return code is not None and code.co_name == "sigterm_handler" and f"{os.sep}ray{os.sep}" in code.co_filename


def serve(network: Any, backend: str = "openvino", replicas: int = 1, address: Optional[str] = None,
          host: str = "127.0.0.1", port: int = 8000, name: Optional[str] = None, version: Any = 1,
          max_batch_size: int = 8, batch_wait_ms: float = 2.0, threads: Optional[int] = None,
          replica_cpus: Optional[float] = None, precision: str = "f32", hint: str = "latency",
          num_streams: Any = None, **build_options: Any) -> Served:
    """Deploy ``network`` on Ray Serve with ``replicas`` replicas behind the Open Inference Protocol.

    ``address``: an existing Ray cluster (``"ray://head:10001"`` or ``"auto"``); by default a local Ray
    instance is started (and stopped by ``Served.shutdown``). ``host``/``port``: where Serve's HTTP proxy
    listens. ``max_batch_size``/``batch_wait_ms``: Ray Serve batching of concurrent requests. ``threads``:
    OpenVINO inference threads per replica (default on a local instance: the CPUs shared out among the
    replicas). ``replica_cpus``: Ray CPUs reserved per replica (default: at most 1, so that all replicas
    fit on the machine). ``precision``/``hint``/``num_streams`` are the OpenVINO compile options; other
    keywords go to the IR build (``dynamic``).
    """
    g = getattr(network, "graph", network)
    iface = Interface.of(g)
    name = check_model_name(name or g.name)
    version = check_version(version)
    if int(replicas) < 1:
        raise NetdslError(f"replicas={replicas}: serve at least one replica")
    if num_streams is not None:  # checked here: a replica's compile error would leave Serve retrying
        from ..backends.openvino.runtime import streams_config
        streams_config(num_streams)
    files = artifact_files(g, backend, **build_options)
    ray, rserve = _ray()
    started = not ray.is_initialized()
    local = address is None
    if started and local:  # nothing of ours listens there yet
        _port_free(host, port)
    if started:
        _init_ray(ray, address)
    cpus = float(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
    if replica_cpus is None:
        replica_cpus = min(1.0, cpus / int(replicas))
    if threads is None and local:
        threads = max(1, int((os.cpu_count() or 1) // int(replicas)))
    options: dict = {"precision": precision, "hint": hint}
    if num_streams is not None:
        options["num_streams"] = num_streams
    if threads:
        options["config"] = {"INFERENCE_NUM_THREADS": int(threads)}
    from .. import __version__
    from .triton import tensor_config
    mbs = int(max_batch_size) if iface.batch else 0
    config = {"name": name, "platform": f"netdsl_{backend}", "max_batch_size": mbs,
              "input": [tensor_config(t, mbs) for t in iface.inputs],
              "output": [tensor_config(t, mbs) for t in iface.outputs]}
    spec = {"backend": backend, "files": files, "options": options, "version": version,
            "max_batch_size": max(int(max_batch_size), 1), "batch_wait_s": float(batch_wait_ms) / 1000.0,
            "config": config, "netdsl_version": __version__}
    try:
        rserve.start(http_options={"host": host, "port": int(port)})
        host, port = _http_address(host, int(port))  # a Serve already running keeps its own
        dep = rserve.deployment(Replica, name=name, num_replicas=int(replicas),
                                ray_actor_options={"num_cpus": float(replica_cpus)},
                                max_ongoing_requests=max(16, 2 * int(max_batch_size)))
        app = f"netdsl-{name}"
        rserve.run(dep.bind(spec), name=app, route_prefix="/", blocking=False)
    except Exception:
        if started:
            rserve.shutdown()
            ray.shutdown()
        raise
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return Served(name, f"http://{shown}:{int(port)}", int(replicas), app, started)
