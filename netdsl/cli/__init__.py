"""The ``netdsl`` command.

One module per subcommand in this package; each defines ``COMMAND`` (its name), ``ORDER`` (its place
in ``--help``) and ``register(subparsers)`` which adds its parser and sets ``fn``. Modules are found
by name, so adding a command is adding a module. Keep command modules light at import time: engines
and heavy libraries are imported inside the command function.

What every command gets from :func:`main`: one-line usage errors, the exit codes of
:data:`~netdsl.cli.common.EXIT_CODES`, ``--debug``, ``-v/--verbose``, ``-q/--quiet`` and
``--no-progress``, and (for commands with ``--json``) errors as a JSON document.

A model is ``MODEL.py[:FUNC]``: a Python file whose function FUNC (default ``network``) returns a
:class:`netdsl.Network`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import textwrap
import traceback
from typing import NoReturn, Optional, Sequence

from ..errors import BackendUnavailable, NetdslError
from .common import EXIT_CODES_HELP, EXIT_CODES_TABLE, EXIT_ENGINE, EXIT_INTERNAL, EXIT_USAGE, emit_json
from .common import load_model, random_inputs  # noqa: F401  (public helpers)

_NOT_COMMANDS = {"common"}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _command_modules() -> list:
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _NOT_COMMANDS:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "register"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def _add_global_options(p: argparse.ArgumentParser, top: bool) -> None:
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)  # a subcommand's copy sets only what is given
    p.add_argument("--debug", action="store_true", default=d(False), help="show full tracebacks")
    p.add_argument("-v", "--verbose", action="count", default=d(0),
                   help="log what engines do (TensorRT builder, OpenVINO properties); -vv for more")
    p.add_argument("-q", "--quiet", action="store_true", default=d(False), help="no notes, no progress bars")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", default=d(False),
                   help="no progress bars (they show on a terminal, or with NETDSL_PROGRESS=1)")


def build_parser() -> argparse.ArgumentParser:
    """The full ``netdsl`` argument parser, one subparser per command module."""
    ap = Parser(prog="netdsl", description="netdsl: one network definition, many engines",
                epilog=EXIT_CODES_TABLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_global_options(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in _command_modules():
        mod.register(sub)
    for p in sub.choices.values():
        raw = issubclass(p.formatter_class, argparse.RawDescriptionHelpFormatter)
        if raw and p.description and "\n" not in p.description:  # raw text keeps lines: wrap it once here
            p.description = textwrap.fill(p.description, 100)
        codes = EXIT_CODES_TABLE if raw else EXIT_CODES_HELP
        p.epilog = f"{p.epilog}\n\n{codes}" if p.epilog else codes
        known = {s for a in p._actions for s in a.option_strings}
        if not known & {"--debug", "--verbose", "--quiet", "--no-progress"}:
            _add_global_options(p, top=False)
    return ap


class _Session:
    """Logging and progress settings for one CLI call, undone afterwards (main() may run many times)."""

    def __init__(self, args: argparse.Namespace):
        from .. import progress
        self.progress = progress
        self.saved = progress._forced
        self.handler: Optional[logging.Handler] = None
        self.logger = logging.getLogger("netdsl")
        self.level = self.logger.level
        if args.quiet or args.no_progress:
            progress.set_enabled(False)
        if args.verbose:
            self.handler = logging.StreamHandler(sys.stderr)
            self.handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
            self.logger.addHandler(self.handler)
            self.logger.setLevel(logging.DEBUG if args.verbose > 1 else logging.INFO)
        elif args.quiet:
            self.logger.setLevel(logging.ERROR)
        self.route = os.environ.get("NETDSL_PLUGIN_ROUTE")
        if getattr(args, "plugin_route", None):  # env, not thread-local: worker threads and processes see it
            os.environ["NETDSL_PLUGIN_ROUTE"] = args.plugin_route

    def close(self) -> None:
        if self.route is None:
            os.environ.pop("NETDSL_PLUGIN_ROUTE", None)
        else:
            os.environ["NETDSL_PLUGIN_ROUTE"] = self.route
        self.progress.set_enabled(self.saved)
        self.logger.setLevel(self.level)
        if self.handler is not None:
            self.logger.removeHandler(self.handler)


def _fail(args: argparse.Namespace, code: int, msg: str) -> int:
    print(f"netdsl {args.command}: {msg}", file=sys.stderr)
    if getattr(args, "json", False):
        emit_json({"ok": False, "exit_code": code, "error": msg})
    return code


def _internal(args: argparse.Namespace, e: Exception) -> int:
    """A bug in netdsl (or an engine error it failed to wrap): exit code 4."""
    if args.debug:
        traceback.print_exc()
    return _fail(args, EXIT_INTERNAL, f"internal error: {type(e).__name__}: {e} "
                                      f"(a bug in netdsl; --debug shows the traceback)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``netdsl`` command; returns the exit code (see ``netdsl --help``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, which knows its options
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    session = _Session(args)
    try:
        return int(args.fn(args) or 0)
    except BackendUnavailable as e:
        if args.debug:
            traceback.print_exc()
        return _fail(args, EXIT_ENGINE, f"engine unavailable: {e}")
    except NetdslError as e:
        if args.debug:
            traceback.print_exc()
        return _fail(args, EXIT_USAGE, f"error: {e}")
    except MemoryError as e:  # e.g. --dim N=10**9: the inputs alone do not fit
        if args.debug:
            traceback.print_exc()
        return _fail(args, EXIT_USAGE, f"error: out of memory: {e or 'allocation failed'} (smaller --dim/--batch?)")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `netdsl weights big.pt | head`
        sys.stderr.close()
        return 0
    except OSError as e:
        if e.filename is None:  # not about a path the user named
            return _internal(args, e)
        if args.debug:
            traceback.print_exc()
        return _fail(args, EXIT_USAGE, f"error: cannot use {e.filename}: {e.strerror or e}")
    except Exception as e:
        return _internal(args, e)
    finally:
        session.close()


__all__ = ["main", "build_parser", "load_model", "random_inputs", "Parser"]
