"""kernels.nonzeros: the masks of where x is non-zero, the sums over them, and the rule that the
two ways of computing a block (each row or column over its own non-zeros, or eight over their
union) give the same numbers, so that choosing between them changes speed only."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest

from conftest import needs_jit
from kernels import affine, nonzeros
from kernels._jit import jit
from kernels.simd import VECTOR_BYTES, lanes, nonzero_bits, vector_rows, vload_part

DTYPES = (np.float64, np.float32)
_ids = {"ids": lambda d: np.dtype(d).name}


def _packed_rows(nz):
    """The row words of a boolean (n, d) array, by NumPy: bit b of word w for column 64 w + b."""
    n, d = nz.shape
    nw = (d + 63) // 64
    padded = np.zeros((n, nw * 64), dtype=bool)
    padded[:, :d] = nz
    bits = np.packbits(padded.reshape(n, nw, 8, 8), axis=-1, bitorder="little")[..., 0]  # byte i
    return (bits.astype(np.uint64) << (8 * np.arange(8, dtype=np.uint64))).sum(axis=-1, dtype=np.uint64)


@jit
def _bit_ops(words):
    out = np.empty((words.shape[0], 2), dtype=np.int64)
    for i in range(words.shape[0]):
        out[i, 0] = nonzeros.lowest_bit(words[i]) if words[i] != 0 else -1
        out[i, 1] = nonzeros.bit_count(words[i])
    return out


def test_lowest_bit_and_bit_count_on_every_bit_position():
    rng = np.random.default_rng(0)
    words = np.concatenate([np.uint64(1) << np.arange(64, dtype=np.uint64),
                            rng.integers(0, 2**63, 50, dtype=np.uint64) * np.uint64(2) + np.uint64(1),
                            np.array([0, 2**64 - 1, 2**63], dtype=np.uint64)])
    got = _bit_ops(words)
    for w, (low, count) in zip(words.tolist(), got.tolist()):
        assert count == bin(w).count("1")
        assert low == ((w & -w).bit_length() - 1 if w else -1)


@jit
def _nonzero_lanes(a, n):
    return nonzero_bits(vload_part(a, 0, 0, n))


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_nonzero_bits_marks_every_lane_that_is_not_zero(dtype):
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    a = np.zeros((1, step), dtype=dtype)
    a[0, 1] = np.nan  # NaN != 0, as in NumPy
    a[0, 2] = -0.0  # a negative zero is zero
    a[0, step - 1] = np.finfo(dtype).smallest_subnormal
    a[0, 3] = -np.inf
    want = (1 << 1) | (1 << 3) | (1 << (step - 1))
    assert int(_nonzero_lanes(a, step)) == want
    assert int(_nonzero_lanes(a, step - 1)) == want & ~(1 << (step - 1))  # lanes past n are clear


@jit
def _all_row_words(x):
    words = np.empty((x.shape[0], nonzeros.word_count(x.shape[1])), dtype=np.uint64)
    for r in range(x.shape[0]):
        nonzeros.row_words(x, r, words, r)
    return words


@jit
def _all_column_words(x):
    cw = np.empty((nonzeros.word_count(x.shape[0]), x.shape[1]), dtype=np.uint64)
    for w in range(cw.shape[0]):
        nonzeros.column_words(x, w, cw)
    return cw


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
@pytest.mark.parametrize("shape", [(1, 1), (3, 63), (2, 64), (5, 65), (65, 7), (64, 130), (129, 3)])
def test_row_and_column_words_mark_exactly_the_non_zeros(shape, dtype):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.5] = 0
    x[0, 0] = -0.0
    nz = x != 0
    np.testing.assert_array_equal(_all_row_words(x), _packed_rows(nz))
    np.testing.assert_array_equal(_all_column_words(x), _packed_rows(nz.T).T)
    np.testing.assert_array_equal(_column_words_from_rows(_all_row_words(x), shape[0], shape[1]),
                                  _packed_rows(nz.T).T)


@jit
def _column_words_from_rows(row_words, n, d):
    """The column words by transposing the row words, laid out as the fused gradient lays them."""
    rw = np.zeros((row_words.shape[1], nonzeros.WORD * nonzeros.word_count(n)), dtype=np.uint64)
    for r in range(n):
        for w in range(row_words.shape[1]):
            rw[w, r] = row_words[r, w]
    cw = np.empty((nonzeros.word_count(n), d), dtype=np.uint64)
    for kw in range(rw.shape[0]):
        nonzeros.words_transposed(rw, kw, cw)
    return cw


def test_transpose64_moves_every_bit_to_its_mirror_place():
    rng = np.random.default_rng(5)
    for density in (0.0, 0.03, 0.5, 1.0):
        bits = rng.random((64, 64)) < density  # bits[i, j]: bit j of word i
        a = (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
        nonzeros._transpose64(a)
        got = (a[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
        np.testing.assert_array_equal(got.astype(bool), bits.T)


def _forward(x, W, b, masks):
    """x @ W + b block by block, each row over its own non-zeros (masks) or the eight over their
    union (block_product), whatever row_block would choose."""
    return _forward_into(x, W, b, masks, np.empty((x.shape[0], W.shape[1]), dtype=W.dtype))


@jit
def _forward_into(x, W, b, masks, out):
    n, d = x.shape
    words, cols = affine.row_scratch(x)
    for r0 in range(0, n, affine.BLOCK):
        rows = min(affine.BLOCK, n - r0)
        for q in range(rows):
            nonzeros.row_words(x, r0 + q, words, q)
        if masks:
            nonzeros.masked_sums(words, rows, x.reshape(-1), r0 * d, d, 1, W, b.reshape((1, -1)),
                                 out, r0)
        else:
            affine.block_product(x, r0, cols, nonzeros.union_list(words, rows, cols), W, b, out)
    return out


def _transposed(x, g, masks):
    """x^T g block by block of eight columns, by masked sums or by column_block_product."""
    return _transposed_into(x, g, masks, np.empty((x.shape[1], g.shape[1]), dtype=g.dtype))


@jit
def _transposed_into(x, g, masks, out):
    n, d = x.shape
    cw = _all_column_words(x)
    words = np.empty((8, cw.shape[0]), dtype=np.uint64)
    rows = np.empty(n, dtype=np.int64)
    zero = np.zeros((1, g.shape[1]), dtype=g.dtype)
    for k0 in range(0, d, 8):
        kc = min(8, d - k0)
        for q in range(kc):
            for w in range(cw.shape[0]):
                words[q, w] = cw[w, k0 + q]
        if masks:
            nonzeros.masked_sums(words, kc, x.reshape(-1), k0, 1, d, g, zero, out, k0)
        else:
            nonzeros.column_block_product(x, k0, rows, nonzeros.union_list(words, kc, rows), g, out)
    return out


def _widths(dtype):
    """Output widths around the four- and eight-vector passes of masked_sums, and with a short
    last vector in each slot that takes quarter-width vectors (a quarter of the lanes or fewer)."""
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    quarter = max(1, step // 4)
    ends = {k * step + e for k in (3, 5, 6, 7) for e in (1, quarter, quarter + 1)}
    return sorted({1, step - 1, step + 1, 4 * step, 4 * step + 1, 8 * step, 8 * step + 3, 50} | ends)


@jit
def _all_set(x):
    return nonzeros.all_set(_all_column_words(x), x.shape[0])


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 130])
def test_all_set_means_no_zeros(n):
    rng = np.random.default_rng(n)
    x = rng.random((n, 9)) + 0.5
    for f in (_all_set, getattr(_all_set, "py_func", _all_set)):
        assert f(x)
        if n:
            y = x.copy()
            y[n - 1, 8] = 0  # the last bit of the last word
            assert not f(y)
            y = x.copy()
            y[0, 0] = 0
            assert not f(y)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
@pytest.mark.parametrize("density", [0.0, 0.15, 0.6, 1.0])
def test_both_ways_give_the_same_numbers_and_match_numpy(density, dtype):
    rng = np.random.default_rng(int(density * 100))
    n, d = 21, 75  # a partial last block of rows and of columns
    x = rng.standard_normal((n, d)).astype(dtype)
    x[rng.random((n, d)) >= density] = 0
    tol = 64 * np.finfo(dtype).eps
    for h in _widths(dtype):
        W = rng.standard_normal((d, h)).astype(dtype)
        b = rng.standard_normal(h).astype(dtype)
        g = rng.standard_normal((n, h)).astype(dtype)
        by_masks, by_blocks = _forward(x, W, b, True), _forward(x, W, b, False)
        np.testing.assert_array_equal(by_masks, by_blocks)
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(by_masks, x64 @ W + b, rtol=tol, atol=tol * 10)
        np.testing.assert_array_equal(affine.affine_forward(x, W, b), by_masks)
        t_masks, t_blocks = _transposed(x, g, True), _transposed(x, g, False)
        np.testing.assert_array_equal(t_masks, t_blocks)
        np.testing.assert_allclose(t_masks, x64.T @ g, rtol=tol, atol=tol * 10)
        np.testing.assert_array_equal(affine.affine_backward(x, W, g)[1], t_masks)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
@pytest.mark.parametrize("density", [0.15, 1.0])
def test_rows_padded_to_whole_vectors_give_the_same_numbers(density, dtype):
    # The fused gradient keeps dL/da1 in rows padded to whole vectors (simd.vector_rows): only
    # the columns both operands have are read or written, whichever operand is the wider.
    rng = np.random.default_rng(7)
    n, d = 19, 75
    x = rng.standard_normal((n, d)).astype(dtype)
    x[rng.random((n, d)) >= density] = 0
    for h in _widths(dtype):
        W = rng.standard_normal((d, h)).astype(dtype)
        b = rng.standard_normal(h).astype(dtype)
        g = rng.standard_normal((n, h)).astype(dtype)
        wide = vector_rows(n, h, g)
        assert wide.ctypes.data % VECTOR_BYTES == 0 and wide.shape[1] % lanes(g) == 0
        wide[:] = np.nan  # the padding: never read, or it would show in the sums
        wide[:, :h] = g
        for masks in (True, False):
            np.testing.assert_array_equal(
                _transposed_into(x, wide, masks, np.empty((d, h), dtype=dtype)),
                _transposed(x, g, masks))
            out = np.full((n, wide.shape[1]), np.nan, dtype=dtype)  # wider than W: left alone past h
            _forward_into(x, W, b, masks, out)
            np.testing.assert_array_equal(out[:, :h], _forward(x, W, b, masks))
            assert np.isnan(out[:, h:]).all()


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_sums_run_in_ascending_index_one_rounding_per_term(dtype):
    # 1 + e - 1 + ... in a fixed order: any reordering or a rounded product first changes the sum
    e = np.finfo(dtype).eps
    x = np.zeros((1, 70), dtype=dtype)
    x[0, [3, 40, 66]] = [1, 1, e / 2]
    W = np.zeros((70, 1), dtype=dtype)
    W[[3, 40, 66], 0] = [1, -1, 1]
    b = np.full(1, e / 2, dtype=dtype)
    # b + 1 rounds to 1 (ties to even), then - 1 gives 0, then + e/2: e/2
    assert _forward(x, W, b, True)[0, 0] == dtype(e / 2)
    assert affine.affine_forward(x, W, b)[0, 0] == dtype(e / 2)


def test_row_block_takes_the_masks_for_mnist_like_rows_and_the_block_for_dense_ones():
    rng = np.random.default_rng(3)
    sparse = np.zeros((8, 784))
    for q in range(8):  # each row its own 18% of the columns: a union of about 80%
        sparse[q, rng.choice(784, 140, replace=False)] = 1
    dense = np.ones((8, 784))
    for x, masks in ((sparse, True), (dense, False)):
        words = _all_row_words(x)
        u, paired = nonzeros.union_counts(words, 8)
        assert u == (x != 0).any(axis=0).sum()
        assert paired == sum((x[q:q + 2] != 0).any(axis=0).sum() for q in range(0, 8, 2))
        assert (paired < nonzeros.SPARSE_BELOW * u) == masks


def test_dense_columns_go_in_pairs_over_many_samples_and_by_block_over_few():
    assert not nonzeros.columns_in_pairs(100, 400)  # dense, 100 samples: the block
    assert nonzeros.columns_in_pairs(nonzeros.COLUMN_BLOCK_ROWS + 1, 4 * (nonzeros.COLUMN_BLOCK_ROWS + 1))
    assert nonzeros.columns_in_pairs(100, 150)  # sparse: pairs at any size


@jit
def _quads_into(x, g, out):
    zero = np.zeros((1, g.shape[1]), dtype=g.dtype)
    for k0 in range(0, x.shape[1], 8):
        nonzeros.column_quads(x, k0, x.shape[0], g, zero, out)
    return out


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
@pytest.mark.parametrize("n", [1, 5, 64, 130])
def test_column_quads_give_the_numbers_of_the_pairs_and_the_block(n, dtype):
    # Four columns by up to four vectors of g at a time, over every sample in order: on columns
    # without zeros the same terms in the same order as the other two ways, whatever the width
    # (one pass or several, with a masked or a quarter-width short end), and no column written
    # past the last (d = 75: the last quad has three columns).
    rng = np.random.default_rng(n)
    d = 75
    x = (rng.random((n, d)) + 0.25).astype(dtype)
    for h in _widths(dtype):
        g = rng.standard_normal((n, h)).astype(dtype)
        wide = vector_rows(n, h, g)
        wide[:] = np.nan  # padding that must never be read
        wide[:, :h] = g
        t_masks = _transposed(x, g, True)
        np.testing.assert_array_equal(_transposed(x, g, False), t_masks)
        for gg in (g, wide):
            out = np.full((d + 1, h), -7.0, dtype=dtype)
            _quads_into(x, gg, out[:d])
            np.testing.assert_array_equal(out[:d], t_masks)
            assert (out[d] == -7.0).all()


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_quads_run_where_a_row_of_g_takes_one_pass_or_the_pairs_would_and_only_without_zeros(dtype):
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    many = nonzeros.QUADS_MIN_ROWS
    for n in (1, many - 1, many, nonzeros.COLUMN_BLOCK_ROWS + 1):
        assert nonzeros.quads_pay(np.empty((n, 4 * step), dtype=dtype), n)
    # a wider row: the block product over few samples, quads over many (where the block product
    # or, past COLUMN_BLOCK_ROWS, the pairs would run)
    wide = np.empty((1, 4 * step + 1), dtype=dtype)
    assert not nonzeros.quads_pay(wide, many - 1)
    assert nonzeros.quads_pay(wide, many)
    assert nonzeros.quads_pay(wide, nonzeros.COLUMN_BLOCK_ROWS + 1)
    assert nonzeros.QUADS_MIN_ROWS <= nonzeros.COLUMN_BLOCK_ROWS
    for n in (1, 63, 64, 65, 130):
        x = np.ones((n, 9), dtype=dtype)
        words = np.empty((8, nonzeros.word_count(n)), dtype=np.uint64)
        words[:] = _all_column_words(x)[:, :8].T
        assert nonzeros.columns_full(words, 8, n)
        for r, k in ((n - 1, 7), (0, 0), (n // 2, 3)):
            y = x.copy()
            y[r, k] = 0
            words[:] = _all_column_words(y)[:, :8].T
            assert not nonzeros.columns_full(words, 8, n)
            assert nonzeros.columns_full(words, k, n)  # the columns before the zero are full


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
@pytest.mark.parametrize("density", [0.6, 1.0])
@pytest.mark.parametrize("n", [nonzeros.QUADS_MIN_ROWS, nonzeros.COLUMN_BLOCK_ROWS + 9])
def test_x_transposed_g_over_many_samples_gives_the_numbers_of_either_way(n, density, dtype):
    # From QUADS_MIN_ROWS samples columns without zeros go by quads whatever the width of g, and
    # beyond COLUMN_BLOCK_ROWS the other dense blocks of x^T g go in pairs (affine_backward's
    # `full` path, and the masks').
    rng = np.random.default_rng(11)
    d = 21
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    x = rng.standard_normal((n, d)).astype(dtype)
    x[rng.random((n, d)) >= density] = 0
    for h in (50, 4 * step + 1, 8 * step + 3):  # one pass of quads, two, three
        W = rng.standard_normal((d, h)).astype(dtype)
        g = rng.standard_normal((n, h)).astype(dtype)
        t_masks, t_blocks = _transposed(x, g, True), _transposed(x, g, False)
        np.testing.assert_array_equal(t_masks, t_blocks)
        np.testing.assert_array_equal(affine.affine_backward(x, W, g)[1], t_masks)
        tol = 64 * np.finfo(dtype).eps
        np.testing.assert_allclose(t_masks, x.astype(np.float64).T @ g, rtol=tol, atol=tol * 10)


@needs_jit
@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_masked_sums_run_on_packed_fmas_in_registers(dtype):
    fresh = numba.njit(fastmath={"contract", "nsz"}, error_model="numpy")(
        nonzeros._masked_sums8.py_func)
    x = np.ones((8, 16), dtype=dtype)
    W = np.ones((16, 100), dtype=dtype)
    words = _all_row_words(x)
    fresh(words, 8, x.reshape(-1), 0, 16, 1, W, np.zeros((1, 100), dtype=dtype),
          np.empty((8, 100), dtype=dtype), 0, 0)
    asm = fresh.inspect_asm(fresh.signatures[0])
    suffix = "pd" if dtype == np.float64 else "ps"
    register = "zmm" if VECTOR_BYTES == 64 else "[yz]mm"
    assert len(re.findall(rf"vfmadd\w*{suffix}\s+[^\n]*%{register}", asm)) >= 8
    assert "tzcnt" in asm or "bsf" in asm  # the set bits are found by count, not tested one by one
