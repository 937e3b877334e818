"""``netdsl weights``: list a checkpoint's tensors, or its binding report against a model."""
from __future__ import annotations

import argparse

from .binding import add_binding_args, binding_options
from .common import add_json_arg, wants_json

COMMAND, ORDER = "weights", 50


def cmd_weights(args: argparse.Namespace) -> int:
    from ..weights.cli import weights_command
    return weights_command(args.file, model=args.model, as_json=wants_json(args), **binding_options(args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="list a checkpoint's tensors, or its binding report against a model")
    p.add_argument("file", help="checkpoint file (format detected from its content)")
    p.add_argument("--model", help="MODEL.py[:FUNC] to bind against (with the binding the network declares)")
    add_binding_args(p)
    add_json_arg(p)
    p.set_defaults(fn=cmd_weights)
