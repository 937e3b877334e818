"""A pickle reader that never imports or runs anything from the file.

``find_class`` resolves only an allow-list of globals (torch tensor/storage rebuild functions,
``collections.OrderedDict``, NumPy array reconstruction, a few builtins), each mapped to an inert
local stand-in defined here. Everything else is either refused (``mode="strict"``) or, in the
inert modes, replaced by a placeholder class that records its arguments and state but does
nothing (so whole pickled modules, YOLOv5 style, can be walked for their tensors). Globals that
only make sense for running code (os.system, builtins.exec, subprocess ...) are refused in every
mode, so a malicious file is reported as such.
"""
from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from typing import Any, Callable, Optional

import numpy as np

from ..errors import WeightError

# ---- inert stand-ins -----------------------------------------------------------------------------
TORCH_DTYPES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8",
    "bool": "bool", "complex64": "complex64", "complex128": "complex128", "cfloat": "complex64",
    "cdouble": "complex128", "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
    "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
}
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}


class TorchDType(str):
    """Stand-in for ``torch.<dtype>``: just its NumPy-style name."""


class _Sealed:
    """Objects of ours that a pickle's BUILD opcode must not modify."""

    def __setstate__(self, state: Any) -> None:
        raise WeightError(f"pickle tries to set the state of a {type(self).__name__}")


class StorageType(_Sealed):
    """Stand-in for ``torch.FloatStorage`` etc."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class StorageRef(_Sealed):
    """A storage named by a persistent id: ``key`` in the archive, element dtype, element count."""

    def __init__(self, key: str, dtype: str, numel: int, location: str = "cpu", view: Optional[tuple] = None):
        self.key, self.dtype, self.numel, self.location, self.view = key, dtype, numel, location, view


class TensorRef(_Sealed):
    """A tensor read from a pickle: storage + offset/size/stride (elements), never materialized here."""

    def __init__(self, storage: StorageRef, offset: int, size: tuple, stride: tuple, dtype: Optional[str] = None):
        if not isinstance(storage, StorageRef):
            raise WeightError(f"tensor rebuilt from a {type(storage).__name__}, not a storage")
        self.storage, self.offset = storage, int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)
        self.dtype = dtype or storage.dtype
        if len(self.size) != len(self.stride) or len(self.size) > 32 or any(s < 0 for s in self.size) \
                or self.offset < 0 or any(s < 0 for s in self.stride):
            raise WeightError(f"tensor has invalid size {self.size} / stride {self.stride}")
        if any(s == 0 for s in self.size):
            extent = 0
        else:
            extent = self.offset + sum((n - 1) * st for n, st in zip(self.size, self.stride)) + 1
        if extent > storage.numel and storage.dtype == self.dtype:
            raise WeightError(f"tensor of size {self.size} (offset {self.offset}) exceeds its storage of "
                              f"{storage.numel} elements")


class NumpyArrayStub:
    """Built by ``numpy.core.multiarray._reconstruct``; BUILD turns its state into an array (no pickle)."""

    def __init__(self) -> None:
        self.array: Optional[np.ndarray] = None

    def __setstate__(self, state: Any) -> None:
        try:
            _ver, shape, dtype, fortran, raw = state
        except (TypeError, ValueError):
            raise WeightError("malformed pickled NumPy array") from None
        if isinstance(dtype, _DTypeBuilder):
            dtype = dtype.dt
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(dtype, np.dtype) or not isinstance(raw, (bytes, bytearray)) \
                or not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise WeightError("pickled NumPy array with an object dtype: refused (it would need pickle)")
        n = int(np.prod(shape, dtype=np.int64))
        if n * dtype.itemsize != len(raw):
            raise WeightError("pickled NumPy array: data size does not match its shape")
        self.array = np.frombuffer(bytes(raw), dtype).reshape(shape, order="F" if fortran else "C")


def _np_reconstruct(cls: Any, shape: Any, dtype: Any) -> NumpyArrayStub:
    return NumpyArrayStub()


_SAFE_NP_KINDS = set("biufcSUmM")


def _np_dtype(spec: Any, align: Any = False, copy: Any = False) -> Any:
    if not isinstance(spec, str):
        raise WeightError(f"pickled NumPy dtype {spec!r} refused")
    dt = np.dtype(spec)
    if dt.kind not in _SAFE_NP_KINDS:
        raise WeightError(f"pickled NumPy dtype {spec!r} refused")
    return _DTypeBuilder(dt)


class _DTypeBuilder:
    """``numpy.dtype(...)`` followed by BUILD (byte order state)."""

    def __init__(self, dt: np.dtype):
        self.dt = dt

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.dt = self.dt.newbyteorder(state[1])


def _np_scalar(dtype: Any, raw: Any = None) -> Any:
    dt = dtype.dt if isinstance(dtype, _DTypeBuilder) else None
    if dt is None or not isinstance(raw, (bytes, bytearray)) or len(raw) != dt.itemsize:
        raise WeightError("malformed pickled NumPy scalar")
    return np.frombuffer(bytes(raw), dt)[0]


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> TensorRef:
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       hooks: Any = None, dtype: Any = None, *rest: Any) -> TensorRef:
    return TensorRef(storage, offset, size, stride, str(dtype) if dtype is not None else None)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func not in _SAFE_FUNCS:
        raise WeightError("tensor subclass rebuilt through a function that is not allow-listed")
    return func(*args)


def _rebuild_from_numpy(data: Any, dtype: Any = None, *rest: Any) -> Any:
    if isinstance(data, NumpyArrayStub):
        return data.array
    return data


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    if isinstance(cls, type) and issubclass(cls, Inert):
        return cls.__new__(cls)
    if cls is _ODict:
        return _ODict()
    raise WeightError("copyreg._reconstructor of a class that is not allow-listed")


class _ODict(OrderedDict):
    """Stand-in for ``collections.OrderedDict`` (accepts BUILD state as attributes, like the real one)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update({k: v for k, v in state.items() if isinstance(k, str)})


