"""Functional DSL: one function per op on symbolic tensors.

A function named like one of ``torch.nn.functional`` or ``torch`` takes PyTorch's arguments, in
PyTorch's order, with PyTorch's defaults (``dim=``, ``keepdim=``, ``inplace=``, ``negative_slope=``
...; tests/test_functional.py compares every signature with torch's). NumPy/ONNX spellings are
accepted as keyword-only aliases (``axis=``, ``keepdims=``); variants PyTorch does not have carry
their own names (``hard_sigmoid(x, alpha, beta)``, ONNX's; ``hardsigmoid(x)``, PyTorch's). The
differences that remain are listed in tests/test_functional.py with their reasons. Every function
takes an optional keyword ``name=`` for the layer it creates.
"""
from __future__ import annotations

import builtins
import math
from typing import Any, Optional, Sequence, Union

import numpy as np

from .dsl import Network, Tensor, user_location
from .dtypes import as_dtype
from .errors import ShapeError
from .ops.nn import same_pads
from .shapes import normalize_axis

IntOrSeq = Union[int, Sequence[int]]
_INT_MAX = 2 ** 63 - 1


def _net(*ts: Any) -> Network:
    for t in ts:
        if isinstance(t, Tensor):
            return t.net
        if isinstance(t, (list, tuple)):
            for u in t:
                if isinstance(u, Tensor):
                    return u.net
    raise _err("this op needs at least one netdsl Tensor input")


def as_tensor(x: Any, like: Optional[Tensor] = None, net: Optional[Network] = None) -> Tensor:
    """A Tensor as is; numbers/arrays become constants (of ``like``'s dtype for Python scalars)."""
    if isinstance(x, Tensor):
        return x
    net = net or (like.net if like is not None else None)
    if net is None:
        raise _err(f"cannot make a tensor from {x!r} without a network")
    if like is not None and (isinstance(x, (int, float, bool)) or (isinstance(x, np.ndarray) and x.dtype.kind != like.dtype.numpy.kind)):
        return net.constant(np.asarray(x), dtype=like.dtype)
    return net.constant(x)


def _err(msg: str) -> ShapeError:
    """A definition-time error naming the user's line (for checks made before an op is added)."""
    return ShapeError(f"{msg} (at {user_location()})")


def _tuple(v: IntOrSeq, n: int, what: str) -> tuple:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),) * n
    if not isinstance(v, (tuple, list)):
        raise _err(f"{what} must be an int or a sequence of {n} values, got {v!r}")
    v = tuple(v)
    if len(v) != n:
        raise _err(f"{what} needs {n} values, got {v}")
    return v


_SAME = {"same": "same_upper", "same_upper": "same_upper", "same_lower": "same_lower"}


def _pads(padding: Any, nd: int, x: Tensor, kernel: Sequence[int], strides: Sequence[int],
          dilations: Sequence[int], op: str) -> dict:
    """The op's padding attributes from int / tuple / 'valid' / 'same' ('same_upper') / 'same_lower':
    explicit ``pads`` (begins then ends), or ``auto_pad`` where SAME's padding depends on a spatial size
    known only at run time (a stride > 1 on a symbolic dim)."""
    if isinstance(padding, str):
        if padding == "valid":
            return {"pads": (0,) * (2 * nd)}
        if padding not in _SAME:
            raise _err(f"{op}: padding must be an int, a tuple, 'valid', 'same' (= 'same_upper') or 'same_lower'; "
                       f"got {padding!r}")
        mode = _SAME[padding]
        sizes = x.shape[2:]
        if any(not isinstance(d, int) and s > 1 for d, s in zip(sizes, strides)):
            return {"pads": (), "auto_pad": mode}
        # static sizes, or stride 1 (total padding (k - 1) * d whatever the size): explicit pads
        return {"pads": same_pads([d if isinstance(d, int) else 1 for d in sizes], kernel, strides, dilations, mode)}
    if isinstance(padding, int):
        return {"pads": (padding,) * (2 * nd)}
    padding = tuple(padding)
    if len(padding) == nd:
        return {"pads": padding * 2}
    if len(padding) == 2 * nd:
        return {"pads": padding}
    raise _err(f"{op}: padding {padding} needs {nd} or {2 * nd} values")


# ---- convolution / pooling -------------------------------------------------------------------------
def conv(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrSeq = 1, padding: Any = 0,
         dilation: IntOrSeq = 1, groups: int = 1, name: Optional[str] = None) -> Tensor:
    """N-d convolution (rank of ``x`` decides 1d/2d/3d); weight (O, C/groups, *k)."""
    nd = x.rank - 2
    if nd < 1:
        raise _err(f"conv: input {x} must be (N, C, *spatial)")
    s, d = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    k = tuple(int(v) if isinstance(v, int) else 1 for v in weight.shape[2:])
    pads = _pads(padding, nd, x, k, s, d, "conv")
    return x.net.apply("conv", [x, weight, bias], name=name, strides=s, dilations=d, groups=groups, **pads)


conv1d = conv2d = conv3d = conv


def conv_transpose(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrSeq = 1, padding: IntOrSeq = 0,
                   output_padding: IntOrSeq = 0, groups: int = 1, dilation: IntOrSeq = 1,
                   name: Optional[str] = None) -> Tensor:
    """Transposed convolution; weight (C_in, O/groups, *k) as in PyTorch. ``padding="same"`` is Keras'
    ``Conv2DTranspose(padding="same")``: ``H * stride`` outputs on any (also symbolic) size, the transpose of
    TensorFlow's SAME convolution (end-heavy crop of ``max(k_eff - stride, 0)``, output padding
    ``max(stride - k_eff, 0)``); ``"valid"`` is 0."""
    nd = x.rank - 2
    s, d = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    op_ = _tuple(output_padding, nd, "output_padding")
    if padding == "valid":
        padding = 0
    if padding == "same":
        if any(op_):
            raise _err(f"conv_transpose: padding='same' sets the output padding itself; got output_padding={op_}")
        eff = [d[i] * (int(weight.shape[2 + i]) - 1) + 1 for i in range(nd)]
        total = [builtins.max(eff[i] - s[i], 0) for i in range(nd)]
        p = tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
        op_ = tuple(builtins.max(s[i] - eff[i], 0) for i in range(nd))
    else:
        p = padding if not isinstance(padding, int) else (padding,) * nd
        p = tuple(p) * 2 if len(tuple(p)) == nd else tuple(p)
    return x.net.apply("conv_transpose", [x, weight, bias], name=name, strides=s, dilations=d, pads=p,
                       output_padding=op_, groups=groups)


conv_transpose1d = conv_transpose2d = conv_transpose3d = conv_transpose


