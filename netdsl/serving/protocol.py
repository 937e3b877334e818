"""The Open Inference Protocol (KServe v2, the HTTP/REST protocol Triton speaks), server side.

:class:`Endpoint` answers one model's routes, independent of the web framework:

    GET  /v2/health/live, /v2/health/ready, /v2                     server health and metadata
    GET  /v2/models/<name>[/versions/<v>][/ready]                    model metadata and readiness
    GET  /v2/models/<name>[/versions/<v>]/config                     the model's Triton-style config
    POST /v2/models/<name>[/versions/<v>]/infer                      inference

Tensors come as JSON ``data`` or in the binary tensor data extension (``binary_data_size`` per input,
the JSON header's length in ``Inference-Header-Content-Length``), as ``tritonclient.http`` sends them by
default; outputs go back as JSON or binary as each requested output (or ``binary_data_output``) asks.
Request bodies may be gzip/deflate encoded; responses are compressed when ``Accept-Encoding`` asks.
"""
from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

import numpy as np

from ..errors import NetdslError
from .interface import DTYPE_OF_KSERVE, Interface

HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data", "model_configuration"]


class ProtocolError(NetdslError):
    """A request the protocol cannot answer: ``status`` is the HTTP status code to send."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict

    @property
    def json(self) -> Any:
        n = int(self.headers.get("Inference-Header-Content-Length", len(self.body)))
        return json.loads(self.body[:n] or b"null")


# ---- tensors <-> bytes ----------------------------------------------------------------------------
def _numpy_dtype(datatype: str) -> np.dtype:
    if datatype == "BF16":
        return np.dtype(np.float32)  # carried as float32, like netdsl's bfloat16 tensors
    return np.dtype(DTYPE_OF_KSERVE[datatype] if datatype != "BOOL" else np.bool_)


def decode_tensor(datatype: str, shape: list, raw: Optional[bytes], data: Any, name: str) -> np.ndarray:
    """One input tensor from its binary bytes (little-endian, row-major) or its JSON ``data``."""
    if datatype not in DTYPE_OF_KSERVE:
        raise ProtocolError(f"input '{name}': datatype {datatype!r} is not supported (supported: "
                            f"{', '.join(DTYPE_OF_KSERVE)})")
    try:
        shape = [int(d) for d in shape]
    except (TypeError, ValueError):
        raise ProtocolError(f"input '{name}': shape must be a list of integers, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ProtocolError(f"input '{name}': shape {shape} has a negative dim")
    count = math.prod(shape)  # Python ints: a product that wraps in int64 would match too few bytes
    if raw is not None:
        if datatype == "BF16":
            if len(raw) != 2 * count:
                raise ProtocolError(f"input '{name}': {len(raw)} bytes of BF16 data for shape {shape} "
                                    f"({2 * count} expected)")
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            return bits.view(np.float32).reshape(shape)
        dt = _numpy_dtype(datatype).newbyteorder("<")
        if len(raw) != dt.itemsize * count:
            raise ProtocolError(f"input '{name}': {len(raw)} bytes of {datatype} data for shape {shape} "
                                f"({dt.itemsize * count} expected)")
        return np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="), copy=True).reshape(shape)
    if data is None:
        raise ProtocolError(f"input '{name}': neither 'data' nor parameters.binary_data_size given")
    try:
        arr = np.asarray(data, dtype=_numpy_dtype(datatype))
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"input '{name}': 'data' is not a list of {datatype} values ({e})") from None
    if arr.size != count:
        raise ProtocolError(f"input '{name}': 'data' has {arr.size} values, shape {shape} needs {count}")
    return arr.reshape(shape)


def encode_tensor(datatype: str, arr: np.ndarray) -> bytes:
    """Row-major little-endian bytes of an output (BF16: float32 rounded to nearest even, top 16 bits)."""
    if datatype == "BF16":
        bits = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.astype("<u2").tobytes()
    dt = _numpy_dtype(datatype).newbyteorder("<")
    return np.ascontiguousarray(arr, dtype=dt).tobytes()


# ---- requests and responses ----------------------------------------------------------------------
@dataclass
class InferRequest:
    id: Optional[str]
    feeds: dict                # input name -> array
    outputs: list              # [(output name, binary?)]


MAX_INFLATED = 256 << 20  # bytes a compressed request body may inflate to (a 1 MB gzip bomb makes 1 GB)


def decode_body(body: bytes, headers: dict) -> bytes:
    enc = headers.get("content-encoding", "").lower()
    if enc in ("gzip", "deflate"):
        d = zlib.decompressobj(31 if enc == "gzip" else 15)
        try:
            out = d.decompress(body, MAX_INFLATED + 1)
        except zlib.error as e:
            raise ProtocolError(f"request body is not valid {enc} data ({e})") from None
        if len(out) > MAX_INFLATED:
            raise ProtocolError(f"request body inflates to more than {MAX_INFLATED} bytes: refused (send large "
                                "tensors uncompressed)", 413)
        if not d.eof or d.unused_data:
            raise ProtocolError(f"request body is not valid {enc} data (truncated, or data after its end)")
        return out
    if enc not in ("", "identity"):
        raise ProtocolError(f"Content-Encoding {enc!r} is not supported (gzip, deflate)", 415)
    return body


def parse_infer(body: bytes, headers: dict, iface: Interface) -> InferRequest:
    """An inference request (JSON, or JSON header + binary tensor data) checked against the interface."""
    n = headers.get(HEADER_LENGTH)
    try:
        hl = int(n) if n is not None else len(body)
    except ValueError:
        raise ProtocolError(f"Inference-Header-Content-Length {n!r} is not an integer") from None
    if not 0 <= hl <= len(body):
        raise ProtocolError(f"Inference-Header-Content-Length {hl} exceeds the body ({len(body)} bytes)")
    try:
        doc = json.loads(body[:hl])
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ProtocolError(f"request header is not JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise ProtocolError("request has no 'inputs' list")
    binary = memoryview(body)[hl:]
    pos = 0
    feeds: dict = {}
    for item in doc["inputs"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProtocolError("each input needs a 'name'")
        name = item["name"]
        want = iface.tensor(name, "input") if any(t.name == name for t in iface.inputs) else None
        if want is None:
            raise ProtocolError(f"unexpected input '{name}' (model '{iface.name}' takes "
                                f"{', '.join(t.name for t in iface.inputs)})")
        if name in feeds:
            raise ProtocolError(f"input '{name}' given twice")
        params = item.get("parameters") or {}
        if any(k.startswith("shared_memory") for k in params):
            raise ProtocolError(f"input '{name}': shared-memory inputs are not supported")
        datatype = item.get("datatype")
        if datatype != want.kserve_type:
            raise ProtocolError(f"input '{name}': datatype {datatype}, model '{iface.name}' expects {want.kserve_type}")
        raw = None
        if "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or isinstance(size, bool):
                raise ProtocolError(f"input '{name}': binary_data_size {size!r} is not a number of bytes")
            if size < 0 or pos + size > len(binary):
                raise ProtocolError(f"input '{name}': binary_data_size {size} runs past the body's binary data "
                                    f"({len(binary) - pos} bytes left)")
            raw = bytes(binary[pos:pos + size])
            pos += size
        feeds[name] = decode_tensor(datatype, item.get("shape", []), raw, item.get("data"), name)
    if pos != len(binary):
        raise ProtocolError(f"{len(binary) - pos} bytes of binary data after the last input")
    missing = [t.name for t in iface.inputs if t.name not in feeds]
    if missing:
        raise ProtocolError(f"missing input(s) {', '.join(missing)} for model '{iface.name}'")
    default_binary = bool((doc.get("parameters") or {}).get("binary_data_output", False))
    outs = []
    for item in doc.get("outputs") or [{"name": t.name} for t in iface.outputs]:
        name = item.get("name") if isinstance(item, dict) else None
        if not any(t.name == name for t in iface.outputs):
            raise ProtocolError(f"unknown output {name!r} (model '{iface.name}' has "
                                f"{', '.join(t.name for t in iface.outputs)})")
        params = item.get("parameters") or {}
        if "classification" in params or any(k.startswith("shared_memory") for k in params):
            raise ProtocolError(f"output '{name}': classification and shared-memory outputs are not supported")
        outs.append((name, bool(params.get("binary_data", default_binary))))
    rid = doc.get("id")
    return InferRequest(None if rid is None else str(rid), feeds, outs)


def infer_response(iface: Interface, version: str, req: InferRequest, results: dict) -> tuple:
    """(body, headers) of an inference response: JSON header, then the binary outputs in order."""
    outputs, chunks = [], []
    for name, binary in req.outputs:
        arr = np.asarray(results[name])
        datatype = iface.tensor(name, "output").kserve_type
        item: dict = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary:
            raw = encode_tensor(datatype, arr)
            item["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            item["data"] = arr.reshape(-1).tolist()
        outputs.append(item)
    doc: dict = {"model_name": iface.name, "model_version": version, "outputs": outputs}
    if req.id is not None:
        doc["id"] = req.id
    head = json.dumps(doc, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if chunks:
        headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
    return head + b"".join(chunks), headers


# ---- routes ---------------------------------------------------------------------------------------
Infer = Callable[[dict], Awaitable[dict]]


class Endpoint:
    """One model behind the protocol: ``await endpoint.handle(method, path, headers, body)`` -> Response.

    ``infer(feeds) -> outputs`` runs the model (``feeds`` already checked by ``check``, which raises a
    NetdslError for bad shapes or values). ``config`` is the model's Triton-style configuration.
    """

    def __init__(self, iface: Interface, infer: Infer, check: Callable[[dict], dict], version: str = "1",
                 platform: str = "netdsl", config: Optional[dict] = None, server: str = "netdsl",
                 server_version: str = ""):
        self.iface, self.infer, self.check = iface, infer, check
        self.version, self.platform, self.config = str(version), platform, config or {}
        self.server, self.server_version = server, server_version
        self.ready = True

    def metadata(self) -> dict:
        return {"name": self.iface.name, "versions": [self.version], "platform": self.platform,
                "inputs": [t.metadata() for t in self.iface.inputs],
                "outputs": [t.metadata() for t in self.iface.outputs]}

    async def handle(self, method: str, path: str, headers: dict, body: bytes) -> Response:
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            status, out, extra = await self._route(method.upper(), path, headers, body)
        except ProtocolError as e:
            return _json(e.status, {"error": str(e)})
        except NetdslError as e:  # the model refused the inputs (shapes, dtypes, index ranges)
            return _json(400, {"error": str(e)})
        except Exception as e:  # an engine failure: reported, never a dropped connection
            return _json(500, {"error": f"{type(e).__name__}: {e}"})
        if isinstance(out, bytes):
            return _compress(Response(status, out, extra), headers.get("accept-encoding", ""))
        return _json(status, out)

    async def _route(self, method: str, path: str, headers: dict, body: bytes) -> tuple:
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v2"]:
            raise ProtocolError(f"no route {path!r} (the Open Inference Protocol lives under /v2)", 404)
        rest = parts[1:]
        if rest in ([], ["health", "live"], ["health", "ready"]):
            _want(method, "GET", path)
            if not rest:
                return 200, {"name": self.server, "version": self.server_version, "extensions": EXTENSIONS}, {}
            return 200, {rest[1]: rest[1] == "live" or self.ready}, {}
        if len(rest) < 2 or rest[0] != "models":
            raise ProtocolError(f"no route {path!r}", 404)
        if rest[1] != self.iface.name:
            raise ProtocolError(f"unknown model '{rest[1]}' (serving '{self.iface.name}')", 404)
        rest = rest[2:]
        if rest[:1] == ["versions"]:
            if len(rest) < 2 or rest[1] != self.version:
                raise ProtocolError(f"model '{self.iface.name}' has no version {rest[1] if len(rest) > 1 else ''!r} "
                                    f"(serving version {self.version})", 404)
            rest = rest[2:]
        if not rest:
            _want(method, "GET", path)
            return 200, self.metadata(), {}
        if rest == ["ready"]:
            _want(method, "GET", path)
            return (200 if self.ready else 503), {"name": self.iface.name, "ready": self.ready}, {}
        if rest == ["config"]:
            _want(method, "GET", path)
            return 200, self.config, {}
        if rest == ["infer"]:
            _want(method, "POST", path)
            req = parse_infer(decode_body(body, headers), headers, self.iface)
            feeds = self.check(req.feeds)
            results = await self.infer(feeds)
            payload, extra = infer_response(self.iface, self.version, req, results)
            return 200, payload, extra
        raise ProtocolError(f"no route {path!r}", 404)


def _want(method: str, allowed: str, path: str) -> None:
    if method != allowed:
        raise ProtocolError(f"{path} answers {allowed}, not {method}", 405)


def _json(status: int, doc: Any) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":")).encode(), {"Content-Type": "application/json"})


def _compress(resp: Response, accept: str) -> Response:
    kinds = [a.split(";")[0].strip().lower() for a in accept.split(",") if a.strip()]
    if "gzip" in kinds:
        return Response(resp.status, gzip.compress(resp.body), {**resp.headers, "Content-Encoding": "gzip"})
    if "deflate" in kinds:
        return Response(resp.status, zlib.compress(resp.body), {**resp.headers, "Content-Encoding": "deflate"})
    return resp
