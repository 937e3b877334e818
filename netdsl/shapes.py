"""Shapes with symbolic dimensions.

A dimension is an ``int`` or a :class:`Sym`. A ``Sym`` is a monomial ``coeff * N**a * T**b ...``
over named symbols, so reshape/flatten arithmetic (``N*T``, ``N*64``, ``(N*64)/8``) stays exact.
Anything that is not a monomial (``(H-4)//2+1``) becomes an opaque symbol named by its expression.
"""
from __future__ import annotations

import re
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
        self.coeff = coeff if type(coeff) is Fraction else Fraction(coeff)  # immutable: shared as is

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

    # Sums and floor divisions are not monomials: they give an opaque symbol named by the expression
    # (as ``affine`` does), e.g. ``(H + 2) // 2 + 1`` -> ``(((H+2)//2)+1)``; like terms still combine.
    def __add__(self, other: "Dim") -> "Dim":
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        if isinstance(other, int):
            base, c = _offset(self)
            return base if c + other == 0 else Sym.of(f"({base}{c + other:+d})")
        if other.terms == self.terms:
            return _simplify(Sym(self.terms, self.coeff + other.coeff)) if self.coeff + other.coeff else 0
        return Sym.of(f"({self}+{other})")

    __radd__ = __add__

    def __sub__(self, other: "Dim") -> "Dim":
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        if isinstance(other, int):
            return self + (-other)
        if other.terms == self.terms:
            return _simplify(Sym(self.terms, self.coeff - other.coeff)) if self.coeff != other.coeff else 0
        return Sym.of(f"({self}-{other})")

    def __rsub__(self, other: int) -> "Dim":
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        return Sym.of(f"({other}-{self})")

    def __floordiv__(self, other: "Dim") -> "Dim":
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        if other == 1:
            return self
        q = self / other
        if isinstance(q, int) or q.coeff.denominator == 1 and all(p > 0 for _, p in q.terms):
            return q  # exact: N*4 // 2 == 2*N, N*T // T == N
        return Sym.of(f"({self}//{other})")

    def __rfloordiv__(self, other: int) -> "Dim":
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        return Sym.of(f"({other}//{self})")

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


_OFFSET = re.compile(r"^\((.+)([+-]\d+)\)$")


def _offset(s: Sym) -> "tuple[Dim, int]":
    """``(X+c)`` -> (X, c) for an opaque symbol made by adding an int to X (else (s, 0))."""
    m = _OFFSET.match(s.terms[0][0]) if s.coeff == 1 and len(s.terms) == 1 and s.terms[0][1] == 1 else None
    if m is None:
        return s, 0
    x = m.group(1)
    depth = 0
    for ch in x:  # X must be one balanced expression: "(H+1)-(W" is not
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return s, 0
    if depth:
        return s, 0
    return (Sym.of(x) if not _MONOMIAL.match(x) else _monomial(x)), int(m.group(2))


_FACTOR = r"[A-Za-z_][A-Za-z0-9_]*(?:\*\*\d+)?"
_MONOMIAL = re.compile(rf"^(?:\d+\*)?{_FACTOR}(?:\*{_FACTOR})*$")


def _monomial(text: str) -> Sym:
    """``'3*H*W'``, ``'N**2'``: the Sym that prints as ``text`` (so ``(3*H+1) - 1`` is ``3*H`` again)."""
    coeff, terms = 1, []
    for f in re.findall(rf"\d+(?=\*)|{_FACTOR}", text):
        if f.isdigit():
            coeff = int(f)
        else:
            name, _, power = f.partition("**")
            terms.append((name, int(power or 1)))
    return Sym(terms, coeff)


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
