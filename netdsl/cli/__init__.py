"""The ``netdsl`` command.

One module per subcommand in this package; each defines ``COMMAND`` (its name), ``ORDER`` (its place
in ``--help``) and ``register(subparsers)`` which adds its parser and sets ``fn``. Modules are found
by name, so adding a command is adding a module. Keep command modules light at import time: engines
and heavy libraries are imported inside the command function.

A model is ``MODEL.py[:FUNC]``: a Python file whose function FUNC (default ``network``) returns a
:class:`netdsl.Network`.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from typing import Optional, Sequence

from ..errors import NetdslError
from .common import load_model, random_inputs  # noqa: F401  (public helpers)

_NOT_COMMANDS = {"common"}


def _command_modules() -> list:
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _NOT_COMMANDS:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "register"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    """The full ``netdsl`` argument parser, one subparser per command module."""
    ap = argparse.ArgumentParser(prog="netdsl", description="netdsl: one network definition, many engines")
    ap.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)
    for mod in _command_modules():
        mod.register(sub)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``netdsl`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except NetdslError as e:
        if args.debug:
            traceback.print_exc()
        print(f"netdsl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `netdsl weights big.pt | head`
        sys.stderr.close()
        return 0
