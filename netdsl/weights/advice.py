"""Binding advice in the caller's language, and the suggestions a failed binding makes.

Binding messages name the options that would fix a problem. In Python they read as keyword
arguments (``strip_prefix='model.'``); on the command line, as options (``--strip-prefix model.``).
The command line switches the style with :func:`command_line` around its binding calls.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

_STYLE: contextvars.ContextVar = contextvars.ContextVar("netdsl_binding_advice", default="python")

# load_weights argument -> command-line option (netdsl run/build/check/weights)
FLAGS = {"mapping": "--map", "prefix": "--prefix", "strip_prefix": "--strip-prefix", "add_prefix": "--add-prefix",
         "rename": "--rename", "ignore": "--ignore", "transforms": "--transform", "preset": "--preset",
         "format": "--format", "strict": "--no-strict", "keras_layers": "--keras-layer",
         "keras_order": "--keras-order", "keras_flatten": "--no-keras-flatten", "cfg": "--cfg",
         "pickle_mode": "--pickle-mode", "key": "--key"}


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Within this block, binding messages give command-line options instead of Python arguments."""
    token = _STYLE.set("cli")
    try:
        yield
    finally:
        _STYLE.reset(token)


def on_command_line() -> bool:
    return _STYLE.get() == "cli"


def flag(name: str) -> str:
    """The name of binding option ``name`` in the current style (``strip_prefix`` or ``--strip-prefix``)."""
    return FLAGS.get(name, name) if on_command_line() else name


def option(name: str, value: Any) -> str:
    """How to pass ``name=value`` in the current style."""
    if not on_command_line():
        return f"{name}={value!r}"
    f = FLAGS.get(name, "--" + name.replace("_", "-"))
    if isinstance(value, bool):
        return f
    if isinstance(value, dict):
        return " ".join(f"{f} {_q(f'{k}={v}')}" for k, v in value.items())
    if isinstance(value, (list, tuple)) and name == "rename":
        return " ".join(f"{f} {_q(f'{a}={b}')}" for a, b in value)
    if isinstance(value, (list, tuple)):
        return " ".join(f"{f} {_q(str(v))}" for v in value)
    return f"{f} {_q(str(value))}"


def _q(s: str) -> str:
    import shlex
    return shlex.quote(s)


# ---- suggestions ------------------------------------------------------------------------------------
def _best_prefix(longer: list, shorter: set) -> tuple:
    """The dotted prefix P (ending at '.' or '/') for which most names n in ``longer`` have n[len(P):] in
    ``shorter``: (P, how many), or ("", 0)."""
    counts: dict = {}
    for n in longer:
        for i, ch in enumerate(n):
            if ch in "./" and n[i + 1:] in shorter:
                counts[n[:i + 1]] = counts.get(n[:i + 1], 0) + 1
    if not counts:
        return "", 0
    best = max(counts, key=lambda k: (counts[k], len(k)))
    return best, counts[best]


def prefix_suggestions(unexpected: list, missing: list) -> list:
    """(option, value, why) when unmatched checkpoint names match missing parameters once a prefix is
    stripped (strip_prefix), or once one is added (add_prefix)."""
    p, k = _best_prefix(unexpected, set(missing))
    if k:
        every = "every unmatched checkpoint name starts" if all(n.startswith(p) for n in unexpected) else \
            f"{k} unmatched checkpoint name(s) start"
        return [("strip_prefix", p, f"{every} with {p!r} and match parameters without it")]
    q, k = _best_prefix(missing, set(unexpected))
    if k:
        return [("add_prefix", q, f"{k} missing parameter(s) are checkpoint names with {q!r} in front")]
    return []


def transpose_suggestions(mismatched: list) -> list:
    """(option, value, why) for parameters whose tensor has the expected shape reversed."""
    tr = {p: "transpose" for p, want, _t, got, how in mismatched
          if not how and len(got) > 1 and tuple(reversed(tuple(got))) == tuple(want) and tuple(got) != tuple(want)}
    if not tr:
        return []
    return [("transforms", tr, f"{len(tr)} tensor(s) hold the expected shape reversed")]
