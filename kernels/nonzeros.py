"""Where an array is non-zero, as bit masks, and the products that go over those places only.

An MNIST image is 81% zeros, so x @ W and x^T g are mostly multiply-adds by zero. This module
marks the non-zeros of x (N, D) twice, once along each axis:

- row words: bit b of `words[q, w]` is set where x[r, 64 w + b] != 0 (`row_words`);
- column words: bit b of `cw[w, k]` is set where x[64 w + b, k] != 0 (`column_words`, one row
  of words at a time: 64 whole rows of x, read along their length. Marking a range of columns
  instead, 100 rows by 56 columns at a time, took 12 times as long.) Where the row words are at
  hand already, as in backprop after x @ W1, `words_transposed` makes the column words from them
  instead: a 64 x 64 block of bits is one transpose in registers, and x is not read again
  (batch 100: 5 us against 8.5-11 us; batch 1000: 38 us against 100 us).

and sums over the set bits, lowest first, with one rounding per term (`vfma`):

    out[o] = init + sum over the set bits i of words[q]:  c[i] * M[i]          (masked_sums)

which is a row of x @ W + b (c = x[r], M = W, init = b, the row's words) or a row of x^T g
(c = x[:, k], M = g, init = 0, the column's words). A row of M is `lanes` wide vectors held in
registers (see `simd`). Rows (or columns) go in pairs over the union of their two masks: each
vector of M loaded serves both, with a multiply-add by zero where only one of them is non-zero.
On MNIST the union of two images is 1.54 times one image's non-zeros, of two neighbouring pixels
(columns) 1.18 times: a pair costs 0.77 (0.59) of two singles' loads, and measured at batch 100
and 1000, x @ W1 took 13-17% less time in pairs, x^T g 20-37% less.

Where eight columns of x have no zeros at all (dense input), x^T g takes `column_quads`: four
columns over every sample, four vectors of g at a time, each vector loaded serving four columns,
where a row of g takes at most four vectors (float32 rows of 50 do) or the samples are at least
QUADS_MIN_ROWS (wider rows then take a pass per four vectors).

`column_block_product` is the other way to get x^T g: eight columns of x at once over the rows
where any of them is non-zero, eight accumulators a vector of g: each vector of g, once loaded,
serves eight columns, at the price of multiply-adds by the zeros in that union. It is the
transpose of `affine.block_product`, which does the same for eight rows of x @ W.

Which of the two runs for a block is a matter of speed only. A zero term adds nothing exactly
(fma(0, w, a) == a for finite w), and all of them sum from the same start value in ascending index,
so they give the same numbers (up to the sign of a zero result). Kernels take finite weights (see
`kernels`): 0 * inf would be NaN where a union multiplies it and absent where a mask skips it.
Measured on this VM (Zen 4, one core, W and g in L2): a load of a vector of M from L2 costs about
0.55 ns and a vector FMA about 0.29 ns, so a pair's union index costs about as much as its two FMAs
a vector (2 x 0.29), and the block's union index its eight FMAs (8 x 0.29): the pairs win while
their unions add up to fewer than SPARSE_BELOW = 4 times the block's. On MNIST test images a block
of eight images uses 46% of the pixels and each image 18%: the pairs win. A dense block is 4 unions
of the whole width against 1 and takes the block product, but for x^T g over more than
COLUMN_BLOCK_ROWS = 128 samples, where the block product's passes over rows of x far apart cost
more than the pairs' zeros (dense, 1000 samples: 23% less time in pairs).

Under NUMBA_DISABLE_JIT=1 `lowest_bit` and `bit_count` are plain Python and the rest runs as is.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from kernels._jit import jit
from kernels.simd import (
    lanes,
    nonzero_bits,
    nonzero_word,
    quarter_lanes,
    vfma,
    vload,
    vload_quarter,
    vstore,
    vload_part,
    vload_part_quarter,
    vstore_part,
    vzero,
)

# Bits a mask word holds.
WORD = 64

# Masked sums in pairs run where the pairs' unions add up to fewer than SPARSE_BELOW times the
# block's union: see the module doc for the costs this comes from.
SPARSE_BELOW = 4

# Eight columns of x^T g over more samples than this go in pairs whatever their unions: the block
# product goes over its union once per vector of g (seven times for 50 float64 columns), reading
# the eight columns from rows of x far apart each time, and past about two words of samples that
# costs more than the pairs' multiply-adds by zero. Measured on dense x (784 columns) by g (50
# columns), one thread: 200 samples 373-385 us in pairs against 406-411 us, 1000 samples
# 1.89-2.14 ms against 2.48-2.77 ms (float32: 1.04 against 1.33-1.46 ms); at 100 samples the block
# was 2-3% faster, at 10 samples 7%.
COLUMN_BLOCK_ROWS = 128

# Eight columns of x^T g without zeros over at least this many samples go by column_quads whatever
# the width of g (a pass per four vectors of a row of g), where the pairs or the block product
# would run. Measured on dense x (784 columns), one thread, pinned to a core, quads against the
# block product: float64 H = 50 at 64, 80 and 100 samples 113, 138, 170 us against 118, 148,
# 182; at 48 samples 87 against 78 us; H = 100 within 2% from 64 to 100 samples; float32 H = 100
# and 200 at 100 samples 169 and 325 us against 187 and 367, at 64 samples 112 and 211 against
# 106 and 191. Past COLUMN_BLOCK_ROWS, against the pairs, see column_quads.
QUADS_MIN_ROWS = 96


def lowest_bit(w):
    """The index of the lowest set bit of a non-zero uint64."""
    w = int(w)
    return (w & -w).bit_length() - 1


def bit_count(w):
    """The number of set bits of a uint64."""
    return bin(int(w)).count("1")


@intrinsic
def _cttz(typingctx, w):
    if w != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.int64(w), codegen


@intrinsic
def _ctpop(typingctx, w):
    if w != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(w), codegen


@overload(lowest_bit)
def _lowest_bit_overload(w):
    return lambda w: _cttz(w)


@overload(bit_count)
def _bit_count_overload(w):
    return lambda w: _ctpop(w)


@jit
def word_count(n):
    """Mask words that cover n indices."""
    return (n + WORD - 1) // WORD


@jit
def row_words(x, r, words, q):
    """words[q] = the mask of x[r]'s non-zeros, 64 columns a word: a whole word in one compare
    of 64 elements (simd.nonzero_word, whose vector masks join in mask registers), the row's
    short last word a vector at a time. Batch 100, all rows: float64 9.2 us against 10.8 us a
    vector at a time, float32 4.8 against 8.0 us."""
    d = x.shape[1]
    step = lanes(x)
    whole = d // WORD
    for w in range(whole):
        words[q, w] = nonzero_word(x, r, WORD * w)
    for w in range(whole, words.shape[1]):
        bits = np.uint64(0)
        for c in range(WORD * w, d, step):  # a vector compare each
            bits |= nonzero_bits(vload_part(x, r, c, min(step, d - c))) << np.uint64(c - WORD * w)
        words[q, w] = bits


@jit
def block_row_indices(n, r0):
    """Rows r0 .. r0 + 7 of an n-row array, the last row repeated past its end: a block's loops
    read those rows and keep only what the rows that exist give."""
    last = n - 1
    return (r0, min(r0 + 1, last), min(r0 + 2, last), min(r0 + 3, last), min(r0 + 4, last),
            min(r0 + 5, last), min(r0 + 6, last), min(r0 + 7, last))


@jit
def column_words(x, w, cw):
    """cw[w] = word w of every column's mask of x: bit b of cw[w, k] set where
    x[64 w + b, k] != 0."""
    n, d = x.shape
    zero = x.dtype.type(0)
    for k in range(d):
        cw[w, k] = 0
    for r in range(WORD * w, min(WORD * (w + 1), n)):
        bit = np.uint64(r - WORD * w)
        for k in range(d):  # vectorises along the row of x
            cw[w, k] |= np.uint64(x[r, k] != zero) << bit


@jit
def all_set(cw, n):
    """Whether every bit of the column masks cw of an n-row x is set: x has no zeros."""
    for w in range(cw.shape[0]):
        bits = min(WORD, n - WORD * w)
        full = ~np.uint64(0) >> np.uint64(WORD - bits)
        for k in range(cw.shape[1]):
            if cw[w, k] != full:
                return False
    return True


@jit
def _transpose64(a):
    """Transpose the 64 x 64 bit matrix a (64,) uint64 in place: bit j of a[i] goes to bit i of
    a[j]. Six rounds, halving the block size: the upper s bits of each 2s-bit group of a[i] change
    places with the lower s bits of a[i + s], for the rows i with bit s clear. The pairs of a round
    are independent, and the loops vectorise: over runs of s rows for the coarse rounds, over rows
    2 s apart for the fine ones (LLVM's interleaved loads; 100 ns a transpose against 180 ns with
    the runs for every round)."""
    s = 32
    m = np.uint64(0x00000000FFFFFFFF)
    while s > 0:
        shift = np.uint64(s)
        if s >= 8:
            for base in range(0, WORD, 2 * s):
                for i in range(base, base + s):
                    t = ((a[i] >> shift) ^ a[i + s]) & m
                    a[i] ^= t << shift
                    a[i + s] ^= t
        else:
            for off in range(s):
                for i in range(off, WORD, 2 * s):
                    t = ((a[i] >> shift) ^ a[i + s]) & m
                    a[i] ^= t << shift
                    a[i + s] ^= t
        s //= 2
        m ^= m << np.uint64(s)


@jit
def words_transposed(rw, kw, cw):
    """cw[:, 64 kw .. 64 kw + 63] (the columns there are) as column_words gives them, from word kw
    of x's row masks: rw[kw, r] = row_words' word kw of row r, zero past the last row, 64 rows a
    64 x 64 bit transpose, done in place in rw. The row words come out of x @ W1 (see
    affine.row_block), so this reads 512 bytes a transpose where column_words reads x again."""
    c0 = WORD * kw
    width = min(WORD, cw.shape[1] - c0)
    for w in range(cw.shape[0]):
        a = rw[kw, WORD * w:WORD * (w + 1)]
        _transpose64(a)
        for j in range(width):
            cw[w, c0 + j] = a[j]


@jit
def union_counts(words, count):
    """(set bits of the union of words[:count], the same summed over the unions of the pairs
    words[0:2], words[2:4], ... that masked_sums goes over)."""
    u = 0
    paired = 0
    for w in range(words.shape[1]):
        union = np.uint64(0)
        for q in range(0, count, 2):
            pair = words[q, w] | words[min(q + 1, count - 1), w]
            paired += bit_count(pair)
            union |= pair
        u += bit_count(union)
    return u, paired


@jit
def union_list(words, count, out):
    """out[:u] = the set bits of the union of words[:count], ascending; returns u."""
    one = np.uint64(1)
    u = 0
    for w in range(words.shape[1]):
        union = np.uint64(0)
        for q in range(count):
            union |= words[q, w]
        while union != 0:
            out[u] = WORD * w + lowest_bit(union)
            u += 1
            union &= union - one
    return u


@jit
def _span(h, j, step):
    """Lanes of the vector at column j of a row of h: step, fewer at the end, 0 past it."""
    return max(0, min(step, h - j))


@jit
def _masked_sums4(words, count, xs, base, across, along, M, init, out, o0, j0):
    """masked_sums for the four vectors of columns from j0 (the last of a row of up to four
    vectors), with masked loads and stores but for the quarter-width short end."""
    h = min(M.shape[1], out.shape[1])
    step = lanes(M)
    one = np.uint64(1)
    m0 = _span(h, j0, step)
    m1 = _span(h, j0 + step, step)
    m2 = _span(h, j0 + 2 * step, step)
    m3 = _span(h, j0 + 3 * step, step)
    tail = -1  # the slot of a short row end that goes in quarter-width vectors, if any
    if 0 < m3 <= quarter_lanes(M):  # a partial vector is the row's last
        tail = 3
    tc = h - quarter_lanes(M)  # the quarter-width vector of the short end (see masked_sums)
    for q in range(0, count, 2):
        p = min(q + 1, count - 1)
        a0 = vload_part(init, 0, j0, m0)
        a1 = vload_part(init, 0, j0 + step, m1)
        a2 = vload_part(init, 0, j0 + 2 * step, m2)
        a3 = vload_part(init, 0, j0 + 3 * step, m3)
        c0 = a0
        c1 = a1
        c2 = a2
        c3 = a3
        if tail >= 0:
            e = vload_quarter(init, 0, tc)
        else:  # not used
            e = vload_part_quarter(init, 0, 0, 0)
        f = e
        sa = base + q * across
        sb = base + p * across
        for w in range(words.shape[1]):
            bits = words[q, w] | words[p, w]
            while bits != 0:
                i = WORD * w + lowest_bit(bits)
                bits &= bits - one
                s = xs[np.uint64(sa + i * along)]
                t = xs[np.uint64(sb + i * along)]
                v = vload_part(M, i, j0, m0)
                a0 = vfma(s, v, a0)
                c0 = vfma(t, v, c0)
                v = vload_part(M, i, j0 + step, m1)
                a1 = vfma(s, v, a1)
                c1 = vfma(t, v, c1)
                v = vload_part(M, i, j0 + 2 * step, m2)
                a2 = vfma(s, v, a2)
                c2 = vfma(t, v, c2)
                if tail != 3:
                    v = vload_part(M, i, j0 + 3 * step, m3)
                    a3 = vfma(s, v, a3)
                    c3 = vfma(t, v, c3)
                if tail >= 0:
                    v4 = vload_quarter(M, i, tc)
                    e = vfma(s, v4, e)
                    f = vfma(t, v4, f)
        _store4(out, o0 + q, j0, step, m0, m1, m2, m3, tail, tc, a0, a1, a2, a3, e)
        if p != q:
            _store4(out, o0 + p, j0, step, m0, m1, m2, m3, tail, tc, c0, c1, c2, c3, f)


@jit(inline="always")
def _store4(out, o, j0, step, m0, m1, m2, m3, tail, tc, a0, a1, a2, a3, e):
    """Row o of _masked_sums4's sums (tail is -1 or 3)."""
    vstore_part(out, o, j0, a0, m0)
    vstore_part(out, o, j0 + step, a1, m1)
    vstore_part(out, o, j0 + 2 * step, a2, m2)
    if tail != 3:
        vstore_part(out, o, j0 + 3 * step, a3, m3)
    else:
        vstore(out, o, tc, e)


