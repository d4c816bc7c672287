"""Sigmoid and its derivative, without overflow for any finite input."""

from __future__ import annotations

import numpy as np

from kernels._jit import jit
from kernels.vexp import vexp


@jit
def sigmoid_pair(v, one):
    """(sigmoid(v), sigmoid(-v)) of a scalar from exp(-|v|) only: no overflow, and the small one of
    the two is exact to rounding even where it underflows towards 0. `one` is 1 of v's dtype.
    Branch-free, with the vectorisable `vexp`: loops over it run as SIMD."""
    e = vexp(-abs(v))
    s = one / (one + e)
    small = e * s
    pos = v >= 0
    return (s if pos else small), (small if pos else s)


@jit
def sigmoid(a):
    """1 / (1 + exp(-a)) elementwise, any shape; exp only of -|a|, so no overflow at |a| = 1e4."""
    out = np.empty_like(a)
    af = a.reshape(a.size)
    of = out.reshape(out.size)
    one = a.dtype.type(1)
    for k in range(af.size):
        of[k] = sigmoid_pair(af[k], one)[0]
    return out


@jit
def sigmoid_grad(a):
    """sigmoid(a) * (1 - sigmoid(a)) elementwise, as sigmoid(a) * sigmoid(-a) (no cancellation)."""
    out = np.empty_like(a)
    af = a.reshape(a.size)
    of = out.reshape(out.size)
    one = a.dtype.type(1)
    for k in range(af.size):
        s, c = sigmoid_pair(af[k], one)
        of[k] = s * c
    return out
