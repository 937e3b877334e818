"""Binding checks for Darknet ``.weights``: batch norms must use Darknet's formula.

Darknet's batch norm divides by ``sqrt(variance) + .000001f`` (``normalize_cpu``), which is
``nn.BatchNorm2d(c, eps=1e-6, eps_mode="outside_sqrt")``; a batch norm bound to a Darknet file with any
other formula gets a warning (PyTorch's default, ``sqrt(var + 1e-5)``, differs by up to 4e-4 relative on
channels with small variances).
"""
from __future__ import annotations

from typing import Any

from ..graph import Graph

DARKNET_BN = {"eps": 1e-6, "eps_mode": "outside_sqrt"}


def bn_warnings(graph: Graph, bound_params: set, rep: Any) -> None:
    """Warn (in ``rep.warnings``) about each batch norm whose statistics come from the Darknet file but whose
    eps or eps_mode is not Darknet's."""
    for node in graph.nodes:
        if node.op != "batch_norm" or node.inputs[4] is None or node.inputs[4].producer is None:
            continue
        p = node.inputs[4].producer
        if p.op != "parameter" or p.attrs["name"] not in bound_params:
            continue
        eps, mode = float(node.attrs["eps"]), node.attrs["eps_mode"]
        if mode != DARKNET_BN["eps_mode"] or abs(eps - DARKNET_BN["eps"]) > 1e-12:
            rep.warnings.append(
                f"batch_norm '{node.name}' ({node.location or 'network'}) computes (x - mean) / "
                + (f"sqrt(var + {eps:g})" if mode == "inside_sqrt" else f"(sqrt(var) + {eps:g})")
                + " but Darknet divides by sqrt(var) + 1e-6; outputs will differ: declare "
                  "nn.BatchNorm2d(c, eps=1e-6, eps_mode=\"outside_sqrt\")")
