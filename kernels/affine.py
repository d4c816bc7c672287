"""Affine transform x @ W + b, forward and backward, skipping exact zeros of x.

MNIST rows are about 81% exact zeros; a row-by-row update that skips them does a fifth of the work
of a dense product and needs no BLAS (so no BLAS thread pool competes with numba's threads).

The kernels run in parallel without changing a bit for any thread count: over rows for what each
row computes alone (x @ W + b, dx), and over ranges of input index for dW = x^T dout, each range
summing its rows of dW over the samples in order. The same pieces serve the fused two-layer
kernels in `twolayer`.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels._jit import jit


@jit
def accumulate_row(x, r, nzr, m, W, b, out):
    """out[r] = x[r] @ W + b from the m non-zero columns of x[r] listed, ascending, in nzr."""
    h = W.shape[1]
    for j in range(h):
        out[r, j] = b[j]
    k = 0
    # Four rows of W per pass over out[r]: a quarter of its loads and stores, and no
    # data-dependent branch inside.
    while k + 4 <= m:
        i0 = nzr[k]
        i1 = nzr[k + 1]
        i2 = nzr[k + 2]
        i3 = nzr[k + 3]
        v0 = x[r, i0]
        v1 = x[r, i1]
        v2 = x[r, i2]
        v3 = x[r, i3]
        for j in range(h):
            out[r, j] += (v0 * W[i0, j] + v1 * W[i1, j]) + (v2 * W[i2, j] + v3 * W[i3, j])
        k += 4
    while k < m:
        i0 = nzr[k]
        v0 = x[r, i0]
        for j in range(h):
            out[r, j] += v0 * W[i0, j]
        k += 1


@jit
def affine_row(x, r, W, b, out):
    """out[r] = x[r] @ W + b, adding only the rows of W where x[r] is non-zero."""
    nzr = np.empty(x.shape[1], dtype=np.int32)
    accumulate_row(x, r, nzr, row_nonzeros(x, r, nzr), W, b, out)


# Below this many rows the kernels run on the calling thread: waking numba's workers costs about
# 20 us on this VM (gradient of one MNIST row: 12 us on the calling thread, 35 us when the workers
# were woken), and from 8 rows on two threads win (gradient of 8 rows: 30 us against 41 us). Both
# loops run the same code in the same order: the same bits either way.
PARALLEL_MIN_ROWS = 8

# Ranges of input index in phase 2: enough for load balance on many cores, few enough that each
# finds its part of every row's list by a short binary search.
NCHUNK = 16


@jit
def _chunk_width(d):
    return (d + NCHUNK - 1) // NCHUNK


@jit
def row_nonzeros(x, r, nzr):
    """nzr[:m] = the column indices of x[r]'s non-zeros, ascending; returns m."""
    d = x.shape[1]
    m = 0
    for i in range(d):  # branch-free: every index is written, the count moves past non-zeros only
        nzr[m] = i
        m += x[r, i] != 0
    return m


@jit
def _first_at_least(nz, r, m, i):
    """The first k < m with nz[r, k] >= i (m if none): binary search of the ascending list."""
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) >> 1
        if nz[r, mid] < i:
            lo = mid + 1
        else:
            hi = mid
    return lo


# Rows handled together where they are dense: each row of W is then loaded once for four samples
# instead of once per sample (the product is bound by fetching W from L2). Measured on this VM,
# x @ W1 for 100 dense rows, one thread: 510 us row by row, 232 us four rows by four inputs at a
# time (NumPy's BLAS: 195 us). A block is dense when over half of its entries are non-zero;
# MNIST-like rows (19%) stay on the zero-skipping path.
BLOCK = 4


@jit
def dense_block(count, r0, n, d):
    """Whether rows r0..r0+3 exist and more than half of their entries are non-zero."""
    if r0 + BLOCK > n:
        return False
    return 2 * (count[r0] + count[r0 + 1] + count[r0 + 2] + count[r0 + 3]) > BLOCK * d


