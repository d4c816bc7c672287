"""Affine transform x @ W + b, forward and backward, over the non-zeros of x.

Rows go in blocks of eight, and each block takes the cheaper of two ways (see `nonzeros` for the
costs, measured): rows in pairs over their non-zeros (`nonzeros.masked_sums`, one load of W's row a
non-zero of either), or the eight rows together over the columns where any of them is non-zero,
eight rows by one vector of outputs held in registers (`block_product`: each vector of W, once
loaded, serves eight rows, but the zeros inside the union are multiplied too). On MNIST (81% zeros;
a block of eight uses 46% of the columns) the pairs run; dense input takes the block. Both sum from
b in ascending column, one FMA a term, so the choice changes speed, not results. dW = x^T dout goes
the same way over blocks of eight columns of x (`nonzeros.column_block`), and over all of x's rows
without looking at masks where x has no zeros. dx = dout W^T takes W^T and the row blocks, or for
a few rows, where transposing W would cost more than the product, dot products with W's rows
(`simd.row_dots`). No BLAS is called, so no BLAS thread pool competes with numba's threads.

The kernels run in parallel without changing a bit for any thread count: over blocks of rows for
what each row computes alone (x @ W + b, dx; dx for a few rows over ranges of its columns), and
over ranges of input index for dW, each row of dW summed over the samples in order. The same
pieces serve the fused two-layer kernels in `twolayer` and the numerical gradient's forward cache
in `numgrad`.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels._jit import jit, num_threads
from kernels.nonzeros import (
    SPARSE_BELOW,
    WORD,
    all_set,
    block_row_indices,
    column_block,
    column_block_product,
    column_quads,
    column_words,
    columns_in_pairs,
    fma8,
    masked_sums,
    quads_pay,
    row_words,
    store8_part,
    union_counts,
    union_list,
    word_count,
    words_transposed,
)
from kernels.simd import (dot_rows, lanes, quarter_lanes, row_dots, transpose_tile, vfma, vfma_pair,
                          vload_part, vload_quarter, vload_quarter_twice, vstore, vstore_high,
                          vstore_low, vstore_part)


# Below this many rows the kernels run on the calling thread: waking numba's workers costs about
# 20 us on this VM (gradient of one MNIST row: 12 us on the calling thread, 35 us when the workers
# were woken), and from 8 rows on two threads win (gradient of 8 rows: 30 us against 41 us). Both
# loops run the same code in the same order: the same bits either way.
PARALLEL_MIN_ROWS = 8


@jit
def serial(n, min_rows):
    """Whether a kernel's loops over n rows run on the calling thread: below min_rows rows waking
    the workers costs more than the rows, and on one thread (numba.set_num_threads(1)) numba's
    scheduler still costs about 2 us a parallel loop (two empty loops of 14 items: 4.7 us against
    1.0 us serial). Both ways run the same code in the same order: the same bits."""
    return n < min_rows or num_threads() == 1


# Tasks over ranges of input index for dW: enough for load balance on many cores, each a whole
# number of eight-column blocks, as near the same number as whole blocks allow (see
# column_task_range).
NCHUNK = 16


# Rows handled together: each vector of W, once loaded, serves eight rows of the product. W stays
# in L2 (313 KB in float64), and what bounds the product is moving it to L1: measured here for
# 1000 dense float64 rows, 15-17 GFMA/s with four rows a block, 25 with eight (NumPy's BLAS: 19).
# A block product goes over the columns where any of its rows is non-zero, and row_block takes it
# where that union is dense enough (see nonzeros).
BLOCK = 8


@jit
def transpose(W):
    """W.T as a new C-contiguous array, in vector-square tiles transposed in registers
    (simd.transpose_tile). 784 x 50 here: float32 7.6 us against 11.9 us element by element; float64
    12.3 against 12.7 us, where moving the 313 KB is what it costs either way."""
    d, h = W.shape
    WT = np.empty((h, d), dtype=W.dtype)
    step = lanes(W)
    for i0 in range(0, d, step):
        for j0 in range(0, h, step):
            transpose_tile(W, i0, j0, WT)
    return WT


@jit
def block_product(x, r0, cols, u, W, b, out):
    """out[r0 + q] = b + sum_t x[r0 + q, cols[t]] W[cols[t]] for the rows q < 8 of x that exist.

    Register-blocked (see `simd`): eight rows by one vector of columns are eight accumulators, and
    each vector of W is loaded once for the eight rows. Loads and stores are masked to the lanes
    a vector covers: all of them but for a row's last, partial vector (a full mask costs no more
    than a plain load here). A last vector of a quarter of the lanes or fewer (2 of 8 float64
    columns, 2 of 16 float32 ones, for 50 columns) goes in quarter-width vectors that end at the
    row's end, and the columns they share with the vector before get the same numbers again.
    Where a whole vector comes before it, that short end rides in the same loop, two rows to a
    half-width vector (`_block_with_tail`): four 32-byte FMAs a term instead of eight 16-byte
    ones, and x's eight values loaded once for both. Dense x (1000 rows, 784 by 50), one core:
    float32 874-892 us against 952-959 us, float64 1.59-1.60 ms against 1.63-1.66 ms; alone
    (`_block_quarter`, as it was before the pairs) against whole 64-byte vectors: float32
    882-889 against 949-972 us. Every sum is the same either way: each output element's terms
    are added in ascending order, one FMA each.
    """
    h = W.shape[1]
    rows = min(BLOCK, x.shape[0] - r0)
    i0, i1, i2, i3, i4, i5, i6, i7 = block_row_indices(x.shape[0], r0)
    step = lanes(W)
    bias = b.reshape((1, h))
    tail = h % step
    paired = 0 < tail <= quarter_lanes(W) and h > step
    for j0 in range(0, h - tail if paired else h, step):
        m = min(step, h - j0)
        if paired and j0 + step + tail == h:
            _block_with_tail(x, r0, cols, u, W, bias, out, j0, h - quarter_lanes(W))
            continue
        if 0 < m <= quarter_lanes(W) <= h:
            _block_quarter(x, r0, cols, u, W, bias, out, h - quarter_lanes(W))
            continue
        a0 = vload_part(bias, 0, j0, m)
        a1 = a2 = a3 = a4 = a5 = a6 = a7 = a0
        for t in range(u):
            k = cols[t]
            a0, a1, a2, a3, a4, a5, a6, a7 = fma8(x[i0, k], x[i1, k], x[i2, k], x[i3, k], x[i4, k],
                                                  x[i5, k], x[i6, k], x[i7, k],
                                                  vload_part(W, k, j0, m),
                                                  a0, a1, a2, a3, a4, a5, a6, a7)
        store8_part(out, r0, rows, j0, m, a0, a1, a2, a3, a4, a5, a6, a7)


@jit(inline="always")
def _block_with_tail(x, r0, cols, u, W, bias, out, j0, tc):
    """block_product's last whole vector, at columns j0 .., together with the short end at tc ..
    tc + quarter - 1 in half-width vectors that hold two rows each (vfma_pair)."""
    step = lanes(W)
    rows = min(BLOCK, x.shape[0] - r0)
    i0, i1, i2, i3, i4, i5, i6, i7 = block_row_indices(x.shape[0], r0)
    a0 = vload_part(bias, 0, j0, step)
    a1 = a2 = a3 = a4 = a5 = a6 = a7 = a0
    p0 = vload_quarter_twice(bias, 0, tc)
    p1 = p2 = p3 = p0
    for t in range(u):
        k = cols[t]
        s0 = x[i0, k]
        s1 = x[i1, k]
        s2 = x[i2, k]
        s3 = x[i3, k]
        s4 = x[i4, k]
        s5 = x[i5, k]
        s6 = x[i6, k]
        s7 = x[i7, k]
        a0, a1, a2, a3, a4, a5, a6, a7 = fma8(s0, s1, s2, s3, s4, s5, s6, s7,
                                              vload_part(W, k, j0, step),
                                              a0, a1, a2, a3, a4, a5, a6, a7)
        wq = vload_quarter_twice(W, k, tc)
        p0 = vfma_pair(s0, s1, wq, p0)
        p1 = vfma_pair(s2, s3, wq, p1)
        p2 = vfma_pair(s4, s5, wq, p2)
        p3 = vfma_pair(s6, s7, wq, p3)
    store8_part(out, r0, rows, j0, step, a0, a1, a2, a3, a4, a5, a6, a7)
    vstore_low(out, r0, tc, p0)
    if rows > 1:
        vstore_high(out, r0 + 1, tc, p0)
    if rows > 2:
        vstore_low(out, r0 + 2, tc, p1)
    if rows > 3:
        vstore_high(out, r0 + 3, tc, p1)
    if rows > 4:
        vstore_low(out, r0 + 4, tc, p2)
    if rows > 5:
        vstore_high(out, r0 + 5, tc, p2)
    if rows > 6:
        vstore_low(out, r0 + 6, tc, p3)
    if rows > 7:
        vstore_high(out, r0 + 7, tc, p3)


@jit(inline="always")
def _block_quarter(x, r0, cols, u, W, bias, out, tc):
    """block_product's short end in quarter-width vectors at columns tc .. tc + quarter - 1."""
    rows = min(BLOCK, x.shape[0] - r0)
    i0, i1, i2, i3, i4, i5, i6, i7 = block_row_indices(x.shape[0], r0)
    a0 = vload_quarter(bias, 0, tc)
    a1 = a2 = a3 = a4 = a5 = a6 = a7 = a0
    for t in range(u):
        k = cols[t]
        a0, a1, a2, a3, a4, a5, a6, a7 = fma8(x[i0, k], x[i1, k], x[i2, k], x[i3, k], x[i4, k],
                                              x[i5, k], x[i6, k], x[i7, k], vload_quarter(W, k, tc),
                                              a0, a1, a2, a3, a4, a5, a6, a7)
    vstore(out, r0, tc, a0)
    if rows > 1:
        vstore(out, r0 + 1, tc, a1)
    if rows > 2:
        vstore(out, r0 + 2, tc, a2)
    if rows > 3:
        vstore(out, r0 + 3, tc, a3)
    if rows > 4:
        vstore(out, r0 + 4, tc, a4)
    if rows > 5:
        vstore(out, r0 + 5, tc, a5)
    if rows > 6:
        vstore(out, r0 + 6, tc, a6)
    if rows > 7:
        vstore(out, r0 + 7, tc, a7)


