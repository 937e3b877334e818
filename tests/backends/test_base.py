import numpy as np
import pytest

import netdsl as nd
from netdsl.errors import ShapeError


def _emb_net():
    net = nd.Network("oob")
    ids = net.input("ids", ("N", 5), "int32")
    net.output(nd.embedding(ids, net.parameter("emb.weight", (10, 4))), "e")
    return net.init_random(0)


@pytest.mark.parametrize("backend", ["reference", "onnx", "openvino"])
def test_out_of_range_ids_are_refused_before_the_engine(backend):
    pytest.importorskip({"reference": "numpy", "onnx": "onnxruntime", "openvino": "openvino"}[backend],
                        reason=f"{backend} engine not installed")
    model = nd.compile(_emb_net(), backend)
    with pytest.raises(ShapeError, match=r"'ids'.*\[-10, 10\).*embedding"):
        model(ids=np.full((1, 5), 12, np.int32))
    ok = model(ids=np.arange(5, dtype=np.int32)[None])["e"]
    assert ok.shape == (1, 5, 4)


def test_input_errors_name_the_input():
    model = nd.compile(_emb_net())
    with pytest.raises(ShapeError, match="missing input"):
        model()
    with pytest.raises(ShapeError, match="input 'ids': expected shape"):
        model(ids=np.zeros((2, 6), np.int32))
    with pytest.raises(ShapeError, match="expected int32"):
        model(ids=np.zeros((2, 5), np.float32))
