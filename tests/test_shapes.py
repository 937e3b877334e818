import pytest

from netdsl.errors import ShapeError
from netdsl.shapes import Sym, affine, as_shape, broadcast_shapes, dim_div, fmt_shape, numel


def test_monomial_arithmetic():
    n, t = Sym.of("N"), Sym.of("T")
    assert str(n * 64) == "64*N"
    assert str(n * t) == "N*T"
    assert dim_div(n * t * 12, t * 3) == n * 4
    assert dim_div(n * 64, 8) == n * 8
    assert dim_div(n * 64, n) == 64
    assert (n * 2) / 2 == n
    assert numel((n, 3, 4)) == n * 12
    assert (n * t).evaluate({"N": 2, "T": 5}) == 10


def test_static_division_must_be_exact():
    assert dim_div(12, 5) is None
    assert dim_div(12, 4) == 3


def test_affine_symbolic_and_static():
    assert affine(28, -4, 1, 1) == 25
    assert affine(7, -3, 2, 1, ceil=True) == 3
    h = affine(Sym.of("H"), -4, 2, 1)
    assert isinstance(h, Sym) and "H" in str(h)


def test_broadcast():
    n = Sym.of("N")
    assert broadcast_shapes((n, 3, 1), (4,)) == (n, 3, 4)
    assert broadcast_shapes((1,), (n,)) == (n,)
    with pytest.raises(ShapeError):
        broadcast_shapes((2, 3), (4, 3))


def test_as_shape_rejects_bad_dims():
    assert as_shape(("N", 3)) == (Sym.of("N"), 3)
    with pytest.raises(ShapeError):
        as_shape((-1, 3))
    assert fmt_shape((3,)) == "(3,)"


def test_sums_and_floor_division_of_symbols_are_opaque_symbols():
    h, n = Sym.of("H"), Sym.of("N")
    pool = (h + 2 * 1 - 3) // 2 + 1                      # a strided pooling's output length
    assert isinstance(pool, Sym) and str(pool) == "(((H-1)//2)+1)"
    assert pool == (h - 1) // 2 + 1                       # same expression, same symbol
    assert (h + 3) - 3 == h and (h * 3 + 1) - 1 == h * 3 and (h * n + 2) - 2 == h * n  # offsets fold back
    assert h + 0 is h and h // 1 is h
    assert n + n == n * 2 and n - n == 0 and (n * 3) - n == n * 2   # like terms still combine
    assert (n * 4) // 2 == n * 2 and (n * h) // h == n    # exact divisions stay monomials
    assert str((n * 3) // 2) == "(3*N//2)" and str(5 - h) == "(5-H)" and str(h + n) == "(H+N)"
    assert str(affine(h, -4, 2, 1) + 2) == "((H-4)//2+3)"
    with pytest.raises(TypeError):
        h + 1.5
    with pytest.raises(TypeError):
        h + True
