"""Modules: reusable layers that own named parameters (``conv1.weight``), PyTorch style.

Parameter names follow the attribute path from the outermost module (``layer1.0.conv1.weight``),
so checkpoints from PyTorch bind by name. A module called at top level gets its ``name`` (or, for a
leaf layer without one, a generated name such as ``conv2d_1``); a container (a module with child
modules, even if it also declares parameters such as a ViT's ``cls_token``) called at top level
without a name adds no prefix. Calling a module twice reuses (shares) its parameters.

Layer names follow the same paths: a sublayer is named after its attribute path (``layer1.0.conv1``),
and ops a module's ``forward`` makes itself (a residual ``+``, a ``relu``) are named inside it
(``layer1.0.add``, a second use ``layer1.0.relu_1``), so every name says which module made the layer.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from . import functional as F
import numpy as np

from .dsl import LayerName, Network, Tensor, user_location
from .errors import ModuleError, ShapeError
from .functional import _tuple


class Module:
    """Base class. Subclasses declare parameters with :meth:`param` and implement :meth:`forward`."""

    def __init__(self, name: Optional[str] = None):
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_path", None)

    def __setattr__(self, key: str, value: Any) -> None:
        if isinstance(value, Module):
            self._modules[key] = value
        object.__setattr__(self, key, value)

    def param(self, name: str, shape: Sequence[int], init: str = "normal", dtype: str = "float32") -> None:
        """Declare a parameter (its tensor is made in the network at call time)."""
        shape = tuple(shape)
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in shape):
            raise ShapeError(f"{type(self).__name__}: parameter '{name}' needs positive integer dims, got "
                             f"{shape} ({user_location()})")
        self._params[name] = (tuple(int(d) for d in shape), init, dtype)

    def weight_and_bias(self, weight_shape: Sequence[int], bias: bool) -> None:
        """Declare ``weight`` (He init) and, if asked, ``bias`` of size weight_shape[0] or out."""
        self.param("weight", weight_shape, init="he")
        if bias:
            self.param("bias", (self._nout,), init="small")

    def wb(self, net: Network) -> tuple:
        """(weight, bias or None) tensors of this module."""
        return self.p(net, "weight"), (self.p(net, "bias") if "bias" in self._params else None)

    def children(self) -> Iterator[tuple[str, "Module"]]:
        return iter(self._modules.items())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, tuple]]:
        """(full name, shape) of every declared parameter, recursively."""
        for n, (shape, _, _) in self._params.items():
            yield (f"{prefix}{n}", shape)
        for cn, c in self._modules.items():
            yield from c.named_parameters(f"{prefix}{cn}.")

    def _assign_paths(self, path: str) -> None:
        object.__setattr__(self, "_path", path)
        for cn, c in self._modules.items():
            c._assign_paths(f"{path}.{cn}" if path else cn)

    def p(self, net: Network, name: str) -> Tensor:
        """The network tensor of this module's parameter ``name``."""
        shape, init, dtype = self._params[name]
        full = f"{self._path}.{name}" if self._path else name
        return net.parameter(full, shape, dtype, init=init)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        net = _find_net(args, kwargs)
        outer = not getattr(net._local, "in_module", False)
        if not outer:
            return self._call(net, args, kwargs)
        # the outermost call is all-or-nothing: a failure leaves no stray parameters, layers or names
        state, unnamed = net._snapshot(), self._path is None
        net._local.in_module = True
        try:
            return self._call(net, args, kwargs)
        except BaseException:
            net._restore(state)
            if unnamed:
                self._reset_paths()
            raise
        finally:
            net._local.in_module = False

    def _call(self, net: Network, args: tuple, kwargs: dict) -> Any:
        if self._path is None:
            if self.name is not None:
                self._assign_paths(net.scoped(self.name))
            elif self._params and not self._modules:  # a leaf layer; a root with children adds no prefix
                path = net.unique_name(_snake(type(self).__name__))
                net._used.discard(path)  # free for the layer itself: conv2d_1 owns conv2d_1.weight
                self._assign_paths(path)
            elif self._modules:
                self._assign_paths(net.prefix()[:-1])  # a container: only the current scope or module
            else:
                self._assign_paths("")  # a layer without parameters: its op's own name, in the current scope
        with net.module_scope(self._path):
            return self.forward(*args, **kwargs)

    def _reset_paths(self) -> None:
        object.__setattr__(self, "_path", None)
        for _, c in self._modules.items():
            c._reset_paths()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def layer_name(self, suffix: str = "") -> Optional[str]:
        """Name for the layer(s) this module adds (its path; absolute, so not re-scoped)."""
        if not self._path:
            return None
        return LayerName(self._path + suffix)

    def build(self, inputs: dict, outputs: Sequence[str] = ("output",), name: Optional[str] = None) -> Network:
        """Trace this module into a new Network: ``inputs`` maps names to shapes (or (shape, dtype))."""
        net = Network(name or _snake(type(self).__name__))
        ts = []
        for n, spec in inputs.items():
            if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], str) and isinstance(spec[0], (tuple, list)):
                ts.append(net.input(n, spec[0], spec[1]))
            else:
                ts.append(net.input(n, spec))
        out = self(*ts)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(outputs):
            outputs = [f"output{i}" for i in range(len(outs))] if len(outs) > 1 else outputs
        for t, n in zip(outs, outputs):
            net.output(t, n)
        return net


