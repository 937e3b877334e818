"""``netdsl graph``: the network as a picture (Graphviz: SVG, HTML, PNG, PDF, DOT), or opened in Netron."""
from __future__ import annotations

import argparse
import os

from ..errors import NetdslError
from .common import add_model_args, info, prepare

COMMAND, ORDER = "graph", 15


def cmd_graph(args: argparse.Namespace) -> int:
    net = prepare(args)
    if args.netron:
        return open_in_netron(args, net)
    if not args.output:
        raise NetdslError("-o/--output is required (net.svg, net.html, net.png, net.pdf or net.dot), or --netron")
    from ..draw import render
    path = render(net.graph, args.output, rankdir="LR" if args.horizontal else "TB")
    info(args, f"wrote {path}")
    return 0


def open_in_netron(args: argparse.Namespace, net) -> int:
    """Export ONNX (to -o, or NAME.onnx) and serve it with Netron when the netron package is installed."""
    import importlib.util
    from ..backends.onnx import export_onnx
    path = args.output or f"{net.graph.name}.onnx"
    if not path.endswith(".onnx"):
        raise NetdslError(f"--netron writes an ONNX file for Netron: -o {path} must end in .onnx")
    if not all(p.bound for p in net.graph.params.values()):
        net.init_random(args.seed)  # Netron shows structure; weights are placeholders unless bound
    export_onnx(net.graph, path)
    if importlib.util.find_spec("netron") is None:
        info(args, f"wrote {path}; open it in Netron (pip install netron; netron {path}, or https://netron.app)")
        return 0
    import netron
    info(args, f"wrote {path}; serving it with Netron (Ctrl-C stops)")
    netron.start(os.path.abspath(path))
    netron.wait()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="draw the network (SVG, HTML with file:line on hover, PNG, PDF, DOT; or Netron)",
                       description="Draw the network with Graphviz: one box per layer (op, parameters), clusters "
                                   "per module scope, tensor shapes on the edges; in HTML/SVG hovering a layer "
                                   "shows its op, shapes, parameters and file:line. --netron exports ONNX and "
                                   "opens it in Netron instead.")
    add_model_args(p, backend=False)
    p.add_argument("--output", "-o", help="picture file: .svg, .html, .png, .pdf or .dot (with --netron: .onnx)")
    p.add_argument("--horizontal", action="store_true", help="lay out left to right instead of top to bottom")
    p.add_argument("--netron", action="store_true", help="export ONNX and open it in Netron (pip install netron)")
    p.set_defaults(fn=cmd_graph)
