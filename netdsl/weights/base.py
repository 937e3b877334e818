"""The checkpoint interface every reader implements, and format detection from file content.

A :class:`Checkpoint` is *opened*, not loaded: opening parses only the index (names, shapes,
dtypes, offsets); :meth:`Checkpoint.read` returns one tensor, memory-mapped where the format
stores it raw. Every error is a :class:`~netdsl.errors.WeightError` naming the file (and the
tensor where known); parsers bound every size and count by the file size so corrupt input
cannot make them allocate or loop without end, and every heap allocation a file can cause is
charged to the checkpoint's memory :class:`~netdsl.weights.budget.Budget` first.
"""
from __future__ import annotations

import functools
import hashlib
import math
import mmap
import os
import re
import reprlib
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..errors import WeightError
from .budget import Budget

# sanity limits for parsers (a real checkpoint is far below these)
MAX_TENSORS = 10_000_000
MAX_RANK = 32
MAX_HEADER = 512 * 1024 * 1024
INDEX_ENTRY = 600  # bytes of memory one tensor's index entry takes (measured: .wts, safetensors, ONNX)
MAX_NAME = 4096  # characters of a tensor name (real ones are a few hundred at most)
# what a parser may raise on malformed input; turned into WeightError naming the file (and tensor)
READ_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, OverflowError, MemoryError,
               RecursionError, UnicodeError, AttributeError, LookupError, ArithmeticError, zipfile.BadZipFile,
               zipfile.LargeZipFile, struct.error, NotImplementedError, RuntimeError, AssertionError, SyntaxError,
               zlib.error)

# control characters (C0, DEL, C1) and bidirectional overrides: in a name they would move the cursor, clear
# or recolour the terminal that lists it, fake lines of a listing, or show the name's text reordered
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def describe(obj: Any) -> str:
    """A short, bounded description of something read from a file, for error messages."""
    return _SHORT.repr(obj)


@dataclass(frozen=True)
class TensorInfo:
    """What a checkpoint says about one tensor (without reading it).

    ``dtype`` is the dtype :meth:`Checkpoint.read` returns (bfloat16/float8 are widened to
    float32); ``stored`` is the dtype as stored in the file when it differs ('bfloat16' ...).
    ``layer``/``index`` are set by layer-oriented formats (Keras, Caffe, Darknet).
    """

    name: str
    shape: tuple
    dtype: str
    stored: str = ""
    layer: str = ""
    index: int = -1
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def numel(self) -> int:
        return math.prod(self.shape) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.numel * np.dtype(self.dtype).itemsize

    @property
    def stored_dtype(self) -> str:
        return self.stored or self.dtype


