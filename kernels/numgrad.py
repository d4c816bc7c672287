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

These are exact rearrangements, not expansions: the result is the finite difference at the h the
caller gave, for any h. expm1/log1p of the tiny arguments that dominate use short polynomials
that are exact to an ulp (see `smallmath`); a block whose arguments could leave that range takes
libm instead. Parallel over parameters (columns of W1, outputs of W2); every entry is summed by
one thread in a fixed order, so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, prange

from kernels._jit import jit
from kernels.smallmath import SMALL, expm1_small, log1p_small
from kernels.softmax import row_logsumexp
from kernels.twolayer import hidden_forward, output_forward

CENTRAL = 0
FORWARD = 1
BACKWARD = 2
COMPLEX = 3


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
    """Compressed columns of x plus one all-ones column for b1: (offsets, rows, values)."""
    n, d = x.shape
    counts = np.zeros(d + 1, dtype=np.int64)
    for r in range(n):
        for i in range(d):
            if x[r, i] != 0:
                counts[i] += 1
    counts[d] = n
    offsets = np.zeros(d + 2, dtype=np.int64)
    for i in range(d + 1):
        offsets[i + 1] = offsets[i] + counts[i]
    rows = np.empty(offsets[d + 1], dtype=np.int64)
    vals = np.empty(offsets[d + 1], dtype=x.dtype)
    fill = offsets[:-1].copy()
    for r in range(n):
        for i in range(d):
            if x[r, i] != 0:
                rows[fill[i]] = r
                vals[fill[i]] = x[r, i]
                fill[i] += 1
    one = x.dtype.type(1)
    for r in range(n):
        rows[fill[d]] = r
        vals[fill[d]] = one
        fill[d] += 1
    return offsets, rows, vals


@jit
def _balanced_order(offsets):
    """Columns ordered largest, smallest, 2nd largest, ...: contiguous thread shares get equal work."""
    m = offsets.size - 1
    cost = np.empty(m, dtype=np.int64)
    for i in range(m):
        cost[i] = -(offsets[i + 1] - offsets[i])
    by_cost = np.argsort(cost, kind="mergesort")
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
def _stable_sigmoid(v, one):
    e = np.exp(-abs(v))
    s = one / (one + e)
    return s if v >= 0 else e * s


@jit
def _cached_forward(x, t, W1, b1, W2, b2):
    """What every perturbation reuses: a1, exp(-a1), 1 - z, z, softmax p, 1 - p[t], W2 transposed."""
    a1, z, zc = hidden_forward(x, W1, b1)
    a2 = output_forward(z, W2, b2)
    n, c = a2.shape
    p = np.empty_like(a2)
    q = np.empty(n, dtype=a2.dtype)
    for r in range(n):
        lse = row_logsumexp(a2, r)
        rest = a2.dtype.type(0)
        for k in range(c):
            p[r, k] = np.exp(a2[r, k] - lse)
            if k != t[r]:
                rest += p[r, k]
        q[r] = rest  # 1 - p[t] without the cancellation when p[t] is close to 1
    E = np.exp(-a1)
    W2T = np.ascontiguousarray(W2.T)
    return a1, z, zc, E, p, q, W2T


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


@jit(parallel=True)
def _hidden_block(order, offsets, rows, vals, t, a1, zc, E, p, W2T, h, wp, wm, out):
    """Sums of weighted per-sample loss changes for each column of `out` (W1 rows, then b1)."""
    hid = E.shape[1]
    c = p.shape[1]
    one = E.dtype.type(1)
    quarter = E.dtype.type(0.25)
    half_small = E.dtype.type(SMALL / 2)
    # |dz| <= |d| / 4 (sigmoid is 1/4-Lipschitz), so |d| * span / 4 bounds every expm1 argument;
    # below SMALL / 2 both polynomials are in range (|sum_c p_c expm1(v_c)| <= expm1(SMALL / 2) < SMALL).
    span = _weight_span(W2T)
    # exp(-d) and exp(d) must be finite and non-zero for the cached-exp form of sigmoid(a + d).
    d_cached = E.dtype.type(64)
    for q_ in prange(order.size):
        col = order[q_]
        dzp = np.empty(hid, dtype=E.dtype)
        dzm = np.empty(hid, dtype=E.dtype)
        sp = np.empty(hid, dtype=E.dtype)
        sm = np.empty(hid, dtype=E.dtype)
        g = np.zeros(hid, dtype=E.dtype)
        for idx in range(offsets[col], offsets[col + 1]):
            r = rows[idx]
            d = h * vals[idx]
            cp = -np.expm1(-d)
            cm = -np.expm1(d)
            if abs(d) <= d_cached:
                ep = np.exp(-d)
                em = np.exp(d)
                for j in range(hid):
                    e = E[r, j]
                    dzp[j] = cp * zc[r, j] / (one + e * ep)
                    dzm[j] = cm * zc[r, j] / (one + e * em)
            else:
                for j in range(hid):
                    dzp[j] = cp * zc[r, j] * _stable_sigmoid(a1[r, j] + d, one)
                    dzm[j] = cm * zc[r, j] * _stable_sigmoid(a1[r, j] - d, one)
            for j in range(hid):
                sp[j] = 0
                sm[j] = 0
            tr = t[r]
            if abs(d) * quarter * span <= half_small:
                for k in range(c):
                    if k == tr:
                        continue
                    pk = p[r, k]
                    for j in range(hid):
                        w = W2T[k, j] - W2T[tr, j]
                        sp[j] += pk * expm1_small(dzp[j] * w, one)
                        sm[j] += pk * expm1_small(dzm[j] * w, one)
                for j in range(hid):
                    g[j] += wp * log1p_small(sp[j], one) + wm * log1p_small(sm[j], one)
            else:
                for k in range(c):
                    if k == tr:
                        continue
                    pk = p[r, k]
                    for j in range(hid):
                        w = W2T[k, j] - W2T[tr, j]
                        sp[j] += pk * np.expm1(dzp[j] * w)
                        sm[j] += pk * np.expm1(dzm[j] * w)
                for j in range(hid):
                    g[j] += wp * np.log1p(sp[j]) + wm * np.log1p(sm[j])
        for j in range(hid):
            out[col, j] = g[j]


