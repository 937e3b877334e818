"""The Open Inference Protocol endpoint, driven by requests that tritonclient.http itself builds and
answers that tritonclient.http itself parses (no server, no Ray): JSON and binary tensors, compression,
metadata, and errors that name the tensor."""
from __future__ import annotations

import asyncio
import gzip
import json

import numpy as np
import pytest

import netdsl as nd
from netdsl.compare import assert_close
from netdsl.serving.interface import Interface
from netdsl.serving.protocol import Endpoint, decode_tensor, encode_tensor

from .nets import lenet, lenet_feeds, multi, multi_feeds, ref

th = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
Client = th.InferenceServerClient


def _endpoint(net):
    model = nd.compile(net, "openvino", precision="f32")

    async def infer(feeds):
        return model.run(feeds)

    return Endpoint(Interface.of(net.graph), infer, model.check_inputs, version="1", platform="netdsl_openvino",
                    config={"name": net.graph.name})


def _call(ep, method, path, body=b"", headers=None):
    return asyncio.run(ep.handle(method, path, headers or {}, body))


def _infer(ep, name, inputs, outputs=None, headers=None, compress=None, **kw):
    body, json_size = Client.generate_request_body(inputs, outputs=outputs, **kw)
    hdrs = dict(headers or {})
    if json_size is not None:
        hdrs["Inference-Header-Content-Length"] = str(json_size)
    if compress:
        body = gzip.compress(body)
        hdrs["Content-Encoding"] = "gzip"
    resp = _call(ep, "POST", f"/v2/models/{name}/infer", body, hdrs)
    assert resp.status == 200, resp.body[:500]
    n = resp.headers.get("Inference-Header-Content-Length")
    return Client.parse_response_body(resp.body, header_length=int(n) if n else None,
                                      content_encoding=resp.headers.get("Content-Encoding"))


def _inputs(feeds, binary):
    out = []
    for k, v in feeds.items():
        i = th.InferInput(k, list(v.shape), {"float32": "FP32", "uint8": "UINT8", "int32": "INT32"}[str(v.dtype)])
        i.set_data_from_numpy(v, binary_data=binary)
        out.append(i)
    return out


@pytest.mark.parametrize("binary_in,binary_out", [(True, True), (False, False), (True, False), (False, True)])
def test_lenet_infer_json_and_binary(binary_in, binary_out):
    net = lenet()
    ep = _endpoint(net)
    feeds = lenet_feeds(np.random.default_rng(10), 3)
    res = _infer(ep, "lenet", _inputs(feeds, binary_in), [th.InferRequestedOutput("prob", binary_data=binary_out)],
                 request_id="req-7")
    assert res.get_response()["id"] == "req-7" and res.get_response()["model_name"] == "lenet"
    assert_close(res.as_numpy("prob"), ref(net, feeds)["prob"], "float32")


def test_multi_dtype_outputs_default_to_all():
    net = multi()
    ep = _endpoint(net)
    feeds = multi_feeds(np.random.default_rng(11), n=2, s=7)
    res = _infer(ep, "multi", _inputs(feeds, True), compress="gzip",
                 headers={"Accept-Encoding": "gzip"})
    want = ref(net, feeds)
    assert res.as_numpy("best").dtype == np.int32
    assert_close(res.as_numpy("best"), want["best"])
    assert_close(res.as_numpy("pooled"), want["pooled"], "float32")


