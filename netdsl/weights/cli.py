"""``netdsl weights FILE [--model MODEL.py]``: list a checkpoint's tensors, or its binding report."""
from __future__ import annotations

import json
import sys
from typing import Any, Optional, TextIO

from ..errors import NetdslError, WeightError
from ..shapes import fmt_shape
from .advice import command_line
from .base import open_checkpoint
from .bind import READER_OPTIONS

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def weights_command(path: str, model: Optional[str] = None, func: str = "network", fmt: Optional[str] = None,
                    out: Optional[TextIO] = None, as_json: bool = False, **binding_options: Any) -> int:
    """List ``path``'s tensors (name, shape, dtype, format), or with ``model`` print the binding report.

    ``model`` is ``MODEL.py`` or ``MODEL.py:FUNC``; its network's declared binding
    (``net.declare_binding``) applies, extended by ``binding_options`` (``load_weights`` arguments).
    Messages give command-line advice; ``as_json`` prints one JSON document instead of text. Returns the
    exit code: 0 on success, 2 (bad input) when the file is refused/corrupt/unreadable, the model cannot be
    loaded or a strict binding fails.
    """
    out = out or sys.stdout
    binding_options = {k: v for k, v in binding_options.items() if v is not None}
    if fmt is not None:
        binding_options["format"] = fmt
    if model is None:
        open_opts = {k: binding_options[k] for k in binding_options if k in READER_OPTIONS}
        try:
            with command_line():
                return _list(open_checkpoint(path, format=binding_options.get("format"), **open_opts), out, as_json)
        except WeightError as e:
            return _error(e, out, as_json)
    try:
        net = _load_model(model, func)
    except Exception as e:  # the user's model file failed: report, don't crash
        return _error(f"cannot load model {model}: {e if isinstance(e, NetdslError) else repr(e)}", out, as_json)
    strict = binding_options.pop("strict", getattr(net, "binding", {}).get("strict", True))
    try:
        with command_line():  # the report's advice in command-line spelling
            rep = net.load_weights(path, **{**binding_options, "strict": False})
            code = EXIT_OK if rep.ok or not strict else EXIT_BAD_INPUT
            if as_json:
                _dump(out, dict(report_dict(rep), exit_code=code))
                return code
            print(rep, file=out)
    except (WeightError, ValueError, TypeError) as e:
        return _error(e, out, as_json)
    if rep.bound:
        print("bound:", file=out)
        print(rep.table(), file=out)
    return code


def report_dict(rep: Any) -> dict:
    """A BindingReport as plain JSON-ready data."""
    return {"path": str(rep.path), "format": rep.format, "ok": rep.ok,
            "bound": [{"param": b.param, "shape": list(b.target), "tensor": b.tensor, "tensor_shape": list(b.shape),
                       "transform": None if b.transform is None or b.transform.name == "identity"
                       else b.transform.name} for b in rep.bound],
            "missing": [{"param": p, "shape": list(s)} for p, s in rep.missing],
            "unexpected": [{"tensor": t, "shape": list(s)} for t, s in rep.unexpected],
            "mismatched": [{"param": p, "shape": list(e), "tensor": t, "tensor_shape": list(g), "note": how}
                           for p, e, t, g, how in rep.mismatched],
            "ignored": list(rep.ignored), "warnings": list(rep.warnings), "notes": list(rep.notes)}


def _error(e: Any, out: TextIO, as_json: bool) -> int:
    print(f"netdsl weights: error: {e}", file=sys.stderr)
    if as_json:
        _dump(out, {"ok": False, "exit_code": EXIT_BAD_INPUT, "error": str(e)})
    return EXIT_BAD_INPUT


def _dump(out: TextIO, obj: dict) -> None:
    print(json.dumps(obj, indent=2, default=str), file=out)


def _list(ckpt: Any, out: TextIO, as_json: bool = False) -> int:
    detail = getattr(ckpt, "detail", "")
    fmt = ckpt.format + (f" ({detail})" if detail and detail.lower() != ckpt.format else "")
    infos = ckpt.infos()
    total = sum(i.nbytes for i in infos)
    if as_json:
        _dump(out, {"path": str(ckpt.path), "format": ckpt.format, "detail": detail, "bytes": total,
                    "notes": list(ckpt.notes),
                    "tensors": [{"name": i.name, "shape": list(i.shape), "dtype": str(i.dtype),
                                 "stored": str(i.stored) if i.stored else None} for i in infos],
                    "ok": True, "exit_code": EXIT_OK})
        return EXIT_OK
    print(f"{ckpt.path}: format {fmt}, {len(infos)} tensors, {total / 1e6:.2f} MB", file=out)
    for n in ckpt.notes:
        print(f"note: {n}", file=out)
    w = max([len(i.name) for i in infos] + [4])
    print(f"{'name':<{w}}  {'shape':<20} dtype", file=out)
    for i in infos:
        dt = i.dtype if not i.stored else f"{i.stored} (read as {i.dtype})"
        print(f"{i.name:<{w}}  {fmt_shape(i.shape):<20} {dt}", file=out)
    return EXIT_OK


def _load_model(model: str, func: str) -> Any:
    from ..cli.common import load_model
    spec = model if ":" in model.rsplit("/", 1)[-1] else f"{model}:{func}"
    return load_model(spec)
