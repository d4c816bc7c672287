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
def shifted_exp(a):
    """(e, m, s): e = exp(a - m) with m the row maxima of a (N, C), and s the row sums of e.

    The exponentials are one flat loop over N * C with `vexp`, which vectorises; a loop over each
    row's C classes (10 for MNIST) is too short to.
    """
    n, c = a.shape
    e = np.empty_like(a)
    m = np.empty(n, dtype=a.dtype)
    s = np.empty(n, dtype=a.dtype)
    for r in range(n):
        mr = a[r, 0]
        for k in range(1, c):
            mr = a[r, k] if a[r, k] > mr else mr
        m[r] = mr
        for k in range(c):
            e[r, k] = a[r, k] - mr
    flat = e.reshape(n * c)
    for i in range(n * c):
        flat[i] = vexp(flat[i])
    for r in range(n):
        total = a.dtype.type(0)
        for k in range(c):
            total += e[r, k]
        s[r] = total
    return e, m, s


@jit
def softmax(a):
    """Row-wise softmax of logits a (N, C) -> (N, C)."""
    p, _, s = shifted_exp(a)
    for r in range(a.shape[0]):
        for k in range(a.shape[1]):
            p[r, k] /= s[r]
    return p


@jit
def softmax_cross_entropy(a, t):
    """Exact mean cross-entropy mean(logsumexp(a) - a[t]) of logits a (N, C), labels t (N,) int.

    Each row's logsumexp - a[t] is (max - a[t]) + log(sum exp(a - max)): for logits near 1e4,
    max + log(sum) would round to a multiple of ulp(1e4) first.
    """
    n = a.shape[0]
    _, m, s = shifted_exp(a)
    total = a.dtype.type(0)
    for r in range(n):
        total += (m[r] - a[r, t[r]]) + np.log(s[r])
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
def _probabilities_and_rest(p, r, s, label):
    """Row r of p (exp(a - max), in place) divided by its sum s; returns q = 1 - p[label], summed
    from the other classes (p[label] - 1 would lose q's digits when the net is confident)."""
    q = p.dtype.type(0)
    for k in range(p.shape[1]):
        p[r, k] /= s
        if k != label:
            q += p[r, k]
    return q


@jit
def sum_squared_row(p, r, s, label):
    """Twice row r's sum-of-squares loss, sum_{k != t} p_k^2 + q^2, from p = exp(a - max) (made
    the softmax in place) and its sum s."""
    q = _probabilities_and_rest(p, r, s, label)
    row = q * q
    for k in range(p.shape[1]):
        if k != label:
            row += p[r, k] * p[r, k]
    return row


@jit
def sum_squared_row_grad(p, r, s, label, scale):
    """Row r of p = exp(a - max) (sum s) replaced by scale * dL/da of its sum-of-squares loss:
    p * (res - sum(p * res)), res = p - onehot(t) with res[t] = -q."""
    c = p.shape[1]
    q = _probabilities_and_rest(p, r, s, label)
    r0 = -p[r, label] * q
    for k in range(c):
        if k != label:
            r0 += p[r, k] * p[r, k]
    for k in range(c):
        res = -q if k == label else p[r, k]
        p[r, k] = p[r, k] * (res - r0) * scale


@jit
def softmax_sum_squared(a, t):
    """Mean over rows of half the squared distance between softmax(a) (N, C) and the one-hot labels t (N,).

    Per row (sum_{k != t} p_k^2 + q^2) / 2, with q = 1 - p_t summed from the other classes.
    """
    n = a.shape[0]
    p, _, s = shifted_exp(a)
    total = a.dtype.type(0)
    for r in range(n):
        total += sum_squared_row(p, r, s[r], t[r])
    return total / (a.dtype.type(2) * a.dtype.type(n))


@jit
def softmax_sum_squared_grad(a, t):
    """Gradient of softmax_sum_squared w.r.t. the logits a (N, C): p * (res - sum(p * res)) / N by rows,
    with res = p - onehot(t) and res[t] = -q."""
    n = a.shape[0]
    g, _, s = shifted_exp(a)
    inv_n = a.dtype.type(1) / a.dtype.type(n)
    for r in range(n):
        sum_squared_row_grad(g, r, s[r], t[r], inv_n)
    return g
