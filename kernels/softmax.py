"""Softmax and the fused softmax cross-entropy on logits, with the max shift."""

from __future__ import annotations

import numpy as np

from kernels._jit import jit
from kernels.vexp import vexp


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
        s += vexp(a[r, k] - m)
    return m, s


@jit
def softmax_rows(a):
    """Row-wise softmax of a (N, C) in place: exp(a - max) / sum, as the book writes it."""
    n, c = a.shape
    for r in range(n):
        m, s = row_max_sumexp(a, r)
        for k in range(c):
            a[r, k] = vexp(a[r, k] - m) / s


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


# Which loss a fused kernel computes on the softmax outputs: an integer argument, so one compiled
# kernel serves both and the Python layer chooses per call.
CROSS_ENTROPY = 0
SUM_SQUARED = 1


@jit
def row_residuals(a, r, label, p, res):
    """Softmax p[k] of row r and the residuals res[k] = p[k] - onehot(label)[k]; returns (R0, q).

    R0 = sum_k p_k res_k and q = 1 - p[label] = sum of the other probabilities, summed directly:
    p[label] - 1 would lose every digit of q when the net is confident.
    """
    c = a.shape[1]
    m, s = row_max_sumexp(a, r)
    q = a.dtype.type(0)
    for k in range(c):
        p[k] = vexp(a[r, k] - m) / s
        if k != label:
            q += p[k]
    r0 = a.dtype.type(0)
    for k in range(c):
        res[k] = -q if k == label else p[k]
        r0 += p[k] * res[k]
    return r0, q


@jit
def row_sum_squared(a, r, label, p, res):
    """Half the squared distance between softmax(a[r]) and the one-hot label: (sum_{k != t} p_k^2 + q^2) / 2."""
    row_residuals(a, r, label, p, res)
    total = a.dtype.type(0)
    for k in range(a.shape[1]):
        total += res[k] * res[k]
    return total / (a.dtype.type(1) + a.dtype.type(1))


@jit
def softmax_sum_squared(a, t):
    """Mean over rows of half the squared distance between softmax(a) (N, C) and the one-hot labels t (N,)."""
    n, c = a.shape
    p = np.empty(c, dtype=a.dtype)
    res = np.empty(c, dtype=a.dtype)
    total = a.dtype.type(0)
    for r in range(n):
        total += row_sum_squared(a, r, t[r], p, res)
    return total / a.dtype.type(n)


@jit
def row_sum_squared_delta(a, r, label, p, res, scale, out):
    """out[k] = scale * dL/da_k of half the squared distance: p_k (res_k - sum_m p_m res_m)."""
    r0, _ = row_residuals(a, r, label, p, res)
    for k in range(a.shape[1]):
        out[k] = p[k] * (res[k] - r0) * scale


@jit
def softmax_sum_squared_grad(a, t):
    """Gradient of softmax_sum_squared w.r.t. the logits a (N, C): p * (res - sum(p * res)) / N by rows."""
    n, c = a.shape
    g = np.empty_like(a)
    p = np.empty(c, dtype=a.dtype)
    res = np.empty(c, dtype=a.dtype)
    inv_n = a.dtype.type(1) / a.dtype.type(n)
    for r in range(n):
        row_sum_squared_delta(a, r, t[r], p, res, inv_n, g[r])
    return g
