"""Softmax and the fused softmax cross-entropy on logits, with the max shift."""

from __future__ import annotations

import numpy as np

from kernels._jit import jit


@jit
def row_logsumexp(a, r):
    """log(sum(exp(a[r]))) with the max shift: finite for logits of any finite size."""
    c = a.shape[1]
    m = a[r, 0]
    for k in range(1, c):
        if a[r, k] > m:
            m = a[r, k]
    s = a.dtype.type(0)
    for k in range(c):
        s += np.exp(a[r, k] - m)
    return m + np.log(s)


@jit
def softmax(a):
    """Row-wise softmax of logits a (N, C) -> (N, C)."""
    n, c = a.shape
    p = np.empty_like(a)
    for r in range(n):
        lse = row_logsumexp(a, r)
        for k in range(c):
            p[r, k] = np.exp(a[r, k] - lse)
    return p


@jit
def softmax_cross_entropy(a, t):
    """Exact mean cross-entropy mean(logsumexp(a) - a[t]) of logits a (N, C), labels t (N,) int."""
    n = a.shape[0]
    total = a.dtype.type(0)
    for r in range(n):
        total += row_logsumexp(a, r) - a[r, t[r]]
    return total / a.dtype.type(n)


@jit
def softmax_cross_entropy_grad(a, t):
    """Gradient of the mean cross-entropy w.r.t. the logits: (softmax(a) - onehot(t)) / N, (N, C)."""
    n, c = a.shape
    g = softmax(a)
    one = a.dtype.type(1)
    inv_n = one / a.dtype.type(n)
    for r in range(n):
        g[r, t[r]] -= one
        for k in range(c):
            g[r, k] *= inv_n
    return g