def max_pool(x: Tensor, kernel_size: IntOrSeq, stride: Optional[IntOrSeq] = None, padding: Any = 0,
             dilation: IntOrSeq = 1, ceil_mode: bool = False, return_indices: bool = False,
             name: Optional[str] = None) -> Tensor:
    """Max pooling (PyTorch's arguments; ``dilation`` must be 1 and ``return_indices`` False)."""
    nd = x.rank - 2
    if any(d != 1 for d in _tuple(dilation, nd, "dilation")) or return_indices:
        raise _err("max_pool: dilation > 1 and return_indices are not supported")
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(stride if stride is not None else k, nd, "stride")
    return x.net.apply("max_pool", [x], name=name, kernel=k, strides=s, ceil_mode=ceil_mode,
                       **_pads(padding, nd, x, k, s, (1,) * nd, "max_pool"))


def avg_pool(x: Tensor, kernel_size: IntOrSeq, stride: Optional[IntOrSeq] = None, padding: Any = 0,
             ceil_mode: bool = False, count_include_pad: Optional[bool] = None,
             divisor_override: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """Average pooling (PyTorch's arguments; ``divisor_override`` must be None). ``count_include_pad``
    defaults to True (PyTorch) with numeric padding and to False with ``padding="same"`` (TensorFlow's
    SAME average pooling divides by the number of input elements in each window)."""
    nd = x.rank - 2
    if divisor_override is not None:
        raise _err("avg_pool: divisor_override is not supported")
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(stride if stride is not None else k, nd, "stride")
    if count_include_pad is None:
        count_include_pad = not (isinstance(padding, str) and padding in _SAME)
    return x.net.apply("avg_pool", [x], name=name, kernel=k, strides=s, ceil_mode=ceil_mode,
                       count_include_pad=count_include_pad, **_pads(padding, nd, x, k, s, (1,) * nd, "avg_pool"))


max_pool1d = max_pool2d = max_pool3d = max_pool
avg_pool1d = avg_pool2d = avg_pool3d = avg_pool


def global_avg_pool(x: Tensor, name: Optional[str] = None) -> Tensor:
    return x.net.apply("global_avg_pool", [x], name=name)


def global_max_pool(x: Tensor, name: Optional[str] = None) -> Tensor:
    return x.net.apply("global_max_pool", [x], name=name)


# ---- normalization ------------------------------------------------------------------------------
def _channels(x: Tensor, what: str) -> int:
    c = x.shape[1] if x.rank > 1 else None
    if not isinstance(c, int):
        raise _err(f"{what}: without weight/bias the channel dim of {x} must be static")
    return c


def _affine(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], what: str) -> tuple:
    """weight/bias, ones/zeros where not given (PyTorch's None)."""
    if weight is None or bias is None:
        c = _channels(x, what)
        weight = weight if weight is not None else x.net.constant(np.ones(c), dtype=x.dtype)
        bias = bias if bias is not None else x.net.constant(np.zeros(c), dtype=x.dtype)
    return weight, bias


def batch_norm(x: Tensor, running_mean: Tensor, running_var: Tensor, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
               name: Optional[str] = None, *, eps_mode: str = "inside_sqrt") -> Tensor:
    """Inference batch norm over axis 1, PyTorch's argument order (``training`` must be False):
    ``(x - mean) / sqrt(var + eps) * weight + bias``. ``eps_mode="outside_sqrt"`` divides by
    ``sqrt(var) + eps`` instead, as Darknet does (its ``normalize_cpu``, eps 1e-6)."""
    if training:
        raise _err("batch_norm: training=True normalises with batch statistics; netdsl runs inference only")
    if not isinstance(running_mean, Tensor):
        raise _err("batch_norm: arguments are (x, running_mean, running_var, weight, bias) as in PyTorch")
    weight, bias = _affine(x, weight, bias, "batch_norm")
    return x.net.apply("batch_norm", [x, weight, bias, running_mean, running_var], name=name, eps=eps,
                       eps_mode=eps_mode)


