"""kernels.simd and the register-blocked products built on it: every lane, every partial length,
nothing written past a row's end, fused multiply-adds, and products at every column count around
the vector width."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest

from conftest import needs_jit
from kernels import affine, nonzeros
from kernels._jit import jit
from kernels.simd import (
    VECTOR_BYTES,
    dot_rows,
    lanes,
    nonzero_word,
    quarter_lanes,
    row_dots,
    transpose_tile,
    vadd,
    vector_rows,
    vfma,
    vfma_pair,
    vload,
    vload_part,
    vload_part_quarter,
    vload_quarter,
    vload_quarter_twice,
    vstore,
    vstore_high,
    vstore_low,
    vstore_part,
    vzero,
)

DTYPES = (np.float64, np.float32)
_ids = {"ids": lambda d: np.dtype(d).name}


@jit
def _copy_parts(a, out, n):
    """out[r, c:c+n] = a[r, c:c+n] through one partial vector per row; full vectors where n = lanes."""
    step = lanes(a)
    for r in range(a.shape[0]):
        if n == step:
            vstore(out, r, 1, vload(a, r, 1))
        else:
            vstore_part(out, r, 1, vload_part(a, r, 1, n), n)
    return step


@jit
def _fma_add(s, a, b):
    """vfma(s, a[0], b[0]) + zero, and vadd(a[0], b[0]), stored into rows 0 and 1 of a copy."""
    out = np.empty((2, a.shape[1]), dtype=a.dtype)
    u = vload(a, 0, 0)
    v = vload(b, 0, 0)
    vstore(out, 0, 0, vadd(vfma(s, u, v), vzero(a)))
    vstore(out, 1, 0, vadd(u, v))
    return out


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_lanes_is_the_vector_width_in_elements(dtype):
    a = np.zeros((1, 1), dtype=dtype)
    assert lanes(a) == VECTOR_BYTES // np.dtype(dtype).itemsize
    assert VECTOR_BYTES in (32, 64)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_partial_loads_and_stores_touch_exactly_n_lanes(dtype):
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, step + 2)).astype(dtype)
    for n in range(step + 1):
        out = np.full_like(a, -7)
        assert _copy_parts(a, out, n) == step
        want = np.full_like(a, -7)
        want[:, 1:1 + n] = a[:, 1:1 + n]
        # the lanes past n, and the elements of the next row they would cover, are untouched
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_vfma_and_vadd_work_lane_by_lane(dtype):
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, step)).astype(dtype)
    b = rng.standard_normal((1, step)).astype(dtype)
    s = dtype(0.5)  # exact products: the fused and unfused results agree
    out = _fma_add(s, a, b)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out[0], b[0] + s * a[0])
    np.testing.assert_array_equal(out[1], a[0] + b[0])


@needs_jit  # without the JIT vfma is a multiply and an add
@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_vfma_rounds_once(dtype):
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    e = dtype(2.0) ** -(np.finfo(dtype).nmant // 2 + 1)
    s = dtype(1) + e
    a = np.full((1, step), dtype(1) - e, dtype=dtype)
    b = np.full((1, step), dtype(-1), dtype=dtype)
    # (1 + e)(1 - e) - 1 = -e**2 exactly; a rounded product first would give 0
    assert (_fma_add(s, a, b)[0] == -(e * e)).all()


def _blocked_forward(x, W, b):
    """x @ W + b by the block product for every block, however sparse."""
    out = np.empty((x.shape[0], W.shape[1]), dtype=W.dtype)
    words, cols = affine.row_scratch(x)
    for r0 in range(0, x.shape[0], affine.BLOCK):
        rows = min(affine.BLOCK, x.shape[0] - r0)
        for q in range(rows):
            nonzeros.row_words(x, r0 + q, words, q)
        affine.block_product(x, r0, cols, nonzeros.union_list(words, rows, cols), W, b, out)
    return out


def _column_counts(dtype):
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    return sorted({1, step - 1, step, step + 1, 2 * step + 3, 50})


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 17])
def test_blocked_products_at_every_column_count_around_the_vector_width(n, dtype):
    rng = np.random.default_rng(n)
    d = 37
    x = rng.random((n, d)).astype(dtype)
    x[rng.random((n, d)) < 0.6] = 0  # zero columns shared by a whole block are left out
    x[:, 5] = 0
    tol = 64 * np.finfo(dtype).eps
    for h in _column_counts(dtype):
        W = rng.standard_normal((d, h)).astype(dtype)
        b = rng.standard_normal(h).astype(dtype)
        g = rng.standard_normal((n, h)).astype(dtype)
        want = x.astype(np.float64) @ W.astype(np.float64) + b
        np.testing.assert_allclose(_blocked_forward(x, W, b), want, rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(affine.affine_forward(x, W, b), want, rtol=tol, atol=tol * 10)
        dx, dW, db = affine.affine_backward(x, W, g)
        np.testing.assert_allclose(dx, g.astype(np.float64) @ W.T.astype(np.float64), rtol=tol,
                                   atol=tol * 10)
        np.testing.assert_allclose(dW, x.T.astype(np.float64) @ g.astype(np.float64), rtol=tol,
                                   atol=tol * 10)
        assert (dW[5] == 0).all()
        np.testing.assert_allclose(db, g.sum(axis=0, dtype=np.float64), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_dx_by_dot_products_and_by_the_transpose_on_either_side_of_the_switch(dtype):
    switch = affine.DIRECT_DX_ROWS_FLOAT64 if dtype == np.float64 else affine.DIRECT_DX_ROWS_FLOAT32
    rng = np.random.default_rng(switch)
    tol = 16 * np.finfo(dtype).eps
    W = rng.standard_normal((45, 50)).astype(dtype)
    for n in sorted({1, switch - 1, switch, switch + 1}):
        g = rng.standard_normal((n, 50)).astype(dtype)
        x = rng.random((n, 45)).astype(dtype)
        dx = affine.affine_backward(x, W, g)[0]
        scale = np.abs(g).astype(np.float64) @ np.abs(W.T).astype(np.float64)
        assert (np.abs(dx - g.astype(np.float64) @ W.T.astype(np.float64)) <= tol * scale).all(), n


@needs_jit
@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_the_block_product_runs_on_packed_fmas_in_registers(dtype):
    x = np.ones((8, 16), dtype=dtype)
    W = np.ones((16, 40), dtype=dtype)
    fresh = numba.njit(fastmath={"contract", "nsz"}, error_model="numpy")(affine.block_product.py_func)
    cols = np.arange(16, dtype=np.int32)
    fresh(x, 0, cols, 16, W, np.zeros(40, dtype=dtype), np.empty((8, 40), dtype=dtype))
    asm = fresh.inspect_asm(fresh.signatures[0])
    suffix = "pd" if dtype == np.float64 else "ps"
    register = "zmm" if VECTOR_BYTES == 64 else "[yz]mm"
    fmas = re.findall(rf"vfmadd\w*{suffix}\s+[^\n]*%{register}", asm)
    assert len(fmas) >= 16, "expected the eight accumulators' FMAs, packed, in the loops"


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_an_empty_batch_gives_empty_and_zero_results(dtype):
    W = np.ones((5, 3), dtype=dtype)
    x = np.zeros((0, 5), dtype=dtype)
    assert affine.affine_forward(x, W, np.ones(3, dtype=dtype)).shape == (0, 3)
    dx, dW, db = affine.affine_backward(x, W, np.zeros((0, 3), dtype=dtype))
    assert dx.shape == (0, 5)
    np.testing.assert_array_equal(dW, np.zeros((5, 3), dtype=dtype))
    np.testing.assert_array_equal(db, np.zeros(3, dtype=dtype))


@jit
def _vector_rows(n, h, like):
    return vector_rows(n, h, like)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_vector_rows_are_whole_vectors_wide_and_aligned(dtype):
    like = np.zeros(1, dtype=dtype)
    step = lanes(like)
    for n, h in ((0, 5), (1, 1), (3, step), (7, step + 1), (100, 50)):
        for a in (_vector_rows(n, h, like), vector_rows(n, h, like)):
            assert a.dtype == dtype and a.flags.c_contiguous
            assert a.shape == (n, -(-h // step) * step)
            assert n == 0 or a.ctypes.data % VECTOR_BYTES == 0  # NumPy: no address when empty


@jit
def _tiled_transpose(a):
    out = np.full((a.shape[1], a.shape[0]), np.nan, dtype=a.dtype)
    step = lanes(a)
    for r0 in range(0, a.shape[0], step):
        for c0 in range(0, a.shape[1], step):
            transpose_tile(a, r0, c0, out)
    return out


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_transpose_tile_moves_every_element_and_writes_nothing_past_the_ends(dtype):
    rng = np.random.default_rng(11)
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    for shape in ((1, 1), (step, step), (step - 1, step + 1), (2 * step + 3, 5), (3, 2 * step + 1), (784, 50)):
        a = rng.standard_normal(shape).astype(dtype)
        np.testing.assert_array_equal(_tiled_transpose(a), a.T)  # NaN left anywhere would show
        np.testing.assert_array_equal(affine.transpose(a), a.T)
    # one tile into a larger array: only its own square changes
    a = rng.standard_normal((step + 2, step + 2)).astype(dtype)
    out = np.zeros((step + 5, step + 5), dtype=dtype)
    _one_tile(a, step, 1, out)
    want = np.zeros_like(out)
    want[1:step + 1, step:step + 2] = a[step:, 1:step + 1].T
    np.testing.assert_array_equal(out, want)
    # a tile that overhangs a's last column (and out's last column) writes what exists only
    out = np.zeros((step + 5, step + 1), dtype=dtype)
    _one_tile(a, 0, 3, out)
    want = np.zeros_like(out)
    want[3:step + 2, :step] = a[:step, 3:].T
    np.testing.assert_array_equal(out, want)


@jit
def _one_tile(a, r0, c0, out):
    transpose_tile(a, r0, c0, out)


@jit
def _row_dots_all(W, g, out):
    step = lanes(W)
    for k0 in range(0, min(W.shape[0], out.shape[1]), step):
        for r in range(0, out.shape[0], dot_rows(W)):
            row_dots(W, k0, g, r, out)


@jit
def _row_dots_once(W, k0, g, r, out):
    row_dots(W, k0, g, r, out)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_row_dots_give_g_times_W_transposed_and_write_nothing_else(dtype):
    rng = np.random.default_rng(5)
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    assert dot_rows(np.zeros(1, dtype=dtype)) == (2 if step <= 8 else 1)
    tol = 16 * np.finfo(dtype).eps
    for d, h, n in ((1, 1, 1), (step, step, 2), (step + 3, step - 1, 3), (2 * step + 1, 50, 5), (784, 50, 10)):
        W = rng.standard_normal((d, h)).astype(dtype)
        g = rng.standard_normal((n, h + 3)).astype(dtype)  # g wider than W: its extra columns are not read
        want = g[:, :h].astype(np.float64) @ W.T.astype(np.float64)
        scale = np.abs(g[:, :h]).astype(np.float64) @ np.abs(W.T).astype(np.float64)
        for f in (_row_dots_all, getattr(_row_dots_all, "py_func", _row_dots_all)):
            out = np.full((n, d), np.nan, dtype=dtype)
            f(W, g, out)  # any lane left unwritten would stay NaN
            assert (np.abs(out - want) <= tol * scale).all(), (d, h, n)
    # one call near the ends: rows of out past n and columns past W's rows stay as they were
    W = rng.standard_normal((step + 2, 7)).astype(dtype)
    g = rng.standard_normal((3, 7)).astype(dtype)
    for f in (_row_dots_once, getattr(_row_dots_once, "py_func", _row_dots_once)):
        out = np.full((3, step + 5), np.nan, dtype=dtype)
        f(W, step, g, 2, out)
        written = np.isfinite(out)
        want = np.zeros_like(written)
        want[2, step:step + 2] = True
        np.testing.assert_array_equal(written, want)
        np.testing.assert_allclose(out[2, step:step + 2], W[step:] @ g[2], rtol=tol)


@needs_jit
def test_row_dots_and_tile_transposes_are_inlined_into_their_callers():
    """Either left as a call re-reads the arrays' shapes and pointers every time: 10 float64 rows
    by 784 x 50 took 24 us so, 19 us inlined; W^T of 784 x 50, 11.6 us against 7.5 us."""
    W = np.ones((16, 9))
    for f, args in ((_row_dots_all, (W, W[:2], np.empty((2, 16)))), (affine.transpose, (W,))):
        fresh = numba.njit(fastmath={"contract", "nsz"}, error_model="numpy")(f.py_func)
        fresh(*args)
        calls = [line for line in fresh.inspect_llvm(fresh.signatures[0]).splitlines() if "call " in line]
        assert not [line for line in calls if "4simd" in line]  # no call into a kernels.simd function


@jit
def _copy_quarters(a, out, n):
    """out[r, 1:1+n] = a[r, 1:1+n] through one quarter-width vector per row."""
    for r in range(a.shape[0]):
        vstore_part(out, r, 1, vfma(a.dtype.type(2), vload_part_quarter(a, r, 1, n), vload_part_quarter(out, r, 1, n)), n)


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_quarter_width_loads_and_stores_touch_exactly_n_lanes(dtype):
    step = VECTOR_BYTES // np.dtype(dtype).itemsize
    a = np.zeros((1, 1), dtype=dtype)
    assert quarter_lanes(a) == (step // 4 if VECTOR_BYTES == 64 else 0)
    rng = np.random.default_rng(3)
    for n in range(0, step // 4 + 1):
        a = rng.standard_normal((3, step + 2)).astype(dtype)
        out = np.full_like(a, 7)
        for f in (_copy_quarters, getattr(_copy_quarters, "py_func", _copy_quarters)):
            got = out.copy()
            f(a, got, n)
            want = out.copy()
            want[:, 1:1 + n] = 2 * a[:, 1:1 + n] + 7
            np.testing.assert_array_equal(got, want)  # nothing past the n lanes, FMA rounds once


@jit
def _copy_whole_quarters(a, out, c):
    """out[r, c:c+q] += 2 a[r, c:c+q] through one whole quarter-width vector per row (q lanes)."""
    for r in range(a.shape[0]):
        vstore(out, r, c, vfma(a.dtype.type(2), vload_quarter(a, r, c), vload_quarter(out, r, c)))


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_whole_quarter_width_loads_and_stores_touch_exactly_a_quarter(dtype):
    q = max(1, VECTOR_BYTES // np.dtype(dtype).itemsize // 4)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, q + 3)).astype(dtype)
    for c in (0, 3):  # aligned or not; the last c ends at the row's end
        for f in (_copy_whole_quarters, getattr(_copy_whole_quarters, "py_func", _copy_whole_quarters)):
            got = np.full_like(a, 7)
            f(a, got, c)
            want = np.full_like(a, 7)
            want[:, c:c + q] = 2 * a[:, c:c + q] + 7
            np.testing.assert_array_equal(got, want)


@jit
def _words_of_row(a, r, starts):
    out = np.empty(starts.shape[0], dtype=np.uint64)
    for i in range(starts.shape[0]):
        out[i] = nonzero_word(a, r, starts[i])
    return out


@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_nonzero_word_marks_the_64_elements_that_are_not_zero(dtype):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 140)).astype(dtype)
    a[rng.random(a.shape) < 0.6] = 0
    a[1, [0, 5, 70, 139]] = [np.nan, -0.0, np.finfo(dtype).smallest_subnormal, -np.inf]
    starts = np.array([0, 5, 64, 76], dtype=np.int64)  # 76: the word ends at the row's end
    for r in (0, 1):
        want = [sum(1 << i for i in range(64) if a[r, c + i] != 0) for c in starts]  # NaN != 0
        for f in (_words_of_row, getattr(_words_of_row, "py_func", _words_of_row)):
            assert [int(w) for w in f(a, r, starts)] == want


@jit
def _pair_fma(s0, s1, a, c, acc_row, out):
    """out[0, c:] and out[1, c:] (a quarter of the lanes each) = the two halves of
    vfma_pair(s0, s1, a[0, c:] twice, a[acc_row, c:] twice)."""
    p = vfma_pair(s0, s1, vload_quarter_twice(a, 0, c), vload_quarter_twice(a, acc_row, c))
    vstore_low(out, 0, c, p)
    vstore_high(out, 1, c, p)


@pytest.mark.skipif(VECTOR_BYTES != 64, reason="quarter-width vectors need 64-byte vectors")
@pytest.mark.parametrize("dtype", DTYPES, **_ids)
def test_a_pair_of_rows_in_one_vector_takes_one_fma_each(dtype):
    q = quarter_lanes(np.empty((1, 1), dtype=dtype))
    e = np.finfo(dtype).eps
    a = np.zeros((2, 3 * q), dtype=dtype)
    a[0] = 1 + e  # (1 + e)^2 = 1 + 2e + e^2: the e^2 survives only in a fused multiply-add
    a[1] = -(1 + 2 * e)
    out = np.full((2, 3 * q), 7, dtype=dtype)
    _pair_fma(dtype(1 + e), dtype(2), a, q, 1, out)
    fused = dtype(e * e) if not numba.config.DISABLE_JIT else dtype(0)
    np.testing.assert_array_equal(out[0, q:2 * q], np.full(q, fused, dtype=dtype))
    np.testing.assert_array_equal(out[1, q:2 * q], np.full(q, 2 * (1 + e) - (1 + 2 * e), dtype=dtype))
    assert (out[:, :q] == 7).all() and (out[:, 2 * q:] == 7).all()  # nothing else written
