"""The two-layer net fused: affine -> sigmoid -> affine -> softmax -> loss in one kernel, in parallel.

Shapes: x (N, D), t (N,) int class indices, W1 (D, H), b1 (H,), W2 (H, C), b2 (C,). All float
arrays share one dtype and every intermediate stays in it. `loss` is CROSS_ENTROPY (the default)
or SUM_SQUARED (half the squared distance between the softmax output and the one-hot label), each
averaged over the batch.

The work is split so that every number is computed by one thread in a fixed order: results are
the same bits for any thread count (numba.set_num_threads), and the same as with one thread.

Phase 1, parallel over blocks of eight samples. a1 = x W1 + b1 goes over the non-zeros of x
(`affine.row_block`): on MNIST rows in pairs over their non-zeros (18% of the inputs each), dense
blocks all eight rows over their union, in registers (see `nonzeros` and `simd`); both ways give
the same numbers. sigmoid and softmax use `vexp`, which vectorises. Then the logits, and per mode
the probabilities, the row's loss, or the deltas dy = dL/da2 (with the 1/N of the mean) and da1 =
(dy W2^T) * z * (1 - z). Blocks share nothing but the masks of x's rows that x W1 went over, which
each block leaves in its own places of `rw` for phase 2.

Phase 2 (gradient only), parallel over the inputs 64 at a time and one more task. A task of 64
inputs first turns the row masks into column masks, where each input is non-zero
(`nonzeros.words_transposed`: 64 x 64 bit transposes of what phase 1 left, instead of reading x
again). Then dW1[i] = sum_r x[r, i] da1[r] over the samples where x[r, i] != 0, in ascending r
(`nonzeros.column_block`: eight inputs at a time, in pairs over their non-zeros or the eight over
their union). The first task sums db1, dW2 = z^T dy and db2 over r in order. No per-thread partial
sums, nothing added up afterwards.

The loss is the in-order sum of the per-row losses. `hidden_block` and `logits_row` are the pieces
the numerical-gradient kernel builds its cache with.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels._jit import jit
from kernels.activation import sigmoid_pair
from kernels.affine import (
    BLOCK,
    PARALLEL_MIN_ROWS,
    block_order,
    block_product,
    block_scratch,
    column_scratch,
    row_block,
    serial,
    transpose,
    word_task,
)
from kernels.nonzeros import WORD, column_block_product, word_count
from kernels.simd import vector_rows
from kernels.softmax import CROSS_ENTROPY, SUM_SQUARED, sum_squared_row, sum_squared_row_grad
from kernels.vexp import vexp


@jit
def hidden_block(x, r0, W1, b1, a1, z, zc, words, cols):
    """Rows r0 .. r0 + 7 (those that exist) of a1 = x W1 + b1 over the non-zeros of x (see
    affine.row_block), z = sigmoid(a1) and zc = 1 - z = sigmoid(-a1). a1 must not share memory
    with z or zc: LLVM vectorises the sigmoid loop behind a run-time check that they do not overlap,
    and with a1 = z it ran one element at a time (batch 100, float64: 36 us against 7.5 us).
    words and cols are affine.row_scratch's; the row masks of x that the product went over are
    left in words (row r0 + q in words[q], see nonzeros.row_words)."""
    row_block(x, r0, W1, b1, a1, words, cols)
    one = W1.dtype.type(1)
    for r in range(r0, min(r0 + BLOCK, x.shape[0])):
        for j in range(W1.shape[1]):
            z[r, j], zc[r, j] = sigmoid_pair(a1[r, j], one)


@jit
def logits_row(z, r, W2, b2, a2):
    """a2[r] = z[r] W2 + b2."""
    h = W2.shape[0]
    c = W2.shape[1]
    out = a2[r]
    for k in range(c):
        out[k] = b2[k]
    for j in range(h):
        zv = z[r, j]
        for k in range(c):
            out[k] += zv * W2[j, k]


@jit
def _softmax_row(a2, r, e):
    """e[r] = exp(a2[r] - max) (vectorised exp); returns (max, sum of e[r]). The exponentials
    and their in-order sum are two loops: in one, the sum, which must not be reordered, kept the
    exponentials from vectorising (100 rows of 10 logits with the loss: 4.3 us against 7.7 us in
    float64, 3.5 against 5.5 us in float32)."""
    c = a2.shape[1]
    m = a2[r, 0]
    for k in range(1, c):
        m = a2[r, k] if a2[r, k] > m else m
    for k in range(c):
        e[r, k] = vexp(a2[r, k] - m)
    s = a2.dtype.type(0)
    for k in range(c):
        s += e[r, k]
    return m, s


# _row_loss and _row_deltas are inlined by numba: called once per row, as calls they cost
# reference counting of their arrays on every row (backprop at batch 100, one thread: 165-166 us
# against 167-169 us; the loss 89.5 against 91.5 us). _softmax_row stays a call: inlined, its
# vectorised exp trips a pedantic check of numba's parallel lowering (NumbaIRAssumptionWarning).
@jit(inline="always")
def _row_loss(a2, e, r, label, loss):
    """The loss of row r from its logits; leaves exp(a2[r] - max) or the softmax in e[r]."""
    m, s = _softmax_row(a2, r, e)
    if loss == SUM_SQUARED:
        return sum_squared_row(e, r, s, label) / (a2.dtype.type(1) + a2.dtype.type(1))
    return (m - a2[r, label]) + np.log(s)


@jit(inline="always")
def _row_deltas(a2, e, r, label, loss, inv_n):
    """e[r] = dL/da2[r] of the mean loss (scaled by inv_n = 1/N)."""
    _, s = _softmax_row(a2, r, e)
    if loss == SUM_SQUARED:
        sum_squared_row_grad(e, r, s, label, inv_n)
        return
    for k in range(a2.shape[1]):
        e[r, k] = e[r, k] / s * inv_n
    e[r, label] -= inv_n


# What phase 1 leaves per row besides z: softmax probabilities, the row's loss, or dy and da1.
_PROBABILITIES = 0
_LOSS = 1
_DELTAS = 2


@jit
def _phase1_block(blk, x, t, W1, b1, W2, b2, W2T, loss, mode, inv_n, rw, z, zc, a2, e, rows, da1,
                  scratch):
    """Phase 1 for rows 8 blk .. 8 blk + 7: the hidden layer over the non-zeros of x (see
    affine.row_block), the logits and (for the gradient) dy W2^T as block products, and per mode
    the rest (see the module doc). For the gradient the block's row masks of x go to rw[:, rows]
    (the layout nonzeros.words_transposed takes)."""
    n = x.shape[0]
    h = W1.shape[1]
    c = W2.shape[1]
    r0 = BLOCK * blk
    r1 = min(r0 + BLOCK, n)
    words3, cols, every, zero = scratch
    words = words3[blk]
    hidden_block(x, r0, W1, b1, da1, z, zc, words, cols)  # a1 is not kept: da1 holds it until dy W2^T
    for w in range(rw.shape[0]):  # x's row masks, for phase 2's column masks
        for r in range(r0, min(r1, rw.shape[1])):
            rw[w, r] = words[r - r0, w]
    block_product(z, r0, every, h, W2, b2, a2)
    for r in range(r0, r1):
        if mode == _LOSS:
            rows[r] = _row_loss(a2, e, r, t[r], loss)
        elif mode == _DELTAS:
            _row_deltas(a2, e, r, t[r], loss, inv_n)
        else:
            _, total = _softmax_row(a2, r, e)
            for k in range(c):
                e[r, k] = e[r, k] / total
    if mode == _DELTAS:
        block_product(e, r0, every, c, W2T, zero, da1)
        for r in range(r0, r1):
            for j in range(h):
                da1[r, j] = da1[r, j] * z[r, j] * zc[r, j]


@jit
def _phase2_task(ch, x, rw, cw, z, dy, da1, dW1, db1, dW2, db2, scratch):
    """Task ch of phase 2: db1, dW2 and db2 (ch == 0), or rows 64 (ch - 1) .. 64 ch - 1 of dW1."""
    n, h = z.shape
    c = dy.shape[1]
    if ch == 0:
        every = np.arange(n, dtype=np.int64)  # z is dense: every sample is used
        for j0 in range(0, h, BLOCK):
            column_block_product(z, j0, every, n, dy, dW2)
        for r in range(n):
            for j in range(h):
                db1[j] += da1[r, j]
            for k in range(c):
                db2[k] += dy[r, k]
        return
    word_task(ch - 1, x, rw, cw, da1, dW1, scratch)


@jit
def _block_scratch(x, W1, W2):
    """What phase 1's blocks take besides their outputs, allocated once per call (in every block
    they cost about 2 us a call at batch 100): affine.block_scratch's words and cols, every column
    index of z and dy (dense: all are used), and zero bias for dy W2^T."""
    h = W1.shape[1]
    words, cols = block_scratch((x.shape[0] + BLOCK - 1) // BLOCK, x)
    return words, cols, np.arange(max(h, W2.shape[1]), dtype=np.int64), np.zeros(h, dtype=W1.dtype)


@jit
def _phase1_arrays(x, W1, W2, mode):
    """Phase 1's outputs, allocated: (rw, z, zc, a2, e, rows, da1). da1 holds a1 first (see
    hidden_block), then dL/da1; its rows are whole vectors wide and aligned (simd.vector_rows),
    because phase 2 loads them once per non-zero of x."""
    n, d = x.shape
    h = W1.shape[1]
    c = W2.shape[1]
    dt = W1.dtype
    return (np.zeros((word_count(d), WORD * word_count(n) if mode == _DELTAS else 0), dtype=np.uint64),
            np.empty((n, h), dtype=dt), np.empty((n, h), dtype=dt), np.empty((n, c), dtype=dt),
            np.empty((n, c), dtype=dt), np.empty(n if mode == _LOSS else 0, dtype=dt),
            vector_rows(n, h, W1))


# The public kernels below are each one parallel function: numba links every callee's code into
# each function that calls it and compiles it again there, so a serial wrapper around parallel
# helpers would compile all of their code once more (measured: 0.75 s of a cold first backprop).
# The prange bodies are single calls to shared row and task functions; prange counts in uint64,
# and an int64 index keeps those at one compiled version each.


@jit(parallel=True)
def two_layer_predict(x, W1, b1, W2, b2):
    """Softmax class probabilities (N, C) of the two-layer net."""
    n = x.shape[0]
    dt = W1.dtype
    rw, z, zc, a2, e, rows, da1 = _phase1_arrays(x, W1, W2, _PROBABILITIES)
    scratch = _block_scratch(x, W1, W2)
    W2T = W2  # read by the gradient only
    t = np.zeros(0, dtype=np.int64)
    blocks = (n + BLOCK - 1) // BLOCK
    if serial(n, PARALLEL_MIN_ROWS):
        for blk in range(blocks):
            _phase1_block(np.int64(blk), x, t, W1, b1, W2, b2, W2T, np.int64(CROSS_ENTROPY),
                        np.int64(_PROBABILITIES), dt.type(1), rw, z, zc, a2, e, rows, da1, scratch)
    else:
        for it in prange(blocks):
            _phase1_block(block_order(it, blocks), x, t, W1, b1, W2, b2, W2T,
                          np.int64(CROSS_ENTROPY), np.int64(_PROBABILITIES), dt.type(1), rw, z, zc, a2,
                          e, rows, da1, scratch)
    return e


@jit(parallel=True)
def two_layer_loss(x, t, W1, b1, W2, b2, loss=CROSS_ENTROPY):
    """Exact mean loss (softmax cross-entropy, or sum of squares) of the net on (x, t), a scalar of the params dtype."""
    n = x.shape[0]
    dt = W1.dtype
    rw, z, zc, a2, e, rows, da1 = _phase1_arrays(x, W1, W2, _LOSS)
    scratch = _block_scratch(x, W1, W2)
    W2T = W2  # read by the gradient only
    blocks = (n + BLOCK - 1) // BLOCK
    if serial(n, PARALLEL_MIN_ROWS):
        for blk in range(blocks):
            _phase1_block(np.int64(blk), x, t, W1, b1, W2, b2, W2T, np.int64(loss), np.int64(_LOSS),
                        dt.type(1), rw, z, zc, a2, e, rows, da1, scratch)
    else:
        for it in prange(blocks):
            _phase1_block(block_order(it, blocks), x, t, W1, b1, W2, b2, W2T, np.int64(loss),
                          np.int64(_LOSS), dt.type(1), rw, z, zc, a2, e, rows, da1, scratch)
    total = dt.type(0)
    for r in range(n):  # in order: the same sum for any thread count
        total += rows[r]
    return total / dt.type(n)


@jit(parallel=True)
def two_layer_gradient(x, t, W1, b1, W2, b2, loss=CROSS_ENTROPY):
    """Backprop gradients (dW1, db1, dW2, db2) of the mean loss, shapes of the params."""
    n, d = x.shape
    h = W1.shape[1]
    c = W2.shape[1]
    dt = W1.dtype
    inv_n = dt.type(1) / dt.type(n)
    rw, z, zc, a2, dy, rows, da1 = _phase1_arrays(x, W1, W2, _DELTAS)
    scratch = _block_scratch(x, W1, W2)
    W2T = transpose(W2)
    items = (n + BLOCK - 1) // BLOCK
    if serial(n, PARALLEL_MIN_ROWS):
        for blk in range(items):
            _phase1_block(np.int64(blk), x, t, W1, b1, W2, b2, W2T, np.int64(loss), np.int64(_DELTAS),
                          inv_n, rw, z, zc, a2, dy, rows, da1, scratch)
    else:
        for it in prange(items):
            _phase1_block(block_order(it, items), x, t, W1, b1, W2, b2, W2T, np.int64(loss),
                          np.int64(_DELTAS), inv_n, rw, z, zc, a2, dy, rows, da1, scratch)
    cw = np.empty((word_count(n), d), dtype=np.uint64)
    tasks = 1 + word_count(d)
    dW1 = np.empty((d, h), dtype=dt)
    db1 = np.zeros(h, dtype=dt)
    dW2 = np.zeros((h, c), dtype=dt)
    db2 = np.zeros(c, dtype=dt)
    cs = column_scratch(tasks - 1, x, da1)
    if serial(n, PARALLEL_MIN_ROWS):
        for ch in range(tasks):
            _phase2_task(np.int64(ch), x, rw, cw, z, dy, da1, dW1, db1, dW2, db2, cs)
    else:
        for ch in prange(tasks):
            _phase2_task(np.int64(ch), x, rw, cw, z, dy, da1, dW1, db1, dW2, db2, cs)
    return dW1, db1, dW2, db2
