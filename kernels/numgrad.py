"""Perturb-and-evaluate numerical differentiation: structure-aware for the two-layer net, and generic.

The two-layer kernel computes, for every parameter p, the loss at theta + h e_p and theta - h e_p
exactly, but without re-running the network. From the cached forward pass it evaluates only what
the perturbation changes, as a sum over samples of per-sample loss differences:

* W1[i, j] and b1[j] move hidden unit j by d = h * x[n, i] (or h). Samples with x[n, i] == 0 are
  unchanged and skipped. The hidden activation moves by
      dz = sigmoid(a + d) - sigmoid(a) = -expm1(-d) * sigmoid(-a) * sigmoid(a + d),
  with sigmoid(a + d) = 1 / (1 + exp(-a) * exp(-d)), so one division per (n, i, j) and no
  cancellation. The logits move by dz * W2[j, :], and the per-sample loss changes by
      log(sum_c p_c exp(dz * (W2[j, c] - W2[j, t]))) = log1p(sum_c p_c expm1(dz * (W2[j, c] - W2[j, t])))
  (p = softmax of the unperturbed logits, t the label), which never subtracts two losses.
* W2[j, k] and b2[k] move logit k by u = h * z[n, j] (or h): the loss changes by
  log1p(p_k expm1(u)) for k != t and log1p((1 - p_t) expm1(-u)) for k == t.

With the sum-of-squares loss L = |y - T|^2 / 2 (y = softmax, T one-hot) the same moves are
evaluated through the change of the probabilities. Moving the logits by dz u_k (u_k = W2[j, k]
minus the p-weighted mean of W2[j, :]; softmax ignores the shift, and centring keeps the first-order
term a direct sum instead of a difference) gives E_k = expm1(dz u_k), s = sum_k p_k E_k and
      dp_k = p_k (E_k - s) / (1 + s),   dL = sum_k dp_k (r_k + dp_k / 2),   r = p - T,
with r_t = -(sum of the other p) so that a confident net keeps its digits. On the polynomial path
dL is expanded once per (sample, hidden unit) as a series in dz: with the moments of p u^m, p r u^m
and p^2 u^m (and E_k^2 = expm1(2 dz u_k) - 2 expm1(dz u_k)) the numerator and denominator are
series, and their quotient, truncated at dz^5 like the cross-entropy's moments, is evaluated by
Horner's scheme per (sample, input, hidden unit). Moving logit k alone by u gives
      dL = s (G_k + s Q_k / (2 (1 + s))) / (1 + s),   s = p_k expm1(u),
with G_k = r_k - sum_m p_m r_m and Q_k = (1 - p_k)^2 + sum_{m != k} p_m^2. Large moves take the
softmax of the moved logits instead, as for the cross-entropy.

These are exact rearrangements, not expansions in h: the result is the finite difference at
the h the caller gave, for any h. Only expm1 and log1p of tiny arguments are evaluated by short
Taylor polynomials, truncated where the first omitted term is below 2**-54 relative (exact to an
ulp, see `smallmath`). For the hidden units that is done once per class: with the moments
M_m = sum_k p_k w_k^m / m! of the logit offsets w_k = W2[j, k] - W2[j, t], the sum
sum_k p_k expm1(dz w_k) is the polynomial dz (M_1 + dz (M_2 + ... )), the same series regrouped,
so each (sample, input, hidden unit) costs a few fused multiply-adds instead of C exponentials.
A block whose arguments could leave the guarded range (large h, large weights) takes libm's
expm1/log1p per class instead; there the work of each sample is done once per distinct input
value (pixels repeat) and added into every input that has that value, with the same bits.
The hidden block, nearly all of the work, is parallel over the columns of W1; every entry is
summed by one thread in a fixed order, so results do not depend on the thread count. The other
steps are serial: waking numba's workers (which sleep between regions, see `_jit`; about 0.16 ms
per region on a 2-core VM) costs more than those steps take at MNIST sizes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, prange

from kernels._jit import driver, jit
from kernels.activation import sigmoid_pair
from kernels.smallmath import SMALL, expm1_small, log1p_small
from kernels.softmax import CROSS_ENTROPY, SUM_SQUARED, row_residuals
from kernels.affine import BLOCK, block_order, row_scratch
from kernels.twolayer import hidden_block, logits_row

CENTRAL = 0
FORWARD = 1
BACKWARD = 2
COMPLEX = 3

# Large steps (or large weights) send the hidden block to libm's expm1/log1p per class, about 70
# times the cost of the polynomial path. There, grouping each sample's inputs by value does that
# work once per distinct value: an MNIST digit has about two pixels per value (bytes / 255), a
# scikit-learn digit about three (values / 16). Measured here on 784-50-10, batch 100, h = 0.5:
# 146 -> 63 ms. On the polynomial path it does not pay: hashing the values and the second
# parallel region (about 0.16 ms to wake numba's sleeping workers on a 2-core VM) cost what it
# saves. Grouping is skipped when the first GROUPING_PROBE_ROWS samples have more groups than
# 3/4 of their non-zero inputs, or when its table would exceed GROUPING_MAX_ENTRIES numbers.
GROUPING_PROBE_ROWS = 4
GROUPING_MAX_ENTRIES = 1 << 22  # 32 MiB of float64: batch 256 of MNIST at 100 hidden units fits


@jit
def _direction_weights(method, one):
    """Weights of the +h and -h loss changes: central (1, -1), forward (1, 0), backward (0, -1)."""
    zero = one - one
    if method == FORWARD:
        return one, zero
    if method == BACKWARD:
        return zero, -one
    return one, -one


@jit
def _input_columns(x):
    """x transposed with an extra all-ones row (the b1 "input"), the non-zeros per row of that,
    and the largest |input| (at least 1, the bias's)."""
    n, d = x.shape
    xT = np.empty((d + 1, n), dtype=x.dtype)
    counts = np.zeros(d + 1, dtype=np.int64)
    one = x.dtype.type(1)
    largest = one
    for i in range(d):
        c = 0
        for r in range(n):
            v = x[r, i]
            xT[i, r] = v
            c += v != 0
            largest = max(largest, abs(v))
        counts[i] = c
    for r in range(n):
        xT[d, r] = one
    counts[d] = n
    return xT, counts, largest


@jit
def _balanced_order(counts):
    """Columns ordered largest, smallest, 2nd largest, ...: contiguous thread shares get equal work.

    Counts are non-zeros per column, small integers, so a stable counting sort orders them (numba's
    argsort takes about a second to compile; this takes a tenth of that).
    """
    m = counts.size
    top = 0
    for c in range(m):
        top = max(top, counts[c])
    first = np.zeros(top + 2, dtype=np.int64)  # first[top - c + 1]: columns with more than c
    for c in range(m):
        first[top - counts[c] + 1] += 1
    for v in range(top + 1):
        first[v + 1] += first[v]
    by_cost = np.empty(m, dtype=np.int64)
    for c in range(m):  # ascending column index within equal counts, as a stable sort gives
        v = top - counts[c]
        by_cost[first[v]] = c
        first[v] += 1
    order = np.empty(m, dtype=np.int64)
    lo = 0
    hi = m - 1
    k = 0
    while lo <= hi:
        order[k] = by_cost[lo]
        k += 1
        lo += 1
        if lo <= hi:
            order[k] = by_cost[hi]
            k += 1
            hi -= 1
    return order


@jit
def _sigmoid_step(a, d, one):
    """sigmoid(a + d) - sigmoid(a) for any finite a and d, without cancellation or overflow.

    For d >= 0 it is -expm1(-d) sigmoid(-a) sigmoid(a + d); for d < 0 the mirror image
    expm1(d) sigmoid(a) sigmoid(-(a + d)). Each expm1 factor lies in (-1, 1).
    """
    if d >= 0:
        return -np.expm1(-d) * sigmoid_pair(a, one)[1] * sigmoid_pair(a + d, one)[0]
    return np.expm1(d) * sigmoid_pair(a, one)[0] * sigmoid_pair(a + d, one)[1]


@jit
def _lse_shifted(B, r, shift, skip, other):
    """log(sum_k exp(B[r, k] + shift_k)) with shift_k = `shift` for k != skip and `other` for k == skip.

    skip = -1 shifts every logit by `shift` (pass 0 to get the unperturbed lse). Stable for any size.
    """
    c = B.shape[1]
    m = B[r, 0] + (other if skip == 0 else shift)
    for k in range(1, c):
        m = max(m, B[r, k] + (other if skip == k else shift))
    s = B.dtype.type(0)
    for k in range(c):
        s += np.exp(B[r, k] + (other if skip == k else shift) - m)
    return m + np.log(s)


@jit
def _hidden_loss_change(p, B, L0, r, tr, W2T, j, dz):
    """Per-sample loss change when hidden unit j moves by dz (any size): lse(B + dz w) - lse(B).

    w_k = W2[j, k] - W2[j, t]. While every |dz w_k| <= 1 it is log1p(sum_k p_k expm1(dz w_k)),
    exact for small changes (1 + the sum stays above e^-1, so log1p sees no cancellation);
    beyond that the log-sum-exp of the moved logits, which neither overflows nor depends on
    probabilities that may have underflowed.
    """
    c = p.shape[1]
    one = W2T.dtype.type(1)
    vmax = W2T.dtype.type(0)
    for k in range(c):
        vmax = max(vmax, abs(dz * (W2T[k, j] - W2T[tr, j])))
    if vmax <= one:
        s = W2T.dtype.type(0)
        for k in range(c):
            if k != tr:
                s += p[r, k] * np.expm1(dz * (W2T[k, j] - W2T[tr, j]))
        return np.log1p(s)
    m = B[r, 0] + dz * (W2T[0, j] - W2T[tr, j])
    for k in range(1, c):
        m = max(m, B[r, k] + dz * (W2T[k, j] - W2T[tr, j]))
    s = W2T.dtype.type(0)
    for k in range(c):
        s += np.exp(B[r, k] + dz * (W2T[k, j] - W2T[tr, j]) - m)
    return (m + np.log(s)) - L0[r]


@jit
def _probability_change_loss(p, Y, r, k, dp):
    """Sample r's sum-of-squares change contributed by probability k moving by dp: dp (r_k + dp / 2)."""
    one = p.dtype.type(1)
    return dp * (Y[r, k, 0] + one / (one + one) * dp)


@jit
def _hidden_loss_change_sse(p, Y, B, cbar, r, W2T, j, dz):
    """Per-sample sum-of-squares change when hidden unit j moves by dz (any size).

    u_k = W2[j, k] - cbar[r, j]. While every |dz u_k| <= 1: dp_k = p_k (E_k - s) / (1 + s) with
    E_k = expm1(dz u_k), s = sum p_k E_k (1 + s >= e^-1); beyond that the softmax of the moved
    logits, which cannot overflow, minus p.
    """
    c = p.shape[1]
    one = W2T.dtype.type(1)
    mid = cbar[r, j]
    vmax = W2T.dtype.type(0)
    for k in range(c):
        vmax = max(vmax, abs(dz * (W2T[k, j] - mid)))
    total = W2T.dtype.type(0)
    if vmax <= one:
        s = W2T.dtype.type(0)
        for k in range(c):
            s += p[r, k] * np.expm1(dz * (W2T[k, j] - mid))
        inv = one / (one + s)
        for k in range(c):
            dp = p[r, k] * (np.expm1(dz * (W2T[k, j] - mid)) - s) * inv
            total += _probability_change_loss(p, Y, r, k, dp)
        return total
    m = B[r, 0] + dz * (W2T[0, j] - mid)
    for k in range(1, c):
        m = max(m, B[r, k] + dz * (W2T[k, j] - mid))
    sm = W2T.dtype.type(0)
    for k in range(c):
        sm += np.exp(B[r, k] + dz * (W2T[k, j] - mid) - m)
    for k in range(c):
        dp = np.exp(B[r, k] + dz * (W2T[k, j] - mid) - m) / sm - p[r, k]
        total += _probability_change_loss(p, Y, r, k, dp)
    return total


@jit
def _output_loss_change_sse(p, Y, B, r, k, u):
    """Per-sample sum-of-squares change when logit k moves by u (any size).

    s (G_k + s Q_k / (2 (1 + s))) / (1 + s) with s = p_k expm1(u) while |u| <= 1; beyond that
    the softmax of the moved logits minus p.
    """
    one = B.dtype.type(1)
    half = one / (one + one)
    if abs(u) <= one:
        sv = p[r, k] * np.expm1(u)
        inv = one / (one + sv)
        return sv * (Y[r, k, 1] + half * sv * Y[r, k, 2] * inv) * inv
    c = B.shape[1]
    m = B[r, 0] + (u if k == 0 else B.dtype.type(0))
    for i in range(1, c):
        m = max(m, B[r, i] + (u if k == i else B.dtype.type(0)))
    sm = B.dtype.type(0)
    for i in range(c):
        sm += np.exp(B[r, i] + (u if k == i else B.dtype.type(0)) - m)
    total = B.dtype.type(0)
    for i in range(c):
        dp = np.exp(B[r, i] + (u if k == i else B.dtype.type(0)) - m) / sm - p[r, i]
        total += _probability_change_loss(p, Y, r, i, dp)
    return total


@jit
def _output_loss_change(B, L0, r, k, tr, coef, u):
    """Per-sample loss change when logit k moves by u (any size); coef = p_k, or 1 - p_t if k == t.

    log1p(coef expm1(+-u)) while |u| <= 1 (exact for small moves); beyond that the log-sum-exp
    of the moved logits relative to the label's (the label's own move shifts all the others).
    """
    one = B.dtype.type(1)
    zero = B.dtype.type(0)
    if k == tr:
        if abs(u) <= one:
            return np.log1p(coef * np.expm1(-u))
        return _lse_shifted(B, r, -u, tr, zero) - L0[r]
    if abs(u) <= one:
        return np.log1p(coef * np.expm1(u))
    return _lse_shifted(B, r, zero, k, u) - L0[r]


@jit
def _loss_cache_row(r, t, a2, W2T, loss, p, q, M, B, L0, Y, cbar):
    """Row r of p, q, M, B, L0, Y and cbar from the logits a2 (see _cached_forward)."""
    c = a2.shape[1]
    hid = W2T.shape[1]
    dt = a2.dtype
    one = dt.type(1)
    zero = dt.type(0)
    c2 = one / (one + one)
    c3 = c2 / (one + one + one)
    c4 = c3 / (one + one + one + one)
    c5 = c4 / (one + one + one + one + one)
    res = np.empty(c, dtype=dt)
    tr = t[r]
    r0, qr = row_residuals(a2, r, tr, p[r], res)
    q[r] = qr  # 1 - p[t] without the cancellation when p[t] is close to 1
    p2 = zero
    for k in range(c):
        p2 += p[r, k] * p[r, k]
    for k in range(c):
        Y[r, k, 0] = res[k]
        Y[r, k, 1] = res[k] - r0
        rest = zero  # 1 - p_k, summed
        for m in range(c):
            if m != k:
                rest += p[r, m]
        Y[r, k, 2] = p2 - p[r, k] * p[r, k] + rest * rest
    for k in range(c):
        B[r, k] = a2[r, k] - a2[r, tr]
    L0[r] = _lse_shifted(B, r, zero, np.int64(-1), zero)
    if loss == SUM_SQUARED:
        _sum_squared_series(p, res, r0, p2, W2T, r, cbar, M)
        return
    for k in range(c):
        if k == tr:
            continue
        pk = p[r, k]
        for j in range(hid):
            w = W2T[k, j] - W2T[tr, j]
            t1 = pk * w
            t2 = t1 * w
            t3 = t2 * w
            t4 = t3 * w
            M[r, 0, j] += t1
            M[r, 1, j] += t2 * c2
            M[r, 2, j] += t3 * c3
            M[r, 3, j] += t4 * c4
            M[r, 4, j] += t4 * w * c5


@jit
def _cache_block(blk, x, t, W1, b1, W2, b2, W2T, loss, a1, z, zc, E, a2, p, q, M, B, L0, Y, cbar):
    """Rows 8 blk .. 8 blk + 7 of the whole forward cache: a1, z and zc (see
    twolayer.hidden_block), then each row's E = exp(-a1), logits and the rest."""
    r0 = BLOCK * blk
    words, cols = row_scratch(x)
    hidden_block(x, r0, W1, b1, a1, z, zc, words, cols)
    for r in range(r0, min(r0 + BLOCK, x.shape[0])):
        for j in range(W1.shape[1]):
            E[r, j] = zc[r, j] / z[r, j]  # exp(-a) = sigmoid(-a) / sigmoid(a): inf or 0 where it should be
        logits_row(z, r, W2, b2, a2)
        _loss_cache_row(r, t, a2, W2T, loss, p, q, M, B, L0, Y, cbar)


# Rows at which the forward cache is built in parallel: below, waking the workers costs more
# than it saves (the cache of one MNIST row takes about 2.5 us).
_PARALLEL_CACHE_ROWS = 16


@jit(parallel=True)
def _cached_forward(x, t, W1, b1, W2, b2, loss):
    """Everything the perturbations reuse, built in parallel over blocks of eight rows (rows share
    nothing).

    a1, z, zc = 1 - z and E = exp(-a1) (N, H); softmax p (N, C); q = 1 - p[t] (N,); W2 transposed
    (C, H); logits relative to the label's B (N, C) and their log-sum-exp L0 (N,). The polynomial
    coefficients M (N, 5, H): for the cross-entropy the class moments M[n, m - 1, j] =
    sum_k p[n, k] w^m / m! of the logit offsets w = W2[j, k] - W2[j, t[n]], m = 1..5, which turn
    sum_k p_k expm1(dz w_k) into a polynomial in dz; for the sum of squares the series of the loss
    change itself (see `_sum_squared_series`). Y (N, C, 3) holds r_k = p_k - onehot_k, G_k and Q_k
    of the sum of squares, and cbar (N, H) the p-weighted mean of each row of W2 (sum of squares only).
    """
    n = x.shape[0]
    hid = W1.shape[1]
    c = W2.shape[1]
    dt = W1.dtype
    a1 = np.empty((n, hid), dtype=dt)
    z = np.empty((n, hid), dtype=dt)
    zc = np.empty((n, hid), dtype=dt)
    E = np.empty((n, hid), dtype=dt)
    p = np.empty((n, c), dtype=dt)
    q = np.empty(n, dtype=dt)
    M = np.zeros((n, 5, hid), dtype=dt)
    B = np.empty((n, c), dtype=dt)
    L0 = np.empty(n, dtype=dt)
    Y = np.empty((n, c, 3), dtype=dt)
    cbar = np.zeros((n, hid) if loss == SUM_SQUARED else (0, hid), dtype=dt)
    W2T = np.ascontiguousarray(W2.T)
    a2 = np.empty((n, c), dtype=dt)
    # One parallel region over blocks of rows: each row's logits need only its own hidden units.
    blocks = (n + BLOCK - 1) // BLOCK
    if n < _PARALLEL_CACHE_ROWS:
        for blk in range(blocks):
            _cache_block(np.int64(blk), x, t, W1, b1, W2, b2, W2T, loss, a1, z, zc, E, a2, p, q, M,
                         B, L0, Y, cbar)
    else:
        for it in prange(blocks):
            _cache_block(block_order(it, blocks), x, t, W1, b1, W2, b2, W2T, loss, a1, z, zc, E, a2,
                         p, q, M, B, L0, Y, cbar)
    return a1, z, zc, E, p, q, M, W2T, B, L0, Y, cbar


@jit
def _sum_squared_series(p, res, r0, p2, W2T, r, cbar, D):
    """cbar[r, j] and D[r, m - 1, j], m = 1..5: the sum-of-squares loss change of sample r when
    hidden unit j moves by dz is sum_m D_m dz^m (to rounding, while |dz| max_k |u_k| <= SMALL / 2).

    With u_k = W2[j, k] - cbar[r, j], the moment series s = sum_k p_k expm1(dz u_k),
    a = sum_k p_k r_k expm1(dz u_k), b = sum_k p_k^2 expm1(dz u_k) and
    c = sum_k p_k^2 expm1(dz u_k)^2 (coefficients (2^m - 2) b_m) give
        dL = (a - r0 s) / (1 + s) + (c - 2 s b + p2 s^2) / (2 (1 + s)^2),
    multiplied out here as truncated power series.
    """
    c, hid = W2T.shape
    dt = W2T.dtype
    one = dt.type(1)
    two = one + one
    half = one / two
    i3 = one / (two + one)
    i4 = half * half
    i5 = one / (two + two + one)
    six = two + two + two
    fourteen = six + six + two
    thirty = fourteen + fourteen + two
    mom = np.zeros((3, 5, hid), dtype=dt)  # sums of p u^m / m!, p r u^m / m!, p^2 u^m / m!
    for k in range(c):
        pk = p[r, k]
        for j in range(hid):
            cbar[r, j] += pk * W2T[k, j]
    for k in range(c):
        pk = p[r, k]
        pr = pk * res[k]
        pp = pk * pk
        for j in range(hid):
            w1 = W2T[k, j] - cbar[r, j]
            w2 = w1 * w1 * half
            w3 = w2 * w1 * i3
            w4 = w3 * w1 * i4
            w5 = w4 * w1 * i5
            mom[0, 0, j] += pk * w1
            mom[0, 1, j] += pk * w2
            mom[0, 2, j] += pk * w3
            mom[0, 3, j] += pk * w4
            mom[0, 4, j] += pk * w5
            mom[1, 0, j] += pr * w1
            mom[1, 1, j] += pr * w2
            mom[1, 2, j] += pr * w3
            mom[1, 3, j] += pr * w4
            mom[1, 4, j] += pr * w5
            mom[2, 0, j] += pp * w1
            mom[2, 1, j] += pp * w2
            mom[2, 2, j] += pp * w3
            mom[2, 3, j] += pp * w4
            mom[2, 4, j] += pp * w5
    for j in range(hid):
        s1, s2, s3, s4, s5 = mom[0, 0, j], mom[0, 1, j], mom[0, 2, j], mom[0, 3, j], mom[0, 4, j]
        b1, b2, b3, b4 = mom[2, 0, j], mom[2, 1, j], mom[2, 2, j], mom[2, 3, j]
        # 1 / (1 + s) and its square
        i1 = -s1
        i2 = -(s2 + s1 * i1)
        i3_ = -(s3 + s2 * i1 + s1 * i2)
        i4_ = -(s4 + s3 * i1 + s2 * i2 + s1 * i3_)
        j1 = two * i1
        j2 = two * i2 + i1 * i1
        j3 = two * i3_ + two * i1 * i2
        # a - r0 s
        n1 = mom[1, 0, j] - r0 * s1
        n2 = mom[1, 1, j] - r0 * s2
        n3 = mom[1, 2, j] - r0 * s3
        n4 = mom[1, 3, j] - r0 * s4
        n5 = mom[1, 4, j] - r0 * s5
        # (c - 2 s b + p2 s^2) / 2, from dz^2 on
        m2 = half * (two * b2 - two * (s1 * b1) + p2 * (s1 * s1))
        m3 = half * (six * b3 - two * (s1 * b2 + s2 * b1) + p2 * (two * s1 * s2))
        m4 = half * (fourteen * b4 - two * (s1 * b3 + s2 * b2 + s3 * b1)
                     + p2 * (two * s1 * s3 + s2 * s2))
        m5 = half * (thirty * mom[2, 4, j] - two * (s1 * b4 + s2 * b3 + s3 * b2 + s4 * b1)
                     + p2 * (two * s1 * s4 + two * s2 * s3))
        D[r, 0, j] = n1
        D[r, 1, j] = n2 + n1 * i1 + m2
        D[r, 2, j] = n3 + n2 * i1 + n1 * i2 + m3 + m2 * j1
        D[r, 3, j] = n4 + n3 * i1 + n2 * i2 + n1 * i3_ + m4 + m3 * j1 + m2 * j2
        D[r, 4, j] = (n5 + n4 * i1 + n3 * i2 + n2 * i3_ + n1 * i4_
                      + m5 + m4 * j1 + m3 * j2 + m2 * j3)


@jit
def _weight_span(W2T):
    """max over hidden units j of (max_k W2[j, k] - min_k W2[j, k]): bounds |W2[j, c] - W2[j, t]|."""
    c, h = W2T.shape
    span = W2T.dtype.type(0)
    for j in range(h):
        lo = W2T[0, j]
        hi = W2T[0, j]
        for k in range(1, c):
            lo = min(lo, W2T[k, j])
            hi = max(hi, W2T[k, j])
        span = max(span, hi - lo)
    return span


@jit
def _poly_limit(W2T):
    """Largest |d| for which the hidden block may use the class-moment polynomials."""
    # |dz| <= |d| / 4 (sigmoid is 1/4-Lipschitz), so |d| * span / 4 bounds every argument of expm1.
    # Below SMALL / 2 the degree-5 class moments are exact to rounding and
    # |sum_k p_k expm1(v_k)| <= expm1(SMALL / 2) < SMALL keeps log1p_small in range too.
    span = _weight_span(W2T)
    # span == 0 (one class, or constant rows of W2): no perturbation of a hidden unit moves the loss
    limit = W2T.dtype.type(2 * SMALL) / span if span > 0 else W2T.dtype.type(np.inf)
    # exp(-d) and exp(d) must be finite and non-zero for the cached-exp form of sigmoid(a + d).
    return min(limit, W2T.dtype.type(64))


@jit(inline="always")
def _unit_changes(r, d, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, wp, wm, d_poly, acc):
    """acc[j] += wp * dL(+d) + wm * dL(-d) of sample r, when hidden unit j's input moves by +-d, for every j."""
    hid = E.shape[1]
    dt = E.dtype
    one = dt.type(1)
    if abs(d) <= d_poly:
        if abs(d) <= dt.type(SMALL):
            cp = -expm1_small(-d, one)  # libm calls here would cost as much as the j loop
            cm = -expm1_small(d, one)
        else:
            cp = -np.expm1(-d)
            cm = -np.expm1(d)
        ep = one - cp  # exp(-d)
        em = one - cm  # exp(d)
        squares = loss == SUM_SQUARED
        for j in range(hid):
            e = E[r, j]
            dp = cp * zc[r, j] / (one + e * ep)
            dm = cm * zc[r, j] / (one + e * em)
            sp = dp * (M[r, 0, j] + dp * (M[r, 1, j] + dp * (M[r, 2, j] + dp * (
                M[r, 3, j] + dp * M[r, 4, j]))))
            sm = dm * (M[r, 0, j] + dm * (M[r, 1, j] + dm * (M[r, 2, j] + dm * (
                M[r, 3, j] + dm * M[r, 4, j]))))
            if squares:  # the polynomial is the loss change itself
                acc[j] += wp * sp + wm * sm
            else:  # the polynomial is sum_k p_k expm1(dz w_k)
                acc[j] += wp * log1p_small(sp, one) + wm * log1p_small(sm, one)
    elif loss == SUM_SQUARED:
        for j in range(hid):
            dp = _sigmoid_step(a1[r, j], d, one)
            dm = _sigmoid_step(a1[r, j], -d, one)
            acc[j] += (wp * _hidden_loss_change_sse(p, Y, B, cbar, r, W2T, j, dp)
                       + wm * _hidden_loss_change_sse(p, Y, B, cbar, r, W2T, j, dm))
    else:
        tr = t[r]
        for j in range(hid):
            dp = _sigmoid_step(a1[r, j], d, one)
            dm = _sigmoid_step(a1[r, j], -d, one)
            acc[j] += (wp * _hidden_loss_change(p, B, L0, r, tr, W2T, j, dp)
                       + wm * _hidden_loss_change(p, B, L0, r, tr, W2T, j, dm))


@jit(parallel=True)
def _hidden_block(order, xT, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, h, wp, wm, out):
    """out[i, j] = sum over samples of wp * dL(+h) + wm * dL(-h) for W1[i, j] (i < D) and b1[j] (i = D)."""
    n = xT.shape[1]
    hid = E.shape[1]
    d_poly = _poly_limit(W2T)
    for q_ in prange(order.size):
        col = order[q_]
        g = np.zeros(hid, dtype=E.dtype)
        for r in range(n):
            xv = xT[col, r]
            if xv == 0:
                continue  # this sample does not see W1[col, :] at all
            _unit_changes(r, h * xv, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, wp, wm, d_poly, g)
        for j in range(hid):
            out[col, j] = g[j]


@jit
def _row_groups(x, r, vlocT, gvals):
    """Group sample r's inputs by value; return the number of groups.

    gvals[:count] gets the distinct non-zero values of x[r] and the bias input 1, in order of
    first appearance; vlocT[i, r] the group of x[r, i] (i = D: the bias), -1 where x[r, i] == 0.
    gvals needs room for one more than the non-zeros of x[r].
    """
    d = x.shape[1]
    bits = 1
    while (1 << bits) < 2 * gvals.size:
        bits += 1
    mask = (1 << bits) - 1
    slots = np.full(1 << bits, -1, dtype=np.int32)  # open addressing: slot -> group
    count = 0
    one = x.dtype.type(1)
    two31 = x.dtype.type(2147483648.0)
    two22 = x.dtype.type(4194304.0)
    for i in range(d + 1):
        v = x[r, i] if i < d else one
        if v == 0:
            vlocT[i, r] = -1
            continue
        # Multiplicative hash of the exact value: v = frac * 2**expo, and the top 53 bits of
        # |frac| (all of a float64's) enter as two integers; scaling by powers of two is exact in
        # either dtype. Equal values land in equal slots; products stay below 2**63, so nothing
        # wraps (also without the JIT).
        frac, expo = math.frexp(v)
        a = abs(frac) * two31
        whole = np.floor(a)
        hi = int(whole)
        lo = int((a - whole) * two22)
        mixed = ((hi * 2654435761) & 0xFFFFFFFF) ^ ((lo * 2246822519) & 0xFFFFFFFF) ^ (
            (expo * 3266489917) & 0xFFFFFFFF)
        k = (mixed >> (32 - bits)) & mask
        while slots[k] >= 0 and gvals[slots[k]] != v:
            k = (k + 1) & mask
        if slots[k] < 0:
            slots[k] = count
            gvals[count] = v
            count += 1
        vlocT[i, r] = slots[k]
    return count


@jit
def _row_inputs(x, r):
    """Non-zero inputs of sample r, plus one for the bias."""
    m = 1
    for i in range(x.shape[1]):
        m += x[r, i] != 0
    return m


@jit
def _mostly_distinct(x, rows):
    """Whether the first `rows` samples have few repeated input values (then grouping does not pay)."""
    n, d = x.shape
    rows = min(rows, n)
    vlocT = np.empty((d + 1, rows), dtype=np.int32)
    groups = 0
    inputs = 0
    for r in range(rows):
        m = _row_inputs(x, r)
        groups += _row_groups(x, r, vlocT, np.empty(m, dtype=x.dtype))
        inputs += m
    return 4 * groups > 3 * inputs  # in integers: no float64 arithmetic in float32 kernels


@jit(parallel=True)
def _hidden_values(x, start, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, h, wp, wm, vlocT, G):
    """Group each sample's inputs (vlocT) and fill its rows of G, from start[r] on, in parallel.

    G[start[r] + g, j] = wp * dL(+h v) + wm * dL(-h v) of sample r for hidden unit j, v the
    value of group g. start[r + 1] - start[r] is an upper bound of the groups of sample r.
    """
    d_poly = _poly_limit(W2T)
    for r_ in prange(start.size - 1):
        r = np.int64(r_)  # prange counts in uint64: an int64 index keeps one compiled helper per dtype
        gvals = np.empty(start[r + 1] - start[r], dtype=x.dtype)
        count = _row_groups(x, r, vlocT, gvals)
        for g in range(count):
            _unit_changes(r, h * gvals[g], t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, wp, wm,
                          d_poly, G[start[r] + g])


@jit
def _hidden_gather(vlocT, start, G, out):
    """out[i, j] = sum over samples r with x[r, i] != 0 of G[start[r] + vlocT[i, r], j], r ascending."""
    # Serial: it costs well under 1% of the libm-path work that precedes it, and a parallel region
    # would add compile time and a wake-up of the workers.
    n = vlocT.shape[1]
    hid = G.shape[1]
    for col in range(vlocT.shape[0]):
        g = np.zeros(hid, dtype=G.dtype)
        for r in range(n):
            k = vlocT[col, r]
            if k < 0:
                continue
            row = start[r] + k
            for j in range(hid):
                g[j] += G[row, j]
        for j in range(hid):
            out[col, j] = g[j]


@jit
def _hidden_grouped(x, largest, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, h, wp, wm, out):
    """_hidden_block's result, bit for bit, with the per-sample work done once per input value.

    Run only where grouping pays (see two_layer_numerical_gradient). Returns False, leaving out untouched, when the table of
    per-value changes would be too large; the caller then runs _hidden_block.
    """
    n, d = x.shape
    hid = E.shape[1]
    start = np.empty(n + 1, dtype=np.int64)
    start[0] = 0
    for r in range(n):
        start[r + 1] = start[r] + _row_inputs(x, r)
    if start[n] * hid > GROUPING_MAX_ENTRIES:
        return False
    vlocT = np.empty((d + 1, n), dtype=np.int32)
    G = np.zeros((start[n], hid), dtype=E.dtype)
    _hidden_values(x, start, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, h, wp, wm, vlocT, G)
    _hidden_gather(vlocT, start, G, out)
    return True


@jit
def _output_column(k, z, t, p, q, B, L0, Y, loss, h, wp, wm, fast, out):
    """out[k, j] (W2[j, k]) and out[k, H] (b2[k]): sums of weighted per-sample loss changes."""
    n, hid = z.shape
    one = z.dtype.type(1)
    g = np.zeros(hid + 1, dtype=z.dtype)
    for r in range(n):
        if loss == SUM_SQUARED and fast:
            half = one / (one + one)
            coef = p[r, k]
            gk = Y[r, k, 1]
            qk = Y[r, k, 2]
            for j in range(hid + 1):
                u = h * (z[r, j] if j < hid else one)
                sp = coef * expm1_small(u, one)
                sm = coef * expm1_small(-u, one)
                ip = one / (one + sp)
                im = one / (one + sm)
                g[j] += (wp * (sp * (gk + half * sp * qk * ip) * ip)
                         + wm * (sm * (gk + half * sm * qk * im) * im))
            continue
        if loss == SUM_SQUARED:
            for j in range(hid + 1):
                u = h * (z[r, j] if j < hid else one)
                g[j] += (wp * _output_loss_change_sse(p, Y, B, r, k, u)
                         + wm * _output_loss_change_sse(p, Y, B, r, k, -u))
            continue
        if k == t[r]:
            coef = q[r]
            sign = -one  # log1p((1 - p_t) expm1(-u)): the label's own logit moves the other way
        else:
            coef = p[r, k]
            sign = one
        if fast:
            for j in range(hid + 1):
                u = sign * h * (z[r, j] if j < hid else one)
                g[j] += (wp * log1p_small(coef * expm1_small(u, one), one)
                         + wm * log1p_small(coef * expm1_small(-u, one), one))
        else:
            for j in range(hid + 1):
                u = h * (z[r, j] if j < hid else one)
                g[j] += (wp * _output_loss_change(B, L0, r, k, t[r], coef, u)
                         + wm * _output_loss_change(B, L0, r, k, t[r], coef, -u))
    for j in range(hid + 1):
        out[k, j] = g[j]


@jit(parallel=True)
def _output_block_libm(z, t, p, q, B, L0, Y, loss, h, wp, wm, out):
    """_output_block's libm path, parallel over classes: it costs far more than waking the workers."""
    for k_ in prange(p.shape[1]):
        _output_column(np.int64(k_), z, t, p, q, B, L0, Y, loss, h, wp, wm, np.bool_(False), out)


@jit
def _output_block_poly(z, t, p, q, B, L0, Y, loss, h, wp, wm, out):
    """Sums of weighted per-sample loss changes for out[k, j] (W2[j, k]) and out[k, H] (b2[k]),
    for h <= SMALL / 2 (then |coef * expm1(+-u)| <= expm1(h) for |u| <= h, since z is in [0, 1])."""
    for k in range(p.shape[1]):  # serial: the polynomials take less than a wake-up of the workers
        _output_column(k, z, t, p, q, B, L0, Y, loss, h, wp, wm, np.bool_(True), out)


@jit
def _complex_sse_hidden(p, Y, cbar, W2T, r, j, dz_re, dz_im):
    """Im of sample r's sum of squares when hidden unit j moves by dz_re + i dz_im.

    p'_k = p_k exp(dz u_k) / sum_m p_m exp(dz u_m) with u_k = W2[j, k] - cbar[r, j]; the loss's
    imaginary part is sum_k Re(p'_k - onehot_k) Im(p'_k), where Re(p'_k) - p_k + r_k keeps the
    residual's digits.
    """
    c = p.shape[1]
    sr = p.dtype.type(0)
    si = p.dtype.type(0)
    mid = cbar[r, j]
    for k in range(c):
        u = W2T[k, j] - mid
        m = p[r, k] * np.exp(dz_re * u)
        sr += m * np.cos(dz_im * u)
        si += m * np.sin(dz_im * u)
    mag = sr * sr + si * si
    total = p.dtype.type(0)
    for k in range(c):
        u = W2T[k, j] - mid
        m = p[r, k] * np.exp(dz_re * u)
        cr = m * np.cos(dz_im * u)
        ci = m * np.sin(dz_im * u)
        re = (cr * sr + ci * si) / mag - p[r, k] + Y[r, k, 0]
        total += re * (ci * sr - cr * si) / mag
    return total


@jit(parallel=True)
def _hidden_block_complex(order, xT, t, a1, z, p, W2T, Y, cbar, loss, h, out):
    """Im of the per-sample loss at a1[:, j] + i d, summed, for each column (complex step)."""
    n = xT.shape[1]
    hid = z.shape[1]
    c = p.shape[1]
    one = z.dtype.type(1)
    for q_ in prange(order.size):
        col = order[q_]
        g = np.zeros(hid, dtype=z.dtype)
        for r in range(n):
            if xT[col, r] == 0:
                continue
            d = h * xT[col, r]
            cd = np.cos(d)
            sd = np.sin(d)
            tr = t[r]
            for j in range(hid):
                a = a1[r, j]
                e = np.exp(-abs(a))
                # sigmoid(a + i d) from exp(-|a|) only, so nothing overflows
                if a >= 0:
                    den_re = one + e * cd
                    den_im = -e * sd
                    mag = den_re * den_re + den_im * den_im
                    s_re = den_re / mag
                else:
                    den_re = one + e * cd
                    den_im = e * sd
                    mag = den_re * den_re + den_im * den_im
                    s_re = one - den_re / mag
                dz_re = s_re - z[r, j]
                dz_im = e * sd / mag
                if loss == SUM_SQUARED:
                    g[j] += _complex_sse_hidden(p, Y, cbar, W2T, r, j, dz_re, dz_im)
                    continue
                acc_re = p[r, tr]
                acc_im = z.dtype.type(0)
                for k in range(c):
                    if k == tr:
                        continue
                    w = W2T[k, j] - W2T[tr, j]
                    m = np.exp(dz_re * w)
                    acc_re += p[r, k] * m * np.cos(dz_im * w)
                    acc_im += p[r, k] * m * np.sin(dz_im * w)
                g[j] += np.arctan2(acc_im, acc_re)
        for j in range(hid):
            out[col, j] = g[j]


@jit
def _complex_sse_output(p, Y, r, k, u):
    """Im of sample r's sum of squares when logit k moves by i u: S = 1 + p_k (e^{iu} - 1),
    p'_m = p_m / S (m != k), p'_k = p_k e^{iu} / S."""
    c = p.shape[1]
    one = p.dtype.type(1)
    two = one + one
    sh = np.sin(u / two)
    cu = np.cos(u)
    su = np.sin(u)
    pk = p[r, k]
    sr = one - two * pk * sh * sh
    si = pk * su
    mag = sr * sr + si * si
    total = p.dtype.type(0)
    for m in range(c):
        if m == k:
            re = pk * (cu * sr + su * si) / mag
            im = pk * (su * sr - cu * si) / mag
        else:
            re = p[r, m] * sr / mag
            im = -p[r, m] * si / mag
        total += (re - p[r, m] + Y[r, m, 0]) * im
    return total


@jit
def _output_block_complex(z, t, p, q, Y, loss, h, out):
    """Im of the per-sample loss at logit k + i u, summed, for W2[:, k] and b2[k] (complex step)."""
    n, hid = z.shape
    c = p.shape[1]
    one = z.dtype.type(1)
    two = one + one
    for k in range(c):
        g = np.zeros(hid + 1, dtype=z.dtype)
        for r in range(n):
            if loss == SUM_SQUARED:
                for j in range(hid + 1):
                    g[j] += _complex_sse_output(p, Y, r, k, h * (z[r, j] if j < hid else one))
                continue
            if k == t[r]:
                coef = q[r]
                sign = -one
            else:
                coef = p[r, k]
                sign = one
            for j in range(hid + 1):
                u = h * (z[r, j] if j < hid else one)
                s = np.sin(u / two)
                # log(1 + coef (exp(i sign u) - 1)): Re = 1 - 2 coef sin^2(u/2), Im = sign coef sin(u)
                g[j] += np.arctan2(sign * coef * np.sin(u), one - two * coef * s * s)
        for j in range(hid + 1):
            out[k, j] = g[j]


@jit
def _assemble(hidden, output, scale):
    """Scaled gradients (gW1, gb1, gW2, gb2) from the per-column sums of the two blocks."""
    d = hidden.shape[0] - 1
    hid = hidden.shape[1]
    c = output.shape[0]
    dt = hidden.dtype
    gW1 = np.empty((d, hid), dtype=dt)
    gb1 = np.empty(hid, dtype=dt)
    gW2 = np.empty((hid, c), dtype=dt)
    gb2 = np.empty(c, dtype=dt)
    for i in range(d):
        for j in range(hid):
            gW1[i, j] = hidden[i, j] * scale
    for j in range(hid):
        gb1[j] = hidden[d, j] * scale
        for k in range(c):
            gW2[j, k] = output[k, j] * scale
    for k in range(c):
        gb2[k] = output[k, hid] * scale
    return gW1, gb1, gW2, gb2


@jit
def _columns(x, W1, W2):
    """x by columns in a balanced order, max(1, max |x|), and the blocks' outputs."""
    d = x.shape[1]
    hid = W1.shape[1]
    xT, counts, largest = _input_columns(x)
    hidden = np.empty((d + 1, hid), dtype=W1.dtype)
    output = np.empty((W2.shape[1], hid + 1), dtype=W1.dtype)
    return xT, _balanced_order(counts), largest, hidden, output


@driver
def _setup(x, t, W1, b1, W2, b2, loss):
    """The forward cache, x by columns in a balanced order, max(1, max |x|), the blocks' outputs."""
    xT, order, largest, hidden, output = _columns(x, W1, W2)
    return _cached_forward(x, t, W1, b1, W2, b2, loss), xT, order, largest, hidden, output


@jit
def _finish(hidden, output, h, steps, n):
    """_assemble with the scale 1 / (steps * h * n), in h's dtype."""
    dt = hidden.dtype
    return _assemble(hidden, output, dt.type(1) / (dt.type(steps) * h * dt.type(n)))


# The two drivers below are Python (see `_jit.driver`; compiled code can call them too): numba
# compiles every branch of a compiled function, and the paths for large steps (grouped inputs,
# libm per class) cost more to compile than the paths for the default steps. Called from Python,
# each block compiles when a call first needs it:
# measured on this VM with an empty numba cache, import plus the first numerical gradient went
# from 17.5 s to 10.9 s. The few microseconds of Python between the blocks are nothing beside them.


@driver
def _grouping_pays(x, largest, W2T, h):
    """Whether `_hidden_grouped` pays: some input leaves the polynomial path (largest =
    max(1, max |x|)) and the first samples repeat enough values. Python, so that the check of
    repeated values compiles only for steps large enough to need it."""
    return bool(h * largest > _poly_limit(W2T)
                and not _mostly_distinct(x, np.int64(GROUPING_PROBE_ROWS)))


@driver
def two_layer_numerical_gradient(x, t, W1, b1, W2, b2, h, method, loss=CROSS_ENTROPY):
    """Finite-difference gradient (gW1, gb1, gW2, gb2) of the mean loss, shapes of the params.

    x (N, D), t (N,) int labels, params of one float dtype; h > 0 of that dtype; method CENTRAL
    ((L(+h) - L(-h)) / 2h), FORWARD ((L(+h) - L) / h) or BACKWARD ((L - L(-h)) / h) for every
    parameter; loss CROSS_ENTROPY or SUM_SQUARED.
    """
    dt = W1.dtype.type
    (a1, z, zc, E, p, q, M, W2T, B, L0, Y, cbar), xT, order, largest, hidden, output = _setup(
        x, t, W1, b1, W2, b2, loss)
    # Scalars come back from compiled code as Python floats: back to the dtype, or a float32
    # gradient would compile its blocks for float64 scalars and compute in float64.
    largest = dt(largest)
    wp, wm = _direction_weights(method, dt(1))
    wp = dt(wp)
    wm = dt(wm)
    if not (_grouping_pays(x, largest, W2T, h)
            and _hidden_grouped(x, largest, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, h, wp,
                                wm, hidden)):
        _hidden_block(order, xT, t, a1, zc, E, p, M, W2T, B, L0, Y, cbar, loss, h, wp, wm, hidden)
    if h <= SMALL / 2:
        _output_block_poly(z, t, p, q, B, L0, Y, loss, h, wp, wm, output)
    else:
        _output_block_libm(z, t, p, q, B, L0, Y, loss, h, wp, wm, output)
    return _finish(hidden, output, h, np.int64(2 if method == CENTRAL else 1), np.int64(x.shape[0]))


@driver
def two_layer_complex_step(x, t, W1, b1, W2, b2, h, loss=CROSS_ENTROPY):
    """Complex-step gradient Im L(theta + i h e_p) / h for every parameter: (gW1, gb1, gW2, gb2).

    Exact to rounding for any small h (there is no subtraction); shapes, dtypes and loss as in
    two_layer_numerical_gradient. Separate from it so that neither compiles the other's blocks.
    """
    (a1, z, zc, E, p, q, M, W2T, B, L0, Y, cbar), xT, order, largest, hidden, output = _setup(
        x, t, W1, b1, W2, b2, loss)
    _hidden_block_complex(order, xT, t, a1, z, p, W2T, Y, cbar, loss, h, hidden)
    _output_block_complex(z, t, p, q, Y, loss, h, output)
    return _finish(hidden, output, h, np.int64(1), np.int64(x.shape[0]))


@jit(cache=False)
def _apply(f, buf, args):
    return f(buf, *args)


@jit(cache=False)
def _guarded(f, buf, args, zero):
    """(f(buf, *args), True), or (zero, False) if f raised.

    numba cannot carry an exception out of a parallel region reliably (with several threads it may
    return uninitialised values instead), so the parallel loops catch here and report the entry.
    """
    value = zero
    ok = True
    try:
        value = _apply(f, buf, args)
    except Exception:  # noqa: BLE001 - the caller re-raises f's own exception, see fastnet.gradient
        ok = False
    return value, ok


@jit(cache=False)
def _direct(f, buf, args, zero):
    """(f(buf, *args), True): in a serial loop f's exceptions propagate as they are."""
    return _apply(f, buf, args), True


def _difference_loop(call, parallel):
    """The finite-difference loop, compiled with `call` (_guarded or _direct) around f."""
    def loop(f, x, h, method, args, out, failed):
        n = x.size
        dt = out.dtype
        one = dt.type(1)
        zero = dt.type(0)
        scale = one / ((one + one) * h) if method == CENTRAL else one / h
        chunks = max(1, min(get_num_threads(), n)) if parallel else 1
        res = out.reshape(n)
        for c in prange(chunks):
            buf = x.copy()
            flat = buf.reshape(n)
            for p in range(c, n, chunks):
                old = flat[p]
                # forward: (f(x + h) - f(x)) / h; backward: (f(x) - f(x - h)) / h; central: over 2h
                flat[p] = old + h if method != BACKWARD else old
                fp, ok_p = call(f, buf, args, zero)
                flat[p] = old - h if method != FORWARD else old
                fm, ok_m = call(f, buf, args, zero)
                flat[p] = old
                res[p] = (fp - fm) * scale
                failed[p] = 0 if ok_p and ok_m else 1

    loop.__doc__ = """out[p] = finite difference of the scalar f(x, *args) in entry p of x (any shape).

    Each thread perturbs its own copy of x, so x itself is never written and entries are
    independent (identical results for any thread count); f must be an @njit function.
    failed[p] = 1 where f raised (parallel version; the serial one lets the exception through).
    """
    return jit(loop, parallel=parallel, cache=False)


def _complex_loop(call, parallel):
    """The complex-step loop, compiled with `call` (_guarded or _direct) around f."""
    def loop(f, xc, h, args, out, failed):
        n = xc.size
        res = out.reshape(n)
        zero = xc.dtype.type(0)
        chunks = max(1, min(get_num_threads(), n)) if parallel else 1
        for c in prange(chunks):
            buf = xc.copy()
            flat = buf.reshape(n)
            for p in range(c, n, chunks):
                old = flat[p]
                flat[p] = old + 1j * h
                value, ok = call(f, buf, args, zero)
                res[p] = value.imag / h
                failed[p] = 0 if ok else 1
                flat[p] = old

    loop.__doc__ = """out[p] = Im f(x + i h e_p, *args) / h for every entry p; xc is x as a complex array.

    failed[p] = 1 where f raised (parallel version; the serial one lets the exception through).
    """
    return jit(loop, parallel=parallel, cache=False)


numerical_gradient_loop = _difference_loop(_guarded, parallel=True)
numerical_gradient_loop_serial = _difference_loop(_direct, parallel=False)
complex_step_loop = _complex_loop(_guarded, parallel=True)
complex_step_loop_serial = _complex_loop(_direct, parallel=False)