@jit(parallel=True)
def _output_block(z, t, p, q, h, wp, wm, out):
    """Sums of weighted per-sample loss changes for out[k, j] (W2[j, k]) and out[k, H] (b2[k])."""
    n, hid = z.shape
    c = p.shape[1]
    one = z.dtype.type(1)
    # |coef * expm1(+-u)| <= expm1(h) for |u| <= h, since z is in [0, 1]
    fast = h <= z.dtype.type(SMALL / 2)
    for k in prange(c):
        g = np.zeros(hid + 1, dtype=z.dtype)
        for r in range(n):
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
                    u = sign * h * (z[r, j] if j < hid else one)
                    g[j] += wp * np.log1p(coef * np.expm1(u)) + wm * np.log1p(coef * np.expm1(-u))
        for j in range(hid + 1):
            out[k, j] = g[j]


@jit(parallel=True)
def _hidden_block_complex(order, offsets, rows, vals, t, a1, z, p, W2T, h, out):
    """Im of the per-sample loss at a1[:, j] + i d, summed, for each column (complex step)."""
    hid = z.shape[1]
    c = p.shape[1]
    one = z.dtype.type(1)
    for q_ in prange(order.size):
        col = order[q_]
        g = np.zeros(hid, dtype=z.dtype)
        for idx in range(offsets[col], offsets[col + 1]):
            r = rows[idx]
            d = h * vals[idx]
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


@jit(parallel=True)
def _output_block_complex(z, t, p, q, h, out):
    """Im of the per-sample loss at logit k + i u, summed, for W2[:, k] and b2[k] (complex step)."""
    n, hid = z.shape
    c = p.shape[1]
    one = z.dtype.type(1)
    two = one + one
    for k in prange(c):
        g = np.zeros(hid + 1, dtype=z.dtype)
        for r in range(n):
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
def two_layer_numerical_gradient(x, t, W1, b1, W2, b2, h, method):
    """Numerical gradient (gW1, gb1, gW2, gb2) of the mean cross-entropy by perturbing each parameter.

    x (N, D), t (N,) int labels, params of one float dtype; h > 0 of that dtype; method one of
    CENTRAL, FORWARD, BACKWARD (finite differences at step h) or COMPLEX (Im L(theta + i h e_p) / h).
    """
    n, d = x.shape
    hid = W1.shape[1]
    c = W2.shape[1]
    dt = W1.dtype
    one = dt.type(1)
    a1, z, zc, E, p, q, W2T = _cached_forward(x, t, W1, b1, W2, b2)
    offsets, rows, vals = _input_columns(x)
    order = _balanced_order(offsets)
    hidden = np.empty((d + 1, hid), dtype=dt)
    output = np.empty((c, hid + 1), dtype=dt)
    if method == COMPLEX:
        _hidden_block_complex(order, offsets, rows, vals, t, a1, z, p, W2T, h, hidden)
        _output_block_complex(z, t, p, q, h, output)
        scale = one / (h * dt.type(n))
    else:
        wp, wm = _direction_weights(method, one)
        _hidden_block(order, offsets, rows, vals, t, a1, zc, E, p, W2T, h, wp, wm, hidden)
        _output_block(z, t, p, q, h, wp, wm, output)
        steps = one + one if method == CENTRAL else one
        scale = one / (steps * h * dt.type(n))
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


@jit(parallel=True)
def numerical_gradient_loop(f, x, h, method, args, out):
    """out[p] = finite difference of the scalar f(x, *args) in entry p of x (any shape), for all p.

    Each thread perturbs its own copy of x, so x itself is never written and entries are
    independent (identical results for any thread count); f must be an @njit function.
    """
    n = x.size
    dt = out.dtype
    one = dt.type(1)
    wp, wm = _direction_weights(method, one)
    scale = one / ((one + one) * h) if method == CENTRAL else one / h
    chunks = max(1, min(get_num_threads(), n))
    res = out.reshape(n)
    for c in prange(chunks):
        buf = x.copy()
        flat = buf.reshape(n)
        for p in range(c, n, chunks):
            old = flat[p]
            flat[p] = old + h
            fp = f(buf, *args) if wp != 0 else dt.type(0)
            flat[p] = old - h
            fm = f(buf, *args) if wm != 0 else dt.type(0)
            flat[p] = old
            if method == FORWARD:
                fm = f(buf, *args)
            elif method == BACKWARD:
                fp = f(buf, *args)
            res[p] = (fp - fm) * scale


@jit(parallel=True)
def complex_step_loop(f, xc, h, args, out):
    """out[p] = Im f(x + i h e_p, *args) / h for every entry p; xc is x as a complex array."""
    n = xc.size
    res = out.reshape(n)
    chunks = max(1, min(get_num_threads(), n))
    for c in prange(chunks):
        buf = xc.copy()
        flat = buf.reshape(n)
        for p in range(c, n, chunks):
            old = flat[p]
            flat[p] = old + 1j * h
            res[p] = f(buf, *args).imag / h
            flat[p] = old