@jit
def block_product(x, r0, W, b, out):
    """out[r0:r0 + 4] = x[r0:r0 + 4] @ W + b, four inputs at a time (zeros not skipped)."""
    d = x.shape[1]
    h = W.shape[1]
    acc = np.empty((BLOCK, h), dtype=W.dtype)
    for q in range(BLOCK):
        for j in range(h):
            acc[q, j] = b[j]
    i = 0
    while i + 4 <= d:
        a0 = x[r0, i]
        a1 = x[r0 + 1, i]
        a2 = x[r0 + 2, i]
        a3 = x[r0 + 3, i]
        b0 = x[r0, i + 1]
        b1 = x[r0 + 1, i + 1]
        b2 = x[r0 + 2, i + 1]
        b3 = x[r0 + 3, i + 1]
        c0 = x[r0, i + 2]
        c1 = x[r0 + 1, i + 2]
        c2 = x[r0 + 2, i + 2]
        c3 = x[r0 + 3, i + 2]
        e0 = x[r0, i + 3]
        e1 = x[r0 + 1, i + 3]
        e2 = x[r0 + 2, i + 3]
        e3 = x[r0 + 3, i + 3]
        for j in range(h):
            w0 = W[i, j]
            w1 = W[i + 1, j]
            w2 = W[i + 2, j]
            w3 = W[i + 3, j]
            acc[0, j] += (a0 * w0 + b0 * w1) + (c0 * w2 + e0 * w3)
            acc[1, j] += (a1 * w0 + b1 * w1) + (c1 * w2 + e1 * w3)
            acc[2, j] += (a2 * w0 + b2 * w1) + (c2 * w2 + e2 * w3)
            acc[3, j] += (a3 * w0 + b3 * w1) + (c3 * w2 + e3 * w3)
        i += 4
    while i < d:
        a0 = x[r0, i]
        a1 = x[r0 + 1, i]
        a2 = x[r0 + 2, i]
        a3 = x[r0 + 3, i]
        for j in range(h):
            w0 = W[i, j]
            acc[0, j] += a0 * w0
            acc[1, j] += a1 * w0
            acc[2, j] += a2 * w0
            acc[3, j] += a3 * w0
        i += 1
    for q in range(BLOCK):
        for j in range(h):
            out[r0 + q, j] = acc[q, j]


@jit
def input_range_sums(ch, x, nz, count, g, out):
    """out[i] = sum_r x[r, i] g[r] for the inputs i of range ch, over r in ascending order.

    The rows of x's non-zeros are listed in nz[r, :count[r]] (see row_nonzeros); each row's part
    in the range is found by binary search, and the range's rows of out stay in L1 while summed.
    Dense blocks of four rows (see dense_block) are added four samples at a time, zeros included.
    """
    n, d = x.shape
    h = g.shape[1]
    w = _chunk_width(d)
    lo = min(ch * w, d)
    hi = min(lo + w, d)
    for i in range(lo, hi):
        for j in range(h):
            out[i, j] = out.dtype.type(0)
    for r0 in range(0, n, BLOCK):
        if dense_block(count, r0, n, d):
            # four samples per pass over out[i]: a quarter of its loads and stores
            for i in range(lo, hi):
                v0 = x[r0, i]
                v1 = x[r0 + 1, i]
                v2 = x[r0 + 2, i]
                v3 = x[r0 + 3, i]
                for j in range(h):
                    out[i, j] += (v0 * g[r0, j] + v1 * g[r0 + 1, j]) + (v2 * g[r0 + 2, j] + v3 * g[r0 + 3, j])
            continue
        for r in range(r0, min(r0 + BLOCK, n)):
            m = count[r]
            k = _first_at_least(nz, r, m, lo)
            while k < m and nz[r, k] < hi:
                i = nz[r, k]
                xv = x[r, i]
                for j in range(h):
                    out[i, j] += xv * g[r, j]
                k += 1


@jit
def _forward_block(blk, x, W, b, out, count):
    """Rows 4 blk .. 4 blk + 3 of x @ W + b: together where dense, else row by row skipping zeros."""
    n, d = x.shape
    r0 = BLOCK * blk
    for r in range(r0, min(r0 + BLOCK, n)):
        c = 0
        for i in range(d):
            c += x[r, i] != 0
        count[r] = c
    if dense_block(count, r0, n, d):
        block_product(x, r0, W, b, out)
        return
    for r in range(r0, min(r0 + BLOCK, n)):
        affine_row(x, r, W, b, out)


@jit(parallel=True)
def affine_forward(x, W, b):
    """out = x @ W + b: x (N, D), W (D, H), b (H,) -> (N, H); blocks of rows in parallel."""
    n = x.shape[0]
    out = np.empty((n, W.shape[1]), dtype=W.dtype)
    count = np.empty(n, dtype=np.int64)
    blocks = (n + BLOCK - 1) // BLOCK
    # a row costs a quarter of a fused gradient row: the workers pay from four times as many rows
    if n < 4 * PARALLEL_MIN_ROWS:
        for blk in range(blocks):
            _forward_block(np.int64(blk), x, W, b, out, count)
    else:
        for blk in prange(blocks):
            _forward_block(np.int64(blk), x, W, b, out, count)
    return out