def _snake(s: str) -> str:
    out = []
    for i, ch in enumerate(s):
        if ch.isupper() and i and (not s[i - 1].isupper() or (i + 1 < len(s) and s[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _find_net(args: Any, kwargs: dict) -> Network:
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, Tensor):
            return a.net
        if isinstance(a, (list, tuple)):
            for b in a:
                if isinstance(b, Tensor):
                    return b.net
    raise ShapeError("a module must be called with at least one netdsl Tensor")


# ---- layers with parameters ----------------------------------------------------------------------
def _unsupported(layer: str, what: str) -> ShapeError:
    return ShapeError(f"{layer}: {what} ({user_location()})")


_PADDING_MODES = {"zeros": None, "reflect": "reflect", "replicate": "replicate"}


class _ConvNd(Module):
    nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None, *, name: Optional[str] = None):
        super().__init__(name)
        k = _tuple(kernel_size, self.nd, "kernel_size")
        if in_channels % groups or out_channels % groups:
            raise ShapeError(f"{type(self).__name__}: channels {in_channels}->{out_channels} not divisible by "
                             f"groups={groups}")
        if padding_mode not in _PADDING_MODES:
            raise _unsupported(type(self).__name__, f"padding_mode must be one of {', '.join(_PADDING_MODES)}, "
                                                    f"not {padding_mode!r}")
        if _PADDING_MODES[padding_mode] and isinstance(padding, str):
            raise _unsupported(type(self).__name__, f"padding={padding!r} with padding_mode={padding_mode!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.padding_mode = padding_mode
        self._nout = out_channels
        self.weight_and_bias((out_channels, in_channels // groups) + k, bias)

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        w, b = self.wb(net)
        padding, mode = self.padding, _PADDING_MODES[self.padding_mode]
        if mode is not None:  # PyTorch pads with the mode first, then convolves unpadded
            p = _tuple(padding, self.nd, "padding")
            x = F.pad(x, [v for d in reversed(p) for v in (d, d)], mode, name=self.layer_name("/pad"))
            padding = 0
        return F.conv(x, w, b, self.stride, padding, self.dilation, self.groups, name=self.layer_name())


class Conv1d(_ConvNd):
    nd = 1


class Conv2d(_ConvNd):
    nd = 2


class Conv3d(_ConvNd):
    nd = 3


class ConvTranspose2d(Module):
    nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None, *, name: Optional[str] = None):
        super().__init__(name)
        if padding_mode != "zeros":
            raise _unsupported(type(self).__name__, "only padding_mode='zeros' (as PyTorch)")
        k = _tuple(kernel_size, self.nd, "kernel_size")
        self.stride, self.padding, self.output_padding, self.groups, self.dilation = \
            stride, padding, output_padding, groups, dilation
        self._nout = out_channels
        self.weight_and_bias((in_channels, out_channels // groups) + k, bias)

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        w, b = self.wb(net)
        return F.conv_transpose(x, w, b, self.stride, self.padding, self.output_padding, groups=self.groups,
                                dilation=self.dilation, name=self.layer_name())


class ConvTranspose1d(ConvTranspose2d):
    nd = 1


class ConvTranspose3d(ConvTranspose2d):
    nd = 3


class DepthwiseConv2d(Conv2d):
    """Depthwise 2-d convolution: ``depth_multiplier`` filters per input channel, ``groups=in_channels``.

    Parameters are PyTorch's ``Conv2d(C, C*M, k, groups=C)``: ``weight`` (C*M, 1, kh, kw) and ``bias``
    (C*M,), output channel ``c*M + m`` from input channel ``c``. A Keras ``DepthwiseConv2D`` binds to it
    (``depthwise_kernel`` (kh, kw, C, M) -> ``weight``, see docs/BINDING.md).
    """

    def __init__(self, in_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 depth_multiplier: int = 1, bias: bool = True, *, name: Optional[str] = None):
        super().__init__(in_channels, in_channels * depth_multiplier, kernel_size, stride, padding, dilation,
                         groups=in_channels, bias=bias, name=name)
        self.depth_multiplier = depth_multiplier


class SeparableConv2d(Module):
    """Depthwise then pointwise (1x1) convolution: Keras ``SeparableConv2D`` and the usual PyTorch pair.

    Children ``depthwise`` (:class:`DepthwiseConv2d`, with ``stride``/``padding``/``dilation``; a bias
    only with ``depthwise_bias=True``) and ``pointwise`` (``Conv2d(C*M, out_channels, 1)``, bias by
    ``bias``), so parameters are ``depthwise.weight`` (C*M, 1, kh, kw), ``pointwise.weight``
    (out, C*M, 1, 1) and ``pointwise.bias``. A Keras ``SeparableConv2D`` layer binds its
    ``depthwise_kernel``, ``pointwise_kernel`` and ``bias`` to them (docs/BINDING.md); a PyTorch
    checkpoint binds by these names (``rename`` others, e.g. ``conv_dw`` -> ``depthwise``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, depth_multiplier: int = 1, bias: bool = True, depthwise_bias: bool = False,
                 *, name: Optional[str] = None):
        super().__init__(name)
        self.depthwise = DepthwiseConv2d(in_channels, kernel_size, stride, padding, dilation, depth_multiplier,
                                         bias=depthwise_bias)
        self.pointwise = Conv2d(in_channels * depth_multiplier, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None,
                 *, name: Optional[str] = None):
        super().__init__(name)
        self.in_features, self.out_features = in_features, out_features
        self._nout = out_features
        self.weight_and_bias((out_features, in_features), bias)

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        w, b = self.wb(net)
        return F.linear(x, w, b, name=self.layer_name())


def _affine_params(m: Module, shape: tuple, weight: bool, bias: bool) -> None:
    if weight:
        m.param("weight", shape, init="ones")
    if bias:
        m.param("bias", shape, init="small")


def _opt(m: Module, net: Network, name: str) -> Optional[Tensor]:
    return m.p(net, name) if name in m._params else None


class _BatchNorm(Module):
    """Inference batch norm with running statistics: ``(x - running_mean) / sqrt(running_var + eps) * weight
    + bias``. ``affine=False`` (or ``bias=False``) declares no weight (bias), as in PyTorch;
    ``track_running_stats=False`` (batch statistics) is refused. ``eps_mode="outside_sqrt"`` divides by
    ``sqrt(running_var) + eps`` instead: Darknet's batch norm is ``BatchNorm2d(c, eps=1e-6,
    eps_mode="outside_sqrt")``."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *, bias: bool = True,
                 eps_mode: str = "inside_sqrt", name: Optional[str] = None):
        super().__init__(name)
        if not track_running_stats:
            raise _unsupported(type(self).__name__, "track_running_stats=False normalises with each batch's "
                                                    "statistics; netdsl runs inference with running statistics")
        self.eps, self.eps_mode = eps, eps_mode
        _affine_params(self, (num_features,), affine, affine and bias)
        self.param("running_mean", (num_features,), init="small")
        self.param("running_var", (num_features,), init="positive")

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        w, b = _opt(self, net, "weight"), _opt(self, net, "bias")  # parameters in state_dict order
        return F.batch_norm(x, self.p(net, "running_mean"), self.p(net, "running_var"), w, b, eps=self.eps,
                            name=self.layer_name(), eps_mode=self.eps_mode)


class BatchNorm1d(_BatchNorm):
    pass


class BatchNorm2d(_BatchNorm):
    pass


class BatchNorm3d(_BatchNorm):
    pass


class LayerNorm(Module):
    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device: Any = None, dtype: Any = None, *, name: Optional[str] = None):
        super().__init__(name)
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.shape, self.eps = shape, eps
        _affine_params(self, shape, elementwise_affine, elementwise_affine and bias)

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        return F.layer_norm(x, self.shape, _opt(self, net, "weight"), _opt(self, net, "bias"), self.eps,
                            name=self.layer_name())


class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True, name: Optional[str] = None):
        super().__init__(name)
        self.num_groups, self.eps = num_groups, eps
        _affine_params(self, (num_channels,), affine, affine and bias)

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        return F.group_norm(x, self.num_groups, _opt(self, net, "weight"), _opt(self, net, "bias"), self.eps,
                            name=self.layer_name())


class InstanceNorm2d(Module):
    """PyTorch's defaults: no affine parameters, each sample's statistics. With
    ``track_running_stats=True`` the running statistics are parameters and are used (PyTorch's eval)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device: Any = None, dtype: Any = None, *, bias: bool = True,
                 name: Optional[str] = None):
        super().__init__(name)
        self.eps, self.running = eps, track_running_stats
        _affine_params(self, (num_features,), affine, affine and bias)
        if track_running_stats:
            self.param("running_mean", (num_features,), init="small")
            self.param("running_var", (num_features,), init="positive")

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        w, b = _opt(self, net, "weight"), _opt(self, net, "bias")  # parameters in state_dict order
        return F.instance_norm(x, _opt(self, net, "running_mean"), _opt(self, net, "running_var"), w, b,
                               not self.running, eps=self.eps, name=self.layer_name())


class Embedding(Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 max_norm: Optional[float] = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Any = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None, *, name: Optional[str] = None):
        super().__init__(name)
        if max_norm is not None or _weight is not None:
            raise _unsupported("Embedding", "max_norm and _weight are not supported (bind weights with load_weights)")
        self.param("weight", (num_embeddings, embedding_dim), init="normal")

    def forward(self, ids: Tensor) -> Tensor:
        net = ids.net
        return F.embedding(ids, self.p(net, "weight"), name=self.layer_name())


class PReLU(Module):
    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None,
                 *, name: Optional[str] = None):
        super().__init__(name)
        self.param("weight", (num_parameters,), init="small")

    def forward(self, x: Tensor) -> Tensor:
        net = x.net
        return F.prelu(x, self.p(net, "weight"), name=self.layer_name())


class MultiHeadAttention(Module):
    """PyTorch-style multi-head attention with separate q/k/v/out projections.

    Parameters: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (each ``.weight`` (E, E), ``.bias``).
    Inputs are (N, L, E) (batch first). ``mask`` broadcasts to (N, heads, L, S).
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, name: Optional[str] = None):
        super().__init__(name)
        if embed_dim % num_heads:
            raise ShapeError(f"MultiHeadAttention: embed_dim {embed_dim} not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.q_proj = Linear(embed_dim, embed_dim, bias)
        self.k_proj = Linear(embed_dim, embed_dim, bias)
        self.v_proj = Linear(embed_dim, embed_dim, bias)
        self.out_proj = Linear(embed_dim, embed_dim, bias)

    def forward(self, q: Tensor, k: Optional[Tensor] = None, v: Optional[Tensor] = None,
                mask: Optional[Tensor] = None, causal: bool = False) -> Tensor:
        k = q if k is None else k
        v = k if v is None else v
        h, e = self.num_heads, self.embed_dim
        d = e // h

        def heads(t: Tensor, proj: Module) -> Tensor:
            return proj(t).reshape(0, 0, h, d).transpose(0, 2, 1, 3)

        net = q.net
        qh, kh, vh = heads(q, self.q_proj), heads(k, self.k_proj), heads(v, self.v_proj)
        a = F.attention(qh, kh, vh, mask, causal=causal, name=self.layer_name(".attention"))
        a = F.reshape(F.transpose(a, (0, 2, 1, 3)), (0, 0, e))
        return self.out_proj(a)


def _lstm_step(gx: Tensor, hx: Optional[Sequence[Tensor]], w_hh: Tensor, b_hh: Optional[Tensor],
               hidden: int) -> tuple:
    """One LSTM step from the input's gate pre-activations ``gx`` (N, 4H) and the state (h, c) or None (zeros)."""
    if hx is not None:
        gx = gx + F.linear(hx[0], w_hh, b_hh)
    elif b_hh is not None:
        gx = gx + b_hh
    i, f, g, o = F.split(gx, [hidden] * 4, dim=1)
    c = F.sigmoid(i) * F.tanh(g)
    if hx is not None:
        c = F.sigmoid(f) * hx[1] + c
    return F.sigmoid(o) * F.tanh(c), c


class LSTMCell(Module):
    """One step of an LSTM, as PyTorch's ``nn.LSTMCell``: ``h, c = cell(x, (h, c))``.

    Parameters (PyTorch's names and gate order i, f, g, o): ``weight_ih`` (4H, I), ``weight_hh`` (4H, H),
    ``bias_ih``, ``bias_hh`` (4H). ``x`` is (N, I), ``h`` and ``c`` (N, H); without ``hx`` they start at
    zero. A recurrent state carried between calls is an input and an output of the network.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None,
                 *, name: Optional[str] = None):
        super().__init__(name)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.param("weight_ih", (4 * hidden_size, input_size), init="he")
        self.param("weight_hh", (4 * hidden_size, hidden_size), init="he")
        if bias:
            self.param("bias_ih", (4 * hidden_size,), init="small")
            self.param("bias_hh", (4 * hidden_size,), init="small")

    def forward(self, x: Tensor, hx: Optional[Sequence[Tensor]] = None) -> tuple:
        net = x.net
        gx = F.linear(x, self.p(net, "weight_ih"), _opt(self, net, "bias_ih"), name=self.layer_name(".ih"))
        # weight_hh is declared even when it multiplies a zero state, so checkpoints bind as in PyTorch
        return _lstm_step(gx, hx, self.p(net, "weight_hh"), _opt(self, net, "bias_hh"), self.hidden_size)


class LSTM(Module):
    """PyTorch's ``nn.LSTM``, unrolled over a sequence length known when the network is built.

    Parameters as PyTorch's: ``weight_ih_l{k}`` (4H, I or D*H), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (4H), with ``_reverse`` for the backward direction (``bidirectional=True``). Input
    (L, N, I), or (N, L, I) with ``batch_first``; ``hx`` = (h0, c0), each (D*num_layers, N, H), zeros when
    omitted. Returns ``output, (h_n, c_n)`` as PyTorch. The length L must be static (one set of layers per
    step); ``dropout`` is the identity at inference; ``proj_size`` is refused.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None, *, name: Optional[str] = None):
        super().__init__(name)
        if proj_size:
            raise _unsupported("LSTM", "proj_size (LSTM with projections) is not supported")
        self.hidden_size, self.num_layers, self.batch_first = hidden_size, num_layers, batch_first
        self.directions = ("", "_reverse") if bidirectional else ("",)
        h4 = 4 * hidden_size
        for k in range(num_layers):
            cin = input_size if k == 0 else hidden_size * len(self.directions)
            for sfx in self.directions:
                self.param(f"weight_ih_l{k}{sfx}", (h4, cin), init="he")
                self.param(f"weight_hh_l{k}{sfx}", (h4, hidden_size), init="he")
                if bias:
                    self.param(f"bias_ih_l{k}{sfx}", (h4,), init="small")
                    self.param(f"bias_hh_l{k}{sfx}", (h4,), init="small")

    def forward(self, x: Tensor, hx: Optional[Sequence[Tensor]] = None) -> tuple:
        net = x.net
        if not self.batch_first:
            x = F.transpose(x, (1, 0, 2))
        steps = x.shape[1]
        if not isinstance(steps, int):
            raise _unsupported("LSTM", f"the sequence length of {x} must be static: the LSTM is unrolled step by "
                                       "step (give the input a fixed length)")
        hs, cs, D = [], [], len(self.directions)
        for k in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self.directions):
                gx = F.linear(x, self.p(net, f"weight_ih_l{k}{sfx}"), _opt(self, net, f"bias_ih_l{k}{sfx}"),
                              name=self.layer_name(f".ih_l{k}{sfx}"))               # (N, L, 4H) at once
                w_hh, b_hh = self.p(net, f"weight_hh_l{k}{sfx}"), _opt(self, net, f"bias_hh_l{k}{sfx}")
                state = None if hx is None else (hx[0][k * D + d], hx[1][k * D + d])
                seq: list = [None] * steps
                for t in (reversed(range(steps)) if sfx else range(steps)):
                    state = _lstm_step(gx[:, t], state, w_hh, b_hh, self.hidden_size)
                    seq[t] = state[0]
                outs.append(F.stack(seq, dim=1))
                hs.append(state[0])
                cs.append(state[1])
            x = outs[0] if D == 1 else F.concat(outs, axis=2)
        out = x if self.batch_first else F.transpose(x, (1, 0, 2))
        return out, (F.stack(hs, dim=0), F.stack(cs, dim=0))