@jit
def _masked_sums8(words, count, xs, base, across, along, M, init, out, o0, j0):
    """masked_sums for the eight vectors of columns from j0, where more than four are left: no
    masked load or store (see masked_sums)."""
    h = min(M.shape[1], out.shape[1])
    step = lanes(M)
    one = np.uint64(1)
    last = h - step  # where a vector that ends at the row's end starts
    k4 = min(j0 + 4 * step, last)
    k5 = min(j0 + 5 * step, last)
    k6 = min(j0 + 6 * step, last)
    k7 = min(j0 + 7 * step, last)
    u5 = h > j0 + 5 * step  # the slots after the fifth that hold columns
    u6 = h > j0 + 6 * step
    u7 = h > j0 + 7 * step
    tail = -1  # the slot of a short row end that goes in quarter-width vectors, if any
    if 0 < _span(h, j0 + 5 * step, step) <= quarter_lanes(M):  # a partial vector is the row's last
        tail = 5
    if 0 < _span(h, j0 + 6 * step, step) <= quarter_lanes(M):
        tail = 6
    if 0 < _span(h, j0 + 7 * step, step) <= quarter_lanes(M):
        tail = 7
    tc = h - quarter_lanes(M)  # the quarter-width vector of the short end
    for q in range(0, count, 2):
        p = min(q + 1, count - 1)
        a0 = vload(init, 0, j0)
        a1 = vload(init, 0, j0 + step)
        a2 = vload(init, 0, j0 + 2 * step)
        a3 = vload(init, 0, j0 + 3 * step)
        a4 = vload(init, 0, k4)
        a5 = vload(init, 0, k5)
        a6 = vload(init, 0, k6)
        a7 = vload(init, 0, k7)
        c0 = a0
        c1 = a1
        c2 = a2
        c3 = a3
        c4 = a4
        c5 = a5
        c6 = a6
        c7 = a7
        if tail >= 0:
            e = vload_quarter(init, 0, tc)
        else:  # not used
            e = vload_part_quarter(init, 0, 0, 0)
        f = e
        sa = base + q * across
        sb = base + p * across
        for w in range(words.shape[1]):
            bits = words[q, w] | words[p, w]
            while bits != 0:
                i = WORD * w + lowest_bit(bits)
                bits &= bits - one
                s = xs[np.uint64(sa + i * along)]
                t = xs[np.uint64(sb + i * along)]
                v = vload(M, i, j0)
                a0 = vfma(s, v, a0)
                c0 = vfma(t, v, c0)
                v = vload(M, i, j0 + step)
                a1 = vfma(s, v, a1)
                c1 = vfma(t, v, c1)
                v = vload(M, i, j0 + 2 * step)
                a2 = vfma(s, v, a2)
                c2 = vfma(t, v, c2)
                v = vload(M, i, j0 + 3 * step)
                a3 = vfma(s, v, a3)
                c3 = vfma(t, v, c3)
                v = vload(M, i, k4)
                a4 = vfma(s, v, a4)
                c4 = vfma(t, v, c4)
                if u5 and tail != 5:
                    v = vload(M, i, k5)
                    a5 = vfma(s, v, a5)
                    c5 = vfma(t, v, c5)
                if u6 and tail != 6:
                    v = vload(M, i, k6)
                    a6 = vfma(s, v, a6)
                    c6 = vfma(t, v, c6)
                if u7 and tail != 7:
                    v = vload(M, i, k7)
                    a7 = vfma(s, v, a7)
                    c7 = vfma(t, v, c7)
                if tail >= 0:
                    v4 = vload_quarter(M, i, tc)
                    e = vfma(s, v4, e)
                    f = vfma(t, v4, f)
        _store8(out, o0 + q, j0, step, k4, k5, k6, k7, u5, u6, u7, tail, tc, a0, a1, a2, a3, a4, a5, a6, a7, e)
        if p != q:
            _store8(out, o0 + p, j0, step, k4, k5, k6, k7, u5, u6, u7, tail, tc, c0, c1, c2, c3, c4, c5, c6, c7, f)


