"""Conformance cases chosen so that a swapped or slightly wrong formula cannot hide.

* padding: pre != post on every padded axis (conv, conv_transpose, pools), O/groups != C/groups;
* batch norm: small variances where eps matters (eps inside vs outside the square root, the variance
  folded instead of the standard deviation), the output of a folded conv + batch norm compared directly;
* activations with non-default alphas (SELU alpha != gamma, ELU, hard sigmoid, softplus-based ops);
* GELU on inputs where the erf and tanh forms differ by 1e-4 .. 5e-4;
* nearest resize with exact .5 ties (half_pixel downsampling, asymmetric upsampling) for both rounding
  preferences, and length-1 outputs;
* gather on a non-zero axis; runtime (non-constant) weights, slopes and statistics.
"""
from __future__ import annotations

import numpy as np

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, case, f32


def _consts(n, seed, **shapes_ranges):
    """Seeded constant tensors {name: (shape, low, high)} (fixed data, not parameters)."""
    rng = np.random.default_rng(seed)
    return {k: n.constant(rng.uniform(lo, hi, size=s).astype(np.float32)) for k, (s, lo, hi) in shapes_ranges.items()}


def _conv(wshape, bias=True, **kw):
    def fn(n, x):
        b = n.parameter("b", (wshape[0],), init="small") if bias else None
        return F.conv(x, n.parameter("w", wshape), b, **kw)
    return fn


def _convt(wshape, groups=1, bias=True, **kw):
    def fn(n, x):
        b = n.parameter("b", (wshape[1] * groups,), init="small") if bias else None
        return F.conv_transpose(x, n.parameter("w", wshape), b, groups=groups, **kw)
    return fn


add(
    # (pads: begins of every spatial axis, then ends)
    case("conv", "conv2d_groups_asym_every_axis", _conv((9, 2, 3, 2), stride=(1, 2), dilation=(2, 1), groups=3,
                                                        padding=(0, 1, 1, 2)), [f32(("N", 6, 9, 8))], batches=DYN),
    case("conv", "conv3d_groups_asym_every_axis", _conv((6, 2, 3, 2, 3), stride=(1, 2, 1), groups=2,
                                                        padding=(1, 0, 2, 2, 1, 0)), [f32((1, 4, 5, 6, 7))]),
    case("conv", "conv1d_asym_groups", _conv((6, 2, 3), groups=2, padding=(2, 1)), [f32((2, 4, 9))]),
    case("conv", "conv2d_runtime_weight_and_bias", lambda n, x, w, b: F.conv(x, w, b, stride=(2, 1), padding=(1, 0, 0, 2)),
         [f32((2, 3, 7, 6)), f32((4, 3, 3, 2), -0.5, 0.5), f32((4,), -0.5, 0.5)]),
    case("conv", "conv1d_runtime_weight", lambda n, x, w: F.conv(x, w, None, padding=(1, 0)),
         [f32((2, 3, 8)), f32((4, 3, 3), -0.5, 0.5)]),
    case("conv_transpose", "convT2d_groups_asym_every_axis",
         _convt((4, 3, 3, 2), groups=2, stride=(2, 3), padding=(1, 0, 0, 1), output_padding=(1, 0)),
         [f32(("N", 4, 4, 3))], batches=DYN),
    case("conv_transpose", "convT1d_asym_outpad_beyond_pad", _convt((3, 2, 3), stride=3, padding=(2, 0),
                                                                     output_padding=2), [f32((2, 3, 4))]),
    case("max_pool", "maxpool_asym_every_axis", lambda n, x: F.max_pool(x, 3, (2, 1), (1, 0, 0, 1)),
         [f32(("N", 2, 7, 6))], batches=DYN),
    case("avg_pool", "avgpool_asym_include_pad", lambda n, x: F.avg_pool(x, 3, (2, 1), (1, 0, 0, 2),
                                                                          count_include_pad=True), [f32((2, 2, 7, 6))]),
    case("avg_pool", "avgpool_asym_exclude_pad", lambda n, x: F.avg_pool(x, (3, 2), (1, 2), (2, 0, 0, 1),
                                                                          count_include_pad=False), [f32((2, 2, 6, 7))]),
    case("max_pool", "maxpool_ceil_equals_floor", lambda n, x: F.max_pool(x, 2, 2, ceil_mode=True),
         [f32(("N", 2, 8, 6))], batches=DYN),
    case("max_pool", "maxpool1d_asym", lambda n, x: F.max_pool(x, 3, 2, (2, 0)), [f32((2, 3, 9))]),
)


