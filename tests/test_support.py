import os

from netdsl.ops import all_ops
from netdsl.support import support_table, supported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_backend_lowers_every_catalogue_op():
    catalogue = {n for n, d in all_ops().items() if d.plugin is None}
    for backend in ("reference", "openvino", "tensorrt", "onnx"):
        assert catalogue <= supported(backend), (backend, sorted(catalogue - supported(backend)))


def test_docs_support_table_is_current():
    with open(os.path.join(ROOT, "docs", "SUPPORT.md")) as f:
        text = f.read()
    assert support_table(markdown=True, plugins=False) in text, "regenerate docs/SUPPORT.md with `netdsl ops --markdown`"
