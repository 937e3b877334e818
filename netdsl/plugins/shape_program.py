"""A plugin node's shape and type rules as a small program that every engine can evaluate.

The declared ``infer`` runs once per node at lowering time with the node's input specs, their
symbolic dims renamed to input positions (``d0_2`` = dim 2 of input 0; a dim that is a product of
such symbols, like ``N*T``, stays a product). Its output dims come back as expressions over those
names and become a :class:`ShapeProgram`, encoded as one string::

    "T,int32->T:d0_0:(d0_1*4):(d0_2/2);int32:d0_0"

``T`` is the node's compute type (the dtype of its first input; the plugin's kernels are written for
it), other types are fixed. Expressions use integers, ``d<i>_<j>``, ``+ - *``, ``/`` (exact or floor
division), ``**`` (integer powers) and ``cdiv(a,b)`` (ceiling division). The same string drives
TensorRT's IExprBuilder (output dims of the IPluginV3), OpenVINO's Python op and the generated C++
op (``netdsl_plugin_ov.hpp`` parses it), so an IR written by either OpenVINO route is read by both.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

from ..dtypes import DType
from ..errors import NetdslError, ShapeError
from ..graph import TensorSpec
from ..shapes import Sym

Expr = Union[int, tuple]  # int | ("v", i, j) | (op, a, b) with op in + - * / cdiv
_VAR = re.compile(r"^d(\d+)_(\d+)$")


class ShapeProgramError(NetdslError):
    """A plugin's declared inference cannot be expressed as a shape program."""


@dataclass(frozen=True)
class ShapeProgram:
    """Input types, and output types + dims as expressions over the input dims."""

    inputs: tuple   # "T" or a dtype name per input ("-" for an omitted optional input)
    outputs: tuple  # ((type, (Expr, ...)), ...)

    # ---- text form --------------------------------------------------------------------------
    def encode(self) -> str:
        outs = ";".join(":".join([t] + [to_text(e) for e in dims]) for t, dims in self.outputs)
        return ",".join(self.inputs) + "->" + outs

    @classmethod
    def decode(cls, text: str) -> "ShapeProgram":
        try:
            ins, outs = text.split("->")
            inputs = tuple(ins.split(",")) if ins else ()
            outputs = []
            for o in outs.split(";"):
                t, *dims = o.split(":")
                outputs.append((t, tuple(parse(d) for d in dims)))
        except (ValueError, ShapeProgramError) as e:
            raise ShapeProgramError(f"malformed plugin shape program {text!r}: {e}") from None
        return cls(inputs, tuple(outputs))

    # ---- evaluation -------------------------------------------------------------------------
    def output_shapes(self, input_shapes: Sequence[Optional[Sequence[Optional[int]]]]) -> list[tuple]:
        """Output shapes for these input shapes (a dim that is None, i.e. dynamic, gives None)."""
        return [tuple(evaluate(e, input_shapes) for e in dims) for _, dims in self.outputs]

    def output_types(self, compute: Any) -> list:
        """Each output's type: ``compute`` for "T", else the fixed dtype name."""
        return [compute if t == "T" else t for t, _ in self.outputs]


# ---- expressions ------------------------------------------------------------------------------
def to_text(e: Expr) -> str:
    if isinstance(e, int):
        return str(e)
    if e[0] == "v":
        return f"d{e[1]}_{e[2]}"
    if e[0] == "cdiv":
        return f"cdiv({to_text(e[1])},{to_text(e[2])})"
    return f"({to_text(e[1])}{e[0]}{to_text(e[2])})"


