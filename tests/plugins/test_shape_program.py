"""Shape programs: the declared inference traced over input dims, as text every engine evaluates."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from netdsl.dtypes import DType
from netdsl.errors import ShapeError
from netdsl.graph import TensorSpec
from netdsl.ops import Attr
from netdsl.plugins import declare
from netdsl.plugins.cuda import CudaKernel, Launch, ceil_div
from netdsl.plugins.shape_program import (ShapeProgram, ShapeProgramError, evaluate, parse, to_text, trace)
from netdsl.shapes import Sym, affine, dim_div


def _spec(*dims, dtype=DType.float32):
    return TensorSpec(dtype, tuple(Sym.of(d) if isinstance(d, str) else d for d in dims))


def _conv_like(x, *, k):
    n, c, h, w = x.shape
    return [TensorSpec(x.dtype, (n, c * 4, dim_div(h, 2), affine(w, add=-k, div=2, add_after=1))),
            TensorSpec(DType.int32, (n,))]


CONV_LIKE = declare("test_sp_conv_like", attrs={"k": Attr("int", 3)}, outputs=("y", "count"), infer=_conv_like,
                    reference=lambda x, k: x, replace=True)


def test_trace_expresses_outputs_over_input_dims():
    prog = trace(CONV_LIKE.opdef, [_spec("N", 3, "H", "W")], {"k": 3})
    assert prog.encode() == "T->T:d0_0:12:(d0_2/2):(((d0_3-3)/2)+1);int32:d0_0"
    assert ShapeProgram.decode(prog.encode()) == prog
    for n, h, w in [(1, 8, 9), (5, 30, 4), (2, 2, 101)]:
        want = [(n, 12, h // 2, (w - 3) // 2 + 1), (n,)]
        assert prog.output_shapes([(n, 3, h, w)]) == want
        ints = CONV_LIKE.opdef.infer_specs([_spec(n, 3, h, w)], {"k": 3})
        assert [s.shape for s in ints] == want  # the program agrees with the declared inference on ints
    assert prog.output_shapes([(None, 3, 8, None)]) == [(None, 12, 4, None), (None,)]


def test_static_dims_stay_constants_and_equal_symbols_share_a_name():
    def infer(a, b):
        if a.shape[0] != b.shape[0]:
            raise ShapeError("batch mismatch")
        return TensorSpec(a.dtype, (a.shape[0], a.shape[1] * b.shape[1]))
    op = declare("test_sp_pair", inputs=("a", "b"), infer=infer, reference=lambda a, b: a, replace=True)
    prog = trace(op.opdef, [_spec("N", 3), _spec("N", "T", dtype=DType.int32)], {})
    assert prog.inputs == ("T", "int32")
    assert prog.encode() == "T,int32->T:d0_0:(3*d1_1)"


def test_products_of_symbols_stay_products():
    op = declare("test_sp_flat", inputs=("a", "b"), reference=lambda a, b: a, replace=True,
                 infer=lambda a, b: TensorSpec(a.dtype, (b.shape[0] / a.shape[1],)))
    N, T = Sym.of("N"), Sym.of("T")
    prog = trace(op.opdef, [TensorSpec(DType.float32, (N, T)), TensorSpec(DType.float32, (N * T * 2, 4))], {})
    assert prog.output_shapes([(3, 5), (30, 4)]) == [(6,)]


def test_inference_that_needs_ints_is_refused_with_the_plugin_name():
    op = declare("test_sp_int", reference=lambda x: x, replace=True,
                 infer=lambda x: TensorSpec(x.dtype, (int(x.shape[0]) + 1,)))
    with pytest.raises(ShapeProgramError, match="test_sp_int"):
        trace(op.opdef, [_spec("N")], {})
    new = declare("test_sp_new_symbol", reference=lambda x: x, replace=True,
                  infer=lambda x: TensorSpec(x.dtype, (Sym.of("K"),)))
    with pytest.raises(ShapeProgramError, match="'K'"):
        trace(new.opdef, [_spec("N")], {})


def test_parse_accepts_python_forms_and_rejects_others():
    assert evaluate(parse("ceildiv(d0_1, 4) + d0_0**2 - -3 // 2"), [(5, 9)]) == 3 + 25 - (-3 // 2)
    for bad in ("x + 1", "d0_1 % 2", "d0_1 ** d0_0", "f(d0_0)", "1.5"):
        with pytest.raises(ShapeProgramError):
            parse(bad)


_leaf = st.one_of(st.integers(-20, 40), st.tuples(st.just("v"), st.integers(0, 1), st.integers(0, 2)))
_expr = st.recursive(_leaf, lambda inner: st.tuples(st.sampled_from(["+", "-", "*", "/", "cdiv"]), inner, inner),
                     max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(_expr, st.lists(st.integers(1, 50), min_size=3, max_size=3), st.lists(st.integers(1, 50), min_size=3,
                                                                              max_size=3))
def test_text_round_trip_keeps_the_value(e, s0, s1):
    shapes = [s0, s1]
    try:
        want = evaluate(e, shapes)
    except ShapeError:
        return  # a division by zero: refused the same way after the round trip
    assert evaluate(parse(to_text(e)), shapes) == want


def test_floor_and_ceiling_division_of_negative_values_match_python():
    assert evaluate(parse("cdiv(0-7,2)"), []) == -(7 // 2) and evaluate(parse("(0-7)/2"), []) == -7 // 2
    assert np.floor(-3.5) == evaluate(parse("(0-7)/2"), [])


def _pool_out(d, k, s, pad, ceil_mode):
    return (d + 2 * pad - k + (s - 1 if ceil_mode else 0)) // s + 1


def _pool_infer(x, *, kernel, stride, pad, ceil_mode):
    n, c, h, w = x.shape
    return TensorSpec(x.dtype, (n, c, _pool_out(h, kernel, stride, pad, ceil_mode),
                                _pool_out(w, kernel, stride, pad, ceil_mode)))


def _pool_reference(x, *, kernel, stride, pad, ceil_mode):
    n, c, h, w = x.shape
    ho, wo = _pool_out(h, kernel, stride, pad, ceil_mode), _pool_out(w, kernel, stride, pad, ceil_mode)
    xp = np.full((n, c, h + 2 * pad + stride, w + 2 * pad + stride), -np.inf, x.dtype)
    xp[:, :, pad:pad + h, pad:pad + w] = x
    return np.stack([np.stack([xp[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel].max(axis=(2, 3))
                               for j in range(wo)], -1) for i in range(ho)], -2)


POOL_CU = r"""
#include "netdsl_cuda.h"
template <typename T>
__global__ void pool(const T* x, T* y, int nc, int h, int w, int ho, int wo, int k, int s, int pad) {
    long long i = nd_global_index();
    if (i >= (long long)nc * ho * wo) return;
    int c = i % wo, r = (i / wo) % ho;
    const T* plane = x + (i / ((long long)ho * wo)) * h * w;
    float m = -3.0e38f;
    for (int a = r * s - pad; a < r * s - pad + k; ++a)
        for (int b = c * s - pad; b < c * s - pad + k; ++b)
            if (a >= 0 && a < h && b >= 0 && b < w) m = fmaxf(m, nd_load(plane + a * w + b));
    nd_store(y + i, m);
}
"""


def _pool_launch(shapes, attrs):
    n, c, h, w = shapes[0]
    k, s, pad, ceil = attrs["kernel"], attrs["stride"], attrs["pad"], attrs["ceil_mode"]
    ho, wo = _pool_out(h, k, s, pad, ceil), _pool_out(w, k, s, pad, ceil)
    return Launch(grid=ceil_div(n * c * ho * wo, 128), block=128,
                  scalars=[("int", v) for v in (n * c, h, w, ho, wo, k, s, pad)])


POOL = declare("test_sp_pool", infer=_pool_infer, reference=_pool_reference, replace=True,
               attrs={"kernel": Attr("int", 3), "stride": Attr("int", 2), "pad": Attr("int", 1),
                      "ceil_mode": Attr("bool", False)},
               cuda=CudaKernel(POOL_CU, {"float32": "pool<float>"}, _pool_launch))


def test_inference_written_with_plus_and_floor_division_on_symbolic_dims():
    """``(h + 2*pad - k) // s + 1`` on symbolic dims: a program over the input dims, right on every size."""
    for ceil_mode in (False, True):
        attrs = {"kernel": 3, "stride": 2, "pad": 1, "ceil_mode": ceil_mode}
        prog = trace(POOL.opdef, [_spec("N", 4, "H", "W")], attrs)
        for h, w in [(7, 8), (2, 31), (16, 3)]:
            want = [(2, 4, _pool_out(h, 3, 2, 1, ceil_mode), _pool_out(w, 3, 2, 1, ceil_mode))]
            assert prog.output_shapes([(2, 4, h, w)]) == want
            assert _pool_reference(np.zeros((2, 4, h, w)), **attrs).shape == want[0]


@pytest.mark.parametrize("backend", ["reference", "openvino-python", "tensorrt", "cuda-compile", "cuda-gpu"])
def test_symbolic_pooling_plugin_passes_conformance(backend):
    from netdsl.plugins import conformance
    case = conformance.Case("sym", [("N", 3, "H", "W")], attrs={"kernel": 3, "stride": 2, "pad": 1, "ceil_mode": True},
                            sizes={"N": 2, "H": 9, "W": 6})
    conformance.checks(POOL, [case], [backend])[0].run_test()