# ---- parameter-free layers: PyTorch's constructor arguments, forwarded to one function ---------------------
class Lambda(Module):
    """Wrap a function of tensors as a module."""

    def __init__(self, fn: Callable[..., Any], *, name: Optional[str] = None):
        super().__init__(name)
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class _Apply(Module):
    """A parameter-free layer: ``forward(x)`` is ``self.fn(x, **self.kw)``."""

    fn: Callable[..., Tensor]

    def __init__(self, name: Optional[str], **kw: Any):
        super().__init__(name)
        self.kw = kw

    def forward(self, x: Tensor) -> Tensor:
        return type(self).fn(x, name=self.layer_name(), **self.kw)


def _fn(f: Callable[..., Tensor]) -> Any:
    return staticmethod(f)


class ReLU(_Apply):
    fn = _fn(F.relu)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name)


class ReLU6(_Apply):
    fn = _fn(F.relu6)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name)


class SiLU(_Apply):
    fn = _fn(F.silu)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name)


class Hardswish(_Apply):
    fn = _fn(F.hardswish)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name)


class Hardsigmoid(_Apply):
    """PyTorch's clip(x / 6 + 1/2, 0, 1)."""

    fn = _fn(F.hardsigmoid)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name)


class Mish(_Apply):
    fn = _fn(F.mish)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name)


