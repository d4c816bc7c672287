"""Sigmoid and its derivative, without overflow for any finite input."""

from __future__ import annotations

import numpy as np

from kernels._jit import jit


@jit
def sigmoid(a):
    """1 / (1 + exp(-a)) elementwise, any shape; exp only of -|a|, so no overflow at |a| = 1e4."""
    out = np.empty_like(a)
    af = a.reshape(a.size)
    of = out.reshape(out.size)
    one = a.dtype.type(1)
    for k in range(af.size):
        v = af[k]
        e = np.exp(-abs(v))
        r = one / (one + e)
        of[k] = r if v >= 0 else e * r
    return out


@jit
def sigmoid_grad(a):
    """sigmoid(a) * (1 - sigmoid(a)) elementwise, as exp(-|a|) / (1 + exp(-|a|))**2 (no cancellation)."""
    out = np.empty_like(a)
    af = a.reshape(a.size)
    of = out.reshape(out.size)
    one = a.dtype.type(1)
    for k in range(af.size):
        e = np.exp(-abs(af[k]))
        r = one / (one + e)
        of[k] = e * r * r
    return out
