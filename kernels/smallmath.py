"""expm1 and log1p of tiny arguments by short polynomials, exact to an ulp in a guarded range.

The numerical-gradient kernels evaluate millions of expm1/log1p of arguments around 1e-7. libm's
versions cannot be vectorised; these Horner polynomials can. Each is the Taylor series truncated
where the first omitted term is below 2**-54 relative for |u| <= SMALL, so the result is the
correctly rounded value up to the rounding of Horner's scheme (about one ulp). Callers check the
bound for a whole block first and fall back to libm outside it.

`one` is the 1 of the working dtype, so every constant below is typed: no float32 -> float64 upcast.
"""

from __future__ import annotations

from kernels._jit import jit

SMALL = 2.0 ** -10  # |u|^6/720 and |s|^6/7 are < 2**-54 below this


@jit
def expm1_small(u, one):
    """expm1(u) for |u| <= SMALL (Taylor to u**5)."""
    # Integers built from `one`: a literal like 1 / 6 would be float64 and upcast float32 work.
    two = one + one
    three = two + one
    c2 = one / two
    c3 = c2 / three
    c4 = c3 / (two + two)
    c5 = c4 / (three + two)
    return u * (one + u * (c2 + u * (c3 + u * (c4 + u * c5))))


@jit
def log1p_small(s, one):
    """log1p(s) for |s| <= SMALL (Taylor to s**6)."""
    two = one + one
    three = two + one
    return s * (one - s * (one / two - s * (one / three - s * (one / (two + two) - s * (
        one / (three + two) - s * (one / (three + three)))))))