class SELU(_Apply):
    fn = _fn(F.selu)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name)


class Sigmoid(_Apply):
    fn = _fn(F.sigmoid)

    def __init__(self, *, name: Optional[str] = None):
        super().__init__(name)


class Tanh(_Apply):
    fn = _fn(F.tanh)

    def __init__(self, *, name: Optional[str] = None):
        super().__init__(name)


class Softsign(_Apply):
    fn = _fn(F.softsign)

    def __init__(self, *, name: Optional[str] = None):
        super().__init__(name)


class GELU(_Apply):
    fn = _fn(F.gelu)

    def __init__(self, approximate: str = "none", *, name: Optional[str] = None):
        super().__init__(name, approximate=approximate)


class LeakyReLU(_Apply):
    fn = _fn(F.leaky_relu)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name, negative_slope=negative_slope)


class ELU(_Apply):
    fn = _fn(F.elu)

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name, alpha=alpha)


class Softplus(_Apply):
    fn = _fn(F.softplus)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *, name: Optional[str] = None):
        super().__init__(name, beta=beta, threshold=threshold)


class Softmax(_Apply):
    """Softmax along ``dim`` (None: PyTorch's implicit choice, with its warning)."""

    fn = _fn(F.softmax)

    def __init__(self, dim: Optional[int] = None, *, name: Optional[str] = None):
        super().__init__(name, dim=dim)