@jit(inline="always")
def _store8(out, o, j0, step, k4, k5, k6, k7, u5, u6, u7, tail, tc, a0, a1, a2, a3, a4, a5, a6, a7, e):
    """Row o of _masked_sums8's sums: a vector that overlaps the one before it writes the same
    numbers there again."""
    vstore(out, o, j0, a0)
    vstore(out, o, j0 + step, a1)
    vstore(out, o, j0 + 2 * step, a2)
    vstore(out, o, j0 + 3 * step, a3)
    vstore(out, o, k4, a4)
    if u5 and tail != 5:
        vstore(out, o, k5, a5)
    if u6 and tail != 6:
        vstore(out, o, k6, a6)
    if u7 and tail != 7:
        vstore(out, o, k7, a7)
    if tail >= 0:
        vstore(out, o, tc, e)


@jit(inline="always")
def masked_sums(words, count, xs, base, across, along, M, init, out, o0):
    """out[o0 + q] = init[0] + sum_i c_q[i] M[i] over the set bits i of words[q], ascending, each
    term one FMA, for q < count, where c_q[i] = xs[base + q across + i along]: with xs the
    flattened x (N, D), across = D, along = 1 gives rows of x, across = 1, along = D columns.

    q and q + 1 go together over the union of their masks (see the module doc). A row of out is
    covered eight vectors at a time, or four where no more are left: a vector past the end of
    the row is masked off but still costs its load (measured, float32 rows of 50: 32 us with
    four vectors a pass against 49 us with eight, four of them empty). In the eight-vector pass
    the last three are skipped where the row ends before them, a branch that goes the same way
    every time (float64 rows of 50 are seven vectors; at batch 100 x @ W1 took 71 us against 73,
    the fused gradient 171 us against 179, with the eighth loaded). Only the columns that both M
    and out have are summed: either may have rows padded to whole vectors (simd.vector_rows).
    The index into xs is unsigned, so no check for a negative index runs per term (x @ W1 at
    batch 100: 65 us against 77 us).

    A short last vector, a quarter of the lanes or fewer (2 of 8 for 50 float64 columns, 2 of 16
    in float32), goes in a quarter-width vector (simd.vload_quarter): its two FMAs a term are
    16-byte operations instead of 64-byte ones. Backprop at batch 100, one thread, A/B in three
    rounds: float64 163.6-164.1 us against 165.2-166.2, float32 99.0-102.8 against 102.9-104.1;
    x @ W1 1-2 us faster.

    No vector in the loop is masked: a vector that would run past the row's end starts earlier,
    so that it ends there (the quarter-width one too), and the eight-vector pass's first four are
    whole. The columns such a vector shares with the one before it get the same numbers again:
    each column is its own chain of FMAs, from the same start over the same terms in the same
    order, whichever lane holds it. Each masked load held a mask register, and with eight of them
    LLVM spilled the masks and rebuilt one inside the loop: x^T g alone at batch 100, float64, took
    45 us against 56 us with masks, backprop (A/B, three rounds) 155.8-157.2 us against
    164.0-165.6. The four-vector pass, which float32 rows of 50 take, keeps the masks of its whole
    vectors: without them it gained under 1 us. init must have at least the columns summed.

    Tried and left out: one vector for the short ends of both rows of a pair (the two lanes of
    float64 rows of 50, in its lower and upper halves), which saves an FMA a term but costs two
    shuffles; backprop at batch 100 took 175 us against 168 us (float32: 130 against 105). The
    same in a half-width vector (both rows' ends in its quarters, one FMA a term) took three
    shuffles a term and gained no more in float64 (backprop 162.9-164.9 us) and less in float32.
    """
    h = min(M.shape[1], out.shape[1])
    step = lanes(M)
    for j0 in range(0, h, 8 * step):
        if h - j0 > 4 * step:
            _masked_sums8(words, count, xs, base, across, along, M, init, out, o0, j0)
        else:
            _masked_sums4(words, count, xs, base, across, along, M, init, out, o0, j0)


