"""Softmax and the fused softmax cross-entropy on logits, with the max shift."""

from __future__ import annotations

import numpy as np

from kernels._jit import jit


@jit
def row_max_sumexp(a, r):
    """(m, s) for row r: m = max(a[r]) and s = sum(exp(a[r] - m)) in [1, C].

    logsumexp(a[r]) = m + log(s), but callers keep the two apart: for logits near 1e4, m + log(s)
    rounds to a multiple of ulp(1e4) and that error would scale every probability alike.
    """
    c = a.shape[1]
    m = a[r, 0]
    for k in range(1, c):
        if a[r, k] > m:
            m = a[r, k]
    s = a.dtype.type(0)
    for k in range(c):
        s += np.exp(a[r, k] - m)
    return m, s


@jit
def softmax_rows(a):
    """Row-wise softmax of a (N, C) in place: exp(a - max) / sum, as the book writes it."""
    n, c = a.shape
    for r in range(n):
        m, s = row_max_sumexp(a, r)
        for k in range(c):
            a[r, k] = np.exp(a[r, k] - m) / s


@jit
def softmax(a):
    """Row-wise softmax of logits a (N, C) -> (N, C)."""
    p = a.copy()
    softmax_rows(p)
    return p


@jit
def row_cross_entropy(a, r, label):
    """logsumexp(a[r]) - a[r, label] as (max - a[r, label]) + log(sum exp(a[r] - max))."""
    m, s = row_max_sumexp(a, r)
    return (m - a[r, label]) + np.log(s)


@jit
def softmax_cross_entropy(a, t):
    """Exact mean cross-entropy mean(logsumexp(a) - a[t]) of logits a (N, C), labels t (N,) int."""
    n = a.shape[0]
    total = a.dtype.type(0)
    for r in range(n):
        total += row_cross_entropy(a, r, t[r])
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