@jit
def _backward_row(r, x, WT, dout, dx, nz, count):
    """dx[r] = dout[r] W^T, and the list of x[r]'s non-zeros for the dW tasks (a block's last rows)."""
    d = WT.shape[1]
    h = WT.shape[0]
    # dx[r, :] accumulates dout[r, j] * W[:, j], four j per pass: with W transposed the inner loop
    # is contiguous and vectorises, where a dot product over j would be a serial reduction.
    for i in range(d):
        dx[r, i] = dx.dtype.type(0)
    j = 0
    while j + 4 <= h:
        g0 = dout[r, j]
        g1 = dout[r, j + 1]
        g2 = dout[r, j + 2]
        g3 = dout[r, j + 3]
        for i in range(d):
            dx[r, i] += (g0 * WT[j, i] + g1 * WT[j + 1, i]) + (g2 * WT[j + 2, i] + g3 * WT[j + 3, i])
        j += 4
    while j < h:
        g0 = dout[r, j]
        for i in range(d):
            dx[r, i] += g0 * WT[j, i]
        j += 1
    count[r] = row_nonzeros(x, r, nz[r])


@jit
def _backward_row_direct(r, x, W, dout, dx, nz, count):
    """_backward_row without W^T: dx[r, i] as a dot product of W[i] and dout[r] in four partial
    sums. Slower per row than the transposed loop, but for fewer than BLOCK rows cheaper than
    transposing W (about 25 us for 784 x 50)."""
    d, h = W.shape
    zero = W.dtype.type(0)
    for i in range(d):
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        j = 0
        while j + 4 <= h:
            s0 += W[i, j] * dout[r, j]
            s1 += W[i, j + 1] * dout[r, j + 1]
            s2 += W[i, j + 2] * dout[r, j + 2]
            s3 += W[i, j + 3] * dout[r, j + 3]
            j += 4
        while j < h:
            s0 += W[i, j] * dout[r, j]
            j += 1
        dx[r, i] = (s0 + s1) + (s2 + s3)
    count[r] = row_nonzeros(x, r, nz[r])


@jit
def _backward_block(blk, x, WT, zero, dout, dx, nz, count):
    """dx for rows 4 blk .. 4 blk + 3 and their lists of non-zeros: dout is dense, so a full block
    is one block_product (each row of W^T loaded once for four rows of dx)."""
    n = x.shape[0]
    r0 = BLOCK * blk
    if r0 + BLOCK > n:
        for r in range(r0, n):
            _backward_row(r, x, WT, dout, dx, nz, count)
        return
    block_product(dout, r0, WT, zero, dx)
    for r in range(r0, r0 + BLOCK):
        count[r] = row_nonzeros(x, r, nz[r])


@jit
def _backward_task(ch, x, nz, count, dout, dW, db):
    """dW rows of input range ch (see input_range_sums), or (ch == NCHUNK) db, summed in row order."""
    if ch < NCHUNK:
        input_range_sums(ch, x, nz, count, dout, dW)
        return
    for r in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            db[j] += dout[r, j]


@jit(parallel=True)
def affine_backward(x, W, dout):
    """Gradients of x @ W + b given dout (N, H): dx (N, D), dW (D, H), db (H,).

    dx in parallel over blocks of four rows; dW over ranges of input index and db in one more
    task, each summed over rows in order (the same bits for any thread count), skipping the zeros
    of x.
    """
    n, d = x.shape
    h = W.shape[1]
    dx = np.empty((n, d), dtype=W.dtype)
    nz = np.empty((n, d), dtype=np.int32)
    count = np.empty(n, dtype=np.int64)
    dW = np.empty((d, h), dtype=W.dtype)
    db = np.zeros(h, dtype=W.dtype)
    if n < BLOCK:
        for r in range(n):
            _backward_row_direct(r, x, W, dout, dx, nz, count)
        for ch in range(NCHUNK + 1):
            _backward_task(np.int64(ch), x, nz, count, dout, dW, db)
        return dx, dW, db
    WT = np.ascontiguousarray(W.T)
    zero = np.zeros(d, dtype=W.dtype)
    blocks = (n + BLOCK - 1) // BLOCK
    # a row costs about what a fused gradient row does, but the transpose of W comes first
    if n < 4 * PARALLEL_MIN_ROWS:
        for blk in range(blocks):
            _backward_block(np.int64(blk), x, WT, zero, dout, dx, nz, count)
        for ch in range(NCHUNK + 1):
            _backward_task(np.int64(ch), x, nz, count, dout, dW, db)
    else:
        for blk in prange(blocks):
            _backward_block(np.int64(blk), x, WT, zero, dout, dx, nz, count)
        for ch in prange(NCHUNK + 1):
            _backward_task(np.int64(ch), x, nz, count, dout, dW, db)
    return dx, dW, db
