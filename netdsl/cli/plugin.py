"""``netdsl plugin``: scaffold a plugin folder (``new``), check it on every backend (``test``), list them."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..errors import NetdslError

COMMAND, ORDER = "plugin", 80


def cmd_new(args: argparse.Namespace) -> int:
    from ..plugins.scaffold import new
    files = new(args.name, Path(args.dir), force=args.force)
    folder = files[0].parent
    print(f"created {folder}/:")
    for f in files:
        print(f"  {f.name}")
    print(f"next: edit plugin.py (reference, shape inference), cpu.cpp and kernel.cu, then\n"
          f"  netdsl plugin test {folder}")
    return 0


def _cases(folder: Path, name: str) -> list:
    """CASES from the plugin's test_NAME.py (its conformance configurations)."""
    test = next((t for t in (folder / f"test_{folder.name}.py", folder / f"test_{name}.py") if t.is_file()),
                folder / f"test_{folder.name}.py")
    if not test.is_file():
        raise NetdslError(f"{test} does not exist: it defines CASES, the configurations to check")
    spec = importlib.util.spec_from_file_location(f"netdsl_plugin_test_{name}", test)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    except ImportError as e:
        raise NetdslError(f"{test}: {e} (plugin tests need pytest: pip install pytest)") from e
    finally:
        sys.path.remove(str(folder))
    cases = getattr(mod, "CASES", None)
    if not cases:
        raise NetdslError(f"{test} defines no CASES (a list of netdsl.plugins.conformance.Case)")
    return list(cases)


def cmd_test(args: argparse.Namespace) -> int:
    from ..plugins import conformance, load
    op = load(args.plugin)
    folder = Path(op.plugin.folder or args.plugin)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else list(conformance.BACKENDS)
    cases = _cases(folder, op.name)
    conformance.checks(op, cases, backends)  # unknown backend names: a usage error before anything runs
    print(f"{op.plugin.describe()} from {folder}: {len(cases)} case(s) x {len(backends)} check(s)")
    ok = conformance.run_all(op, cases, backends)
    print("plugin test: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    from ..plugins import available
    found = available()
    if not found:
        print("no plugin folders on the plugin path ($NETDSL_PLUGIN_PATH, ./plugins, netdsl's plugins/)")
    for name, folder in found.items():
        print(f"{name:20s} {folder}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="plugins: scaffold one (new), check it on every backend (test), list them")
    ps = p.add_subparsers(dest="plugin_command", required=True)
    n = ps.add_parser("new", help="create plugins/NAME/ (declaration, kernel.cu, cpu.cpp, test, example)")
    n.add_argument("name", help="the plugin's op name (a lower-case identifier)")
    n.add_argument("--dir", default="plugins", help="parent folder (default: ./plugins)")
    n.add_argument("--force", action="store_true", help="overwrite the scaffold's files in an existing folder")
    n.set_defaults(fn=cmd_new)
    t = ps.add_parser("test", help="run the plugin's conformance checks on every backend available here")
    t.add_argument("plugin", help="plugin name (on the plugin path) or folder")
    t.add_argument("--backends", help="comma-separated subset of: reference, openvino-python, openvino-compiled, "
                                      "openvino-ir, onnx, tensorrt, cuda-compile, cuda-gpu")
    t.set_defaults(fn=cmd_test)
    ls = ps.add_parser("list", help="plugin folders on the plugin path")
    ls.set_defaults(fn=cmd_list)