class LogSoftmax(_Apply):
    fn = _fn(F.log_softmax)

    def __init__(self, dim: Optional[int] = None, *, name: Optional[str] = None):
        super().__init__(name, dim=dim)


class Dropout(_Apply):
    """Identity at inference."""

    fn = _fn(F.dropout)

    def __init__(self, p: float = 0.5, inplace: bool = False, *, name: Optional[str] = None):
        super().__init__(name, p=p)


class _MaxPool(_Apply):
    fn = _fn(F.max_pool)

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False, *, name: Optional[str] = None):
        super().__init__(name, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                         return_indices=return_indices, ceil_mode=ceil_mode)


class MaxPool1d(_MaxPool):
    pass


class MaxPool2d(_MaxPool):
    pass


class MaxPool3d(_MaxPool):
    pass


class AvgPool1d(_Apply):
    """``count_include_pad`` defaults to True (PyTorch), or False with ``padding="same"`` (TensorFlow)."""

    fn = _fn(F.avg_pool)

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: Optional[bool] = None, *, name: Optional[str] = None):
        super().__init__(name, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)


class AvgPool2d(_Apply):
    """``count_include_pad`` defaults to True (PyTorch), or False with ``padding="same"`` (TensorFlow)."""

    fn = _fn(F.avg_pool)

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: Optional[bool] = None, divisor_override: Optional[int] = None, *,
                 name: Optional[str] = None):
        super().__init__(name, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad, divisor_override=divisor_override)


