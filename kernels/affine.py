"""Affine transform x @ W + b, forward and backward, over the columns of x a block of rows uses.

Rows go in blocks of eight. A block lists the columns where any of its rows is non-zero and the
products run over those columns only, with eight rows by one vector of outputs held in registers
(`block_product`, `block_update`; see `simd`): each vector of W, once loaded, serves eight rows.
On MNIST (81% zeros; a block of eight uses 46% of the columns) this does 2.4 times the
multiply-adds of skipping each row's own zeros, but an eighth of the loads of W, which is what
bounds these products. Dense input is simply a block that uses every column. No BLAS is called,
so no BLAS thread pool competes with numba's threads.

The kernels run in parallel without changing a bit for any thread count: over blocks of rows for
what each row computes alone (x @ W + b, dx), and over ranges of input index for dW = x^T dout,
each range summing its rows of dW over the samples in order. The same pieces serve the fused
two-layer kernels in `twolayer`; `affine_row` (one row, its own zeros skipped) serves the
numerical gradient's cache, which is built row by row.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels._jit import jit
from kernels.simd import lanes, vadd, vfma, vload_part, vstore_part, vzero


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
# finds its part of every block's list of columns by a short binary search.
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


# Rows handled together: each vector of W, once loaded, serves eight rows of the product. W stays
# in L2 (313 KB in float64), and what bounds the product is moving it to L1: measured here for
# 1000 dense float64 rows, 15-17 GFMA/s with four rows a block, 25 with eight (NumPy's BLAS: 19).
# A block goes over the columns where any of its rows is non-zero: on MNIST test images 46% of
# the columns for eight rows (19% for one), so 2.4 times the multiply-adds of skipping each row's
# own zeros, but an eighth of the loads of W, and the loops are free of data-dependent branches.
BLOCK = 8


@jit
def block_row_indices(n, r0):
    """Rows r0 .. r0 + 7 of an n-row array, the last row repeated past its end: a block's
    products read those rows and keep only the results of the rows that exist."""
    last = n - 1
    return (r0, min(r0 + 1, last), min(r0 + 2, last), min(r0 + 3, last), min(r0 + 4, last),
            min(r0 + 5, last), min(r0 + 6, last), min(r0 + 7, last))


@jit
def transpose(W):
    """W.T as a new C-contiguous array (half the time of np.ascontiguousarray(W.T) here)."""
    d, h = W.shape
    WT = np.empty((h, d), dtype=W.dtype)
    for i in range(d):
        for j in range(h):
            WT[j, i] = W[i, j]
    return WT


@jit
def block_columns(x, r0, cols):
    """cols[:u] = the columns where any of rows r0 .. r0 + 7 of x (those that exist) is non-zero,
    ascending; returns u."""
    d = x.shape[1]
    zero = x.dtype.type(0)
    i0, i1, i2, i3, i4, i5, i6, i7 = block_row_indices(x.shape[0], r0)
    # First a flag per column, in a loop that vectorises (eight rows compared at once), then the
    # flags compacted in place: cols[u] is written after cols[i] is read, and u <= i.
    for i in range(d):
        cols[i] = (((x[i0, i] != zero) | (x[i1, i] != zero)) | ((x[i2, i] != zero) | (x[i3, i] != zero))) | (
            ((x[i4, i] != zero) | (x[i5, i] != zero)) | ((x[i6, i] != zero) | (x[i7, i] != zero)))
    u = 0
    for i in range(d):  # branch-free: every column is written, u moves past the used ones
        used = cols[i]
        cols[u] = i
        u += used
    return u


@jit
def block_product(x, r0, cols, u, W, b, out):
    """out[r0 + q] = b + sum_t x[r0 + q, cols[t]] W[cols[t]] for the rows q < 8 of x that exist.

    Register-blocked (see `simd`): eight rows by one vector of columns are eight accumulators, and
    each vector of W is loaded once for the eight rows. Loads and stores are masked to the lanes
    a vector covers: all of them but for a row's last, partial vector (a full mask costs no more
    than a plain load here).
    """
    h = W.shape[1]
    rows = min(BLOCK, x.shape[0] - r0)
    i0, i1, i2, i3, i4, i5, i6, i7 = block_row_indices(x.shape[0], r0)
    step = lanes(W)
    bias = b.reshape((1, h))
    for j0 in range(0, h, step):
        m = min(step, h - j0)
        a0 = vload_part(bias, 0, j0, m)
        a1 = a0
        a2 = a0
        a3 = a0
        a4 = a0
        a5 = a0
        a6 = a0
        a7 = a0
        for t in range(u):
            k = cols[t]
            w = vload_part(W, k, j0, m)
            a0 = vfma(x[i0, k], w, a0)
            a1 = vfma(x[i1, k], w, a1)
            a2 = vfma(x[i2, k], w, a2)
            a3 = vfma(x[i3, k], w, a3)
            a4 = vfma(x[i4, k], w, a4)
            a5 = vfma(x[i5, k], w, a5)
            a6 = vfma(x[i6, k], w, a6)
            a7 = vfma(x[i7, k], w, a7)
        vstore_part(out, r0, j0, a0, m)
        if rows > 1:
            vstore_part(out, r0 + 1, j0, a1, m)
        if rows > 2:
            vstore_part(out, r0 + 2, j0, a2, m)
        if rows > 3:
            vstore_part(out, r0 + 3, j0, a3, m)
        if rows > 4:
            vstore_part(out, r0 + 4, j0, a4, m)
        if rows > 5:
            vstore_part(out, r0 + 5, j0, a5, m)
        if rows > 6:
            vstore_part(out, r0 + 6, j0, a6, m)
        if rows > 7:
            vstore_part(out, r0 + 7, j0, a7, m)


@jit
def _first_at_least(cols, u, i):
    """The first t < u with cols[t] >= i (u if none): binary search of the ascending list."""
    lo = 0
    hi = u
    while lo < hi:
        mid = (lo + hi) >> 1
        if cols[mid] < i:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def _row_vector(g, r, j0, m):
    """g[r, j0 : j0 + m] as a vector, or zeros for a row past the end of g."""
    if r >= g.shape[0]:
        return vzero(g)
    return vload_part(g, r, j0, m)


@jit
def block_update(x, r0, cols, u, g, lo, hi, out):
    """out[i] += sum_q x[r0 + q, i] g[r0 + q] for the block's columns i in [lo, hi), q = 0 .. 7 in
    order (rows past the end of x and g add nothing).

    The transposed product of `block_product`: eight rows of g, one vector each, are held in
    registers while the rows of out go through L1.
    """
    h = g.shape[1]
    step = lanes(g)
    i0, i1, i2, i3, i4, i5, i6, i7 = block_row_indices(x.shape[0], r0)
    t0 = _first_at_least(cols, u, lo)
    t1 = _first_at_least(cols, u, hi)
    if t0 == t1:
        return
    zero = vzero(g)
    for j0 in range(0, h, step):
        m = min(step, h - j0)
        v0 = _row_vector(g, r0, j0, m)
        v1 = _row_vector(g, r0 + 1, j0, m)
        v2 = _row_vector(g, r0 + 2, j0, m)
        v3 = _row_vector(g, r0 + 3, j0, m)
        v4 = _row_vector(g, r0 + 4, j0, m)
        v5 = _row_vector(g, r0 + 5, j0, m)
        v6 = _row_vector(g, r0 + 6, j0, m)
        v7 = _row_vector(g, r0 + 7, j0, m)
        for t in range(t0, t1):
            i = cols[t]
            a = vload_part(out, i, j0, m)
            a = vfma(x[i0, i], v0, a)
            e = vfma(x[i4, i], v4, zero)
            a = vfma(x[i1, i], v1, a)
            e = vfma(x[i5, i], v5, e)
            a = vfma(x[i2, i], v2, a)
            e = vfma(x[i6, i], v6, e)
            a = vfma(x[i3, i], v3, a)
            e = vfma(x[i7, i], v7, e)
            vstore_part(out, i, j0, vadd(a, e), m)


@jit
def range_sums(ch, x, cols, ucount, g, out):
    """out[i] = sum_r x[r, i] g[r] for the inputs i of range ch, over r in ascending order, from
    the blocks' lists of columns (see block_columns); the range's rows of out stay in L1."""
    d, h = out.shape
    w = _chunk_width(d)
    lo = min(ch * w, d)
    hi = min(lo + w, d)
    for i in range(lo, hi):
        for j in range(h):
            out[i, j] = out.dtype.type(0)
    for blk in range(ucount.shape[0]):
        block_update(x, BLOCK * blk, cols[blk], ucount[blk], g, lo, hi, out)


@jit
def _forward_block(blk, x, W, b, out):
    """Rows 8 blk .. 8 blk + 7 of x @ W + b over the columns where any of them is non-zero."""
    cols = np.empty(x.shape[1], dtype=np.int32)
    r0 = BLOCK * blk
    block_product(x, r0, cols, block_columns(x, r0, cols), W, b, out)


@jit(parallel=True)
def affine_forward(x, W, b):
    """out = x @ W + b: x (N, D), W (D, H), b (H,) -> (N, H); blocks of rows in parallel."""
    n = x.shape[0]
    out = np.empty((n, W.shape[1]), dtype=W.dtype)
    blocks = (n + BLOCK - 1) // BLOCK
    # a row costs a quarter of a fused gradient row: the workers pay from four times as many rows
    if n < 4 * PARALLEL_MIN_ROWS:
        for blk in range(blocks):
            _forward_block(np.int64(blk), x, W, b, out)
    else:
        for blk in prange(blocks):
            _forward_block(np.int64(blk), x, W, b, out)
    return out


# Below this many rows affine_backward takes dx as dot products with W's rows instead of
# transposing W for the block product. Measured here, dx of 784 x 50 on one thread: 11 us
# against 17 us for one row, 22 us against 17-24 us for two, 33 us against 17-24 us for three.
DIRECT_DX_ROWS = 2


@jit
def _backward_row_direct(r, W, dout, dx):
    """dx[r] = dout[r] W^T as dot products of W's rows with dout[r] in four partial sums: slower
    per row than the block product, but for a single row cheaper than transposing W for it."""
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


@jit
def _backward_block(blk, x, WT, zero, dout, dx, cols, ucount):
    """dx for rows 8 blk .. 8 blk + 7 (a block product with W^T: dout is dense) and the list of
    the block's columns of x for the dW tasks."""
    r0 = BLOCK * blk
    gcols = np.empty(dout.shape[1], dtype=np.int32)
    block_product(dout, r0, gcols, block_columns(dout, r0, gcols), WT, zero, dx)
    ucount[blk] = block_columns(x, r0, cols[blk])