_SAFE_FUNCS = {_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter, _rebuild_from_numpy}


def _safe_set(*a: Any) -> set:
    return set(*a)


def _safe_frozenset(*a: Any) -> frozenset:
    return frozenset(*a)


def _safe_slice(*a: Any) -> slice:
    return slice(*a)


def _safe_complex(*a: Any) -> complex:
    return complex(*[x for x in a if isinstance(x, (int, float, str))])


def _safe_bytearray(*a: Any) -> bytearray:
    if a and isinstance(a[0], int) and a[0] > 1 << 30:
        raise WeightError("bytearray too large")
    return bytearray(*a)


def _codecs_encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    """How protocol-2 pickles store bytes: ``_codecs.encode(text, 'latin1')``."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf8", "utf-8", "ascii"):
        raise WeightError("_codecs.encode with unexpected arguments")
    return obj.encode(encoding)


def _torch_size(*a: Any) -> tuple:
    return tuple(*a)


def _torch_device(*a: Any) -> str:
    return ":".join(str(x) for x in a)


def _get_layout(name: Any) -> str:
    return str(name)


def _allowed() -> dict[tuple[str, str], Any]:
    a: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): _ODict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._utils", "_rebuild_device_tensor_from_numpy"): _rebuild_from_numpy,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Size"): _torch_size,
        ("torch", "device"): _torch_device,
        ("torch.serialization", "_get_layout"): _get_layout,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "set"): _safe_set,
        ("builtins", "frozenset"): _safe_frozenset,
        ("builtins", "slice"): _safe_slice,
        ("builtins", "complex"): _safe_complex,
        ("builtins", "bytearray"): _safe_bytearray,
        ("builtins", "object"): object,
        ("_codecs", "encode"): _codecs_encode,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        a[(mod, "_reconstruct")] = _np_reconstruct
        a[(mod, "scalar")] = _np_scalar
    a[("numpy", "ndarray")] = NumpyArrayStub  # only ever passed to _np_reconstruct
    a[("numpy", "dtype")] = _np_dtype
    for n, dt in TORCH_DTYPES.items():
        a[("torch", n)] = TorchDType(dt)
    for n in STORAGE_DTYPES:
        a[("torch", n)] = StorageType(n)
        a[("torch.storage", n)] = StorageType(n)
    return a


ALLOWED = _allowed()

# modules whose globals only serve to run code: refused in every mode (checked on the root package)
DENIED_MODULES = {
    "os", "posix", "nt", "subprocess", "sys", "builtins", "shutil", "importlib", "runpy", "socket", "code",
    "codeop", "ctypes", "pty", "webbrowser", "pickle", "_pickle", "marshal", "types", "operator", "functools",
    "io", "_io", "tempfile", "multiprocessing", "asyncio", "threading", "_thread", "signal", "timeit", "pdb",
    "bdb", "pydoc", "urllib", "http", "requests", "smtplib", "ftplib", "telnetlib", "glob", "inspect", "gc",
    "commands", "popen2", "platform", "cProfile", "profile", "trace", "doctest", "ensurepip", "pip", "venv",
    "zipimport", "site", "sysconfig", "distutils", "setuptools", "shelve", "dbm", "sqlite3", "xmlrpc",
    "ssl", "select", "selectors", "mmap", "fcntl", "resource", "posixpath", "ntpath", "pathlib", "fileinput",
    "linecache", "tarfile", "zipfile", "logging", "atexit", "weakref", "copy", "dill", "cloudpickle", "joblib",
}
DENIED_NAMES = {
    ("torch", "load"), ("torch.serialization", "load"), ("torch.hub", "load"), ("torch.jit", "load"),
    ("torch", "save"), ("numpy", "load"), ("numpy", "save"), ("numpy", "fromfile"), ("numpy", "loadtxt"),
    ("numpy.lib.npyio", "load"), ("torch._ops", "ops"), ("torch.ops", "load_library"),
}
_RENAMES = {"__builtin__": "builtins", "copy_reg": "copyreg", "__main__.builtins": "builtins"}


def is_denied(module: str, name: str) -> bool:
    root = module.split(".")[0]
    if (module, name) in ALLOWED:
        return False
    if root in DENIED_MODULES or (module, name) in DENIED_NAMES:
        return True
    if name in ("eval", "exec", "system", "popen", "compile", "__import__", "getattr", "setattr", "open",
                "execfile", "apply", "globals", "locals", "__reduce__", "__reduce_ex__", "spawn", "fork"):
        return True
    if root == "torch" and module.split(".")[1:2] in (["hub"], ["jit"], ["ops"], ["_ops"], ["utils"]) \
            and not name[:1].isupper():
        return True
    return False


class Inert:
    """Base of placeholder classes for non-allow-listed globals in the inert modes: records, never runs."""

    _pickle_module = ""
    _pickle_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "Inert":
        obj = object.__new__(cls)
        object.__setattr__(obj, "_args", args)
        object.__setattr__(obj, "_state", None)
        object.__setattr__(obj, "_items", [])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "_state", state)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._items.append((key, value))

    def append(self, value: Any) -> None:
        self._items.append((len(self._items), value))

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)

    def __repr__(self) -> str:
        return f"<inert {self._pickle_module}.{self._pickle_name}>"


class RefusedGlobal(WeightError):
    """The pickle names a global that is not allowed (``module``/``name`` say which)."""

    def __init__(self, msg: str, module: str, name: str, dangerous: bool):
        super().__init__(msg)
        self.module, self.name, self.dangerous = module, name, dangerous


class SafeUnpickler(pickle._Unpickler):  # the pure-Python unpickler: every global goes through find_class
    """Unpickler with an allow-list. ``mode``: 'strict' (refuse unknown globals), 'inert' (placeholders)."""

    def __init__(self, file: Any, path: str, mode: str = "inert",
                 persistent_load: Optional[Callable[[Any], Any]] = None):
        super().__init__(file, encoding="latin1")
        self.path = path
        self.mode = mode
        self._pload = persistent_load
        self.stubs: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = _RENAMES.get(module, module)
        key = (module, name)
        if key in ALLOWED:
            return ALLOWED[key]
        if is_denied(module, name):
            raise RefusedGlobal(
                f"{self.path}: refused: the pickle asks for '{module}.{name}', which would run code "
                "(pickled code is never imported or executed; this file may be malicious)", module, name, True)
        if self.mode == "strict":
            raise RefusedGlobal(
                f"{self.path}: refused: the pickle asks for '{module}.{name}', which is not on the allow list "
                "(only tensors, storages and plain containers are). If the file pickles whole modules "
                "(e.g. YOLOv5 checkpoints), open it with pickle_mode='inert' to extract the tensors without "
                "importing or running anything", module, name, False)
        if key not in self.stubs:
            self.stubs[key] = type(str(name)[:200] or "Inert", (Inert,),
                                   {"_pickle_module": module, "_pickle_name": name, "__module__": "netdsl.inert"})
        return self.stubs[key]

    def persistent_load(self, pid: Any) -> Any:
        if self._pload is None:
            raise WeightError(f"{self.path}: unexpected persistent id in pickle")
        return self._pload(pid)


def safe_load(data: Any, path: str, mode: str = "inert",
              persistent_load: Optional[Callable[[Any], Any]] = None) -> tuple[Any, SafeUnpickler]:
    """Unpickle ``data`` (bytes or a binary file) with :class:`SafeUnpickler`; returns (object, unpickler)."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    up = SafeUnpickler(f, path, mode, persistent_load)
    try:
        obj = up.load()
    except WeightError as e:
        if path in str(e):
            raise
        raise WeightError(f"{path}: {e}") from None
    except RecursionError:
        raise WeightError(f"{path}: pickle nests too deeply") from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            OverflowError, MemoryError, UnicodeError, ImportError, struct_error()) as e:
        raise WeightError(f"{path}: corrupt or truncated pickle ({type(e).__name__}: {e})") from e
    return obj, up


def struct_error() -> type:
    import struct
    return struct.error