class Checkpoint:
    """A checkpoint opened for reading. Subclasses fill ``self._infos`` in ``_open`` and implement ``_read``."""

    format: str = "?"

    def __init__(self, path: Any, **options: Any):
        self.path = os.fspath(path)
        self.options = options
        self.notes: list[str] = []  # things the reader wants the user to know (e.g. inert pickle mode)
        self._infos: dict[str, TensorInfo] = {}
        self._closed = False
        self.budget = Budget(options.get("memory_budget"))
        self._declared = 0  # bytes of all tensors as read, checked against the budget in add()
        if os.path.isfile(self.path):
            self.budget.add_input(os.path.getsize(self.path))
        try:
            self._open()
        except WeightError:
            self.close()
            raise
        except READ_ERRORS as e:
            self.close()
            raise WeightError(f"{self.path}: not a readable {self.format} file "
                              f"({type(e).__name__}: {e})") from e

    # ---- to implement ------------------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _read(self, info: TensorInfo) -> np.ndarray:
        raise NotImplementedError

    # ---- public --------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._infos)

    def infos(self) -> list[TensorInfo]:
        return list(self._infos.values())

    def info(self, name: str) -> TensorInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise WeightError(f"{self.path}: no tensor named {name!r} ({len(self._infos)} tensors in the "
                              f"{self.format} file)") from None

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` (memory-mapped and read-only where the format allows)."""
        info = self.info(name)
        if self._closed:
            raise WeightError(f"{self.path}: checkpoint is closed (reading {name!r})")
        try:
            arr = self._read(info)
        except WeightError:
            raise
        except READ_ERRORS as e:
            raise WeightError(f"{self.path}: tensor {name!r} could not be read: {type(e).__name__}: {e}") from e
        if tuple(arr.shape) != tuple(info.shape):
            raise WeightError(f"{self.path}: tensor {name!r} read with shape {tuple(arr.shape)}, "
                              f"index says {tuple(info.shape)}")
        return arr

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    #: True for readers that read tensor data from ``path`` alone (see :meth:`tensor_file`)
    single_file = False

    def tensor_file(self, name: str) -> Optional[str]:
        """The one file tensor ``name``'s data is read from, or None when the reader does not say
        (it may read other files too); caches identify such weights by content instead."""
        return self.path if self.single_file and os.path.isfile(self.path) else None

    def __len__(self) -> int:
        return len(self._infos)

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for n in self._infos:
            yield n, self.read(n)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.format} {self.path!r}: {len(self._infos)} tensors>"

    # ---- helpers for readers -----------------------------------------------------------------
    def error(self, msg: str, tensor: Optional[str] = None, file: Optional[str] = None) -> WeightError:
        """A WeightError naming the file (``file``: a shard of this checkpoint, else its path) once."""
        where = f"{file or self.path}" + (f", tensor {tensor!r}" if tensor else "")
        return WeightError(f"{where}: {msg}")

    def add(self, info: TensorInfo, heap: int = 0) -> None:
        """Index one tensor; ``heap`` = bytes of heap memory reading it will allocate (charged now)."""
        if len(info.name) > MAX_NAME:  # long names repeated per tensor would multiply a small file's bytes
            raise self.error(f"a tensor name is longer than {MAX_NAME} characters ({describe(info.name)})")
        if info.name in self._infos:
            raise self.error(f"tensor name {info.name!r} occurs twice")
        if len(self._infos) >= MAX_TENSORS:
            raise self.error(f"more than {MAX_TENSORS} tensors")
        if _CONTROL.search(info.name):
            raise self.error(f"tensor name {describe(info.name)} holds control characters: refused")
        if len(info.shape) > MAX_RANK or any((not isinstance(d, (int, np.integer))) or isinstance(d, bool) or d < 0
                                             for d in info.shape):
            raise self.error(f"invalid shape {describe(info.shape)}", info.name)
        if math.prod(d for d in info.shape if d) * np.dtype(info.dtype).itemsize > sys.maxsize:
            # even with no elements (a 0 in the shape) NumPy cannot make an array of this shape
            raise self.error(f"shape {describe(info.shape)} is too large for any array", info.name)
        self._declared += info.nbytes
        if self._declared > self.budget.input + self.budget.limit:
            raise self.error(f"the tensors declare {self._declared} bytes in total from {self.budget.input} bytes "
                             f"of input: more than the memory budget ({self.budget.limit} bytes) allows beyond the "
                             "input (views repeating their data? pass memory_budget=BYTES to allow more)", info.name)
        self.charge(heap, "reading it", info.name)
        # the index entry itself (name, TensorInfo, the reader's record): 'a1 0' lines of a .wts file are 5 bytes
        # each, their entries 600: a 10 MB file of them took 670 MB, uncharged
        self.charge(INDEX_ENTRY + 2 * len(info.name), "the index of its tensors")
        self._infos[info.name] = info

    def charge(self, nbytes: int, what: str, tensor: Optional[str] = None) -> None:
        """Charge ``nbytes`` of heap memory to this checkpoint's budget before allocating them."""
        if nbytes:
            self.budget.charge(nbytes, what, f"{self.path}" + (f", tensor {tensor!r}" if tensor else ""))

    @property
    def file_size(self) -> int:
        return os.path.getsize(self.path)


class MappedCheckpoint(Checkpoint):
    """A reader that parses the whole file, memory-mapped read-only (``self._buf``; b"" when empty)."""

    def map_file(self) -> Any:
        self._f = open(self.path, "rb")
        self._buf: Any = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ) if self.file_size else b""
        return self._buf

    def close(self) -> None:
        b = getattr(self, "_buf", None)
        if isinstance(b, mmap.mmap):
            b.close()
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()
        super().close()


class DictCheckpoint(Checkpoint):
    """In-memory tensors presented as a checkpoint (for tests and for ``load_weights(graph, dict)``)."""

    format = "dict"

    def __init__(self, tensors: dict, path: str = "<dict>"):
        self._arrays = {str(k): np.asarray(v) for k, v in tensors.items()}
        super().__init__(path)

    def _open(self) -> None:
        for k, a in self._arrays.items():
            self.add(TensorInfo(k, tuple(int(d) for d in a.shape), a.dtype.name))

    def _read(self, info: TensorInfo) -> np.ndarray:
        return self._arrays[info.name]


# ---- dtype helpers ---------------------------------------------------------------------------
def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16 / 2-byte void) -> float32."""
    u = np.ascontiguousarray(raw).view(np.uint16)
    return (u.astype(np.uint32) << 16).view(np.float32)


def _f8_table(exp_bits: int, man_bits: int, bias: int, fn: bool) -> np.ndarray:
    """float32 value of every byte of an 8-bit float (e4m3fn: no inf, 0x7f/0xff NaN; e5m2: IEEE-like)."""
    out = np.empty(256, np.float32)
    for b in range(256):
        s = -1.0 if b & 0x80 else 1.0
        e = (b >> man_bits) & ((1 << exp_bits) - 1)
        m = b & ((1 << man_bits) - 1)
        if fn and e == (1 << exp_bits) - 1 and m == (1 << man_bits) - 1:
            out[b] = np.nan
        elif not fn and e == (1 << exp_bits) - 1:
            out[b] = s * np.inf if m == 0 else np.nan
        elif e == 0:
            out[b] = s * m * 2.0 ** (1 - bias - man_bits)
        else:
            out[b] = s * (1 + m / (1 << man_bits)) * 2.0 ** (e - bias)
    return out


F8_E4M3FN = _f8_table(4, 3, 7, True)
F8_E5M2 = _f8_table(5, 2, 15, False)


def widen(raw: np.ndarray, stored: str) -> np.ndarray:
    """Convert raw storage of a dtype NumPy lacks (bfloat16, float8_*) to float32; others unchanged."""
    if stored == "bfloat16":
        return bf16_to_f32(raw)
    if stored == "float8_e4m3fn":
        return F8_E4M3FN[np.asarray(raw).view(np.uint8)]
    if stored == "float8_e5m2":
        return F8_E5M2[np.asarray(raw).view(np.uint8)]
    return raw


RAW_DTYPES = {"bfloat16": np.uint16, "float8_e4m3fn": np.uint8, "float8_e5m2": np.uint8}


def raw_dtype(stored: str) -> np.dtype:
    """The NumPy dtype holding the raw bits of ``stored`` (uint16 for bfloat16 ...)."""
    return np.dtype(RAW_DTYPES.get(stored, stored))


@functools.lru_cache(maxsize=None)
def read_dtype(stored: str) -> str:
    """The dtype that read() returns for a stored dtype."""
    return "float32" if stored in RAW_DTYPES else np.dtype(stored).name


@functools.lru_cache(maxsize=None)
def _mapped_dtype(stored: str, byteorder: str) -> np.dtype:
    dt = raw_dtype(stored)
    return dt.newbyteorder(byteorder) if dt.itemsize > 1 else dt


def mmap_array(path: str, offset: int, stored: str, shape: tuple, file_size: Optional[int] = None,
               order: str = "C", byteorder: str = "<") -> np.ndarray:
    """Memory-map ``shape`` elements of ``stored`` at ``offset`` (read-only), widened if needed."""
    dt = _mapped_dtype(stored, byteorder)
    n = math.prod(shape) if shape else 1
    size = file_size if file_size is not None else os.path.getsize(path)
    if offset < 0 or offset + n * dt.itemsize > size:
        raise WeightError(f"{path}: data at offset {offset} ({n * dt.itemsize} bytes) runs past the end of "
                          f"the file ({size} bytes): truncated?")
    if n == 0:
        arr = np.empty(shape, dt)
    else:
        # copy-on-write: writable, and what is written stays in this process (the file never changes);
        # an engine may then share the pages instead of copying them (see shares_file_pages)
        arr = np.memmap(path, dtype=dt, mode="c", offset=offset, shape=tuple(shape), order=order)
        arr = arr.view(np.ndarray)  # a plain view of the mapping (keeps the map alive)
    if byteorder != "<" and dt.itemsize > 1:
        arr = arr.astype(dt.newbyteorder("<"))
    return widen(arr, stored)


def shares_file_pages(arr: np.ndarray) -> bool:
    """Whether ``arr`` is a view of a private (copy-on-write) file mapping made by :func:`mmap_array`:
    memory no one else writes, which an engine can share instead of copying. Like OpenVINO sharing
    an IR's memory-mapped ``.bin``, the engine then reads the checkpoint file's pages for as long as
    it lives: replace a checkpoint by writing a new file and renaming it over the old one, not by
    rewriting it in place."""
    b: Any = arr
    while b is not None:
        if isinstance(b, np.memmap):
            return b.mode == "c"
        b = getattr(b, "base", None)
    return False


# ---- format registry and detection --------------------------------------------------------
@dataclass
class FormatSpec:
    """A checkpoint format: ``detect(path, head) -> score`` (0 = no, 1 = maybe, 2+ = sure) and its opener."""

    name: str
    detect: Callable[[str, bytes], int]
    opener: Callable[..., Checkpoint]
    extensions: tuple = ()


_FORMATS: dict[str, FormatSpec] = {}


def register_format(spec: FormatSpec) -> None:
    _FORMATS[spec.name] = spec


def formats() -> dict[str, FormatSpec]:
    _load_all()
    return dict(_FORMATS)


_READERS = ("safetensors", "npz", "pytorch", "hdf5", "onnx", "caffe", "darknet", "wts")


def _load_all() -> None:
    import importlib
    for m in _READERS:  # each reader module registers its format on import
        importlib.import_module(f"{__package__}.{m}")


def detect_format(path: str) -> str:
    """Name of the format of ``path``, decided by content (extension only breaks ties)."""
    _load_all()
    if not os.path.exists(path):
        raise WeightError(f"checkpoint not found: {path}")
    if not (os.path.isfile(path) or os.path.isdir(path)):  # a FIFO or device would block or never end
        raise WeightError(f"{path}: not a regular file or a directory")
    head = b""
    if os.path.isfile(path):
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError as e:
            raise WeightError(f"{path}: cannot read: {e}") from e
        if not head:
            raise WeightError(f"{path}: empty file, not a checkpoint")
    ext = os.path.splitext(path)[1].lower()
    best, best_score = None, 0
    for spec in _FORMATS.values():
        try:
            s = spec.detect(path, head)
        except (OSError, ValueError):
            s = 0
        if s and ext in spec.extensions:
            s += 0.5
        if s > best_score:
            best, best_score = spec.name, s
    if best is None:
        known = ", ".join(sorted(_FORMATS))
        raise WeightError(f"{path}: unrecognised checkpoint format (first bytes {head[:16]!r}); "
                          f"known formats: {known} (pass format=... to force one)")
    return best


def open_checkpoint(path: Any, format: Optional[str] = None, sha256: Optional[str] = None,  # noqa: A002
                    **options: Any) -> Checkpoint:
    """Open a checkpoint of any supported format (detected from its content unless ``format`` is given).

    ``sha256``: the file's expected SHA-256 (hex); the file is refused when it differs. Options go to
    the reader, e.g. ``cfg=`` for Darknet, ``pickle_mode=`` / ``key=`` for PyTorch, and to every reader
    ``memory_budget=`` (bytes of heap memory the file may make the reader allocate; see
    :mod:`netdsl.weights.budget`).
    """
    if isinstance(path, (Checkpoint, dict)):
        if sha256 is not None:
            raise WeightError("sha256= needs a checkpoint file, not an opened checkpoint or a dict")
        return path if isinstance(path, Checkpoint) else DictCheckpoint(path)
    path = os.fspath(path)
    if sha256 is not None:
        verify_sha256(path, sha256)
    _load_all()
    name = format or detect_format(path)
    name = {"pt": "pytorch", "torch": "pytorch", "h5": "hdf5", "keras": "hdf5", "st": "safetensors",
            "weights": "darknet", "caffemodel": "caffe"}.get(name, name)
    if name not in _FORMATS:
        raise WeightError(f"unknown checkpoint format {name!r}; known: {', '.join(sorted(_FORMATS))}")
    if not os.path.exists(path):
        raise WeightError(f"checkpoint not found: {path}")
    if not (os.path.isfile(path) or os.path.isdir(path)):
        raise WeightError(f"{path}: not a regular file or a directory")
    return _FORMATS[name].opener(path, **options)


def verify_sha256(path: str, expected: str) -> None:
    """Refuse ``path`` unless its SHA-256 is ``expected`` (hex digits, case ignored)."""
    want = str(expected).strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise WeightError(f"{path}: sha256 must be 64 hex digits, got {str(expected)[:80]!r}")
    if not os.path.isfile(path):
        raise WeightError(f"{path}: sha256= needs a single checkpoint file" + (
            " (this is a directory)" if os.path.isdir(path) else " (not found)"))
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise WeightError(f"{path}: cannot read: {e}") from e
    if h.hexdigest() != want:
        raise WeightError(f"{path}: SHA-256 is {h.hexdigest()}, expected {want}: not the file you meant "
                          "(corrupt, truncated or replaced)")


def zip_data_offset(f: Any, zi: zipfile.ZipInfo, file_size: int, where: str) -> Optional[int]:
    """Where a stored zip member's bytes start in the file (None for a deflated member, read through
    zipfile). Other compression methods are refused, as are members running past the end of the file."""
    if zi.compress_type == zipfile.ZIP_DEFLATED:
        return None
    if zi.compress_type != zipfile.ZIP_STORED:
        raise WeightError(f"{where}: zip member {zi.filename} uses compression method {zi.compress_type}; "
                          "only stored and deflated members are read")
    f.seek(zi.header_offset)
    lh = f.read(30)
    if len(lh) < 30 or lh[:4] != b"PK\x03\x04":
        raise WeightError(f"{where}: bad zip local header for {zi.filename}")
    nlen, xlen = struct.unpack("<HH", lh[26:30])
    off = zi.header_offset + 30 + nlen + xlen
    if off + zi.file_size > file_size or zi.compress_size != zi.file_size:
        raise WeightError(f"{where}: zip member {zi.filename} runs past the end of the file (truncated?)")
    return off


def read_zip_member(zf: zipfile.ZipFile, zi: zipfile.ZipInfo, file_size: int, where: str) -> bytes:
    """The bytes of a stored or deflated zip member, inflating no more than the size its entry declares
    (``ZipFile.read`` inflates up to 2 GiB per step, bzip2/lzma without any bound, before cutting the
    result to the declared size: a 1 MB member could make the reader allocate gigabytes)."""
    with open(zf.filename, "rb") as f:  # type: ignore[arg-type]
        zip_data_offset(f, zi, file_size, where)  # refuses other compression methods
    with zf.open(zi) as m:
        return m.read(zi.file_size)
