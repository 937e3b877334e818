"""What a pickle may name: inert stand-ins for the allow-listed globals (torch tensors and storages, NumPy
arrays, plain containers), the globals refused in every mode, and the placeholders of the inert mode.

Nothing here imports torch or runs code from a file: each allow-listed global maps to a local
stand-in that records what the pickle says (a :class:`TensorRef` is a storage key, an offset, a size
and a stride). Stand-ins that copy their arguments say how much they allocate (``cost``), so the
unpickler can charge its memory budget before calling them.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np

from ..errors import WeightError

# ---- torch dtypes and storages -------------------------------------------------------------------
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
_ITEMSIZE = {"bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1}


def itemsize(dtype: str) -> int:
    """Bytes per element of a torch dtype name (bfloat16 and float8 included)."""
    return _ITEMSIZE.get(dtype) or np.dtype(dtype).itemsize


class TorchDType(str):
    """Stand-in for ``torch.<dtype>``: just its NumPy-style name."""

    __slots__ = ()


class StorageType:
    """Stand-in for ``torch.FloatStorage`` etc."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class StorageRef:
    """A storage named by a persistent id: ``key`` in the archive, element dtype, element count."""

    __slots__ = ("key", "dtype", "numel", "location", "view")

    def __init__(self, key: str, dtype: str, numel: int, location: str = "cpu", view: Optional[tuple] = None):
        self.key, self.dtype, self.numel, self.location, self.view = key, dtype, numel, location, view

    @property
    def nbytes(self) -> int:
        return self.numel * itemsize(self.dtype)


_MAX_KEY_NODES = 256
_HASH_MODULUS = (1 << 61) - 1  # ints this large can be chosen to collide in a dict (hash flooding)
MAX_SAME_HASH = 64  # distinct composite keys one pickle may give the same hash
_ATOMIC_KEYS = (str, bytes, int, float, bool, type(None))  # hashes a file cannot make collide in bulk


class KeyLedger:
    """The composite dict keys and set items (tuples, complex numbers, frozensets) one unpickler has seen,
    by hash: their hashes are simple functions of their parts, so a file can build thousands of distinct
    keys with one hash, and every insertion would then compare against all earlier ones (quadratic)."""

    def __init__(self) -> None:
        self.by_hash: dict[int, list] = {}

    def note(self, key: Any) -> None:
        if isinstance(key, _ATOMIC_KEYS):
            return
        same = self.by_hash.setdefault(hash(key), [])
        if key not in same:  # at most MAX_SAME_HASH comparisons of bounded keys
            if len(same) >= MAX_SAME_HASH:
                raise WeightError(f"pickle has more than {MAX_SAME_HASH} distinct dict keys or set items with one "
                                  "hash value: refused (built to collide, hash flooding)")
            same.append(key)


_ledger = threading.local()


@contextmanager
def key_ledger(ledger: KeyLedger) -> Iterator[None]:
    """Make :func:`check_key` record keys in ``ledger`` (one unpickler's) in this thread."""
    old = getattr(_ledger, "current", None)
    _ledger.current = ledger
    try:
        yield
    finally:
        _ledger.current = old