def layer_norm(x: Tensor, normalized_shape: Any = None, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5, name: Optional[str] = None, *,
               axis: Optional[int] = None) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` axes (PyTorch), or over ``axis``..end (ONNX)."""
    if isinstance(normalized_shape, Tensor):
        raise _err("layer_norm: arguments are (x, normalized_shape, weight, bias, eps) as in PyTorch; "
                   "pass weight= and bias= by name")
    if normalized_shape is not None:
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if tuple(x.shape[-len(shape):]) != shape:
            raise _err(f"layer_norm: normalized_shape {shape} is not the end of {x}'s shape")
        if axis is not None and axis % x.rank != x.rank - len(shape):
            raise _err(f"layer_norm: normalized_shape {shape} and axis={axis} disagree")
        axis = -len(shape)
    return x.net.apply("layer_norm", [x, weight, bias], name=name, axis=-1 if axis is None else axis, eps=eps)


def group_norm(x: Tensor, num_groups: int, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               eps: float = 1e-5, name: Optional[str] = None) -> Tensor:
    weight, bias = _affine(x, weight, bias, "group_norm")
    return x.net.apply("group_norm", [x, weight, bias], name=name, num_groups=num_groups, eps=eps)


def instance_norm(x: Tensor, running_mean: Optional[Tensor] = None, running_var: Optional[Tensor] = None,
                  weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5, name: Optional[str] = None) -> Tensor:
    """Per-sample, per-channel normalization (PyTorch's arguments); with ``use_input_stats=False`` the
    running statistics are used, as a batch norm."""
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise _err("instance_norm: use_input_stats=False needs running_mean and running_var")
        return batch_norm(x, running_mean, running_var, weight, bias, eps=eps, name=name)
    weight, bias = _affine(x, weight, bias, "instance_norm")
    return x.net.apply("instance_norm", [x, weight, bias], name=name, eps=eps)


def lrn(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0,
        name: Optional[str] = None) -> Tensor:
    """Local response norm across channels: x / (bias + alpha/size * sum(x^2))^beta (ONNX's names)."""
    return x.net.apply("lrn", [x], name=name, size=size, alpha=alpha, beta=beta, bias=bias)


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                        name: Optional[str] = None) -> Tensor:
    """PyTorch's name and arguments for :func:`lrn` (``k`` is the bias)."""
    return lrn(x, size, alpha, beta, k, name=name)


# ---- dense --------------------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, name: Optional[str] = None) -> Tensor:
    """``x @ weight.T + bias`` with ``weight`` of shape (out, in)."""
    return x.net.apply("linear", [x, weight, bias], name=name)


def matmul(a: Tensor, b: Tensor, name: Optional[str] = None) -> Tensor:
    net = _net(a, b)
    return net.apply("matmul", [as_tensor(a, net=net), as_tensor(b, net=net)], name=name)


def embedding(ids: Tensor, weight: Tensor, padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
              name: Optional[str] = None) -> Tensor:
    """Rows of ``weight`` picked by ``ids`` (PyTorch's arguments; ``max_norm`` must be None, the others
    only matter for training)."""
    if max_norm is not None:
        raise _err("embedding: max_norm (renormalising rows on lookup) is not supported")
    return ids.net.apply("embedding", [ids, weight], name=name)


def dropout(x: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False,
            name: Optional[str] = None) -> Tensor:
    """Identity at inference (kept as a layer so names and exports match the training model).
    PyTorch's ``training`` defaults to True (random dropping); netdsl runs inference only, so it
    defaults to False and True is refused."""
    if training:
        raise _err("dropout: training=True drops at random; netdsl runs inference only")
    return x.net.apply("dropout", [x], name=name, p=p)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None, scale: Optional[float] = None,
              causal: bool = False, name: Optional[str] = None) -> Tensor:
    """Scaled dot-product attention; bool mask True = attend, float mask is added to the logits."""
    return q.net.apply("attention", [q, k, v, mask], name=name, scale=scale, causal=causal)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False, name: Optional[str] = None) -> Tensor:
    """PyTorch's ``F.scaled_dot_product_attention`` (inference: ``dropout_p`` must be 0, no GQA)."""
    if dropout_p or enable_gqa:
        raise _err("scaled_dot_product_attention: dropout_p > 0 and enable_gqa are not supported")
    return attention(query, key, value, attn_mask, scale, is_causal, name=name)


# ---- activations ---------------------------------------------------------------------------------
def _unary(op: str, x: Tensor, name: Optional[str], **attrs: Any) -> Tensor:
    return x.net.apply(op, [x], name=name, **attrs)


def sigmoid(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("sigmoid", x, name)
def tanh(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("tanh", x, name)
def softsign(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("softsign", x, name)
def neg(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("neg", x, name)
def abs(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("abs", x, name)  # noqa: A001
def exp(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("exp", x, name)
def log(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("log", x, name)
def sqrt(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("sqrt", x, name)
def rsqrt(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("rsqrt", x, name)
def reciprocal(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("reciprocal", x, name)
def erf(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("erf", x, name)
def identity(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("identity", x, name)
def logical_not(x: Tensor, name: Optional[str] = None) -> Tensor: return _unary("logical_not", x, name)


# PyTorch's activations take ``inplace``; a graph has no in-place ops, so it changes nothing
def relu(x: Tensor, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    return _unary("relu", x, name)


def relu6(x: Tensor, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    return _unary("clip", x, name or "relu6", min=0.0, max=6.0)


def silu(x: Tensor, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    return _unary("silu", x, name)


def hardswish(x: Tensor, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return _unary("hard_swish", x, name)


def mish(x: Tensor, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    return _unary("mish", x, name)


def selu(x: Tensor, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    return _unary("selu", x, name)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    return _unary("elu", x, name, alpha=alpha)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    return _unary("leaky_relu", x, name, alpha=negative_slope)


def hardsigmoid(x: Tensor, inplace: bool = False, name: Optional[str] = None) -> Tensor:
    """PyTorch's hard sigmoid: clip(x / 6 + 1/2, 0, 1)."""
    return _unary("hard_sigmoid", x, name, alpha=1 / 6, beta=0.5)


def hard_sigmoid(x: Tensor, alpha: float, beta: float, name: Optional[str] = None) -> Tensor:
    """ONNX's HardSigmoid clip(alpha*x + beta, 0, 1), alpha and beta explicit (ONNX's defaults are 0.2, 0.5;
    PyTorch's :func:`hardsigmoid` is alpha=1/6)."""
    return _unary("hard_sigmoid", x, name, alpha=alpha, beta=beta)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0, name: Optional[str] = None) -> Tensor:
    """log(1 + exp(beta*x)) / beta. PyTorch returns x where beta*x > threshold; the two differ by less
    than exp(-threshold)."""
    if beta == 1:
        return _unary("softplus", x, name)
    return mul(_unary("softplus", mul(x, float(beta)), None), 1.0 / float(beta), name=name)


hard_swish = hardswish
swish = silu


def gelu(x: Tensor, approximate: str = "none", name: Optional[str] = None) -> Tensor:
    return _unary("gelu", x, name, approximate=approximate)


def clip(x: Tensor, min: Optional[float] = None, max: Optional[float] = None,  # noqa: A002
         name: Optional[str] = None) -> Tensor:
    return _unary("clip", x, name, min=min, max=max)


def prelu(x: Tensor, weight: Tensor, name: Optional[str] = None) -> Tensor:
    return x.net.apply("prelu", [x, weight], name=name)


def _dim(x: Tensor, dim: Any, axis: Any, fn: str) -> Any:
    """The axis from PyTorch's ``dim`` or NumPy's ``axis`` (one of them)."""
    if dim is not None and axis is not None:
        raise _err(f"{fn}: give dim or axis, not both")
    return dim if dim is not None else axis


def _implicit_softmax_dim(x: Tensor, fn: str) -> int:
    """PyTorch's deprecated implicit choice when ``dim`` is not given: 0 for 0-, 1- and 3-d input, else 1."""
    import warnings
    d = 0 if x.rank in (0, 1, 3) else 1
    warnings.warn(f"Implicit dimension choice for {fn} has been deprecated (as in PyTorch): it picks dim={d} "
                  f"for {x}; pass dim= ({user_location()})", UserWarning, stacklevel=3)
    return d


def softmax(x: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype: Any = None,
            name: Optional[str] = None, *, axis: Optional[int] = None) -> Tensor:
    """Softmax along ``dim`` (PyTorch) or ``axis`` (NumPy); neither: PyTorch's implicit choice, with its warning."""
    d = _dim(x, dim, axis, "softmax")
    x = cast(x, dtype) if dtype is not None else x
    return _unary("softmax", x, name, axis=_implicit_softmax_dim(x, "softmax") if d is None else d)


def log_softmax(x: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype: Any = None,
                name: Optional[str] = None, *, axis: Optional[int] = None) -> Tensor:
    """log(softmax(x)) along ``dim`` (PyTorch) or ``axis`` (NumPy), as :func:`softmax`."""
    d = _dim(x, dim, axis, "log_softmax")
    x = cast(x, dtype) if dtype is not None else x
    return _unary("log_softmax", x, name, axis=_implicit_softmax_dim(x, "log_softmax") if d is None else d)


# ---- binary -------------------------------------------------------------------------------------
def _binary(op: str, a: Any, b: Any, name: Optional[str]) -> Tensor:
    net = _net(a, b)
    ta = a if isinstance(a, Tensor) else None
    tb = b if isinstance(b, Tensor) else None
    a = as_tensor(a, like=tb, net=net) if ta is None else a
    b = as_tensor(b, like=ta, net=net) if tb is None else b
    return net.apply(op, [a, b], name=name)


def add(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("add", a, b, name)
def sub(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("sub", a, b, name)
def mul(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("mul", a, b, name)
def div(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("div", a, b, name)
def pow(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("pow", a, b, name)  # noqa: A001
def maximum(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("maximum", a, b, name)
def minimum(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("minimum", a, b, name)
def equal(a: Any, b: Any, name: Optional[str] = None) -> Tensor:
    """Element-wise a == b (PyTorch's ``eq``; ``torch.equal``'s single bool cannot be symbolic)."""
    return _binary("equal", a, b, name)


def not_equal(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("not_equal", a, b, name)
def less(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("less", a, b, name)
def less_equal(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("less_equal", a, b, name)
def greater(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("greater", a, b, name)
def greater_equal(a: Any, b: Any, name: Optional[str] = None) -> Tensor:
    return _binary("greater_equal", a, b, name)
def logical_and(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("logical_and", a, b, name)
def logical_or(a: Any, b: Any, name: Optional[str] = None) -> Tensor: return _binary("logical_or", a, b, name)


def where(cond: Tensor, a: Any, b: Any, name: Optional[str] = None) -> Tensor:
    net = _net(cond, a, b)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a = as_tensor(a, like=like, net=net)
    b = as_tensor(b, like=like, net=net)
    return net.apply("where", [cond, a, b], name=name)


def cast(x: Tensor, dtype: Any, name: Optional[str] = None) -> Tensor:
    return x.net.apply("cast", [x], name=name, dtype=as_dtype(dtype))


def quantize_linear(x: Tensor, scale: Any, zero_point: Any = None, axis: int = 1, dtype: Any = "int8",
                    name: Optional[str] = None) -> Tensor:
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point) as int8/uint8;
    ``scale`` per tensor (a number) or per channel along ``axis`` (a 1-d array)."""
    dt = as_dtype(dtype)
    s = as_tensor(np.asarray(scale, x.dtype.numpy), net=x.net) if not isinstance(scale, Tensor) else scale
    z = zero_point if zero_point is None or isinstance(zero_point, Tensor) else \
        x.net.constant(np.asarray(zero_point).astype(dt.numpy).reshape(s.shape), dtype=dt)
    return x.net.apply("quantize_linear", [x, s, z], name=name, axis=axis, dtype=dt)


def dequantize_linear(x: Tensor, scale: Any, zero_point: Any = None, axis: int = 1,
                      name: Optional[str] = None) -> Tensor:
    """ONNX DequantizeLinear: (x - zero_point) * scale, as float32 (or the scale tensor's type)."""
    s = scale if isinstance(scale, Tensor) else x.net.constant(np.asarray(scale, np.float32))
    z = zero_point if zero_point is None or isinstance(zero_point, Tensor) else \
        x.net.constant(np.asarray(zero_point).astype(x.dtype.numpy).reshape(s.shape), dtype=x.dtype)
    return x.net.apply("dequantize_linear", [x, s, z], name=name, axis=axis)


# ---- reductions ----------------------------------------------------------------------------------
def _axes(axis: Any) -> Optional[tuple]:
    if axis is None:
        return None
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _reduce(op: str, x: Tensor, dim: Any, keepdim: bool, name: Optional[str], axis: Any, keepdims: Any) -> Tensor:
    d = _dim(x, dim, axis, op)
    return x.net.apply(op, [x], name=name, axes=_axes(d), keepdims=bool(keepdim if keepdims is None else keepdims))


# reductions take PyTorch's dim/keepdim (positionally too) or NumPy's axis/keepdims by keyword
def sum(x: Tensor, dim: Any = None, keepdim: bool = False, name: Optional[str] = None, *,  # noqa: A001
        axis: Any = None, keepdims: Optional[bool] = None) -> Tensor:
    return _reduce("reduce_sum", x, dim, keepdim, name, axis, keepdims)


def mean(x: Tensor, dim: Any = None, keepdim: bool = False, name: Optional[str] = None, *,
         axis: Any = None, keepdims: Optional[bool] = None) -> Tensor:
    return _reduce("reduce_mean", x, dim, keepdim, name, axis, keepdims)


def prod(x: Tensor, dim: Any = None, keepdim: bool = False, name: Optional[str] = None, *,
         axis: Any = None, keepdims: Optional[bool] = None) -> Tensor:
    return _reduce("reduce_prod", x, dim, keepdim, name, axis, keepdims)


def amax(x: Tensor, dim: Any = None, keepdim: bool = False, name: Optional[str] = None, *,
         axis: Any = None, keepdims: Optional[bool] = None) -> Tensor:
    """Largest value over ``dim`` (all axes when None)."""
    return _reduce("reduce_max", x, dim, keepdim, name, axis, keepdims)


def amin(x: Tensor, dim: Any = None, keepdim: bool = False, name: Optional[str] = None, *,
         axis: Any = None, keepdims: Optional[bool] = None) -> Tensor:
    """Smallest value over ``dim`` (all axes when None)."""
    return _reduce("reduce_min", x, dim, keepdim, name, axis, keepdims)


def max(x: Tensor, dim: Any = None, keepdim: bool = False, name: Optional[str] = None, *,  # noqa: A001
        axis: Any = None, keepdims: Optional[bool] = None) -> Tensor:
    """The largest values (NumPy's max, PyTorch's amax): unlike ``torch.max(x, dim)`` no indices are
    returned; use :func:`argmax` or :func:`topk` for them."""
    return _reduce("reduce_max", x, dim, keepdim, name, axis, keepdims)


def min(x: Tensor, dim: Any = None, keepdim: bool = False, name: Optional[str] = None, *,  # noqa: A001
        axis: Any = None, keepdims: Optional[bool] = None) -> Tensor:
    """The smallest values (NumPy's min, PyTorch's amin); see :func:`max`."""
    return _reduce("reduce_min", x, dim, keepdim, name, axis, keepdims)


def _arg(op: str, x: Tensor, dim: Any, keepdim: bool, name: Optional[str], axis: Any, keepdims: Any) -> Tensor:
    d = _dim(x, dim, axis, op)
    keep = bool(keepdim if keepdims is None else keepdims)
    if d is not None:
        return x.net.apply(op, [x], name=name, axis=d, keepdims=keep)
    y = x.net.apply(op, [reshape(x, (-1,))], name=None if keep else name, axis=0, keepdims=keep)  # flattened, as PyTorch
    return reshape(y, (1,) * x.rank, name=name) if keep else y


def argmax(x: Tensor, dim: Optional[int] = None, keepdim: bool = False, name: Optional[str] = None, *,
           axis: Optional[int] = None, keepdims: Optional[bool] = None) -> Tensor:
    """int32 index of the largest value along ``dim``; with no dim, in the flattened tensor (as PyTorch)."""
    return _arg("argmax", x, dim, keepdim, name, axis, keepdims)


def argmin(x: Tensor, dim: Optional[int] = None, keepdim: bool = False, name: Optional[str] = None, *,
           axis: Optional[int] = None, keepdims: Optional[bool] = None) -> Tensor:
    """int32 index of the smallest value along ``dim``; with no dim, in the flattened tensor (as PyTorch)."""
    return _arg("argmin", x, dim, keepdim, name, axis, keepdims)


def topk(x: Tensor, k: int, dim: Optional[int] = None, largest: bool = True, sorted: bool = True,  # noqa: A002
         name: Optional[str] = None, *, axis: Optional[int] = None) -> tuple:
    """(values, int32 indices) of the k largest (or smallest) entries along ``dim`` (default: the last),
    always sorted."""
    d = _dim(x, dim, axis, "topk")
    return x.net.apply("topk", [x], name=name, k=k, axis=-1 if d is None else d, largest=largest)


# ---- shape --------------------------------------------------------------------------------------
def reshape(x: Tensor, shape: Sequence[int], name: Optional[str] = None) -> Tensor:
    """New shape; 0 copies the input dim, -1 is inferred (symbolic dims are carried through)."""
    return x.net.apply("reshape", [x], name=name, shape=tuple(int(s) for s in shape))


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1, name: Optional[str] = None) -> Tensor:
    """Merge axes start_dim..end_dim. The default keeps the batch axis (as ``nn.Flatten`` and Keras;
    ``torch.flatten``'s default start_dim is 0)."""
    return x.net.apply("flatten", [x], name=name, start=start_dim, end=end_dim)


def transpose(x: Tensor, dim0: Any = None, dim1: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """``transpose(x, d0, d1)`` swaps two axes (PyTorch); ``transpose(x, perm)`` permutes all (NumPy);
    ``transpose(x)`` reverses them."""
    if dim1 is not None:
        perm = list(range(x.rank))
        a, b = normalize_axis(dim0, x.rank, "transpose dim0"), normalize_axis(dim1, x.rank, "transpose dim1")
        perm[a], perm[b] = perm[b], perm[a]
    elif isinstance(dim0, (int, np.integer)):
        raise _err(f"transpose: give two axes to swap (PyTorch) or a full permutation (NumPy), got {dim0!r}")
    else:
        perm = tuple(dim0) if dim0 is not None else tuple(reversed(range(x.rank)))
    return x.net.apply("transpose", [x], name=name, perm=tuple(perm))


def permute(x: Tensor, dims: Sequence[int], name: Optional[str] = None) -> Tensor:
    """Reorder all axes: output axis i is input axis dims[i]."""
    return x.net.apply("transpose", [x], name=name, perm=tuple(dims))


def squeeze(x: Tensor, dim: Any = None, name: Optional[str] = None, *, axes: Any = None) -> Tensor:
    d = _dim(x, dim, axes, "squeeze")
    if d is None:
        d = tuple(i for i, n in enumerate(x.shape) if n == 1)
    return x.net.apply("squeeze", [x], name=name, axes=_axes(d))


def unsqueeze(x: Tensor, dim: Any = None, name: Optional[str] = None, *, axes: Any = None) -> Tensor:
    d = _dim(x, dim, axes, "unsqueeze")
    if d is None:
        raise _err("unsqueeze: give dim")
    return x.net.apply("unsqueeze", [x], name=name, axes=_axes(d))


def concat(tensors: Sequence[Tensor], dim: int = 0, name: Optional[str] = None, *, axis: Optional[int] = None) -> Tensor:
    xs = list(tensors)
    net = _net(*xs)
    d = _dim(xs[0], dim if axis is None else None, axis, "concat")
    return net.apply("concat", [as_tensor(t, like=xs[0] if isinstance(xs[0], Tensor) else None, net=net) for t in xs],
                     name=name, axis=d)


cat = concatenate = concat


def stack(tensors: Sequence[Tensor], dim: int = 0, name: Optional[str] = None, *, axis: Optional[int] = None) -> Tensor:
    xs = list(tensors)
    r = xs[0].rank + 1
    a = normalize_axis(dim if axis is None else axis, r, "stack axis")
    return concat([unsqueeze(t, a) for t in xs], a, name=name)


def split(x: Tensor, split_size_or_sections: IntOrSeq, dim: int = 0, name: Optional[str] = None, *,
          axis: Optional[int] = None) -> tuple:
    """Split along ``dim`` into pieces of the given sizes (a list), or of one size (an int), as PyTorch."""
    axis = dim if axis is None else axis
    sizes = split_size_or_sections
    d = x.shape[normalize_axis(axis, x.rank, "split axis")]
    if isinstance(sizes, int):
        if not isinstance(d, int):
            raise _err(f"split: axis {axis} of {x} is symbolic; give the sizes as a list")
        sizes = [sizes] * (d // sizes) + ([d % sizes] if d % sizes else [])
    out = x.net.apply("split", [x], name=name, axis=axis, sizes=tuple(sizes))
    return out if isinstance(out, tuple) else (out,)


def slice(x: Tensor, starts: Sequence[int], ends: Sequence[int], axes: Optional[Sequence[int]] = None,  # noqa: A001
          steps: Optional[Sequence[int]] = None, name: Optional[str] = None) -> Tensor:
    return x.net.apply("slice", [x], name=name, starts=tuple(starts), ends=tuple(ends),
                       axes=None if axes is None else tuple(axes), steps=None if steps is None else tuple(steps))


def gather(data: Tensor, indices: Any, axis: int = 0, name: Optional[str] = None) -> Tensor:
    """ONNX Gather: whole slices of ``data`` along ``axis`` picked by ``indices`` (``numpy.take``;
    PyTorch's :func:`index_select`), not ``torch.gather``'s element-wise pick."""
    if not isinstance(indices, Tensor):
        indices = data.net.constant(np.asarray(indices, dtype=np.int32))
    return data.net.apply("gather", [data, indices], name=name, axis=axis)


def index_select(x: Tensor, dim: int, index: Any, name: Optional[str] = None) -> Tensor:
    """PyTorch's ``index_select``: slices of ``x`` along ``dim`` at ``index`` (1-d)."""
    return gather(x, index, axis=dim, name=name)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "edge": "edge"}


def pad(x: Tensor, pad: Optional[Sequence[int]] = None, mode: str = "constant", value: Optional[float] = None,
        name: Optional[str] = None, *, pads: Optional[Sequence[int]] = None) -> Tensor:
    """Pad as PyTorch: ``pad`` = (last axis begin, end, second-to-last begin, end, ...); or with
    ``pads=`` = begins then ends for every axis (ONNX order). Modes: constant, reflect, replicate
    (``edge``)."""
    if (pad is None) == (pads is None):
        raise _err("pad: give pad (PyTorch order, last axis first) or pads= (ONNX order), one of them")
    if mode not in _PAD_MODES:
        raise _err(f"pad: mode must be one of {', '.join(_PAD_MODES)}; got {mode!r}")
    if pad is not None:
        pad = tuple(pad)
        n = len(pad) // 2
        if len(pad) % 2 or n > x.rank:
            raise _err(f"pad: {len(pad)} values for {x}: give (begin, end) pairs for up to {x.rank} axes")
        begins, ends = [0] * x.rank, [0] * x.rank
        for i in range(n):
            begins[x.rank - 1 - i], ends[x.rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
        pads = begins + ends
    return x.net.apply("pad", [x], name=name, pads=tuple(pads), mode=_PAD_MODES[mode],
                       value=0.0 if value is None else value)


def resize(x: Tensor, scales: Optional[Sequence[float]] = None, sizes: Optional[Sequence[int]] = None,
           mode: str = "nearest", coordinate_transformation: str = "half_pixel",
           nearest_mode: str = "round_prefer_floor", name: Optional[str] = None) -> Tensor:
    """Resize spatial axes; scales/sizes cover every axis (ONNX conventions)."""
    return x.net.apply("resize", [x], name=name, scales=None if scales is None else tuple(scales),
                       sizes=None if sizes is None else tuple(sizes), mode=mode,
                       coordinate_transformation=coordinate_transformation, nearest_mode=nearest_mode)


def interpolate(x: Tensor, size: Optional[IntOrSeq] = None, scale_factor: Optional[Any] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False,
                name: Optional[str] = None) -> Tensor:
    """PyTorch's ``F.interpolate`` semantics: 'nearest' (floor, asymmetric), 'nearest-exact' or
    'bilinear'/'linear' (``antialias`` must be False). Nearest modes on static sizes pick PyTorch's
    source pixels exactly (its float32 index arithmetic, as gathers where a ratio is not an integer);
    on sizes known only at run time they follow ONNX's Resize (docs/ENGINE-NOTES.md)."""
    nd = x.rank - 2
    if antialias:
        raise _err("interpolate: antialias=True is not supported")
    if (size is None) == (scale_factor is None):  # PyTorch refuses both and neither
        raise _err("interpolate: give size or scale_factor" + (", not both" if size is not None else ""))
    if align_corners and mode in ("nearest", "nearest-exact"):
        raise _err(f"interpolate: align_corners applies to the linear modes only (as in PyTorch), not {mode!r}")
    sc = None if scale_factor is None else (
        _tuple(scale_factor, nd, "scale_factor") if not isinstance(scale_factor, (int, float))
        else (float(scale_factor),) * nd)
    if recompute_scale_factor and sc is not None:  # PyTorch then uses the output size alone
        if not all(isinstance(d, int) for d in x.shape[2:]):
            raise _err("interpolate: recompute_scale_factor needs static spatial dims")
        size, sc = tuple(int(math.floor(d * s)) for d, s in zip(x.shape[2:], sc)), None
    align_corners = bool(align_corners)
    nm = "floor"
    if mode in ("bilinear", "linear", "trilinear"):
        m, ct = "linear", ("align_corners" if align_corners else "half_pixel")
    elif mode == "nearest":
        m, ct = "nearest", "asymmetric"
    elif mode == "nearest-exact":  # floor((o + 0.5) * in / out) = ONNX half_pixel + round_prefer_ceil
        m, ct, nm = "nearest", "half_pixel", "round_prefer_ceil"
    else:
        raise _err(f"interpolate: mode {mode!r} is not supported (nearest, nearest-exact, linear, bilinear, "
                   "trilinear)")
    if m == "nearest":
        picked = _nearest_by_gather(x, size, sc, mode == "nearest-exact", name)
        if picked is not None:
            return picked
    if size is not None:
        sz = _tuple(size, nd, "size")
        if not all(isinstance(d, (int, np.integer)) for d in sz):  # y.shape[-2:]: sizes read at run time
            like, axes = _dims_source(x.net, sz)
            return resize_to(x, like, axes, mode=m, coordinate_transformation=ct, nearest_mode=nm, name=name)
        if all(isinstance(d, int) for d in x.shape[:2]):
            return resize(x, sizes=tuple(x.shape[:2]) + sz, mode=m, coordinate_transformation=ct,
                          nearest_mode=nm, name=name)
        # symbolic batch/channels: express the target size as exact scales of static spatial dims
        scales = []
        for d, o in zip(x.shape[2:], sz):
            s = o / d if isinstance(d, int) else None
            if s is None or math.floor(d * s) != o:
                raise _err(f"interpolate: size {sz} for input {x} needs static spatial dims whose ratio "
                                 "is exact; use a static batch or scale_factor")
            scales.append(s)
        return resize(x, scales=(1.0, 1.0) + tuple(scales), mode=m, coordinate_transformation=ct,
                      nearest_mode=nm, name=name)
    return resize(x, scales=(1.0, 1.0) + tuple(float(s) for s in sc), mode=m, coordinate_transformation=ct,
                  nearest_mode=nm, name=name)


def torch_nearest_index(in_len: int, out_len: int, scale_factor: Optional[float] = None,
                        exact: bool = False) -> np.ndarray:
    """PyTorch's source index of each output along one axis for 'nearest' / 'nearest-exact': float32
    ``floor(o * s)`` / ``floor((o + 0.5) * s)`` with ``s = 1 / scale_factor`` or ``in / out``, as its kernels."""
    s = np.float32(1.0 / scale_factor) if scale_factor else np.float32(in_len) / np.float32(out_len)
    o = np.arange(out_len, dtype=np.float32)
    v = np.floor((o + np.float32(0.5)) * s) if exact else np.floor(o * s)
    return np.minimum(v.astype(np.int64), in_len - 1)


def _nearest_by_gather(x: Tensor, size: Any, sc: Optional[tuple], exact: bool,
                       name: Optional[str]) -> Optional[Tensor]:
    """Nearest resize of static sizes with a non-integer ratio as gathers of PyTorch's indices along each
    resized axis; None where a Resize is exact on every engine (integer up/down factors only) or where a
    size is known only at run time."""
    ins = x.shape[2:]
    if not all(isinstance(d, int) for d in ins):
        return None
    if size is not None:
        outs = _tuple(size, len(ins), "size")
        if not all(isinstance(d, (int, np.integer)) for d in outs):
            return None
        facs: tuple = (None,) * len(ins)
    else:
        outs, facs = tuple(int(math.floor(float(d) * s)) for d, s in zip(ins, sc)), sc
    if any(o < 1 for o in outs):
        raise _err(f"interpolate: output size {tuple(outs)} of input {x} has an empty axis")
    if all(_exact_resize(i, o, f) for i, o, f in zip(ins, outs, facs)):
        return None
    if not exact and len(ins) == 2:  # PyTorch's 2-d 'nearest' kernel copies (out == in) or halves (out == 2 in)
        facs = tuple(None if o in (i, 2 * i) else f for i, o, f in zip(ins, outs, facs))  # whatever the scale
    moved = [(ax + 2, torch_nearest_index(i, int(o), f, exact))
             for ax, (i, o, f) in enumerate(zip(ins, outs, facs)) if not (o == i and f is None)]
    y = x
    for k, (ax, idx) in enumerate(moved):
        y = gather(y, idx, axis=ax, name=name if k == len(moved) - 1 else None)
    return y


def _exact_resize(i: int, o: int, f: Optional[float]) -> bool:
    """Whether a nearest Resize of ``i`` to ``o`` pixels (by scale ``f`` when given) picks PyTorch's pixels on
    every engine: integer upscales, and downscales by a power of two (TensorRT divides by the float32 scale:
    by 1/3 rounded it picks the pixel before every third)."""
    if f is not None and f * i != o:
        return False
    if o % i == 0:
        return True
    k = i // o if i % o == 0 else 0
    return k > 0 and k & (k - 1) == 0


def resize_to(x: Tensor, like: Tensor, like_axes: Optional[IntOrSeq] = None, mode: str = "nearest",
              coordinate_transformation: str = "half_pixel", nearest_mode: str = "round_prefer_floor",
              name: Optional[str] = None) -> Tensor:
    """Resize ``x``'s spatial axes to the sizes of ``like``'s ``like_axes`` (default: its last ``x.rank - 2``
    axes), read at run time, so they may be symbolic; as :func:`resize` otherwise. ``interpolate(x,
    size=y.shape[-2:])`` with symbolic dims does this by itself."""
    nd = x.rank - 2
    axes = tuple(range(like.rank - nd, like.rank)) if like_axes is None else _tuple(like_axes, nd, "like_axes")
    return x.net.apply("resize_to", [x, like], name=name, like_axes=axes, mode=mode,
                       coordinate_transformation=coordinate_transformation, nearest_mode=nearest_mode)


def _dims_source(net: Network, dims: Sequence[Any]) -> tuple:
    """``(tensor, axes)``: a tensor of ``net`` that has every one of ``dims`` (symbolic ones, and the static
    ones too) at ``axes`` (distinct axes where it has them), inputs first."""
    for v in list(net.graph.inputs) + [o for n in net.graph.nodes for o in n.outputs]:
        axes: list = []
        for d in dims:
            i = next((i for i, e in enumerate(v.shape) if e == d and i not in axes), None)
            if i is None:  # (P, P): one axis read twice
                i = next((i for i, e in enumerate(v.shape) if e == d), None)
            if i is None:
                break
            axes.append(i)
        else:
            return Tensor(net, v), tuple(axes)
    raise _err(f"no tensor of network '{net.name}' has the dims {tuple(dims)}; use resize_to(x, like, like_axes)")


def upsample(x: Tensor, size: Optional[IntOrSeq] = None, scale_factor: Optional[Any] = None, mode: str = "nearest",
             align_corners: Optional[bool] = None, name: Optional[str] = None) -> Tensor:
    """PyTorch's deprecated ``F.upsample``: :func:`interpolate`."""
    return interpolate(x, size, scale_factor, mode, align_corners, name=name)


def tile(x: Tensor, dims: Sequence[int], name: Optional[str] = None) -> Tensor:
    """Repeat ``x`` dims[i] times along axis i."""
    return x.net.apply("tile", [x], name=name, repeats=tuple(dims))


def expand(x: Tensor, shape: Sequence[int], name: Optional[str] = None) -> Tensor:
    return x.net.apply("expand", [x], name=name, shape=tuple(shape))


def expand_as(x: Tensor, like: Tensor, name: Optional[str] = None) -> Tensor:
    """Broadcast ``x`` against ``like``'s shape (which may be symbolic); ``like``'s values are not used."""
    return x.net.apply("expand_as", [x, like], name=name)


def dim_source(net: Network, d: Any) -> tuple:
    """``(tensor, axis)`` of a tensor of ``net`` whose dim ``axis`` is the symbolic dim ``d`` (inputs first),
    so that a size such as ``ids.shape[1]`` can be read at run time."""
    from .shapes import Sym as _Sym
    if not isinstance(d, _Sym):
        raise _err(f"{d!r} is not a symbolic dim")
    values = list(net.graph.inputs) + [o for n in net.graph.nodes for o in n.outputs]
    for v in values:
        for i, e in enumerate(v.shape):
            if e == d:
                return Tensor(net, v), i
    raise _err(f"no tensor of network '{net.name}' has the dim {d}; pass the tensor and axis explicitly "
               "(like=, axis=)")


def arange(start: Any = 0, stop: Any = None, step: float = 1, dtype: Any = None, net: Optional[Network] = None,
           like: Optional[Tensor] = None, axis: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """``arange(stop)`` or ``arange(start, stop, step)`` (PyTorch order), added to ``net``.

    ``stop`` may be a symbolic dim such as ``ids.shape[1]``: it is read at run time from a tensor of ``net``
    that has it (``like``/``axis`` name that tensor and axis explicitly instead of ``stop``). ``dtype``:
    int32 when start, stop and step are whole numbers, else float32."""
    from .shapes import Sym as _Sym
    if stop is None and like is None:
        start, stop = 0, start
    if like is not None and stop is not None:
        raise _err("arange: give stop, or like= and axis= (the limit is like.shape[axis]), not both")
    if isinstance(stop, _Sym):
        if net is None:
            raise _err(f"arange({stop}): a symbolic stop needs net= (the network with a tensor of that dim)")
        like, axis = dim_source(net, stop)
        stop = None
    elif stop is not None and not isinstance(stop, (int, float, np.integer, np.floating)):
        raise _err(f"arange: stop must be a number or a dim (x.shape[i]), got {stop!r}")
    owner = like.net if like is not None else net
    if owner is None:
        raise _err("arange: pass net= (the network to add it to) or like= and axis=")
    if dtype is None:
        dtype = "int32" if all(float(v).is_integer() for v in (start, stop, step) if v is not None) else "float32"
    return owner.apply("arange", [like], name=name, start=float(start), stop=None if stop is None else float(stop),
                       step=float(step), axis=axis, dtype=dtype)


def slice_to(x: Tensor, like: Tensor, axes: IntOrSeq, like_axes: IntOrSeq, starts: Optional[IntOrSeq] = None,
             offsets: Optional[IntOrSeq] = None, steps: Optional[IntOrSeq] = None, name: Optional[str] = None) -> Tensor:
    """``x[start : like.shape[like_axis] + offset : step]`` on each of ``axes``; the end is read at run time
    (``x[:S]`` for a symbolic ``S`` of ``like``). ``x[:ids.shape[1]]`` does this by itself."""
    def tup(v: Any) -> Optional[tuple]:
        return None if v is None else ((int(v),) if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v))
    return x.net.apply("slice_to", [x, like], name=name, axes=tup(axes), like_axes=tup(like_axes),
                       starts=tup(starts), offsets=tup(offsets), steps=tup(steps))


def preprocess(x: Tensor, layout: str = "NCHW", mean: Any = None, scale: Any = None, reverse_channels: bool = False,
               dtype: Any = "float32", name: Optional[str] = None) -> Tensor:
    """``x`` (in ``layout``) as ``dtype``, channels reversed if asked, ``(x - mean) / scale`` per channel, in
    the model layout (N, C, then the other axes). Usually declared with the input: ``net.input(...,
    layout="NHWC", preprocess=nd.Preprocess(...))``."""
    from .preprocessing import Preprocess
    attrs = Preprocess(mean, scale, reverse_channels, dtype).attrs()
    return x.net.apply("preprocess", [x], name=name, layout=layout, **attrs)


# ---- indexing -------------------------------------------------------------------------------------
def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[...]`` with ints, slices, None and Ellipsis (strided slice + squeeze/unsqueeze),
    or an integer Tensor / list (gather on axis 0)."""
    if isinstance(key, (Tensor, list, np.ndarray)):
        return gather(x, key, axis=0)
    if not isinstance(key, tuple):
        key = (key,)
    n_real = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > x.rank:
        raise _err(f"too many indices ({n_real}) for {x}")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (builtins.slice(None),) * (x.rank - n_real) + key[i + 1:]
    from .shapes import Sym as _Sym
    starts, ends, axes, steps, squeeze_axes, new_axes, dyn = [], [], [], [], [], [], []
    axis = 0
    out_pos = 0
    for k in key:
        if k is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        if isinstance(k, (int, np.integer)):
            d = x.shape[axis]
            k = int(k)
            if isinstance(d, int) and not -d <= k < d:
                raise _err(f"index {k} is out of range for axis {axis} of {x}")
            starts.append(k)
            ends.append(k + 1 if k != -1 else _INT_MAX)
            axes.append(axis)
            steps.append(1)
            squeeze_axes.append(axis)
        elif isinstance(k, builtins.slice) and any(isinstance(v, _Sym) for v in (k.start, k.stop, k.step)):
            # x[:S]: the end is read at run time
            if not isinstance(k.stop, _Sym) or not all(v is None or isinstance(v, (int, np.integer))
                                                       for v in (k.start, k.step)):
                raise _err(f"unsupported index {k!r} for {x}: only the end may be a symbolic dim")
            like, like_axis = dim_source(x.net, k.stop)
            dyn.append((axis, like, like_axis, int(k.start or 0), int(k.step or 1)))
            out_pos += 1
        elif isinstance(k, builtins.slice):
            if k != builtins.slice(None):
                st = k.step if k.step is not None else 1
                if st > 0:
                    s0 = k.start if k.start is not None else 0
                    e0 = k.stop if k.stop is not None else _INT_MAX
                else:
                    s0 = k.start if k.start is not None else -1
                    e0 = k.stop if k.stop is not None else -_INT_MAX
                starts.append(s0)
                ends.append(e0)
                axes.append(axis)
                steps.append(st)
            out_pos += 1
        else:
            raise _err(f"unsupported index {k!r} for {x}")
        axis += 1
    y = x
    if starts:
        y = slice(y, starts, ends, axes, steps)
    for a, like, la, st, sp in dyn:
        y = slice_to(y, like, a, la, st, None, sp)
    if squeeze_axes:
        y = squeeze(y, squeeze_axes)
    if new_axes:
        y = unsqueeze(y, new_axes)
    return y


__all__ = [
    "abs",
    "add",
    "amax",
    "amin",
    "arange",
    "argmax",
    "argmin",
    "attention",
    "avg_pool",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "batch_norm",
    "cast",
    "cat",
    "clip",
    "concat",
    "concatenate",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "dequantize_linear",
    "dim_source",
    "div",
    "dropout",
    "elu",
    "embedding",
    "equal",
    "erf",
    "exp",
    "expand",
    "expand_as",
    "flatten",
    "gather",
    "gelu",
    "global_avg_pool",
    "global_max_pool",
    "greater",
    "greater_equal",
    "group_norm",
    "hard_sigmoid",
    "hard_swish",
    "hardsigmoid",
    "hardswish",
    "identity",
    "index_select",
    "instance_norm",
    "interpolate",
    "layer_norm",
    "leaky_relu",
    "less",
    "less_equal",
    "linear",
    "local_response_norm",
    "log",
    "log_softmax",
    "logical_and",
    "logical_not",
    "logical_or",
    "lrn",
    "matmul",
    "max",
    "max_pool",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mish",
    "mul",
    "neg",
    "not_equal",
    "pad",
    "permute",
    "pow",
    "prelu",
    "preprocess",
    "prod",
    "quantize_linear",
    "reciprocal",
    "relu",
    "relu6",
    "reshape",
    "resize",
    "resize_to",
    "rsqrt",
    "scaled_dot_product_attention",
    "selu",
    "sigmoid",
    "silu",
    "slice",
    "slice_to",
    "softmax",
    "softplus",
    "softsign",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "swish",
    "tanh",
    "tile",
    "topk",
    "transpose",
    "unsqueeze",
    "upsample",
    "where",
]
