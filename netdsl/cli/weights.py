"""``netdsl weights``: list a checkpoint's tensors, or its binding report against a model."""
from __future__ import annotations

import argparse

COMMAND, ORDER = "weights", 50


def cmd_weights(args: argparse.Namespace) -> int:
    from ..weights.cli import weights_command
    opts = {"cfg": args.cfg, "pickle_mode": args.pickle_mode, "key": args.key}
    if args.no_strict:
        opts["strict"] = False
    return weights_command(args.file, model=args.model, fmt=args.format, **opts)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="list a checkpoint's tensors, or its binding report against a model")
    p.add_argument("file")
    p.add_argument("--model", help="MODEL.py[:FUNC] to bind against")
    p.add_argument("--format", help="force a format instead of detecting it")
    p.add_argument("--cfg", help="Darknet .cfg for a .weights file (default: the .cfg beside it)")
    p.add_argument("--pickle-mode", dest="pickle_mode", choices=("auto", "strict", "inert"),
                   help="PyTorch pickles: auto (default), strict (state dicts only), inert (whole modules, no note)")
    p.add_argument("--key", help="sub-object of a PyTorch checkpoint holding the tensors (e.g. model, state_dict)")
    p.add_argument("--no-strict", dest="no_strict", action="store_true",
                   help="with --model: report problems without failing")
    p.set_defaults(fn=cmd_weights)