def check_key(key: Any) -> int:
    """Dict keys and set items must be plain values of bounded size (returns how many values the key is
    made of): hashing a tuple nested out of shared tuples never finishes, huge ints can be chosen to
    collide, and composite keys built to share one hash are counted (:class:`KeyLedger`)."""
    todo, n = [key], 0
    while todo:
        x = todo.pop()
        n += 1
        if n > _MAX_KEY_NODES:
            raise WeightError(f"pickle has a dict key or set item made of more than {_MAX_KEY_NODES} values: refused")
        if isinstance(x, tuple):
            todo.extend(x)
        elif isinstance(x, int) and not -_HASH_MODULUS < x < _HASH_MODULUS:
            raise WeightError(f"pickle has an integer dict key or set item of {x.bit_length()} bits: refused")
    ledger = getattr(_ledger, "current", None)
    if ledger is not None:
        ledger.note(key)
    return n


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class TensorRef:
    """A tensor read from a pickle: storage + offset/size/stride (elements), never materialized here.

    Refused unless every element it addresses lies inside its storage (in bytes, so a typed view of
    an untyped storage is checked too)."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype")

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any, dtype: Optional[str] = None):
        if not isinstance(storage, StorageRef):
            raise WeightError(f"tensor rebuilt from a {type(storage).__name__}, not a storage")
        if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) > 32 \
                or len(size) != len(stride) or not all(_is_int(x) for x in (offset, *size, *stride)):
            raise WeightError("tensor has a malformed size / stride / offset")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.dtype = dtype or storage.dtype
        if any(s < 0 for s in size) or offset < 0 or any(s < 0 for s in stride) \
                or any(x >= 1 << 63 for x in (offset, *size, *stride)):  # torch's are int64
            raise WeightError(f"tensor has invalid size {size} / stride {stride} / offset {offset}")
        extent = 0 if 0 in size else offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1
        if extent * itemsize(self.dtype) > storage.nbytes:
            raise WeightError(f"tensor of size {size}, stride {stride} (offset {offset}) addresses {extent} "
                              f"elements, more than its storage of {storage.nbytes} bytes holds")

    @property
    def numel(self) -> int:
        return math.prod(self.size) if self.size else 1

    @property
    def nbytes(self) -> int:
        return self.numel * itemsize(self.dtype)


class TypeToken:
    """A class a pickle names as a value, never calls: ``torch.Tensor`` / ``torch.nn.Parameter`` (the type
    of a rebuilt tensor), ``builtins.list`` (the factory of a defaultdict)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class NumpyArrayStub:
    """Built by ``numpy.core.multiarray._reconstruct``; BUILD turns its state into an array (no pickle)."""

    def __init__(self) -> None:
        self.array: Optional[np.ndarray] = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise WeightError("pickled NumPy array built twice")
        try:
            _ver, shape, dtype, fortran, raw = state
        except (TypeError, ValueError):
            raise WeightError("malformed pickled NumPy array") from None
        if isinstance(dtype, DTypeBuilder):
            dtype = dtype.dt
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(dtype, np.dtype) or not isinstance(raw, (bytes, bytearray)) \
                or not isinstance(shape, tuple) or len(shape) > 32 or not all(_is_int(d) and d >= 0 for d in shape):
            raise WeightError("pickled NumPy array with an object dtype or a malformed shape: refused")
        n = math.prod(shape) if shape else 1
        if n * dtype.itemsize != len(raw):
            raise WeightError("pickled NumPy array: data size does not match its shape")
        self.array = np.frombuffer(bytes(raw), dtype).reshape(shape, order="F" if fortran else "C")


_SAFE_NP_KINDS = set("biufcSUmM")


class DTypeBuilder:
    """``numpy.dtype(...)`` followed by BUILD (byte order state)."""

    def __init__(self, dt: np.dtype):
        self.dt = dt

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.dt = self.dt.newbyteorder(state[1])


class Inert:
    """Base of the placeholder classes of the inert mode (and of data records): records, never runs."""

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


class Namespace(Inert):
    """Stand-in for ``argparse.Namespace`` (training arguments saved beside the weights): a record."""

    _pickle_module, _pickle_name = "argparse", "Namespace"


class ODict(OrderedDict):
    """Stand-in for ``collections.OrderedDict``; BUILD state sets attributes (torch's ``_metadata``)."""

    def __init__(self, *a: Any) -> None:
        super().__init__()
        if len(a) > 1 or (a and not isinstance(a[0], (list, tuple))):
            raise WeightError("collections.OrderedDict with arguments other than a list of pairs")
        for pair in (a[0] if a else ()):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise WeightError("collections.OrderedDict with an item that is not a pair")
            check_key(pair[0])
            self[pair[0]] = pair[1]

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):  # never an attribute of the class: {'items': 1} would hide its items
            self.__dict__.update({k: v for k, v in state.items() if isinstance(k, str) and not hasattr(ODict, k)})


class PlainDict(dict):
    """Stand-in for ``collections.defaultdict`` / ``Counter``: the items, without the factory."""


# ---- stand-in functions -----------------------------------------------------------------------------
def _np_reconstruct(cls: Any, shape: Any, dtype: Any) -> NumpyArrayStub:
    return NumpyArrayStub()


def _np_dtype(spec: Any, align: Any = False, copy: Any = False) -> Any:
    if not isinstance(spec, str) or len(spec) > 64:
        raise WeightError(f"pickled NumPy dtype {str(spec)[:80]!r} refused")
    dt = np.dtype(spec)
    if dt.kind not in _SAFE_NP_KINDS or dt.fields or dt.subdtype:
        raise WeightError(f"pickled NumPy dtype {spec!r} refused")
    return DTypeBuilder(dt)


