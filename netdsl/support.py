"""The generated support table: every catalogue op and the backends that lower it."""
from __future__ import annotations

import importlib

from .ops import all_ops

# backend -> module exposing supported_ops() without importing its engine
_TABLES = {
    "openvino": "netdsl.backends.openvino",
    "tensorrt": "netdsl.backends.tensorrt",
    "onnx": "netdsl.backends.onnx",
}


def supported(backend: str) -> set[str]:
    if backend == "reference":
        return set(all_ops())
    try:
        mod = importlib.import_module(_TABLES[backend])
        return set(mod.supported_ops())
    except (ImportError, AttributeError):
        return set()


def support_rows(plugins: bool = True) -> list[dict]:
    """One dict per op: name, category, plugin or not, and ``backends`` {backend: lowered or not}."""
    backends = ["reference", *_TABLES]
    sup = {b: supported(b) for b in backends}
    ops = sorted(((n, d) for n, d in all_ops().items() if plugins or d.plugin is None),
                 key=lambda kv: (kv[1].category, kv[0]))
    return [{"op": name, "category": d.category, "plugin": d.plugin is not None,
             "backends": {b: name in sup[b] for b in backends}} for name, d in ops]


def support_table(markdown: bool = False, plugins: bool = True) -> str:
    """The table as text (or Markdown); ``plugins=False`` lists the built-in catalogue only."""
    backends = ["reference", *_TABLES]
    rows = [[r["op"], r["category"]] + ["yes" if r["backends"][b] else "-" for b in backends]
            for r in support_rows(plugins)]
    head = ["op", "category", *backends]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{x}}}" for x in w)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * x for x in w))] + [fmt.format(*r) for r in rows])
