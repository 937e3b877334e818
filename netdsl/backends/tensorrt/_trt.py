"""Lazy import of TensorRT: ``tensorrt`` (10.x/11.x) or ``tensorrt_rtx`` (TensorRT for RTX).

Choose with the ``flavour`` argument or ``NETDSL_TRT=tensorrt|tensorrt_rtx``; by default the first
one that imports wins (``tensorrt`` first). TensorRT honours one logger per process: :func:`logger`
returns that one, which forwards TensorRT's messages to Python logging (``netdsl.tensorrt``).
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
import warnings
from typing import Any, Iterator, Optional

from ...errors import BackendUnavailable

FLAVOURS = ("tensorrt", "tensorrt_rtx")
log = logging.getLogger("netdsl.tensorrt")

_lock = threading.Lock()
_modules: dict[str, Any] = {}
_logger: Any = None
_logger_flavour: Optional[str] = None

INSTALL_ADVICE = ("install TensorRT: `pip install tensorrt` (10.x/11.x, needs NVIDIA's package index) or "
                  "`pip install tensorrt-rtx` (TensorRT for RTX; builds engines even without a GPU); "
                  "or `pip install netdsl[tensorrt-rtx]`")


def load(flavour: Optional[str] = None) -> Any:
    """Import and return the TensorRT module (``import tensorrt as trt`` or ``tensorrt_rtx``)."""
    flavour = flavour or os.environ.get("NETDSL_TRT") or None
    if flavour is not None and flavour not in FLAVOURS:
        raise BackendUnavailable(f"NETDSL_TRT/flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
    names = [flavour] if flavour else list(FLAVOURS)
    errors = []
    with _lock:
        for name in names:
            if name in _modules:
                return _modules[name]
            try:
                mod = importlib.import_module(name)
                if not hasattr(mod, "Builder"):
                    raise ImportError(f"module {name} has no Builder (a stub package?)")
            except Exception as e:  # ImportError, or a broken install raising something else
                errors.append(f"{name}: {type(e).__name__}: {e}")
                continue
            _modules[name] = mod
            return mod
    raise BackendUnavailable("TensorRT backend: no usable TensorRT module (" + "; ".join(errors) + "). "
                             + INSTALL_ADVICE)


def flavour_of(trt: Any) -> str:
    """'tensorrt' or 'tensorrt_rtx' for a loaded module."""
    return "tensorrt_rtx" if trt.__name__.startswith("tensorrt_rtx") else "tensorrt"


def version_string(trt: Any) -> str:
    """e.g. 'tensorrt_rtx-1.7.1.116'."""
    return f"{flavour_of(trt)}-{getattr(trt, '__version__', '?')}"


_LEVELS = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
           "INFO": logging.INFO, "VERBOSE": logging.DEBUG}


def logger(trt: Any) -> Any:
    """The process-wide TensorRT logger (created once), forwarding to Python logging."""
    global _logger, _logger_flavour
    with _lock:
        if _logger is not None and _logger_flavour == flavour_of(trt):
            return _logger

        class _PyLogger(trt.ILogger):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []

            def log(self, severity: Any, msg: str) -> None:
                level = _LEVELS.get(getattr(severity, "name", str(severity)).split(".")[-1], logging.INFO)
                if level >= logging.ERROR and "CUDA driver version is insufficient" not in msg:
                    self.errors.append(msg)  # (that one is logged by every CPU-only TensorRT-RTX build)
                    del self.errors[:-50]
                log.log(level, "%s", msg)

        _logger = _PyLogger()
        _logger_flavour = flavour_of(trt)
        return _logger


def take_errors(trt: Any) -> list[str]:
    """TensorRT error messages logged since the last call (to put into exceptions)."""
    lg = logger(trt)
    out = list(lg.errors)
    lg.errors.clear()
    return out


# ---- the API surface netdsl uses (docs/TENSORRT-API.md says where each one exists) ------------------
# Every symbol here exists, with the same meaning, in TensorRT 10.0 ... 10.x, TensorRT 11.x and
# TensorRT-RTX 1.7; tests/backends/tensorrt/test_api_surface.py checks them against the installed module,
# so a TensorRT that drops one fails loudly. Dotted names are attributes of the module.
REQUIRED_API: tuple[str, ...] = (
    # foundational types
    "ILogger", "ILogger.Severity", "Weights", "DataType", "float32", "float16", "bfloat16", "int8", "uint8",
    "int32", "int64", "bool", "ITensor.name", "ITensor.shape", "ITensor.dtype", "ITensor.is_network_input",
    "ITensor.set_dimension_name",
    # builder, network, config
    "Builder", "Builder.create_network", "Builder.create_builder_config", "Builder.create_optimization_profile",
    "Builder.build_serialized_network", "INetworkDefinition.name", "INetworkDefinition.num_layers",
    "INetworkDefinition.num_inputs", "INetworkDefinition.num_outputs", "INetworkDefinition.get_layer",
    "INetworkDefinition.get_input", "INetworkDefinition.get_output", "INetworkDefinition.add_input",
    "INetworkDefinition.mark_output", "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.add_optimization_profile",
    "MemoryPoolType.WORKSPACE", "IOptimizationProfile.set_shape",
    # layers the lowering adds
    "INetworkDefinition.add_activation", "INetworkDefinition.add_cast", "INetworkDefinition.add_concatenation",
    "INetworkDefinition.add_constant", "INetworkDefinition.add_convolution_nd",
    "INetworkDefinition.add_deconvolution_nd", "INetworkDefinition.add_elementwise",
    "INetworkDefinition.add_gather", "INetworkDefinition.add_identity", "INetworkDefinition.add_lrn",
    "INetworkDefinition.add_matrix_multiply", "INetworkDefinition.add_parametric_relu",
    "INetworkDefinition.add_pooling_nd", "INetworkDefinition.add_reduce", "INetworkDefinition.add_resize",
    "INetworkDefinition.add_scale_nd", "INetworkDefinition.add_select", "INetworkDefinition.add_shape",
    "INetworkDefinition.add_shuffle", "INetworkDefinition.add_slice", "INetworkDefinition.add_softmax",
    "INetworkDefinition.add_topk", "INetworkDefinition.add_unary",
    # layer attributes set or read back
    "ILayer.name", "ILayer.type", "ILayer.num_inputs", "ILayer.num_outputs", "ILayer.get_input",
    "ILayer.get_output", "ILayer.set_input", "LayerType",
    "IConvolutionLayer.kernel", "IConvolutionLayer.bias", "IConvolutionLayer.num_output_maps",
    "IConvolutionLayer.kernel_size_nd", "IConvolutionLayer.stride_nd", "IConvolutionLayer.dilation_nd",
    "IConvolutionLayer.pre_padding", "IConvolutionLayer.post_padding", "IConvolutionLayer.padding_mode",
    "IConvolutionLayer.num_groups",
    "IDeconvolutionLayer.kernel", "IDeconvolutionLayer.bias", "IDeconvolutionLayer.num_output_maps",
    "IDeconvolutionLayer.kernel_size_nd", "IDeconvolutionLayer.stride_nd", "IDeconvolutionLayer.dilation_nd",
    "IDeconvolutionLayer.pre_padding", "IDeconvolutionLayer.post_padding", "IDeconvolutionLayer.num_groups",
    "IPoolingLayer.type", "IPoolingLayer.window_size_nd", "IPoolingLayer.stride_nd", "IPoolingLayer.pre_padding",
    "IPoolingLayer.post_padding", "IPoolingLayer.padding_mode", "IPoolingLayer.average_count_excludes_padding",
    "IPoolingLayer.blend_factor", "IActivationLayer.type", "IActivationLayer.alpha", "IActivationLayer.beta",
    "IElementWiseLayer.op", "IUnaryLayer.op", "IReduceLayer.op", "IReduceLayer.axes", "IReduceLayer.keep_dims",
    "ISoftMaxLayer.axes", "IConcatenationLayer.axis", "IShuffleLayer.first_transpose",
    "IShuffleLayer.reshape_dims", "IShuffleLayer.second_transpose", "IShuffleLayer.zero_is_placeholder",
    "ISliceLayer.start", "ISliceLayer.shape", "ISliceLayer.stride", "ISliceLayer.mode", "IGatherLayer.axis",
    "IGatherLayer.mode", "IMatrixMultiplyLayer.op0", "IMatrixMultiplyLayer.op1", "ITopKLayer.op", "ITopKLayer.k",
    "ITopKLayer.axes", "ICastLayer.to_type", "IConstantLayer.weights", "IConstantLayer.shape",
    "INormalizationLayer.epsilon", "INormalizationLayer.axes", "INormalizationLayer.num_groups",
    "ILRNLayer.window_size", "ILRNLayer.alpha", "ILRNLayer.beta", "ILRNLayer.k", "IScaleLayer.mode",
    "IScaleLayer.shift", "IScaleLayer.scale", "IScaleLayer.power", "IScaleLayer.channel_axis",
    "IResizeLayer.shape", "IResizeLayer.scales", "IResizeLayer.resize_mode", "IResizeLayer.coordinate_transformation",
    "IResizeLayer.selector_for_single_pixel", "IResizeLayer.nearest_rounding", "IIdentityLayer", "ISelectLayer",
    "IShapeLayer", "IParametricReLULayer",
    # enums and members
    "ActivationType.RELU", "ActivationType.SIGMOID", "ActivationType.TANH", "ActivationType.SOFTSIGN",
    "ActivationType.LEAKY_RELU", "ActivationType.ELU", "ActivationType.SELU", "ActivationType.HARD_SIGMOID",
    "ActivationType.SOFTPLUS", "ActivationType.CLIP", "ActivationType.GELU_ERF", "ActivationType.GELU_TANH",
    "ElementWiseOperation.SUM", "ElementWiseOperation.SUB", "ElementWiseOperation.PROD", "ElementWiseOperation.DIV",
    "ElementWiseOperation.POW", "ElementWiseOperation.MAX", "ElementWiseOperation.MIN", "ElementWiseOperation.EQUAL",
    "ElementWiseOperation.LESS", "ElementWiseOperation.GREATER", "ElementWiseOperation.AND",
    "ElementWiseOperation.OR", "UnaryOperation.NEG", "UnaryOperation.ABS", "UnaryOperation.EXP",
    "UnaryOperation.LOG", "UnaryOperation.SQRT", "UnaryOperation.RECIP", "UnaryOperation.ERF", "UnaryOperation.NOT",
    "ReduceOperation.SUM", "ReduceOperation.AVG", "ReduceOperation.MAX", "ReduceOperation.MIN",
    "ReduceOperation.PROD", "TopKOperation.MAX", "TopKOperation.MIN", "MatrixOperation.NONE",
    "MatrixOperation.TRANSPOSE", "PoolingType.MAX", "PoolingType.AVERAGE", "PaddingMode.EXPLICIT_ROUND_DOWN",
    "PaddingMode.EXPLICIT_ROUND_UP", "ScaleMode.CHANNEL", "SampleMode.FILL", "SampleMode.WRAP",
    "SampleMode.CLAMP", "SampleMode.REFLECT", "GatherMode.DEFAULT", "InterpolationMode.NEAREST",
    "InterpolationMode.LINEAR", "ResizeCoordinateTransformation.HALF_PIXEL",
    "ResizeCoordinateTransformation.ALIGN_CORNERS", "ResizeCoordinateTransformation.ASYMMETRIC",
    "ResizeSelector.FORMULA", "ResizeSelector.UPPER", "ResizeRoundMode.FLOOR", "ResizeRoundMode.CEIL",
    "ResizeRoundMode.HALF_DOWN", "ResizeRoundMode.HALF_UP", "NetworkDefinitionCreationFlag",
    # runtime: the name-based I/O API of TensorRT 10+ (no bindings API)
    "Runtime", "Runtime.deserialize_cuda_engine", "ICudaEngine.create_execution_context",
    "ICudaEngine.num_io_tensors", "ICudaEngine.get_tensor_name", "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_dtype", "TensorIOMode.INPUT", "TensorIOMode.OUTPUT",
    "IExecutionContext.set_input_shape", "IExecutionContext.get_tensor_shape",
    "IExecutionContext.set_tensor_address", "IExecutionContext.execute_async_v3",
    "IExecutionContext.set_optimization_profile_async",
)

# Used when present, with the fallback named here when absent (feature-detected in the code).
OPTIONAL_API: dict[str, str] = {
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED":
        "absent: the network is strongly typed anyway (TensorRT 11 deprecates the flag; it is ignored there)",
    "INetworkDefinition.add_normalization_v2":
        "TensorRT 10.15+/11.x/RTX; else add_normalization (group scale applied by a mul+add after the layer)",
    "INetworkDefinition.add_normalization":
        "deprecated in 10.15 (superseded by add_normalization_v2); used only where v2 is missing",
    "INormalizationLayer.is_v2": "read back by inspect; absent means a v1 layer",
    "ISliceLayer.axes": "read back by inspect only; absent means start/size/stride cover every axis",
    "IProgressMonitor": "build progress (TensorRT 10.0+); absent: one log line per build",
    "BuilderFlag.TF32": "cleared for every build unless tf32=True; absent: nothing to clear",
    "IBuilderConfig.clear_flag": "as BuilderFlag.TF32",
    "IBuilderConfig.create_timing_cache": "timing_cache=path; absent: a warning, the build goes on without one "
                                          "(TensorRT-RTX has it but ignores timing caches since RTX 1.2)",
    "IBuilderConfig.set_timing_cache": "as IBuilderConfig.create_timing_cache",
    "ITimingCache.serialize": "as IBuilderConfig.create_timing_cache",
    "IBuilderConfig.progress_monitor": "as IProgressMonitor",
    "IBuilderConfig.set_compute_capability": "TensorRT-RTX only: target=...; elsewhere target= is refused",
    "ComputeCapability": "TensorRT-RTX only (see set_compute_capability)",
}


def _lookup(trt: Any, dotted: str) -> Any:
    obj = trt
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


# Symbols treated as absent, to run the fallbacks for older TensorRT releases on the installed builder
# (``NETDSL_TRT_HIDE=a,b`` or :func:`hiding`); e.g. TensorRT 10.0-10.14 lack add_normalization_v2.
_hidden: set[str] = {s.strip() for s in os.environ.get("NETDSL_TRT_HIDE", "").split(",") if s.strip()}
API_10_0_ABSENT = ("INetworkDefinition.add_normalization_v2",)


@contextlib.contextmanager
def hiding(*symbols: str) -> Iterator[None]:
    """Within the block, :func:`has` reports ``symbols`` as absent (the lowering takes its fallbacks)."""
    added = set(symbols) - _hidden
    _hidden.update(added)
    try:
        yield
    finally:
        _hidden.difference_update(added)


def has(trt: Any, dotted: str) -> bool:
    """True when ``trt`` has the (dotted) attribute, e.g. ``has(trt, "ActivationType.GELU_ERF")`` (and it is
    not hidden, see :func:`hiding`)."""
    if dotted in _hidden:
        return False
    try:
        _lookup(trt, dotted)
        return True
    except AttributeError:
        return False


def missing_api(trt: Any) -> list[str]:
    """The REQUIRED_API symbols this TensorRT module lacks (empty: the backend can use it)."""
    return [s for s in REQUIRED_API if not has(trt, s)]


def network_flags(trt: Any) -> int:
    """``create_network`` flags for a strongly typed network on every flavour/version."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def add_normalization(net: Any, x: Any, scale: Any, bias: Any, axes: int) -> Any:
    """A normalization layer: ``add_normalization_v2`` where it exists (10.15+, 11.x, RTX; scale/bias per
    channel for group norm), else ``add_normalization`` (scale/bias per group for group norm)."""
    if normalization_v2(net):
        return net.add_normalization_v2(x, scale, bias, axes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated since 10.15, where v2 exists
        return net.add_normalization(x, scale, bias, axes)


def normalization_v2(net: Any) -> bool:
    """Whether :func:`add_normalization` makes v2 layers for this network."""
    return hasattr(net, "add_normalization_v2") and "INetworkDefinition.add_normalization_v2" not in _hidden