def _np_scalar(dtype: Any, raw: Any = None) -> Any:
    dt = dtype.dt if isinstance(dtype, DTypeBuilder) else None
    if isinstance(raw, str):
        raw = raw.encode("latin1")
    if dt is None or not isinstance(raw, (bytes, bytearray)) or len(raw) != dt.itemsize:
        raise WeightError("malformed pickled NumPy scalar")
    return np.frombuffer(bytes(raw), dt)[0]


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> TensorRef:
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       hooks: Any = None, dtype: Any = None, *rest: Any) -> TensorRef:
    if dtype is not None and not isinstance(dtype, TorchDType):
        raise WeightError("tensor rebuilt with a dtype that is not a torch dtype")
    return TensorRef(storage, offset, size, stride, str(dtype) if dtype is not None else None)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func not in SAFE_FUNCS or not isinstance(args, tuple):
        raise WeightError("tensor subclass rebuilt through a function that is not allow-listed")
    return func(*args)


def _rebuild_from_numpy(data: Any, dtype: Any = None, *rest: Any) -> Any:
    if isinstance(data, NumpyArrayStub):
        return data.array
    return data


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    if isinstance(cls, type) and issubclass(cls, Inert):
        return cls.__new__(cls)
    if cls is ODict:
        return ODict()
    raise WeightError("copyreg._reconstructor of a class that is not allow-listed")


SAFE_FUNCS = {_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter, _rebuild_from_numpy}


def _items(a: tuple, what: str) -> tuple:
    if len(a) > 1 or (a and not isinstance(a[0], (list, tuple, set, frozenset))):
        raise WeightError(f"builtins.{what} of something other than a list")
    items = tuple(a[0]) if a else ()
    for x in items:
        check_key(x)
    return items


def _safe_set(*a: Any) -> set:
    return set(_items(a, "set"))


def _safe_frozenset(*a: Any) -> frozenset:
    return frozenset(_items(a, "frozenset"))


def _safe_slice(*a: Any) -> slice:
    return slice(*a)


def _safe_complex(*a: Any) -> complex:
    if not all(isinstance(x, (int, float)) for x in a) or len(a) > 2:
        raise WeightError("builtins.complex with arguments that are not numbers")
    return complex(*a)


_TEXT_CODECS = ("latin1", "latin-1", "utf8", "utf-8", "ascii")  # at most 4 bytes per character (the charged cost)


def _safe_bytearray(*a: Any) -> bytearray:
    """``bytearray(bytes)`` (protocols 3+) or ``bytearray(text, 'latin-1')`` (protocol 2); other codecs could
    expand text far beyond what the call was charged, or run for long (punycode)."""
    if not a:
        return bytearray()
    if isinstance(a[0], (bytes, bytearray)) and len(a) == 1:
        return bytearray(a[0])
    if isinstance(a[0], str) and len(a) in (2, 3) and a[1] in _TEXT_CODECS and a[2:] in ((), ("strict",)):
        return bytearray(a[0], a[1])
    raise WeightError("builtins.bytearray of something other than bytes, or text in latin-1/utf-8/ascii: refused")


def _codecs_encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    """How protocol-2 pickles store bytes: ``_codecs.encode(text, 'latin1')``."""
    if not isinstance(obj, str) or encoding not in _TEXT_CODECS:
        raise WeightError("_codecs.encode with unexpected arguments")
    return obj.encode(encoding)


def _torch_size(*a: Any) -> tuple:
    if len(a) != 1 or not isinstance(a[0], (tuple, list)) or len(a[0]) > 32:
        raise WeightError("torch.Size of something other than a short list of ints")
    return tuple(a[0])


def _torch_device(*a: Any) -> str:
    return ":".join(str(x) for x in a if isinstance(x, (str, int)))


def _get_layout(name: Any) -> str:
    if not isinstance(name, str):  # str() of a nested structure of shared lists never finishes
        raise WeightError(f"torch.serialization._get_layout of a {type(name).__name__}, not a name: refused")
    return name[:64]


def _torch_version(v: Any = "") -> str:
    return str(v)[:64] if isinstance(v, str) else ""


def _path(*parts: Any) -> str:
    """``pathlib.PosixPath(...)`` saved in hyper-parameters: the text of the path (never opened)."""
    return "/".join(p for p in parts if isinstance(p, str))


def _plain_dict(*a: Any) -> PlainDict:
    """``defaultdict(factory)`` / ``Counter(...)``: an empty dict; SETITEMS fill it."""
    return PlainDict()


