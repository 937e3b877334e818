"""``netdsl summary``: per-layer table of output shapes, parameters and MACs."""
from __future__ import annotations

import argparse

from .common import add_json_arg, add_model_args, emit_json, prepare, wants_json

COMMAND, ORDER = "summary", 10


def cmd_summary(args: argparse.Namespace) -> int:
    net = prepare(args)
    if wants_json(args):
        from ..summary import summary_dict
        emit_json(summary_dict(net.graph))
    else:
        print(net.summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="per-layer table: output shapes, parameters, MACs")
    add_model_args(p, backend=False)
    add_json_arg(p)
    p.set_defaults(fn=cmd_summary)
