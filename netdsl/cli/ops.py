"""``netdsl ops``: the op catalogue and which backends lower each op."""
from __future__ import annotations

import argparse

COMMAND, ORDER = "ops", 90


def cmd_ops(args: argparse.Namespace) -> int:
    from ..support import support_table
    print(support_table(markdown=args.markdown))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="the op catalogue and which backends lower each op")
    p.add_argument("--markdown", action="store_true")
    p.set_defaults(fn=cmd_ops)
