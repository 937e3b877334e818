"""A pickle reader that never imports or runs anything from the file, within a memory budget.

Globals resolve through :mod:`netdsl.weights.pickle_globals` only:

* ``mode="auto"`` (the default; ``"strict"`` is the same): the allow-list of data (torch tensors,
  storages and dtypes, NumPy arrays and scalars, plain containers, ``argparse.Namespace``...). Any
  other global is refused, naming it.
* ``mode="inert"`` (explicit, for whole pickled modules such as YOLOv5 checkpoints): other globals
  become placeholder classes that record their arguments and state and never run.
* Globals that can only serve to run code (``os.system``, ``builtins.exec``, ``subprocess``...) are
  refused in every mode, so a malicious file is reported as such.

Besides the globals, the opcodes are policed: BUILD may only set the state of the stand-ins made to
receive it (OrderedDict, NumPy arrays and dtypes, placeholders), never of netdsl's shared objects;
NEWOBJ only creates those classes; dict keys and set items must be plain values of bounded size
(hashing a nested tuple of shared tuples would never finish); every opcode that calls something
charges the memory budget with what the call may copy, before calling; no opcode reads past the
end of the pickle or allocates for bytes the pickle does not hold.
"""
from __future__ import annotations

import io
import pickle
import struct
from typing import Any, Callable, Optional, Union

from ..errors import WeightError
from .base import describe
from .budget import Budget
from .pickle_globals import (ALLOWED, BUILD_TYPES, NEWOBJ_CLASSES, RENAMES, UNSUPPORTED_TENSORS, Inert,  # noqa: F401
                             KeyLedger, NumpyArrayStub, ODict, StorageRef, StorageType, TensorRef, TorchDType,
                             check_key, is_denied, key_ledger, placeholder)

class RefusedGlobal(WeightError):
    """The pickle names a global that is not allowed (``module``/``name`` say which)."""

    def __init__(self, msg: str, module: str, name: str, dangerous: bool):
        super().__init__(msg)
        self.module, self.name, self.dangerous = module, name, dangerous


def _cost(x: Any, depth: int = 0) -> int:
    """Upper bound of the bytes a call may allocate by copying ``x`` (one level into containers)."""
    if isinstance(x, (bytes, bytearray)):
        return 64 + len(x)
    if isinstance(x, str):
        return 64 + 4 * len(x)
    if isinstance(x, (tuple, list, set, frozenset)):
        return 64 + 64 * len(x) + (sum(_cost(v, 1) for v in x) if depth == 0 else 0)
    if isinstance(x, dict):
        return 64 + 128 * len(x) + (sum(_cost(v, 1) for v in x.values()) if depth == 0 else 0)
    return 64


def _shown(module: str, name: str) -> str:
    """``'module.name'`` for a message, quoted like repr() (a newline or an escape sequence in a name read
    from the file must not reach the terminal as it is)."""
    return repr(f"{module}.{name}"[:300])


class _BoundedReader:
    """The pickle's bytes as a file that refuses reads past their end (so no opcode allocates for
    bytes the pickle does not have)."""

    def __init__(self, f: Any, left: int):
        self._f, self.left = f, left

    def read(self, n: int) -> bytes:
        if n > self.left:
            raise pickle.UnpicklingError(f"truncated: an opcode needs {n} bytes, the pickle has {self.left} left")
        data = self._f.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self._f.readline()
        self.left -= len(line)
        return line


def _charged(load: Callable[[Any], None], nbytes: int) -> Callable[[Any], None]:
    """``load`` (an opcode's method) charging ``nbytes`` to the unpickler's budget first (64 kB at a time)."""
    def run(self: "SafeUnpickler") -> None:
        self._small += nbytes
        if self._small >= 65536:
            self.budget.charge(self._small, "the objects the pickle builds", self.path)
            self._small = 0
        load(self)
    return run