@jit(inline="always")
def fma8(s0, s1, s2, s3, s4, s5, s6, s7, v, a0, a1, a2, a3, a4, a5, a6, a7):
    """One vector v times eight values, into their eight accumulators: the inner step of the
    eight-by-one-vector block products (affine.block_product, column_block_product)."""
    return (vfma(s0, v, a0), vfma(s1, v, a1), vfma(s2, v, a2), vfma(s3, v, a3),
            vfma(s4, v, a4), vfma(s5, v, a5), vfma(s6, v, a6), vfma(s7, v, a7))


@jit(inline="always")
def store8_part(out, o, count, j0, m, a0, a1, a2, a3, a4, a5, a6, a7):
    """out[o + q, j0 .. j0 + m - 1] = a_q for the first `count` of eight rows (masked stores)."""
    vstore_part(out, o, j0, a0, m)
    if count > 1:
        vstore_part(out, o + 1, j0, a1, m)
    if count > 2:
        vstore_part(out, o + 2, j0, a2, m)
    if count > 3:
        vstore_part(out, o + 3, j0, a3, m)
    if count > 4:
        vstore_part(out, o + 4, j0, a4, m)
    if count > 5:
        vstore_part(out, o + 5, j0, a5, m)
    if count > 6:
        vstore_part(out, o + 6, j0, a6, m)
    if count > 7:
        vstore_part(out, o + 7, j0, a7, m)


