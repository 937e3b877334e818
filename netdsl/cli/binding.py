"""Binding options on the command line: every option of ``load_weights`` for run, build, check and weights.

``add_binding_args(parser)`` adds them; ``binding_options(args)`` turns them back into
``load_weights`` keyword arguments (those not given are left out, so the model's declared binding,
``net.declare_binding(...)``, applies). Not a command module (it has no ``register``).
"""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import NetdslError

_EPILOG = """binding: checkpoint names become parameter names by --map (exact), --prefix, --strip-prefix, --rename,
--add-prefix, in that order; --ignore drops tensors. Keras files bind layer by layer: --keras-layer
KERAS=MODULE, else by equal names, else (with --keras-order) by order. Rules: docs/BINDING.md.

layout transforms (--transform PARAM=NAME; Keras files get theirs automatically):
{transforms}
"""


def binding_epilog() -> str:
    """The --help text on binding and the named layout transforms."""
    from ..weights.layout import describe_named
    return _EPILOG.format(transforms=describe_named())


def add_binding_args(p: argparse.ArgumentParser) -> None:
    """Add the binding options (and the reader options) to a command's parser."""
    g = p.add_argument_group("binding (how --weights tensors become parameters)")
    g.add_argument("--format", help="checkpoint format instead of detecting it (npz, safetensors, pytorch, hdf5, "
                                    "onnx, caffe, darknet, wts)")
    g.add_argument("--preset", choices=("auto", "pytorch", "huggingface", "keras", "none"),
                   help="naming preset (default auto: keras for Keras files, else pytorch)")
    g.add_argument("--map", action="append", metavar="TENSOR=PARAM", help="bind this checkpoint tensor to this "
                                                                         "parameter (repeatable)")
    g.add_argument("--prefix", help="keep only tensors whose names start with PREFIX, and strip it")
    g.add_argument("--strip-prefix", dest="strip_prefix", action="append", metavar="PREFIX",
                   help="strip PREFIX from names that have it (repeatable: the first that applies)")
    g.add_argument("--rename", action="append", metavar="REGEX=REPL",
                   help="rewrite names with a regular expression (repeatable, applied in order)")
    g.add_argument("--add-prefix", dest="add_prefix", metavar="PREFIX", help="prepend PREFIX to every name")
    g.add_argument("--ignore", action="append", metavar="REGEX", help="drop checkpoint tensors matching REGEX")
    g.add_argument("--transform", action="append", metavar="PARAM=NAME",
                   help="layout transform for a parameter (names below)")
    g.add_argument("--keras-layer", dest="keras_layer", action="append", metavar="KERAS=MODULE",
                   help="bind this Keras layer to this module (repeatable)")
    g.add_argument("--keras-order", dest="keras_order", action="store_true",
                   help="pair Keras layers left unmatched by name with modules in order (ambiguity refused)")
    g.add_argument("--no-keras-flatten", dest="keras_flatten", action="store_false", default=None,
                   help="do not permute a Dense after Flatten from NHWC to NCHW order")
    g.add_argument("--no-strict", dest="no_strict", action="store_true",
                   help="bind what matches and report the rest instead of failing")
    g.add_argument("--cfg", help="Darknet .cfg for a .weights file (default: the .cfg beside it)")
    g.add_argument("--pickle-mode", dest="pickle_mode", choices=("auto", "strict", "inert"),
                   help="PyTorch pickles: auto (default; strict is the same): data only, other classes refused; "
                        "inert: whole pickled modules as placeholders (never imported or run)")
    g.add_argument("--sha256", help="the checkpoint file's expected SHA-256 (hex): refused when it differs")
    g.add_argument("--memory-budget", dest="memory_budget", type=int, metavar="MB",
                   help="MiB of memory the checkpoint may make the reader allocate (default: max(512, 32 x its size))")
    g.add_argument("--key", help="sub-object of a PyTorch checkpoint holding the tensors (e.g. model, state_dict)")
    p.epilog = (p.epilog + "\n\n" if p.epilog else "") + binding_epilog()
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def _pairs(items: Any, flag: str) -> list:
    out = []
    for it in items or []:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise NetdslError(f"{flag} expects A=B, got {it!r}")
        out.append((k, v))
    return out


def binding_options(args: argparse.Namespace) -> dict:
    """load_weights keyword arguments for the binding options given on the command line."""
    o: dict[str, Any] = {}
    for key in ("format", "prefix", "add_prefix", "cfg", "pickle_mode", "key", "sha256"):
        if getattr(args, key, None) is not None:
            o[key] = getattr(args, key)
    if getattr(args, "memory_budget", None) is not None:
        o["memory_budget"] = args.memory_budget << 20
    if getattr(args, "preset", None) is not None:
        o["preset"] = None if args.preset == "none" else args.preset
    if getattr(args, "strip_prefix", None):
        o["strip_prefix"] = list(args.strip_prefix)
    if getattr(args, "map", None):
        o["mapping"] = dict(_pairs(args.map, "--map"))
    if getattr(args, "rename", None):
        o["rename"] = _pairs(args.rename, "--rename")
    if getattr(args, "ignore", None):
        o["ignore"] = list(args.ignore)
    if getattr(args, "transform", None):
        o["transforms"] = dict(_pairs(args.transform, "--transform"))
    if getattr(args, "keras_layer", None):
        o["keras_layers"] = dict(_pairs(args.keras_layer, "--keras-layer"))
    if getattr(args, "keras_order", False):
        o["keras_order"] = True
    if getattr(args, "keras_flatten", None) is False:
        o["keras_flatten"] = False
    if getattr(args, "no_strict", False):
        o["strict"] = False
    return o