def _bn_consts(c, eps, seed, eps_mode="inside_sqrt"):
    """batch_norm with constant statistics: variances in [1e-4, 4e-3] so that eps (1e-3) matters."""
    def fn(n, x):
        p = _consts(n, seed, scale=((c,), 0.5, 1.5), bias=((c,), -0.5, 0.5), mean=((c,), -0.3, 0.3),
                    var=((c,), 1e-4, 4e-3))
        return F.batch_norm(x, p["mean"], p["var"], p["scale"], p["bias"], eps=eps, eps_mode=eps_mode)
    return fn


def _conv_bn_small_var(eps_mode="inside_sqrt"):
    """conv + batch norm (folded into the conv by TensorRT's lowering) with small variances, the batch norm
    output compared directly."""
    def fn(n, x):
        y = F.conv(x, n.parameter("w", (4, 3, 3, 3)), n.parameter("b", (4,), init="small"), padding=(1, 0, 0, 1))
        return _bn_consts(4, 1e-3, 3, eps_mode)(n, y)
    return fn


def _conv_bn_params(eps_mode):
    """conv + batch norm whose statistics are parameters (what the folding pass folds), leaky ReLU after."""
    def fn(n, x):
        y = F.conv(x, n.parameter("w", (5, 3, 3, 3)), padding=1)
        y = F.batch_norm(y, n.parameter("mean", (5,), init="small"), n.parameter("var", (5,), init="positive"),
                         n.parameter("scale", (5,), init="ones"), n.parameter("bias", (5,), init="small"),
                         eps=1e-2, eps_mode=eps_mode)
        return F.leaky_relu(y, 0.1)
    return fn


add(
    case("batch_norm", "bn2d_small_var_eps", _bn_consts(3, 1e-3, 1), [f32(("N", 3, 5, 4), -0.1, 0.1)], batches=DYN),
    case("batch_norm", "bn_rank2_small_var_eps", _bn_consts(6, 1e-3, 2), [f32((4, 6), -0.1, 0.1)]),
    case("batch_norm", "conv_bn_folded_small_var", _conv_bn_small_var(), [f32(("N", 3, 6, 5), -0.1, 0.1)],
         batches=DYN),
    case("batch_norm", "bn_runtime_statistics",
         lambda n, x, s, b, m, v: F.batch_norm(x, m, v, s, b, eps=1e-3),
         [f32((2, 3, 4, 4), -0.1, 0.1), f32((3,), 0.5, 1.5), f32((3,), -0.5, 0.5), f32((3,), -0.05, 0.05),
          f32((3,), 1e-4, 4e-3)]),
)

add(  # Darknet's batch norm: (x - mean) / (sqrt(var) + eps), the same shapes as above
    case("batch_norm", "bn2d_eps_outside_sqrt", _bn_consts(3, 1e-3, 1, "outside_sqrt"),
         [f32(("N", 3, 5, 4), -0.1, 0.1)], batches=DYN),
    case("batch_norm", "bn_rank2_eps_outside_sqrt", _bn_consts(6, 1e-3, 2, "outside_sqrt"), [f32((4, 6), -0.1, 0.1)]),
    case("batch_norm", "conv_bn_folded_eps_outside_sqrt", _conv_bn_small_var("outside_sqrt"),
         [f32(("N", 3, 6, 5), -0.1, 0.1)], batches=DYN),
    case("batch_norm", "conv_bn_params_eps_outside_sqrt", _conv_bn_params("outside_sqrt"),
         [f32(("N", 3, 6, 6))], batches=DYN),
    case("batch_norm", "bn_runtime_statistics_eps_outside_sqrt",
         lambda n, x, s, b, m, v: F.batch_norm(x, m, v, s, b, eps=1e-3, eps_mode="outside_sqrt"),
         [f32((2, 3, 4, 4), -0.1, 0.1), f32((3,), 0.5, 1.5), f32((3,), -0.5, 0.5), f32((3,), -0.05, 0.05),
          f32((3,), 1e-4, 4e-3)]),
)

def _affine(n, shape, seed):
    p = _consts(n, seed, s=(shape, 0.5, 1.5), b=(shape, -0.5, 0.5))
    return {"weight": p["s"], "bias": p["b"]}


add(  # inputs of about 1e-2: variances near the epsilon, so where it goes matters
    case("layer_norm", "ln_small_var_eps", lambda n, x: F.layer_norm(x, **_affine(n, (5, 4), 4), axis=-2, eps=1e-4),
         [f32(("N", 3, 5, 4), -0.02, 0.02)], batches=DYN),
    case("layer_norm", "ln_last_small_var_eps", lambda n, x: F.layer_norm(x, **_affine(n, (6,), 5), axis=-1, eps=1e-4),
         [f32((3, 6), -0.02, 0.02)]),
    case("group_norm", "gn_small_var_eps", lambda n, x: F.group_norm(x, 3, **_affine(n, (6,), 6), eps=1e-4),
         [f32(("N", 6, 4, 3), -0.02, 0.02)], batches=DYN),
    case("instance_norm", "in_small_var_eps", lambda n, x: F.instance_norm(x, **_affine(n, (3,), 7), eps=1e-4),
         [f32((2, 3, 5, 4), -0.02, 0.02)]),
    case("lrn", "lrn_big_alpha", lambda n, x: F.lrn(x, 3, 0.5, 0.6, 1.5), [f32((2, 5, 3, 4), -2, 2)]),
)