@jit
def _backward_task(ch, x, cols, ucount, dout, dW, db):
    """dW rows of input range ch (see range_sums), or (ch == NCHUNK) db, summed in row order."""
    if ch < NCHUNK:
        range_sums(ch, x, cols, ucount, dout, dW)
        return
    for r in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            db[j] += dout[r, j]


@jit(parallel=True)
def affine_backward(x, W, dout):
    """Gradients of x @ W + b given dout (N, H): dx (N, D), dW (D, H), db (H,).

    dx in parallel over blocks of eight rows; dW over ranges of input index and db in one more
    task, each summed over rows in order (the same bits for any thread count), over the columns
    where a block of x is non-zero.
    """
    n, d = x.shape
    h = W.shape[1]
    blocks = (n + BLOCK - 1) // BLOCK
    dx = np.empty((n, d), dtype=W.dtype)
    cols = np.empty((blocks, d), dtype=np.int32)
    ucount = np.empty(blocks, dtype=np.int64)
    dW = np.empty((d, h), dtype=W.dtype)
    db = np.zeros(h, dtype=W.dtype)
    if n < DIRECT_DX_ROWS:
        for r in range(n):
            _backward_row_direct(r, W, dout, dx)
        for blk in range(blocks):
            ucount[blk] = block_columns(x, BLOCK * blk, cols[blk])
        for ch in range(NCHUNK + 1):
            _backward_task(np.int64(ch), x, cols, ucount, dout, dW, db)
        return dx, dW, db
    WT = transpose(W)
    zero = np.zeros(d, dtype=W.dtype)
    # a row costs about what a fused gradient row does, but the transpose of W comes first
    if n < 4 * PARALLEL_MIN_ROWS:
        for blk in range(blocks):
            _backward_block(np.int64(blk), x, WT, zero, dout, dx, cols, ucount)
        for ch in range(NCHUNK + 1):
            _backward_task(np.int64(ch), x, cols, ucount, dout, dW, db)
    else:
        for blk in prange(blocks):
            _backward_block(np.int64(blk), x, WT, zero, dout, dx, cols, ucount)
        for ch in prange(NCHUNK + 1):
            _backward_task(np.int64(ch), x, cols, ucount, dout, dW, db)
    return dx, dW, db