def parse(text: str) -> Expr:
    """Parse a dim expression (the grammar above; also Python's ``//`` and ``ceildiv``)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ShapeProgramError(f"not a dim expression: {text!r}") from None
    return _from_ast(tree, text)


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "/"}


def _from_ast(n: ast.AST, text: str) -> Expr:
    if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool):
        return int(n.value)
    if isinstance(n, ast.Name):
        m = _VAR.match(n.id)
        if m:
            return ("v", int(m.group(1)), int(m.group(2)))
        raise ShapeProgramError(f"{text!r} uses {n.id!r}, which is not a dim of an input")
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
        return _op("-", 0, _from_ast(n.operand, text))
    if isinstance(n, ast.BinOp):
        if isinstance(n.op, ast.Pow):
            if not (isinstance(n.right, ast.Constant) and isinstance(n.right.value, int) and n.right.value >= 1):
                raise ShapeProgramError(f"{text!r}: only positive integer powers are supported")
            base = _from_ast(n.left, text)
            out: Expr = base
            for _ in range(n.right.value - 1):
                out = _op("*", out, base)
            return out
        op = _BINOPS.get(type(n.op))
        if op is not None:
            return _op(op, _from_ast(n.left, text), _from_ast(n.right, text))
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("cdiv", "ceildiv") \
            and len(n.args) == 2 and not n.keywords:
        return _op("cdiv", _from_ast(n.args[0], text), _from_ast(n.args[1], text))
    raise ShapeProgramError(f"{text!r}: unsupported construct {ast.dump(n)[:60]}")


def _op(op: str, a: Expr, b: Expr) -> Expr:
    """A binary node, folded when both sides are constants."""
    if isinstance(a, int) and isinstance(b, int):
        return _INT_OPS[op](a, b)
    return (op, a, b)


def _floor(a: int, b: int) -> int:
    if b == 0:
        raise ShapeError("plugin shape program: division by a zero dim")
    return a // b


_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _floor,
    "cdiv": lambda a, b: -_floor(-a, b)}


def evaluate(e: Expr, shapes: Sequence[Optional[Sequence[Optional[int]]]]) -> Optional[int]:
    """Value of ``e`` for concrete input shapes; None when it depends on an unknown (dynamic) dim."""
    if isinstance(e, int):
        return e
    if e[0] == "v":
        s = shapes[e[1]]
        return None if s is None else s[e[2]]
    a, b = evaluate(e[1], shapes), evaluate(e[2], shapes)
    return None if a is None or b is None else _INT_OPS[e[0]](a, b)


def fold(e: Expr, leaf: Callable[[Any], Any], binop: Callable[[str, Any, Any], Any]) -> Any:
    """Rebuild ``e`` in another algebra (e.g. TensorRT's IExprBuilder): ``leaf`` maps ints and
    ``("v", i, j)`` nodes, ``binop(op, a, b)`` combines."""
    if isinstance(e, int) or e[0] == "v":
        return leaf(e)
    return binop(e[0], fold(e[1], leaf, binop), fold(e[2], leaf, binop))


# ---- tracing the declared inference -----------------------------------------------------------
def _rename(specs: Sequence[Optional[TensorSpec]]) -> list[Optional[TensorSpec]]:
    """Input specs whose symbolic dims are renamed to ``d<i>_<j>`` (products of known symbols are kept
    as products, so equal dims stay equal and ``N*T`` stays ``d0_0*d0_1``)."""
    names: dict[str, str] = {}
    for i, s in enumerate(specs):
        for j, d in enumerate(s.shape if s is not None else ()):
            if isinstance(d, Sym) and d.coeff == 1 and len(d.terms) == 1 and d.terms[0][1] == 1:
                names.setdefault(d.terms[0][0], f"d{i}_{j}")
    out: list[Optional[TensorSpec]] = []
    for i, s in enumerate(specs):
        if s is None:
            out.append(None)
            continue
        dims = []
        for j, d in enumerate(s.shape):
            if isinstance(d, Sym):
                known = all(n in names for n in d.symbols)
                d = Sym([(names[n], p) for n, p in d.terms], d.coeff) if known else Sym.of(f"d{i}_{j}")
            dims.append(d)
        out.append(TensorSpec(s.dtype, tuple(dims)))
    return out


def _sym_expr(d: Any, what: str) -> Expr:
    if isinstance(d, int):
        return d
    if not isinstance(d, Sym):
        raise ShapeProgramError(f"{what} is {d!r}, not an int or a symbolic dim")
    num: Expr = d.coeff.numerator
    den: Expr = d.coeff.denominator
    for name, p in d.terms:
        factor = parse(name)
        for _ in range(abs(p)):
            if p > 0:
                num = _op("*", num, factor) if num != 1 else factor
            else:
                den = _op("*", den, factor) if den != 1 else factor
    return num if den == 1 else _op("/", num, den)


def trace(opdef: Any, specs: Sequence[Optional[TensorSpec]], attrs: dict) -> ShapeProgram:
    """The shape program of one node: ``opdef.infer`` run on renamed input dims."""
    first = next((s for s in specs if s is not None), None)
    primary = first.dtype if first is not None else DType.float32
    try:
        outs = opdef.infer_specs(_rename(specs), attrs)
    except Exception as e:  # e.g. int() of a Sym: the inference only works on static dims
        raise ShapeProgramError(f"plugin '{opdef.name}': its shape inference fails on symbolic input dims "
                                f"({type(e).__name__}: {e}); shape inference must accept symbolic dims "
                                "(netdsl.shapes.Sym: use + - * / // on dims, never int())") from e
    ins = tuple("-" if s is None else ("T" if s.dtype == primary else s.dtype.value) for s in specs)
    outputs = []
    for k, o in enumerate(outs):
        dims = tuple(_sym_expr(d, f"plugin '{opdef.name}' output {k} dim {j}") for j, d in enumerate(o.shape))
        outputs.append(("T" if o.dtype == primary else o.dtype.value, dims))
    return ShapeProgram(ins, tuple(outputs))


__all__ = ["ShapeProgram", "ShapeProgramError", "trace", "parse", "evaluate", "fold", "to_text"]