# row_block, column_task and the nonzeros pieces between them and the register-blocked loops are
# inlined into their callers by numba: numba links a called function's code into every caller and
# optimises it again there, level after level (two_layer_gradient's cold compile: 12.4-12.9 s so,
# 14.6-14.7 s as separate functions).
@jit(inline="always")
def row_block(x, r0, W, b, out, words, cols):
    """out[r0 .. r0 + 7] = x W + b for the rows of the block that exist, rows in pairs over their
    non-zeros (nonzeros.masked_sums) or the eight over their union (block_product), whichever
    costs less: the same numbers either way. words (8, word_count(D)) is scratch; cols (D,) is
    0 .. D - 1 as row_scratch makes it, shared by the blocks that run at the same time and never
    written: where the union is every column it is used as it is (affine_forward, 10 dense rows by
    784 x 50: 17.9-18.2 us against 18.2-18.3 with a list of the union's bits in float64, 10.9
    against 11.3 us in float32), and a union of fewer columns is listed in the block's own array.
    (Listing it into cols, as this once did, left the next block that used cols as it is with
    another block's union: wrong sums wherever a block whose rows share a zero column came before
    a block without zeros.)"""
    rows = min(BLOCK, x.shape[0] - r0)
    d = x.shape[1]
    for q in range(rows):
        row_words(x, r0 + q, words, q)
    u, paired = union_counts(words, rows)
    if paired < SPARSE_BELOW * u:
        masked_sums(words, rows, x.reshape(-1), r0 * d, d, 1, W, b.reshape((1, b.shape[0])), out, r0)
        return
    union = cols
    if u < d:
        union = np.empty(u, dtype=np.int64)
        union_list(words, rows, union)
    block_product(x, r0, union, u, W, b, out)