@jit
def column_block_product(x, k0, rows, u, g, out):
    """out[k0 + q] = sum_t x[rows[t], k0 + q] g[rows[t]] for the columns q < 8 of x that exist,
    t ascending: eight columns by one vector of g in registers (columns past the end of x read the
    last column again and are not stored)."""
    d = x.shape[1]
    h = min(g.shape[1], out.shape[1])
    step = lanes(g)
    _, k1, k2, k3, k4, k5, k6, k7 = block_row_indices(d, k0)
    kc = min(8, d - k0)
    for j0 in range(0, h, step):
        m = min(step, h - j0)
        a0 = vzero(g)
        a1 = a2 = a3 = a4 = a5 = a6 = a7 = a0
        for t in range(u):
            r = rows[t]
            a0, a1, a2, a3, a4, a5, a6, a7 = fma8(x[r, k0], x[r, k1], x[r, k2], x[r, k3], x[r, k4],
                                                  x[r, k5], x[r, k6], x[r, k7],
                                                  vload_part(g, r, j0, m),
                                                  a0, a1, a2, a3, a4, a5, a6, a7)
        store8_part(out, k0, kc, j0, m, a0, a1, a2, a3, a4, a5, a6, a7)


@jit(inline="always")
def _fma4(s0, s1, s2, s3, v, a, b, c, e):
    """One vector v of g times four columns' values, into their four accumulators."""
    return vfma(s0, v, a), vfma(s1, v, b), vfma(s2, v, c), vfma(s3, v, e)


