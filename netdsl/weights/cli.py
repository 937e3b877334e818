"""``netdsl weights FILE [--model MODEL.py]``: list a checkpoint's tensors, or its binding report."""
from __future__ import annotations

import sys
from typing import Any, Optional, TextIO

from ..errors import NetdslError, WeightError
from ..shapes import fmt_shape
from .advice import command_line
from .base import open_checkpoint
from .bind import READER_OPTIONS


def weights_command(path: str, model: Optional[str] = None, func: str = "network", fmt: Optional[str] = None,
                    out: Optional[TextIO] = None, **binding_options: Any) -> int:
    """List ``path``'s tensors (name, shape, dtype, format), or with ``model`` print the binding report.

    ``model`` is ``MODEL.py`` or ``MODEL.py:FUNC``; its network's declared binding
    (``net.declare_binding``) applies, extended by ``binding_options`` (``load_weights`` arguments).
    Messages give command-line advice. Returns the exit code: 0 on success, 1 when the file is
    refused/corrupt/unreadable or a strict binding fails, 2 when the model cannot be loaded.
    """
    out = out or sys.stdout
    binding_options = {k: v for k, v in binding_options.items() if v is not None}
    if fmt is not None:
        binding_options["format"] = fmt
    if model is None:
        open_opts = {k: binding_options[k] for k in binding_options if k in READER_OPTIONS}
        try:
            with command_line():
                return _list(open_checkpoint(path, format=binding_options.get("format"), **open_opts), out)
        except WeightError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    try:
        net = _load_model(model, func)
    except Exception as e:  # the user's model file failed: report, don't crash
        print(f"error: cannot load model {model}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    strict = binding_options.pop("strict", getattr(net, "binding", {}).get("strict", True))
    try:
        with command_line():
            rep = net.load_weights(path, **{**binding_options, "strict": False})
            print(rep, file=out)
    except (WeightError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if rep.bound:
        print("bound:", file=out)
        print(rep.table(), file=out)
    return 0 if rep.ok or not strict else 1


def _list(ckpt: Any, out: TextIO) -> int:
    detail = getattr(ckpt, "detail", "")
    fmt = ckpt.format + (f" ({detail})" if detail and detail.lower() != ckpt.format else "")
    infos = ckpt.infos()
    total = sum(i.nbytes for i in infos)
    print(f"{ckpt.path}: format {fmt}, {len(infos)} tensors, {total / 1e6:.2f} MB", file=out)
    for n in ckpt.notes:
        print(f"note: {n}", file=out)
    w = max([len(i.name) for i in infos] + [4])
    print(f"{'name':<{w}}  {'shape':<20} dtype", file=out)
    for i in infos:
        dt = i.dtype if not i.stored else f"{i.stored} (read as {i.dtype})"
        print(f"{i.name:<{w}}  {fmt_shape(i.shape):<20} {dt}", file=out)
    return 0


def _load_model(model: str, func: str) -> Any:
    spec = model if ":" in model.rsplit("/", 1)[-1] else f"{model}:{func}"
    try:
        from ..cli.common import load_model
    except ImportError:
        load_model = None
    if load_model is not None:
        return load_model(spec)
    import importlib.util
    path, _, fn = spec.partition(":")
    s = importlib.util.spec_from_file_location("_netdsl_weights_model", path)
    if s is None or s.loader is None:
        raise NetdslError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    return getattr(mod, fn)()
