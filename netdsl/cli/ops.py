"""``netdsl ops``: the op catalogue and which backends lower each op."""
from __future__ import annotations

import argparse

from .common import add_json_arg, emit_json, wants_json

COMMAND, ORDER = "ops", 90


def cmd_ops(args: argparse.Namespace) -> int:
    from ..support import support_rows, support_table
    if wants_json(args):
        emit_json({"ops": support_rows()})
    else:
        print(support_table(markdown=args.markdown))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="the op catalogue and which backends lower each op")
    p.add_argument("--markdown", action="store_true", help="a Markdown table")
    add_json_arg(p)
    p.set_defaults(fn=cmd_ops)