# torch.return_types named tuples (``torch.max(x, 0)`` saved): their fields by type, read as a dict of them
_RETURN_TYPES = {
    ("values", "indices"): "cummax cummin kthvalue max median min mode nanmedian sort topk",
    ("min", "max"): "aminmax", ("mantissa", "exponent"): "frexp", ("a", "tau"): "geqrf",
    ("hist", "bin_edges"): "histogram histogramdd", ("L", "info"): "linalg_cholesky_ex",
    ("eigenvalues", "eigenvectors"): "linalg_eig linalg_eigh", ("inverse", "info"): "linalg_inv_ex",
    ("LD", "pivots"): "linalg_ldl_factor", ("LD", "pivots", "info"): "linalg_ldl_factor_ex",
    ("solution", "residuals", "rank", "singular_values"): "linalg_lstsq", ("P", "L", "U"): "linalg_lu lu_unpack",
    ("LU", "pivots"): "linalg_lu_factor", ("LU", "pivots", "info"): "linalg_lu_factor_ex",
    ("Q", "R"): "linalg_qr qr", ("sign", "logabsdet"): "linalg_slogdet slogdet", ("result", "info"): "linalg_solve_ex",
    ("U", "S", "Vh"): "linalg_svd", ("U", "S", "V"): "svd", ("solution", "cloned_coefficient"): "triangular_solve",
}


def _return_type(name: str, names: tuple) -> Any:
    """``torch.return_types.<name>``: pickled as ``(type, ((field values...), {}))``; made a dict of its fields."""
    def make(*a: Any) -> dict:
        if len(a) not in (1, 2) or not isinstance(a[0], (tuple, list)) or len(a[0]) != len(names):
            raise WeightError(f"torch.return_types.{name} of something other than its {len(names)} fields")
        return dict(zip(names, a[0]))
    return make


def _allowed() -> dict[tuple[str, str], Any]:
    a: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): ODict,
        ("collections", "defaultdict"): _plain_dict,
        ("collections", "Counter"): _plain_dict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._utils", "_rebuild_device_tensor_from_numpy"): _rebuild_from_numpy,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): TypeToken("Tensor"),
        ("torch.nn.parameter", "Parameter"): TypeToken("Parameter"),
        ("torch.nn.parameter", "Buffer"): TypeToken("Buffer"),
        ("torch", "Size"): _torch_size,
        ("torch", "device"): _torch_device,
        ("torch.serialization", "_get_layout"): _get_layout,
        ("torch.torch_version", "TorchVersion"): _torch_version,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("argparse", "Namespace"): Namespace,
        ("pathlib", "PosixPath"): _path,
        ("pathlib", "WindowsPath"): _path,
        ("pathlib", "PurePosixPath"): _path,
        ("pathlib", "PureWindowsPath"): _path,
        ("builtins", "set"): _safe_set,
        ("builtins", "frozenset"): _safe_frozenset,
        ("builtins", "slice"): _safe_slice,
        ("builtins", "complex"): _safe_complex,
        ("builtins", "bytearray"): _safe_bytearray,
        ("builtins", "object"): object,
        ("_codecs", "encode"): _codecs_encode,
    }
    for n in ("list", "dict", "tuple", "int", "float", "str", "bool", "bytes"):
        a[("builtins", n)] = TypeToken(n)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        a[(mod, "_reconstruct")] = _np_reconstruct
        a[(mod, "scalar")] = _np_scalar
    for names, types in _RETURN_TYPES.items():
        for t in types.split():
            for n in (t, t + "_out"):
                a[("torch.return_types", n)] = _return_type(n, names)
    a[("numpy", "ndarray")] = NumpyArrayStub  # only ever passed to _np_reconstruct
    a[("numpy", "dtype")] = _np_dtype
    for n, dt in TORCH_DTYPES.items():
        a[("torch", n)] = TorchDType(dt)
    for n in STORAGE_DTYPES:
        a[("torch", n)] = StorageType(n)
        a[("torch.storage", n)] = StorageType(n)
    return a


ALLOWED = _allowed()
# torch tensors that are data but not a dense storage netdsl can map: (what it is, what to do instead)
_DENSE = ": save tensor.to_dense() instead"
UNSUPPORTED_TENSORS = {
    ("torch._utils", "_rebuild_sparse_tensor"): ("a sparse tensor", _DENSE),
    ("torch._utils", "_rebuild_sparse_csr_tensor"): ("a sparse tensor", _DENSE),
    ("torch._utils", "_rebuild_qtensor"): ("a quantized tensor", ": save tensor.dequantize() (netdsl quantizes)"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): ("a tensor on the meta device", ": it holds no data"),
    ("torch._utils", "_rebuild_nested_tensor"): ("a nested tensor", ": save its tensors one by one"),
    ("torch._utils", "_rebuild_wrapper_subclass"): ("a tensor subclass without a storage of its own",
                                                    " (a DTensor? save its full_tensor())"),
}
# classes a pickle may create with NEWOBJ and objects whose state BUILD may set (everything else is refused)
NEWOBJ_CLASSES = (ODict, NumpyArrayStub, Inert)
BUILD_TYPES = (ODict, NumpyArrayStub, DTypeBuilder, Inert)