add(
    case("selu", "selu_alpha_gamma", lambda n, x: n.apply("selu", [x], alpha=1.3, gamma=0.7), [f32(("N", 3, 5), -3, 3)],
         batches=DYN),
    case("elu", "elu_alpha_big", lambda n, x: F.elu(x, 2.5), [f32((3, 7), -3, 3)]),
    case("hard_sigmoid", "hard_sigmoid_alpha_beta", lambda n, x: F.hard_sigmoid(x, 0.3, 0.6), [f32((4, 6), -4, 4)]),
    case("leaky_relu", "leaky_relu_alpha_big", lambda n, x: F.leaky_relu(x, 0.37), [f32((3, 5), -3, 3)]),
    # |gelu_erf - gelu_tanh| is 1e-4 .. 5e-4 for |x| in 1.5 .. 3.5
    case("gelu", "gelu_erf_where_tanh_differs", lambda n, x: F.gelu(x), [f32(("N", 32), 1.5, 3.5)], batches=DYN),
    case("gelu", "gelu_tanh_where_erf_differs", lambda n, x: F.gelu(x, approximate="tanh"), [f32((4, 16), -3.5, -1.5)]),
    case("prelu", "prelu_runtime_slope", lambda n, x, s: F.prelu(x, s), [f32(("N", 3, 4)), f32((3,), 0.05, 0.5)],
         batches=DYN),
    case("clip", "clip_max_only", lambda n, x: F.clip(x, max=0.5), [f32((3, 6))]),
    case("clip", "clip_int_min_only", lambda n, x: F.clip(x, min=-2), [((3, 4), "int32", lambda r, s: r.integers(-6, 6, s).astype(np.int32))]),
    case("clip", "clip_none", lambda n, x: F.clip(x) * 2.0, [f32((2, 5))]),
)


def _rs(**kw):
    return lambda n, x: F.resize(x, **kw)


add(  # nearest: ties (source coordinate exactly k + 0.5) decide between the rounding preferences
    case("resize", "resize_nearest_half_pixel_down_ties_floor", _rs(scales=(1, 1, 0.5, 0.5),
                                                                    nearest_mode="round_prefer_floor"),
         [f32(("N", 2, 8, 6))], batches=DYN),
    case("resize", "resize_nearest_asym_up_ties_ceil", _rs(scales=(1, 1, 2, 2), coordinate_transformation="asymmetric",
                                                           nearest_mode="round_prefer_ceil"), [f32((1, 2, 3, 4))]),
    case("resize", "resize_nearest_asym_up_ties_floor", _rs(scales=(1, 1, 2, 2), coordinate_transformation="asymmetric",
                                                            nearest_mode="round_prefer_floor"), [f32((1, 2, 3, 4))]),
    case("resize", "resize_nearest_align_ties", _rs(sizes=(1, 2, 3, 5), coordinate_transformation="align_corners",
                                                    nearest_mode="round_prefer_floor"), [f32((1, 2, 2, 3))]),
    case("resize", "resize_nearest_length1_pytorch", _rs(sizes=(1, 2, 1, 4), coordinate_transformation="pytorch_half_pixel",
                                                         nearest_mode="floor"), [f32((1, 2, 5, 4))]),
    case("resize", "resize_linear_length1_half_pixel", _rs(sizes=(2, 2, 1, 3), mode="linear"), [f32((2, 2, 4, 6))]),
    case("resize", "resize_linear_length1_pytorch", _rs(sizes=(2, 2, 1, 3), mode="linear",
                                                        coordinate_transformation="pytorch_half_pixel"),
         [f32((2, 2, 4, 6))]),
)

add(
    case("linear", "linear_runtime_weight", lambda n, x, w: F.linear(x, w), [f32(("N", 6)), f32((4, 6))], batches=DYN),
    case("linear", "linear_runtime_weight_and_bias", lambda n, x, w, b: F.linear(x, w, b),
         [f32((2, 3, 6)), f32((4, 6)), f32((4,))]),
    case("linear", "linear_vector", lambda n, x: F.linear(x, n.parameter("w", (3, 6)), n.parameter("b", (3,))),
         [f32((6,))]),
    case("gather", "gather_axis2_runtime", lambda n, x, i: F.gather(x, i, axis=2),
         [f32(("N", 3, 5)), ((2, 2), "int32", lambda r, s: r.integers(-5, 5, s).astype(np.int32))], batches=DYN),
)