class AvgPool3d(AvgPool2d):
    pass


class Upsample(_Apply):
    fn = _fn(F.interpolate)

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None, *,
                 name: Optional[str] = None):
        super().__init__(name, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                         recompute_scale_factor=recompute_scale_factor)


class LocalResponseNorm(_Apply):
    fn = _fn(F.local_response_norm)

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *,
                 name: Optional[str] = None):
        super().__init__(name, size=size, alpha=alpha, beta=beta, k=k)


class Flatten(_Apply):
    fn = _fn(F.flatten)

    def __init__(self, start_dim: int = 1, end_dim: int = -1, *, name: Optional[str] = None):
        super().__init__(name, start_dim=start_dim, end_dim=end_dim)


class AdaptiveAvgPool2d(Module):
    """Only output size 1 (global average pooling) is supported."""

    def __init__(self, output_size: Any, *, name: Optional[str] = None):
        super().__init__(name)
        if output_size not in (1, (1, 1)):
            raise ShapeError("AdaptiveAvgPool2d: only output_size=1 is supported")

    def forward(self, x: Tensor) -> Tensor:
        return F.global_avg_pool(x, name=self.layer_name())


class Identity(Module):
    """Returns its input; takes (and ignores) any arguments, as PyTorch's."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(kwargs.get("name") if isinstance(kwargs.get("name"), str) else None)

    def forward(self, x: Tensor) -> Tensor:
        return x


def _child(owner: str, key: Any, m: Any) -> tuple:
    """(key, module) checked as PyTorch checks ``add_module``: a Module under a non-empty string without '.'."""
    if not isinstance(m, Module):
        hint = ""
        if owner == "Sequential" and isinstance(m, (list, tuple)):
            hint = "; pass the modules themselves: Sequential(*modules)"
        elif owner == "Sequential" and isinstance(m, dict):
            hint = "; name the modules with an OrderedDict: Sequential(OrderedDict(name=module, ...))"
        raise ModuleError(f"{owner}: entry {key!r} is a {type(m).__name__}, not a netdsl Module{hint} "
                          f"({user_location()})")
    if not isinstance(key, str) or not key or "." in key:
        raise ModuleError(f"{owner}: module names must be non-empty strings without '.', got {key!r} "
                          f"({user_location()})")
    return key, m


class _Container(Module):
    def _add(self, key: Any, m: Any) -> None:
        key, m = _child(type(self).__name__, key, m)
        if key not in self._modules and hasattr(self, key):
            raise ModuleError(f"{type(self).__name__}: {key!r} is an attribute of the container, not a free name "
                              f"({user_location()})")
        setattr(self, key, m)

    def __len__(self) -> int:
        return len(self._modules)


class _Indexed(_Container):
    """Children named "0", "1", ... (PyTorch's Sequential/ModuleList indexing)."""

    def _key(self, i: int) -> str:
        n = len(self._modules)
        if not isinstance(i, (int, np.integer)) or not -n <= int(i) < n:
            raise IndexError(f"{type(self).__name__}: index {i!r} out of range ({n} modules)")
        return list(self._modules)[int(i) % n]

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return type(self)(OrderedDict(list(self._modules.items())[i])) if isinstance(self, Sequential) \
                else type(self)(list(self._modules.values())[i])
        return self._modules[self._key(i)]

    def __setitem__(self, i: int, m: Module) -> None:
        self._add(self._key(i), m)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def append(self, m: Module) -> "_Indexed":
        self._add(str(len(self._modules)), m)
        return self

    def extend(self, modules: Iterable[Module]) -> "_Indexed":
        if isinstance(modules, Module) and not isinstance(modules, _Indexed) or not hasattr(modules, "__iter__"):
            raise ModuleError(f"{type(self).__name__}.extend takes an iterable of modules, not a "
                            f"{type(modules).__name__} ({user_location()})")
        for m in list(modules):
            self.append(m)
        return self

    def insert(self, index: int, m: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, m)
        for k in list(self._modules):
            del self._modules[k]
            object.__delattr__(self, k)
        for i, mm in enumerate(mods):
            self._add(str(i), mm)


class Sequential(_Indexed):
    """Children applied in order, as in PyTorch: ``Sequential(a, b, c)`` (named "0", "1", ...) or
    ``Sequential(OrderedDict([("conv", a), ("relu", b)]))``. Anything else (a list, a dict, a
    non-module) is refused with a :class:`~netdsl.errors.ModuleError`."""

    def __init__(self, *args: Module, name: Optional[str] = None):
        super().__init__(name)
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for k, m in args[0].items():
                self._add(k, m)
            return
        for i, m in enumerate(args):
            self._add(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(_Indexed):
    """A list of modules named "0", "1", ...: ``ModuleList(iterable of modules)``, as in PyTorch
    (``append``, ``extend``, ``insert``, indexing, slicing, iteration). Not callable."""

    def __init__(self, modules: Optional[Iterable[Module]] = None, name: Optional[str] = None):
        super().__init__(name)
        if modules is not None:
            self.extend(modules)

    def forward(self, *a: Any, **k: Any) -> Any:
        raise ModuleError("ModuleList is a container, not a layer: iterate over it and call its modules")


class ModuleDict(_Container):
    """Modules by name: ``ModuleDict({"a": m1, "b": m2})`` or an iterable of (name, module) pairs, as in
    PyTorch (``[]``, ``in``, ``keys``/``values``/``items``, ``update``, ``pop``). Not callable."""

    def __init__(self, modules: Any = None, name: Optional[str] = None):
        super().__init__(name)
        if modules is not None:
            self.update(modules)

    def update(self, modules: Any) -> None:
        if isinstance(modules, Module) and not isinstance(modules, ModuleDict):
            raise ModuleError(f"ModuleDict.update takes a mapping or (name, module) pairs, not a "
                            f"{type(modules).__name__} ({user_location()})")
        if isinstance(modules, (Mapping, ModuleDict)):
            items = list(modules.items())
        elif isinstance(modules, (str, bytes)) or not hasattr(modules, "__iter__"):
            raise ModuleError(f"ModuleDict.update takes a mapping or (name, module) pairs, not a "
                            f"{type(modules).__name__} ({user_location()})")
        else:
            items = []
            for j, kv in enumerate(modules):
                if not isinstance(kv, (tuple, list)) or len(kv) != 2:
                    raise ModuleError(f"ModuleDict.update: element {j} is not a (name, module) pair: {kv!r} "
                                    f"({user_location()})")
                items.append(tuple(kv))
        for k, m in items:
            self._add(k, m)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, m: Module) -> None:
        self._add(key, m)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def keys(self) -> list:
        return list(self._modules)

    def values(self) -> list:
        return list(self._modules.values())

    def items(self) -> list:
        return list(self._modules.items())

    def pop(self, key: str) -> Module:
        m = self._modules.pop(key)
        object.__delattr__(self, key)
        return m

    def forward(self, *a: Any, **k: Any) -> Any:
        raise ModuleError("ModuleDict is a container, not a layer: call its modules by name")