# modules whose globals only serve to run code: refused in every mode (checked on the root package)
DENIED_MODULES = {
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "_winapi", "msvcrt", "sys", "builtins", "shutil",
    "importlib", "_imp", "_frozen_importlib", "_frozen_importlib_external", "runpy", "socket", "_socket", "code",
    "codeop", "ctypes", "_ctypes", "pty", "webbrowser", "pickle", "_pickle", "copyreg", "marshal", "types",
    "operator", "_operator", "functools", "_functools", "io", "_io", "tempfile", "multiprocessing",
    "_multiprocessing", "asyncio", "threading", "_thread", "signal", "_signal", "timeit", "pdb", "bdb", "pydoc",
    "urllib", "http", "requests", "smtplib", "ftplib", "telnetlib", "glob", "inspect", "gc", "commands", "popen2",
    "platform", "cProfile", "profile", "trace", "doctest", "ensurepip", "pip", "venv", "zipimport", "site",
    "sysconfig", "distutils", "setuptools", "shelve", "dbm", "sqlite3", "_sqlite3", "xmlrpc", "ssl", "_ssl",
    "select", "selectors", "mmap", "fcntl", "resource", "posixpath", "ntpath", "pathlib", "fileinput",
    "linecache", "tarfile", "zipfile", "logging", "atexit", "weakref", "copy", "dill", "cloudpickle", "joblib",
    "numexpr", "sympy", "IPython", "jinja2", "yaml", "subprocess32", "sh", "plumbum", "fabric", "paramiko",
    "pexpect", "_osx_support", "_aix_support", "unittest", "zipapp",
}
DENIED_NAMES = {
    ("torch", "load"), ("torch.serialization", "load"), ("torch.hub", "load"), ("torch.jit", "load"),
    ("torch", "save"), ("numpy", "load"), ("numpy", "save"), ("numpy", "fromfile"), ("numpy", "loadtxt"),
    ("numpy", "memmap"), ("numpy.lib.npyio", "load"), ("torch._ops", "ops"), ("torch.ops", "load_library"),
    ("torch.storage", "_load_from_bytes"), ("torch", "_load_from_bytes"),
}
# torch sub-packages whose functions load, compile or run code (their classes may still be placeholders)
_TORCH_CODE = {"hub", "jit", "ops", "_ops", "utils", "fx", "package", "_C", "storage", "serialization",
               "compiler", "_dynamo", "export", "library", "_inductor", "distributed", "multiprocessing",
               "cuda", "backends", "_classes", "classes", "_higher_order_ops", "onnx", "_export"}
_CODE_NAMES = {"eval", "exec", "system", "popen", "compile", "__import__", "getattr", "setattr", "delattr",
               "open", "execfile", "apply", "globals", "locals", "vars", "__reduce__", "__reduce_ex__", "spawn",
               "fork", "fork_exec", "load", "loads", "run", "call", "check_call", "check_output", "Popen",
               "attrgetter", "methodcaller", "import_module", "__getattribute__", "__setattr__", "__builtins__"}
RENAMES = {"__builtin__": "builtins", "copy_reg": "copyreg", "__main__.builtins": "builtins"}


def is_denied(module: str, name: str) -> bool:
    """True when ``module.name`` can only serve to run code (refused even in the inert mode)."""
    if (module, name) in ALLOWED:
        return False
    parts = module.split(".")
    if parts[0] in DENIED_MODULES or (module, name) in DENIED_NAMES or name in _CODE_NAMES \
            or name.split(".")[-1] in _CODE_NAMES or name.startswith("__"):
        return True
    if parts[0] in ("torch", "numpy") and set(parts[1:]) & (_TORCH_CODE | {"lib", "testing", "f2py", "ctypeslib",
                                                                          "distutils"}) \
            and not name[:1].isupper():
        return True
    return False


def placeholder(module: str, name: str) -> type:
    """A fresh placeholder class standing for ``module.name`` in the inert mode."""
    return type(str(name)[:200] or "Inert", (Inert,), {"_pickle_module": module, "_pickle_name": name,
                                                        "__module__": "netdsl.inert"})