@jit
def row_scratch(x):
    """Scratch for one row_block call on x: (words, cols), cols = 0 .. D - 1 (see row_block)."""
    return np.empty((BLOCK, word_count(x.shape[1])), dtype=np.uint64), np.arange(x.shape[1])


@jit
def block_scratch(blocks, x):
    """row_scratch for `blocks` blocks of rows at once, block i's words in words[i] and cols shared
    (row_block only reads it): allocated in every block, they cost about 2 us a call at batch 100."""
    return np.empty((blocks, BLOCK, word_count(x.shape[1])), dtype=np.uint64), np.arange(x.shape[1])


@jit
def column_task_range(ch, d):
    """(first, end) of the columns, of d, that column task ch of NCHUNK takes: d's blocks of eight
    columns shared as evenly as whole blocks allow. numba gives each thread one run of consecutive
    iterations of a parallel loop, as many as the others, whatever they cost, so tasks of uneven
    size leave threads waiting: with seven blocks a task, 784 columns filled 14 tasks and left two
    empty, and two threads took 63 and 35 blocks. affine_backward on 1000 dense rows, two threads,
    fastest of 31 calls in four rounds: float64 1.83-1.98 ms against 2.10-2.31 ms so, float32
    0.94-1.04 against 1.07-1.12 ms; on MNIST-like rows 1.12-1.25 against 1.19-1.37 ms (float64)."""
    blocks = (d + BLOCK - 1) // BLOCK
    return min(BLOCK * (ch * blocks // NCHUNK), d), min(BLOCK * ((ch + 1) * blocks // NCHUNK), d)


@jit
def column_scratch(tasks, x, g):
    """Scratch for `tasks` column tasks on x^T g, allocated once per call (in every task it cost
    about 2 us a backprop at batch 100): (words, rows, zero), task i's own words[i] and rows[i]
    (rows[i] starts as 0 .. N - 1), and zero bias (1, H) for all."""
    n = x.shape[0]
    rows = np.empty((tasks, n), dtype=np.int64)
    for i in range(tasks):
        for r in range(n):
            rows[i, r] = r
    return (np.empty((tasks, BLOCK, word_count(n)), dtype=np.uint64), rows,
            np.zeros((1, g.shape[1]), dtype=g.dtype))


@jit(inline="always")
def column_range(x, k_lo, k_hi, cw, g, out, full, words, rows, zero):
    """Rows k_lo .. k_hi - 1 of out = x^T g (k_lo a multiple of 8), from the column masks cw of x
    (see nonzeros.column_words), eight at a time (nonzeros.column_block), each row summed over the
    samples in order. full: x has no zeros (nonzeros.all_set), and every block goes over all the
    samples without looking at its masks, by nonzeros.column_quads where that pays
    (nonzeros.quads_pay), else by the block product where the masks would choose it
    (nonzeros.columns_in_pairs: a union of all n samples, four pairs each over all of them): the
    same numbers, without 7 us of unions and row lists (10 dense float64 rows by 784: dW in 21 us
    against 28). words, rows and zero are one task's column_scratch."""
    n = x.shape[0]
    by_block = full and not columns_in_pairs(n, (BLOCK // 2) * n)
    quads = full and quads_pay(g, n)
    for k0 in range(k_lo, k_hi, BLOCK):
        if quads:
            column_quads(x, k0, n, g, zero, out)
        elif by_block:
            column_block_product(x, k0, rows, n, g, out)
        else:
            column_block(x, k0, cw, g, out, words, rows, zero)


@jit(inline="always")
def column_task(ch, x, cw, g, out, full, scratch):
    """Rows of out = x^T g for the column blocks of task ch (see column_task_range and
    column_range)."""
    k_lo, k_hi = column_task_range(ch, x.shape[1])
    words, rows, zero = scratch
    column_range(x, k_lo, k_hi, cw, g, out, full, words[ch], rows[ch], zero)


@jit(inline="always")
def word_task(kw, x, rw, cw, g, out, scratch):
    """Rows 64 kw .. 64 kw + 63 of out = x^T g (those that exist), from word kw of x's row masks
    (rw, see nonzeros.words_transposed): first their column masks into cw[:, 64 kw ..], then
    column_range over them."""
    words_transposed(rw, kw, cw)
    words, rows, zero = scratch
    column_range(x, WORD * kw, min(WORD * (kw + 1), x.shape[1]), cw, g, out, False, words[kw],
                 rows[kw], zero)


@jit(inline="always")
def block_order(it, blocks):
    """The block of rows that iteration it of a parallel loop over `blocks` blocks computes: the
    last block first, then the others in order. numba hands each thread a run of consecutive
    iterations, the first runs one longer where the threads do not divide the count; the last
    block is the short one when the rows are not a multiple of eight, and first it shortens the
    longest run instead of the shortest (batch 100 on two threads: 52 and 48 rows instead of 56
    and 44; backprop float64, MNIST, 85.6-87.9 us against 89.7-91.3 us). Every block is computed
    as before: the same bits. it may be prange's uint64 counter; the block is an int64."""
    n = np.int64(blocks)
    return (np.int64(it) + n - 1) % n


@jit
def _forward_block(blk, x, W, b, out, words, cols):
    """Rows 8 blk .. 8 blk + 7 of x @ W + b (see row_block), with block_scratch's words and cols."""
    row_block(x, BLOCK * blk, W, b, out, words[blk], cols)


@jit(parallel=True)
def affine_forward(x, W, b):
    """out = x @ W + b: x (N, D), W (D, H), b (H,) -> (N, H); blocks of rows in parallel."""
    n = x.shape[0]
    out = np.empty((n, W.shape[1]), dtype=W.dtype)
    blocks = (n + BLOCK - 1) // BLOCK
    words, cols = block_scratch(blocks, x)
    # a row costs a quarter of a fused gradient row: the workers pay from four times as many rows
    if serial(n, 4 * PARALLEL_MIN_ROWS):
        for blk in range(blocks):
            _forward_block(np.int64(blk), x, W, b, out, words, cols)
    else:
        for it in prange(blocks):
            _forward_block(block_order(it, blocks), x, W, b, out, words, cols)
    return out


# Below this many rows (float64, float32) affine_backward takes dx = dout W^T as dot products with
# W's rows (simd.row_dots) instead of transposing W for the block product. Measured here, the
# whole affine_backward on 784 x 50, dense, one thread, dot products against the transpose:
# float64 25.1 against 31.1 us at 4 rows, 45.3 against 49.3 at 10, 91.6 against 91.8 at 24, 177.8
# against 169.8 at 48; float32, which takes one row of dout a call where float64 takes two, 16.4
# against 16.6 us at 2 rows, 22.6 against 20.3 at 4.
DIRECT_DX_ROWS_FLOAT64 = 24
DIRECT_DX_ROWS_FLOAT32 = 3


@jit
def _direct_dx(W, n):
    return n < (DIRECT_DX_ROWS_FLOAT64 if W.itemsize == 8 else DIRECT_DX_ROWS_FLOAT32)


@jit
def _dx_range(ch, W, dout, dx):
    """Columns of dx = dout W^T for the column task ch (see column_task_range), by row_dots: a
    vector of dx's columns for dot_rows(W) rows of dout at a time, from W's rows without a
    transpose."""
    n = dout.shape[0]
    k_lo, k_hi = column_task_range(ch, W.shape[0])
    step = lanes(W)
    rows = dot_rows(W)
    for k0 in range(k_lo, k_hi, step):
        for r in range(0, n, rows):
            row_dots(W, k0, dout, r, dx)


@jit
def _backward_item(it, x, W, WT, zero, dout, dx, cw, words, cols):
    """Item it of the first parallel loop: first the rows of x's column masks (see
    nonzeros.column_words), then dx = dout W^T: with W^T (WT), a block of eight rows of dout
    (row_block, zero the bias); without it (WT empty), a column task of dx (_dx_range)."""
    if it < cw.shape[0]:
        column_words(x, it, cw)
        return
    it -= cw.shape[0]
    if WT.shape[0] == 0:
        _dx_range(it, W, dout, dx)
        return
    row_block(dout, BLOCK * it, WT, zero, dx, words[it], cols)


@jit
def _backward_task(ch, x, cw, full, dout, dW, db, scratch):
    """db (ch == 0), summed in row order, or the dW rows of column task ch - 1. db goes first:
    numba hands the 17 iterations to two threads as 9 and 8, so each takes eight column tasks and
    the first db besides (with db last, the first took nine column tasks and the second seven)."""
    if ch > 0:
        column_task(ch - 1, x, cw, dout, dW, full, scratch)
        return
    for r in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            db[j] += dout[r, j]


@jit(parallel=True)
def affine_backward(x, W, dout):
    """Gradients of x @ W + b given dout (N, H): dx (N, D), dW (D, H), db (H,).

    dx in parallel over blocks of eight rows with W^T, or for few rows over ranges of its columns
    from W's rows (see DIRECT_DX_ROWS_FLOAT64); dW over ranges of input index and db in one more
    task, each summed over rows in order (the same bits for any thread count), over the non-zeros
    of x (see nonzeros.column_block), or all of x where it has no zeros.
    """
    n, d = x.shape
    h = W.shape[1]
    dx = np.empty((n, d), dtype=W.dtype)
    nw = word_count(n)
    cw = np.empty((nw, d), dtype=np.uint64)
    dW = np.empty((d, h), dtype=W.dtype)
    db = np.zeros(h, dtype=W.dtype)
    if _direct_dx(W, n):
        WT = np.empty((0, d), dtype=W.dtype)
        items = NCHUNK + nw
    else:
        WT = transpose(W)
        items = (n + BLOCK - 1) // BLOCK + nw
    zero = np.zeros(WT.shape[1], dtype=W.dtype)
    scratch = column_scratch(NCHUNK, x, dout)
    words, cols = block_scratch(0 if _direct_dx(W, n) else (n + BLOCK - 1) // BLOCK, dout)
    # a row costs about what a fused gradient row does
    if serial(n, 4 * PARALLEL_MIN_ROWS):
        for it in range(items):
            _backward_item(np.int64(it), x, W, WT, zero, dout, dx, cw, words, cols)
        full = all_set(cw, n)
        for ch in range(NCHUNK + 1):
            _backward_task(np.int64(ch), x, cw, full, dout, dW, db, scratch)
    else:
        for it in prange(items):
            _backward_item(np.int64(it), x, W, WT, zero, dout, dx, cw, words, cols)
        full = all_set(cw, n)
        for ch in prange(NCHUNK + 1):
            _backward_task(np.int64(ch), x, cw, full, dout, dW, db, scratch)
    return dx, dW, db
