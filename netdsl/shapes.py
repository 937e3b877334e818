"""Shapes with symbolic dimensions.

A dimension is an ``int`` or a :class:`Sym`. A ``Sym`` is a monomial ``coeff * N**a * T**b ...``
over named symbols, so reshape/flatten arithmetic (``N*T``, ``N*64``, ``(N*64)/8``) stays exact.
Anything that is not a monomial (``(H-4)//2+1``) becomes an opaque symbol named by its expression.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterable, Sequence, Union

from .errors import ShapeError


class Sym:
    """A symbolic dimension: ``coeff * prod(symbol ** power)``."""

    __slots__ = ("coeff", "terms")

    def __init__(self, terms: Iterable[tuple[str, int]], coeff: Fraction | int = 1):
        merged: dict[str, int] = {}
        for name, p in terms:
            merged[name] = merged.get(name, 0) + p
        self.terms = tuple(sorted((n, p) for n, p in merged.items() if p != 0))
        self.coeff = Fraction(coeff)

    @classmethod
    def of(cls, name: str) -> "Sym":
        if not name or not isinstance(name, str):
            raise ShapeError(f"a symbolic dimension needs a non-empty name, got {name!r}")
        return cls([(name, 1)])

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.terms)

    def __mul__(self, other: "Dim") -> "Dim":
        if isinstance(other, int):
            return _simplify(Sym(self.terms, self.coeff * other))
        if isinstance(other, Sym):
            return _simplify(Sym(self.terms + other.terms, self.coeff * other.coeff))
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, other: "Dim") -> "Dim":
        if isinstance(other, int):
            return _simplify(Sym(self.terms, self.coeff / other))
        if isinstance(other, Sym):
            return _simplify(Sym(self.terms + tuple((n, -p) for n, p in other.terms),
                                 self.coeff / other.coeff))
        return NotImplemented

    def __rtruediv__(self, other: int) -> "Dim":
        return _simplify(Sym(tuple((n, -p) for n, p in self.terms), Fraction(other) / self.coeff))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and self.terms == other.terms and self.coeff == other.coeff

    def __hash__(self) -> int:
        return hash((self.terms, self.coeff))

    def __str__(self) -> str:
        num = [n if p == 1 else f"{n}**{p}" for n, p in self.terms if p > 0]
        den = [n if p == -1 else f"{n}**{-p}" for n, p in self.terms if p < 0]
        parts = ([str(self.coeff.numerator)] if self.coeff.numerator != 1 else []) + num
        s = "*".join(parts) if parts else "1"
        d = ([str(self.coeff.denominator)] if self.coeff.denominator != 1 else []) + den
        return s + ("/" + "/".join(d) if d else "")

    def __repr__(self) -> str:
        return f"Sym({str(self)!r})"

    def evaluate(self, env: dict[str, int]) -> int:
        """Value of this dimension given values of its symbols (raises KeyError if one is missing)."""
        v = self.coeff
        for n, p in self.terms:
            v *= Fraction(env[n]) ** p
        if v.denominator != 1:
            raise ShapeError(f"dimension {self} is not a whole number for {env}")
        return int(v)


Dim = Union[int, Sym]
Shape = tuple  # tuple[Dim, ...]


def _simplify(s: Sym) -> Dim:
    if not s.terms:
        if s.coeff.denominator != 1:
            raise ShapeError(f"dimension arithmetic gave a fraction: {s.coeff}")
        return int(s.coeff)
    return s


def as_dim(d: object) -> Dim:
    """Normalize one user-given dimension: int >= 0, a symbol name, or a Sym."""
    if isinstance(d, Sym):
        return d
    if isinstance(d, bool):
        raise ShapeError(f"bad dimension {d!r}")
    if isinstance(d, int) or (hasattr(d, "__index__") and not isinstance(d, str)):
        d = int(d)  # type: ignore[arg-type]
        if d < 0:
            raise ShapeError(f"dimension must be >= 0, got {d}")
        return d
    if isinstance(d, str):
        return Sym.of(d)
    if d is None:
        return Sym.of("?")
    raise ShapeError(f"bad dimension {d!r}: use an int or a symbol name such as 'N'")


def as_shape(shape: Iterable[object]) -> tuple[Dim, ...]:
    if isinstance(shape, (int, str)):
        shape = (shape,)
    return tuple(as_dim(d) for d in shape)


def is_static(shape: Sequence[Dim]) -> bool:
    return all(isinstance(d, int) for d in shape)


def numel(shape: Sequence[Dim]) -> Dim:
    """Product of the dims (an int when all are static)."""
    out: Dim = 1
    for d in shape:
        out = d * out  # type: ignore[operator]
    return out


def dim_div(a: Dim, b: Dim) -> Dim | None:
    """``a / b`` when it is exact (None when two static dims don't divide)."""
    if isinstance(a, int) and isinstance(b, int):
        if b == 0 or a % b:
            return None
        return a // b
    try:
        return a / b  # type: ignore[operator]
    except ShapeError:
        return None


def dim_expr(template: str, d: Dim) -> Sym:
    """An opaque symbol for a non-monomial expression of ``d`` (e.g. ``'({}-4)//2+1'``)."""
    return Sym.of(template.format(d))


def affine(d: Dim, add: int = 0, div: int = 1, add_after: int = 0, ceil: bool = False) -> Dim:
    """``(d + add) // div + add_after`` (ceil division if asked), symbolic-aware."""
    if isinstance(d, int):
        q = -((-(d + add)) // div) if ceil else (d + add) // div
        return q + add_after
    if div == 1:
        if add + add_after == 0:
            return d
        s = f"{d}{add + add_after:+d}"
        return Sym.of(f"({s})")
    op = "ceildiv" if ceil else "//"
    inner = f"{d}{add:+d}" if add else f"{d}"
    expr = f"({inner}){op}{div}" if op == "//" else f"ceildiv({inner},{div})"
    if add_after:
        expr += f"{add_after:+d}"
    return Sym.of(f"({expr})")


def broadcast_shapes(*shapes: Sequence[Dim]) -> tuple[Dim, ...]:
    """NumPy broadcasting of shapes with symbolic dims (raises ShapeError on a static mismatch)."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        res: Dim = 1
        for d in dims:
            if d == 1:
                continue
            if res == 1:
                res = d
            elif isinstance(res, int) and isinstance(d, int):
                if res != d:
                    raise ShapeError("cannot broadcast shapes " + " and ".join(fmt_shape(s) for s in shapes))
            elif isinstance(res, Sym) and isinstance(d, int):
                res = d  # the static size wins; the symbol must equal it at run time
        out.append(res)
    return tuple(out)


def fmt_shape(shape: Sequence[Dim]) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def symbols_of(shape: Sequence[Dim]) -> set[str]:
    out: set[str] = set()
    for d in shape:
        if isinstance(d, Sym):
            out.update(d.symbols)
    return out