class SafeUnpickler(pickle._Unpickler):  # the pure-Python unpickler: every global goes through find_class
    """Unpickler with an allow-list, policed opcodes and a memory budget (see the module docstring)."""

    def __init__(self, file: Any, path: str, mode: str = "auto",
                 persistent_load: Optional[Callable[[Any], Any]] = None, budget: Optional[Budget] = None):
        if mode not in ("auto", "strict", "inert"):
            raise WeightError(f"pickle mode must be auto, strict or inert, not {mode!r}")
        pos = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(pos)
        self._size = end - pos
        self._reader = _BoundedReader(file, self._size)
        super().__init__(self._reader, encoding="latin1")
        self.path = path
        self.mode = mode
        self._pload = persistent_load
        self.budget = budget if budget is not None else Budget()
        if budget is None:
            self.budget.add_input(end - pos)
        self._small = 0  # bytes of small objects made since the last charge (see _charged)
        self.stubs: dict[tuple[str, str], type] = {}
        self.keys = KeyLedger()

    def load(self) -> Any:
        with key_ledger(self.keys):  # every dict key / set item this pickle makes is counted by hash
            return super().load()

    # ---- globals ---------------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        module = RENAMES.get(module, module)
        key = (module, name)
        if key in ALLOWED:
            return ALLOWED[key]
        if key in UNSUPPORTED_TENSORS:  # data, but no dense tensor netdsl can read: refused in every mode (the
            # inert mode would make a placeholder of it, and the tensor would go missing without a word)
            what, instead = UNSUPPORTED_TENSORS[key]
            raise RefusedGlobal(f"{self.path}: the checkpoint holds {what} ({_shown(module, name)}), which netdsl does "
                                f"not read{instead}", module, name, False)
        if module == "torch.return_types":  # a named tuple of a torch op's results whose fields netdsl does not know
            raise RefusedGlobal(f"{self.path}: the checkpoint holds a torch.return_types named tuple "
                                f"({_shown(module, name)}) netdsl does not know: save tuple(result) or a dict of its "
                                "tensors instead", module, name, False)
        if is_denied(module, name):
            raise RefusedGlobal(
                f"{self.path}: refused: the pickle asks for {_shown(module, name)}, which would run code "
                "(pickled code is never imported or executed; this file may be malicious)", module, name, True)
        if self.mode != "inert":
            raise RefusedGlobal(
                f"{self.path}: refused: the pickle asks for {_shown(module, name)}, which is not on the allow "
                "list of data (tensors, storages, NumPy arrays, plain containers). If the file pickles whole modules "
                "(e.g. YOLOv5 checkpoints) and you trust it to hold weights, open it with pickle_mode='inert' "
                "(--pickle-mode inert): classes become placeholders that are never imported or run",
                module, name, False)
        if key not in self.stubs:
            self._charge(4096, f"placeholder class for '{module}.{name}'")
            self.stubs[key] = placeholder(module, name)
        return self.stubs[key]

    def persistent_load(self, pid: Any) -> Any:
        if self._pload is None:
            raise WeightError(f"{self.path}: unexpected persistent id in pickle")
        return self._pload(pid)

    # ---- policed opcodes -------------------------------------------------------------------------
    def _charge(self, nbytes: int, what: Union[str, Callable[[], str]]) -> None:
        self.budget.charge(nbytes, what, self.path)

    def _charge_call(self, func: Any, args: Any, kwargs: Any = None) -> None:
        n = 256 + _cost(args) + (_cost(kwargs) if kwargs else 0)
        self._charge(n, lambda: f"the pickle's call of {describe(func)}")

    def load_reduce(self) -> None:
        self._charge_call(self.stack[-2], self.stack[-1])
        super().load_reduce()

    def _check_newobj(self, cls: Any) -> None:
        if not (cls is object or (isinstance(cls, type) and issubclass(cls, NEWOBJ_CLASSES))):
            raise WeightError(f"{self.path}: pickle creates an object of {describe(cls)} with NEWOBJ: refused")

    def load_newobj(self) -> None:
        self._check_newobj(self.stack[-2])
        self._charge_call(self.stack[-2], self.stack[-1])
        super().load_newobj()

    def load_newobj_ex(self) -> None:
        self._check_newobj(self.stack[-3])
        self._charge_call(self.stack[-3], self.stack[-2], self.stack[-1])
        super().load_newobj_ex()

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ
        self._charge_call(klass, args)
        super()._instantiate(klass, args)

    def load_build(self) -> None:
        inst = self.stack[-2]
        if not isinstance(inst, BUILD_TYPES):
            raise WeightError(f"{self.path}: pickle BUILD sets the state of {describe(inst)} "
                              f"({type(inst).__name__}): refused (only placeholders, OrderedDicts and NumPy "
                              "arrays take pickled state)")
        self._charge(_cost(self.stack[-1]), "pickled object state")
        super().load_build()

    def load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self._size:
            raise pickle.UnpicklingError(f"truncated: BYTEARRAY8 of {n} bytes, more than the pickle holds")
        self._charge(n, "a pickled bytearray")
        b = bytearray(n)
        self.readinto(b)
        self.append(b)

    def load_dict(self) -> None:
        items = self.pop_mark()
        self._check_keys(items[::2], "a pickled dict")
        self.append({items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)})

    def _check_keys(self, keys: list, what: str) -> None:
        for k in keys:  # hashing a key costs as much as checking it: charged per value, key by key
            self._charge(128 + 256 * check_key(k), what)

    def _check_target(self, target: Any, op: str) -> None:
        """SETITEM(S) fill dicts (and placeholders); on a list or bytearray, ``x[slice(0, 0)] = y`` would copy
        ``y`` in again for every few bytes of pickle."""
        if not isinstance(target, (dict, Inert)):
            raise WeightError(f"{self.path}: pickle {op} on a {type(target).__name__}: refused (only dicts take "
                              "items)")

    def load_setitem(self) -> None:
        self._check_target(self.stack[-3], "SETITEM")
        self._check_keys([self.stack[-2]], "a pickled dict item")
        super().load_setitem()

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        self._check_target(target, "SETITEMS")
        self._check_keys(items[::2], "pickled dict items")
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._check_keys(items, "pickled set items")
        target = self.stack[-1]
        if isinstance(target, set):
            target.update(items)
        else:
            for item in items:
                target.add(item)

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        self._check_keys(items, "a pickled frozenset")
        self.append(frozenset(items))

    def get_extension(self, code: int) -> None:  # EXT1/2/4
        # the pure-Python unpickler would consult (and fill) copyreg's process-wide extension cache
        raise pickle.UnpicklingError(f"extension code {code} (EXT opcodes name registered globals): refused")

    dispatch = dict(pickle._Unpickler.dispatch)
    for _op, _fn in ((pickle.REDUCE, load_reduce), (pickle.NEWOBJ, load_newobj), (pickle.NEWOBJ_EX, load_newobj_ex),
                     (pickle.BUILD, load_build), (pickle.BYTEARRAY8, load_bytearray8), (pickle.DICT, load_dict),
                     (pickle.SETITEM, load_setitem), (pickle.SETITEMS, load_setitems),
                     (pickle.ADDITEMS, load_additems), (pickle.FROZENSET, load_frozenset)):
        dispatch[_op[0]] = _fn
    # opcodes of one to five bytes that each keep a new object (an empty list, dict or set, a mark's list, a
    # memo entry, a small tuple): 20 MB of ']' made 1.4 GB of empty lists, uncharged
    for _op, _n in ((pickle.EMPTY_LIST, 64), (pickle.EMPTY_DICT, 72), (pickle.EMPTY_SET, 224), (pickle.MARK, 72),
                    (pickle.MEMOIZE, 104), (pickle.BINPUT, 104), (pickle.LONG_BINPUT, 104), (pickle.PUT, 104),
                    (pickle.TUPLE1, 56), (pickle.TUPLE2, 64), (pickle.TUPLE3, 72)):
        dispatch[_op[0]] = _charged(dispatch[_op[0]], _n)
    del _op, _fn, _n


def safe_load(data: Any, path: str, mode: str = "auto", persistent_load: Optional[Callable[[Any], Any]] = None,
              budget: Optional[Budget] = None) -> tuple[Any, SafeUnpickler]:
    """Unpickle ``data`` (bytes or a binary file) with :class:`SafeUnpickler`; returns (object, unpickler)."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    up = SafeUnpickler(f, path, mode, persistent_load, budget)
    try:
        obj = up.load()
    except WeightError as e:
        if path in str(e):
            raise
        raise WeightError(f"{path}: {e}") from None
    except RecursionError:
        raise WeightError(f"{path}: pickle nests too deeply") from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            OverflowError, MemoryError, UnicodeError, ImportError, struct.error) as e:
        raise WeightError(f"{path}: corrupt or truncated pickle ({type(e).__name__}: "
                          f"{describe(str(e))})") from e
    return obj, up