@jit
def _column_quads4(x, k0, n, g, zero, out, j0):
    """Columns k0 .. k0 + 3 (those x has) of out = x^T g over samples 0 .. n - 1, for the four
    vectors of g's columns from j0: sixteen accumulators and a quarter-width one per column for a
    short row end, as in _masked_sums4."""
    d = x.shape[1]
    h = min(g.shape[1], out.shape[1])
    step = lanes(g)
    k1 = min(k0 + 1, d - 1)
    k2 = min(k0 + 2, d - 1)
    k3 = min(k0 + 3, d - 1)
    kc = min(4, d - k0)
    m0 = _span(h, j0, step)
    m1 = _span(h, j0 + step, step)
    m2 = _span(h, j0 + 2 * step, step)
    m3 = _span(h, j0 + 3 * step, step)
    u1 = m1 > 0  # the vectors after the first that hold columns
    u2 = m2 > 0
    tail = -1  # 3 where the row's short end goes in a quarter-width vector (see masked_sums)
    if 0 < m3 <= quarter_lanes(g):
        tail = 3
    u3 = m3 > 0 and tail != 3
    tc = h - quarter_lanes(g)
    a0 = vload_part(zero, 0, j0, m0)
    a1 = vload_part(zero, 0, j0 + step, m1)
    a2 = vload_part(zero, 0, j0 + 2 * step, m2)
    a3 = vload_part(zero, 0, j0 + 3 * step, m3)
    b0, b1, b2, b3 = a0, a1, a2, a3
    c0, c1, c2, c3 = a0, a1, a2, a3
    e0, e1, e2, e3 = a0, a1, a2, a3
    if tail >= 0:
        q0 = vload_quarter(zero, 0, tc)
    else:  # not used
        q0 = vload_part_quarter(zero, 0, 0, 0)
    q1, q2, q3 = q0, q0, q0
    for r in range(n):
        s0 = x[r, k0]
        s1 = x[r, k1]
        s2 = x[r, k2]
        s3 = x[r, k3]
        a0, b0, c0, e0 = _fma4(s0, s1, s2, s3, vload_part(g, r, j0, m0), a0, b0, c0, e0)
        if u1:
            v = vload_part(g, r, j0 + step, m1)
            a1, b1, c1, e1 = _fma4(s0, s1, s2, s3, v, a1, b1, c1, e1)
        if u2:
            v = vload_part(g, r, j0 + 2 * step, m2)
            a2, b2, c2, e2 = _fma4(s0, s1, s2, s3, v, a2, b2, c2, e2)
        if u3:
            v = vload_part(g, r, j0 + 3 * step, m3)
            a3, b3, c3, e3 = _fma4(s0, s1, s2, s3, v, a3, b3, c3, e3)
        if tail >= 0:
            q0, q1, q2, q3 = _fma4(s0, s1, s2, s3, vload_quarter(g, r, tc), q0, q1, q2, q3)
    _store4(out, k0, j0, step, m0, m1, m2, m3, tail, tc, a0, a1, a2, a3, q0)
    if kc > 1:
        _store4(out, k0 + 1, j0, step, m0, m1, m2, m3, tail, tc, b0, b1, b2, b3, q1)
    if kc > 2:
        _store4(out, k0 + 2, j0, step, m0, m1, m2, m3, tail, tc, c0, c1, c2, c3, q2)
    if kc > 3:
        _store4(out, k0 + 3, j0, step, m0, m1, m2, m3, tail, tc, e0, e1, e2, e3, q3)


