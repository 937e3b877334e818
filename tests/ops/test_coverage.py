"""Meta-tests: every registered op has independent tests, and those tests fail on a wrong reference."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from netdsl.ops import all_ops, registry

from . import test_elementwise, test_nn, test_preprocess, test_quantize, test_ranges, test_reduce, test_tensor

MODULES = (test_elementwise, test_nn, test_preprocess, test_quantize, test_ranges, test_reduce, test_tensor)


def test_every_registered_op_has_an_independent_test():
    covered = set().union(*(m.COVERS for m in MODULES))
    missing = sorted(n for n, d in all_ops().items() if d.plugin is None and n not in covered and n != "parameter")
    assert not missing, f"ops without an independent reference test in tests/ops/: {missing}"
    unknown = sorted(covered - {n for n, d in all_ops().items() if d.plugin is None})
    assert not unknown, f"tests/ops COVERS lists ops that do not exist: {unknown}"


def _break(monkeypatch, op, wrong):
    """Replace ``op``'s reference by ``wrong(original_reference)`` for this test only."""
    d = registry._REGISTRY[op]
    monkeypatch.setitem(registry._REGISTRY, op, dataclasses.replace(d, reference=wrong(d.reference)))


def _nudge(ref):
    def f(*a, **k):
        y = ref(*a, **k)
        y = np.array(y, copy=True)
        y.flat[y.size // 2] += 1e-5 * max(1.0, float(np.abs(y).max()))
        return y
    return f


# (op, how to break it, the test to run, its arguments)
BROKEN = [
    ("conv", _nudge, test_nn.test_conv, (3,)),
    ("conv", lambda ref: lambda x, w, b=None, **k: ref(x, w, b, **{**k, "dilations": ()}), test_nn.test_conv, (4,)),
    ("conv_transpose", lambda ref: lambda x, w, b=None, **k: ref(x, w, b, **{**k, "output_padding": ()})[..., :, :],
     test_nn.test_conv_transpose, (0,)),
    ("avg_pool", lambda ref: lambda x, **k: ref(x, **{**k, "count_include_pad": not k["count_include_pad"]}),
     test_nn.test_pool, ("avg", 1)),
    ("max_pool", lambda ref: lambda x, **k: ref(x, **{**k, "ceil_mode": False}), test_nn.test_pool, ("max", 3)),
    ("attention", lambda ref: lambda q, k, v, m=None, **kw: ref(q, k, v, None, **kw), test_nn.test_attention, (2,)),
    ("attention", lambda ref: lambda q, k, v, m=None, **kw: ref(q, k, v, m, **{**kw, "causal": False}),
     test_nn.test_attention, (4,)),
    ("lrn", lambda ref: lambda x, **k: ref(x, **{**k, "size": k["size"] + 1}), test_nn.test_lrn,
     ((2, 5, 6), 4, 0.3, 0.75, 1.0)),
    ("batch_norm", lambda ref: lambda *a, **k: ref(*a, **{**k, "eps_mode": "inside_sqrt"}),
     test_nn.test_batch_norm_eps_outside_sqrt, ((2, 3, 4, 4),)),
    ("layer_norm", _nudge, test_nn.test_layer_norm, ((3, 8), -1, "both")),
    ("softmax", lambda ref: lambda x, axis: ref(x, 0), test_elementwise.test_softmax, (False, (3, 7), -1)),
    ("sub", lambda ref: lambda a, b: ref(b, a), test_elementwise.test_binary_broadcast, ("sub", ((2, 1, 4), (3, 1)))),
    ("gelu", lambda ref: lambda x, approximate: ref(x, "tanh"), test_elementwise.test_unary_vs_math_module,
     ("gelu", (7,))),
    ("topk", lambda ref: lambda x, **k: [r[..., ::-1] if i == 1 else r for i, r in enumerate(ref(x, **k))],
     test_reduce.test_topk_ties_lower_index_first, (True,)),
    ("reduce_sum", lambda ref: lambda x, axes, keepdims: ref(x, axes=axes, keepdims=True),
     test_reduce.test_reduce, ("reduce_sum", (3, 4, 5), (1,), False)),
    ("slice", lambda ref: lambda x, **k: ref(x, **{**k, "steps": None}), test_tensor.test_slice, (3,)),
    ("resize", lambda ref: lambda x, **k: ref(x, **{**k, "coordinate_transformation": "asymmetric"}),
     test_tensor.test_resize_linear, ("half_pixel", 0)),
    ("resize", lambda ref: lambda x, **k: ref(x, **{**k, "nearest_mode": "round_prefer_ceil"}),
     test_tensor.test_resize_nearest, ("half_pixel", "round_prefer_floor", 3)),
    ("pad", lambda ref: lambda x, **k: ref(x, **{**k, "mode": "reflect" if k["mode"] == "edge" else k["mode"]}),
     test_tensor.test_pad, ("edge", (3, 4), (1, 2, 0, 1))),
    ("gather", lambda ref: lambda d, i, axis: ref(d, np.where(i < 0, -i - 1, i), axis=axis), test_tensor.test_gather,
     ((5, 3), (4,), 0, "int32")),
    ("cast", lambda ref: lambda x, dtype: np.round(x).astype(dtype.numpy) if dtype.is_int else ref(x, dtype),
     test_elementwise.test_cast_from_float, ("int32",)),
    ("quantize_linear", lambda ref: lambda x, scale, zero_point=None, **k: ref(x + 0.5 * np.asarray(scale), scale,
                                                                                zero_point, **k),
     test_quantize.test_ties_round_half_to_even_before_the_zero_point, ("int8", 3)),
    ("dequantize_linear", lambda ref: lambda x, scale, zero_point=None, **k: ref(x, scale, None, **k),
     test_quantize.test_per_channel_vs_torch, (1,)),
]


@pytest.mark.parametrize("i", range(len(BROKEN)), ids=lambda i: f"{BROKEN[i][0]}-{i}")
def test_a_wrong_reference_is_caught(monkeypatch, i):
    op, wrong, test, args = BROKEN[i]
    test(*args)  # passes with the real reference
    _break(monkeypatch, op, wrong)
    with pytest.raises(AssertionError):
        test(*args)