def test_health_and_metadata_routes():
    ep = _endpoint(lenet())
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/lenet/ready", "/v2/models/lenet/versions/1/ready"):
        assert _call(ep, "GET", path).status == 200, path
    meta = _call(ep, "GET", "/v2/models/lenet").json
    assert meta == {"name": "lenet", "versions": ["1"], "platform": "netdsl_openvino",
                    "inputs": [{"name": "data", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
                    "outputs": [{"name": "prob", "datatype": "FP32", "shape": [-1, 10]}]}
    assert "binary_tensor_data" in _call(ep, "GET", "/v2").json["extensions"]
    assert _call(ep, "GET", "/v2/models/lenet/config").json == {"name": "lenet"}


@pytest.mark.parametrize("change,status,message", [
    (lambda d: d["inputs"][0].update(datatype="FP64"), 400, "input 'data': datatype FP64, model 'lenet' expects FP32"),
    (lambda d: d["inputs"][0].update(shape=[1, 1, 27, 28], data=[0.5] * 756), 400, "input 'data'"),
    (lambda d: d["inputs"][0].update(data=[0.5] * 5), 400, "'data' has 5 values"),
    (lambda d: d["inputs"][0].update(name="image"), 400, "unexpected input 'image'"),
    (lambda d: d.update(inputs=[]), 400, "missing input"),
    (lambda d: d.update(outputs=[{"name": "logits"}]), 400, "unknown output 'logits'"),
])
def test_bad_requests_name_the_tensor(change, status, message):
    ep = _endpoint(lenet())
    doc = {"inputs": [{"name": "data", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0.25] * 784}]}
    change(doc)
    resp = _call(ep, "POST", "/v2/models/lenet/infer", json.dumps(doc).encode())
    assert resp.status == status and message in resp.json["error"], resp.json


def test_bad_routes_and_bodies():
    ep = _endpoint(lenet())
    assert _call(ep, "GET", "/v2/models/other").status == 404
    assert _call(ep, "GET", "/v2/models/lenet/versions/2").status == 404
    assert _call(ep, "GET", "/v2/models/lenet/infer").status == 405
    assert _call(ep, "POST", "/v2/models/lenet/infer", b"{oops").status == 400
    x = np.ones((1, 1, 28, 28), np.float32)
    body, n = Client.generate_request_body(_inputs({"data": x}, True))
    short = _call(ep, "POST", "/v2/models/lenet/infer", body[:-8], {"Inference-Header-Content-Length": str(n)})
    assert short.status == 400 and "binary_data_size 3136 runs past" in short.json["error"]


def test_bf16_and_fp16_tensors_as_tritonclient_writes_them():
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (tritonclient's bfloat16) is not installed")
    x = np.random.default_rng(5).standard_normal((2, 3)).astype(np.float32)
    xb = x.astype(ml_dtypes.bfloat16)
    i = th.InferInput("x", [2, 3], "BF16")
    i.set_data_from_numpy(xb, binary_data=True)
    got = decode_tensor("BF16", [2, 3], i._get_binary_data(), None, "x")
    np.testing.assert_array_equal(got, xb.astype(np.float32))
    assert encode_tensor("BF16", x) == xb.tobytes()  # round to nearest even, as ml_dtypes does
    h = np.random.default_rng(6).standard_normal(5).astype(np.float16)
    j = th.InferInput("h", [5], "FP16")
    j.set_data_from_numpy(h, binary_data=True)
    np.testing.assert_array_equal(decode_tensor("FP16", [5], j._get_binary_data(), None, "h"), h)


@pytest.mark.parametrize("enc", ["gzip", "deflate"])
def test_compressed_body_inflating_past_the_limit_refused(enc):
    """300 kB of gzip inflated to 300 MB in the replica before the JSON was even looked at."""
    import zlib

    from netdsl.serving.protocol import MAX_INFLATED
    c = zlib.compressobj(1, zlib.DEFLATED, 31 if enc == "gzip" else 15)
    chunk = bytes(1 << 20)
    body = b"".join(c.compress(chunk) for _ in range((MAX_INFLATED >> 20) + 16)) + c.flush()
    assert len(body) < 2 << 20
    ep = _endpoint(lenet())
    resp = _call(ep, "POST", "/v2/models/lenet/infer", body, {"Content-Encoding": enc})
    assert resp.status == 413 and b"inflates to more than" in resp.body, resp.body[:300]
    for bad in (body[:1000], zlib.compress(b"{}") + b"junk" if enc == "deflate" else gzip.compress(b"{}") + b"junk"):
        resp = _call(ep, "POST", "/v2/models/lenet/infer", bad, {"Content-Encoding": enc})
        assert resp.status == 400 and b"not valid" in resp.body, resp.body[:300]


@pytest.mark.parametrize("item,body_tail,match", [
    ({"shape": [2**32, 2**32], "parameters": {"binary_data_size": 0}}, b"", "0 bytes of FP32 data for shape"),
    ({"shape": [2**70], "data": []}, b"", "'data' has 0 values"),
    ({"shape": [1, 1, 28, 28], "parameters": {"binary_data_size": "abc"}}, b"", "binary_data_size 'abc' is not a number"),
    ({"shape": [1], "data": "NEST"}, b"", "request header is not JSON"),
])
def test_malformed_requests_are_client_errors(item, body_tail, match):
    """A shape whose int64 product wraps, a huge dim, a size that is not a number, JSON nested 100000 deep:
    answered 400 naming the problem (were 500 with a NumPy/JSON exception)."""
    ep = _endpoint(lenet())
    head = json.dumps({"inputs": [{"name": "data", "datatype": "FP32", **item}]}).encode()
    head = head.replace(b'"NEST"', b"[" * 100_000 + b"]" * 100_000)
    resp = _call(ep, "POST", "/v2/models/lenet/infer", head + body_tail,
                 {"Inference-Header-Content-Length": str(len(head))})
    assert resp.status == 400 and match.encode() in resp.body, resp.body[:300]
