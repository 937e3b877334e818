"""Finding and importing plugin folders (``plugins/<name>/plugin.py``).

``load("mish")`` searches the plugin path: the folders in ``$NETDSL_PLUGIN_PATH`` (``os.pathsep``
separated), then ``./plugins``, then the ``plugins/`` folder of the netdsl source tree. ``load(path)``
takes a folder holding ``plugin.py`` (or the file itself). A folder is imported once per process;
loading it again returns the same op.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import NetdslError
from .declaration import Plugin, PluginError, PluginOp, author_line

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_lock = threading.RLock()
_loaded: dict[str, Any] = {}  # resolved plugin.py path -> module


def search_path() -> list[Path]:
    """Where plugins are looked up by name, in order."""
    env = [Path(p) for p in os.environ.get("NETDSL_PLUGIN_PATH", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parents[2] / "plugins"
    out: list[Path] = []
    for d in env + [Path.cwd() / "plugins", here]:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def find(name: str) -> Optional[Path]:
    """The folder of plugin ``name`` on the plugin path (None if there is none). Only identifiers are
    looked up: a name read from a file (an IR's op type) never becomes a path outside the plugin path."""
    if not _IDENT.match(name or ""):
        return None
    for d in search_path():
        if (d / name / "plugin.py").is_file():
            return d / name
    return None


def available() -> dict[str, Path]:
    """Every plugin folder on the plugin path, by name (the first one found wins)."""
    out: dict[str, Path] = {}
    for d in search_path():
        for sub in sorted(d.iterdir()):
            if (sub / "plugin.py").is_file():
                out.setdefault(sub.name, sub)
    return out


def _file_of(spec: Union[str, os.PathLike]) -> Path:
    p = Path(spec)
    if p.is_file():
        return p
    if p.is_dir():
        if (p / "plugin.py").is_file():
            return p / "plugin.py"
        raise PluginError(f"plugin folder {p} has no plugin.py")
    if isinstance(spec, str) and os.sep not in spec and "/" not in spec and not spec.endswith(".py"):
        found = find(spec)
        if found is not None:
            return found / "plugin.py"
        where = ", ".join(str(d) for d in search_path()) or "(no plugin folders found)"
        raise PluginError(f"no plugin named {spec!r} on the plugin path ({where}); set NETDSL_PLUGIN_PATH "
                          "or pass the plugin's folder")
    raise PluginError(f"plugin {spec!r}: no such file or folder")


def import_folder(spec: Union[str, os.PathLike]) -> Any:
    """Import a plugin's ``plugin.py`` (once) and return the module."""
    path = _file_of(spec).resolve()
    key = str(path)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        folder = path.parent
        name = "netdsl_plugin_" + folder.name + "_" + hashlib.sha1(key.encode()).hexdigest()[:8]
        s = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(s)  # type: ignore[arg-type]
        sys.modules[name] = mod
        sys.path.insert(0, str(folder))
        try:
            s.loader.exec_module(mod)  # type: ignore[union-attr]
        except NetdslError:
            sys.modules.pop(name, None)
            raise
        except Exception as e:  # the author's file: a syntax error, a NameError ...
            sys.modules.pop(name, None)
            raise PluginError(f"plugin file {path} failed to import: {type(e).__name__}: {e}{author_line(e)}") from e
        finally:
            if sys.path and sys.path[0] == str(folder):
                sys.path.pop(0)
        for op in _ops_in(mod):
            op.plugin.folder = folder
        _loaded[key] = mod
        return mod


def _ops_in(mod: Any) -> list[PluginOp]:
    seen, out = set(), []
    for v in vars(mod).values():
        if isinstance(v, PluginOp) and v.name not in seen:
            seen.add(v.name)
            out.append(v)
    return out


def load(spec: Union[str, os.PathLike, PluginOp]) -> PluginOp:
    """The plugin op declared by a plugin folder / ``plugin.py`` / name on the plugin path."""
    if isinstance(spec, PluginOp):
        return spec
    mod = import_folder(spec)
    ops = _ops_in(mod)
    if not ops:
        raise PluginError(f"{mod.__file__} declares no plugin (netdsl.plugins.declare(...) at module level)")
    folder = Path(mod.__file__).parent.name
    for op in ops:
        if op.name == folder:
            return op
    if len(ops) > 1:
        raise PluginError(f"{mod.__file__} declares {len(ops)} plugins ({', '.join(o.name for o in ops)}); "
                          f"name one of them like its folder ({folder!r})")
    return ops[0]


def find_declared(type_name: str, *, ov_version: Optional[str] = None, version: Optional[str] = None,
                  namespace: Optional[str] = None) -> Optional[Plugin]:
    """The declared plugin whose engine type name is ``type_name`` (and OpenVINO type version, or
    TensorRT version and namespace, where given); plugins not declared yet are loaded by name from the
    plugin path."""
    from ..ops.registry import all_ops

    def match() -> Optional[Plugin]:
        for d in all_ops().values():
            p = d.plugin
            if isinstance(p, Plugin) and p.trt_name == type_name and ov_version in (None, p.ov_version) \
                    and version in (None, p.version) and namespace in (None, p.namespace):
                return p
        return None

    p = match()
    if p is None and find(type_name) is not None:
        load(type_name)
        p = match()
    return p


__all__ = ["load", "find", "available", "search_path", "find_declared", "import_folder"]