@jit(inline="always")
def column_quads(x, k0, n, g, zero, out):
    """out[k0 .. k0 + 7] = x[:n, k0 .. k0 + 7]^T g (the columns x has), every sample in order, four
    columns at a time by four vectors of g in registers (_column_quads4), a pass over the samples
    for every four vectors of a row of g. zero is (1, H) zeros.

    For columns with no zeros: each vector of g loaded serves four columns where the pairs' serves
    two, with no mask bits to walk. Measured on dense x by g (N, H), one thread, fastest of 21
    calls, against what ran before (pairs past 128 samples, the block product below): H = 50
    float32 (three vectors and a quarter-width one), 1000 samples 0.78-0.88 ms against
    0.97-1.12 ms, 100 samples 86-103 us against 116-122, 10 samples 15 against 14 us; H = 20, 1000
    samples, 0.47 against 0.56 ms (float32) and 0.68 against 0.78 ms (float64).

    Rows of g of more than four vectors take several passes, and over more than COLUMN_BLOCK_ROWS
    samples those still beat the pairs: with the process pinned to one core (taskset), 1000
    samples, float64 H = 50 (4 + 3 vectors) 1.66-1.79 ms against 1.91-2.03 ms, H = 100 3.3-3.7
    against 5.0-5.1 ms, H = 200 6.4-8.0 against 10.3-11.9 ms; float32 H = 100 1.56 against 1.80 ms,
    H = 200 3.13 against 4.81 ms. Each vector of g moves from L2 once for four columns, where the
    pairs' float64 rows of 50 took 31 bytes a cycle from L2. Against the block product over fewer
    samples see QUADS_MIN_ROWS."""
    h = min(g.shape[1], out.shape[1])
    step = lanes(g)
    for k in range(k0, min(k0 + 8, x.shape[1]), 4):
        for j0 in range(0, h, 4 * step):
            _column_quads4(x, k, n, g, zero, out, j0)


