"""netdsl.compare: element-wise limits |got - ref| <= atol + rtol*|ref| by precision and op."""
import math

import numpy as np
import pytest
from scipy.special import erf

from netdsl import compare
from netdsl.compare import assert_close, close, tolerance


def _gelu_erf(x):
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def test_float32_limit_catches_formula_errors_the_old_limit_let_through():
    x = np.random.default_rng(0).uniform(-4, 4, 256)
    ref, wrong = _gelu_erf(x), _gelu_tanh(x)
    old_limit = 2e-4 * max(1.0, np.abs(ref).max())  # the previous worst-element rule
    assert np.abs(wrong - ref).max() < old_limit
    assert not close(wrong, ref, "float32")[0]
    assert close(ref.astype(np.float32), ref, "float32")[0]  # float32 rounding alone passes
    var = np.random.default_rng(1).uniform(1e-4, 4e-3, 64)  # batch norm: eps outside the square root
    assert not close(1 / (np.sqrt(var) + 1e-3), 1 / np.sqrt(var + 1e-3), "float32")[0]


def test_limits_are_element_wise():
    ref = np.array([1000.0, 1e-3])
    got = ref + np.array([5e-3, 0.0])  # 5e-6 relative on the big element: fine
    assert close(got, ref)[0]
    got = ref + np.array([0.0, 5e-4])  # small element off by 5e-4: fails, though tiny next to 1000
    ok, detail = close(got, ref)
    assert not ok and "element (1,)" in detail and "atol + rtol*|ref|" in detail
    with pytest.raises(AssertionError, match="out: element"):
        assert_close(got, ref, what="out")


def test_precisions_ops_and_graph_dtypes():
    assert tolerance("float32") == compare.Tolerance(1e-5, 1e-5)
    assert tolerance("bfloat16").rtol > tolerance("float16").rtol > tolerance("float32").rtol
    q = tolerance("bfloat16", {"conv", "quantize_linear"})
    assert q.range_atol and "quantization grid" in q.why
    assert not tolerance("float32", {"quantize_linear"}).range_atol  # float32 stays tight
    assert tolerance("float32", {"dtype:bfloat16"}).rtol == compare.TOLERANCES["bfloat16"][0]
    for op, by_precision in compare.OP_TOLERANCES.items():
        assert all(t.why for t in by_precision.values()), f"{op}: every exception says why"


def test_integer_and_non_finite_outputs():
    assert close(np.array([1, 2], np.int32), np.array([1, 2], np.int64))[0]
    assert not close(np.array([1, 3]), np.array([1, 2]))[0]
    assert close(np.array([np.inf, 1.0]), np.array([np.inf, 1.0]))[0]
    assert not close(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))[0]
    assert not close(np.zeros(3), np.zeros(4))[0]


def test_deep_networks_get_the_whole_model_limit():
    import netdsl.functional as F
    from netdsl.compare import DEEP_PATH, accumulation_depth, graph_tolerance
    from netdsl.dsl import Network

    def chain(n_layers):
        net = Network(f"chain{n_layers}")
        y = net.input("x", (2, 8))
        for i in range(n_layers):
            y = F.relu(F.linear(y, net.parameter(f"w{i}", (8, 8))))
        net.output(y, "y")
        return net.graph

    shallow, deep = chain(DEEP_PATH), chain(DEEP_PATH + 1)
    assert accumulation_depth(shallow) == DEEP_PATH and accumulation_depth(deep) == DEEP_PATH + 1
    assert graph_tolerance(shallow) == tolerance("float32", {"linear", "relu", "parameter"})
    t = graph_tolerance(deep)
    assert t.range_atol and t.rtol == compare.WHOLE_MODEL["float32"].rtol and "deep network" in t.why
