"""kernels.vexp: within one ulp of exp everywhere, the same special values, and vectorised."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import needs_jit
from kernels._jit import jit
from kernels.vexp import vexp

DTYPES = (np.float64, np.float32)
# Past these, exp overflows to inf or rounds to 0 in the dtype: the sweep covers both ends.
RANGE = {np.float64: (-760.0, 720.0), np.float32: (-110.0, 95.0)}


@jit
def _vexp_all(a):
    out = np.empty_like(a)
    for i in range(a.size):
        out[i] = vexp(a[i])
    return out


def _ulp_error(x, got):
    """|got - exp(x)| in units of the last place of got's dtype, exp(x) in long double."""
    exact = np.exp(x.astype(np.longdouble))
    with np.errstate(over="ignore"):
        rounded = exact.astype(got.dtype)
    # where exp overflows or rounds to 0 in the dtype, the special-values test checks vexp
    finite = np.isfinite(rounded) & (rounded != 0)
    spacing = np.spacing(np.abs(rounded[finite])).astype(np.longdouble)
    return np.abs(got[finite].astype(np.longdouble) - exact[finite]) / spacing


@needs_jit  # without the JIT vexp is np.exp, whose float32 version is off by up to about 2 ulp
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_vexp_is_within_one_ulp_over_the_whole_range(dtype):
    if np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant:
        pytest.skip("long double is no wider than float64 here: no exact reference")
    rng = np.random.default_rng(0)
    lo, hi = RANGE[dtype]
    x = np.concatenate([rng.uniform(lo, hi, 200_000), rng.uniform(-1, 1, 50_000),
                        rng.uniform(-1e-8, 1e-8, 1_000)]).astype(dtype)
    got = _vexp_all(x)
    assert got.dtype == dtype
    assert _ulp_error(x, got).max() <= 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_vexp_special_values_are_exp_s(dtype):
    lo, hi = RANGE[dtype]
    info = np.finfo(dtype)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, lo, hi, np.log(info.max), -np.log(info.max),
                  np.log(info.tiny), np.log(info.tiny) - 10, 1e-30, -1e-30], dtype=dtype)
    with np.errstate(over="ignore", under="ignore"):  # without the JIT vexp is np.exp, which warns
        got = _vexp_all(x)
        want = np.exp(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_array_equal(got == 0, want == 0)
    finite = np.isfinite(want) & (want != 0)
    np.testing.assert_allclose(got[finite], want[finite], rtol=4 * info.eps, atol=0)
    assert got[0] == 1 and got[1] == 1


@settings(max_examples=200, deadline=None)
@given(st.floats(-745.0, 709.0))
def test_vexp_matches_numpy_to_an_ulp_float64(v):
    x = np.array([v])
    with np.errstate(under="ignore"):
        got = _vexp_all(x)[0]
    want = np.exp(v)
    assert abs(got - want) <= np.spacing(max(abs(want), np.finfo(np.float64).tiny)) * 1.0001


@needs_jit
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_loop_over_vexp_is_vectorised_and_stays_in_its_dtype(dtype):
    a = np.linspace(-3, 3, 64).astype(dtype)
    fresh = numba.njit(fastmath={"contract", "nsz"}, error_model="numpy")(_vexp_all.py_func)
    fresh(a)
    asm = fresh.inspect_asm(fresh.signatures[0])
    suffix = "pd" if dtype == np.float64 else "ps"
    # packed multiply-adds on 256- or 512-bit registers: the loop runs as SIMD
    assert re.search(rf"vfmadd\w*{suffix}\s+[^\n]*%[yz]mm", asm), "no packed FMA: not vectorised"
    assert "call" not in "".join(line for line in asm.splitlines() if "exp" in line.lower())