@jit(inline="always")
def columns_in_pairs(u, paired):
    """Whether eight columns of x^T g whose union has u samples, and their pairs' unions paired
    in all, go by masked sums in pairs (else by column_block_product): see SPARSE_BELOW and
    COLUMN_BLOCK_ROWS."""
    return paired < SPARSE_BELOW * u or u > COLUMN_BLOCK_ROWS


@jit(inline="always")
def quads_pay(g, n):
    """Whether eight columns of x^T g without zeros, over n samples, go by column_quads: where a
    row of g takes one pass (at most four vectors), or over at least QUADS_MIN_ROWS samples, a
    pass per four vectors (see column_quads and QUADS_MIN_ROWS for the measurements)."""
    return g.shape[1] <= 4 * lanes(g) or n >= QUADS_MIN_ROWS


@jit
def columns_full(words, count, n):
    """Whether the masks words[:count] of n samples each have every bit set (no zeros)."""
    for q in range(count):
        for w in range(words.shape[1]):
            bits = min(WORD, n - WORD * w)
            if words[q, w] != ~np.uint64(0) >> np.uint64(WORD - bits):
                return False
    return True


@jit(inline="always")
def column_block(x, k0, cw, g, out, words, rows, zero):
    """out[k0 .. k0 + 7] = x[:, k0 .. k0 + 7]^T g from the column masks cw of x (see
    column_words), by masked sums or the block product, whichever costs less (same numbers; see
    columns_in_pairs), or, where the eight columns have no zeros, by column_quads (see
    quads_pay). words (8, word_count(N)) and rows (N,) are scratch; zero is (1, H) zeros."""
    kc = min(8, x.shape[1] - k0)
    for q in range(kc):
        for w in range(cw.shape[0]):
            words[q, w] = cw[w, k0 + q]
    if quads_pay(g, x.shape[0]) and columns_full(words, kc, x.shape[0]):
        column_quads(x, k0, x.shape[0], g, zero, out)
        return
    u, paired = union_counts(words, kc)
    if columns_in_pairs(u, paired):
        masked_sums(words, kc, x.reshape(-1), k0, 1, x.shape[1], g, zero, out, k0)
    else:
        column_block_product(x, k0, rows, union_list(words, kc, rows), g, out)
