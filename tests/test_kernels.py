"""Every kernel against fastnet.reference: one table, both dtypes, odd shapes, overflow, properties."""

from __future__ import annotations

import re
import sys
import warnings
from collections import namedtuple
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kernels
from conftest import (THREAD_COUNTS, dense, labels, max_rel, mnist_like, needs_jit, needs_threads,
                      one_hot)
from fastnet import reference as ref

DTYPES = (np.float64, np.float32)
RTOL64 = 1e-12
EPS32 = float(np.finfo(np.float32).eps)
# float32 kernels are compared with the float64 reference evaluated on the same (float32-valued)
# inputs, so the difference is the kernel's own float32 rounding. The longest accumulations are
# 784-term dot products and 100-row batch sums: a worst-case bound is ~n eps, a random-walk one
# ~sqrt(n) eps (28 eps); measured here at most ~5 eps relative to each output's max norm. 300 eps
# (3.6e-5) leaves margin for other compilers/CPUs while a float16-grade or wrong-formula result
# (>= 1e-3) still fails.
RTOL32 = 300 * EPS32


def rtol_for(dtype):
    return RTOL64 if np.dtype(dtype) == np.float64 else RTOL32


# -- the table ------------------------------------------------------------------------------

Shape = namedtuple("Shape", "n d h c x")

SHAPES = {
    "mnist-100": Shape(100, 784, 50, 10, "mnist"),
    "dense-100": Shape(100, 784, 50, 10, "dense"),
    "batch-1": Shape(1, 784, 50, 10, "mnist"),
    "one-class": Shape(6, 5, 4, 1, "dense"),
    "hidden-1": Shape(7, 9, 1, 4, "mnist"),
    "input-1": Shape(5, 1, 6, 3, "dense"),
    "non-square": Shape(13, 7, 11, 5, "mnist"),
    "all-ones": Shape(1, 1, 1, 1, "dense"),
}


def _x(rng, s, dt):
    return mnist_like(rng, s.n, s.d, dt) if s.x == "mnist" else dense(rng, s.n, s.d, dt)


def _params(rng, s, dt):
    W1 = (0.1 * rng.standard_normal((s.d, s.h))).astype(dt)
    b1 = (0.1 * rng.standard_normal(s.h)).astype(dt)
    W2 = rng.standard_normal((s.h, s.c)).astype(dt)
    b2 = (0.1 * rng.standard_normal(s.c)).astype(dt)
    return W1, b1, W2, b2


def _logits(rng, s, dt):
    return (3 * rng.standard_normal((s.n, s.c))).astype(dt)


def _pre(rng, s, dt):
    return (4 * rng.standard_normal((s.n, s.h))).astype(dt)


LOSS_NAMES = {kernels.CROSS_ENTROPY: "cross_entropy", kernels.SUM_SQUARED: "sum_squared"}


def _ref_net(W1, b1, W2, b2, loss=kernels.CROSS_ENTROPY):
    return ref.TwoLayerNet.from_params({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, delta=0.0,
                                       loss=LOSS_NAMES[loss])


def _ref_ce(a, t):
    # one-hot labels: with C = 1 the reference's cross_entropy_error takes index labels for
    # one-hot rows (t.size == y.size) and fails
    return ref.softmax_cross_entropy(a, one_hot(t, a.shape[1]))


def _ref_loss(x, t, W1, b1, W2, b2, loss=kernels.CROSS_ENTROPY):
    return _ref_net(W1, b1, W2, b2, loss).loss(x, one_hot(t, W2.shape[1]))


def _ref_gradient(x, t, W1, b1, W2, b2, loss=kernels.CROSS_ENTROPY):
    g = _ref_net(W1, b1, W2, b2, loss).gradient(x, t)
    return tuple(g[k] for k in ("W1", "b1", "W2", "b2"))


def _ref_sum_squared(a, t):
    return ref.softmax_sum_squared(a, one_hot(t, a.shape[1]))


@dataclass(frozen=True)
class Case:
    kernel: object  # the numba dispatcher
    reference: Callable  # same positional arguments, NumPy
    build: Callable  # (rng, shape, dtype) -> argument tuple


CASES = {
    "affine_forward": Case(
        kernels.affine_forward, ref.affine_forward,
        lambda r, s, dt: (_x(r, s, dt), *_params(r, s, dt)[:2])),
    "affine_backward": Case(
        kernels.affine_backward, ref.affine_backward,
        lambda r, s, dt: (_x(r, s, dt), _params(r, s, dt)[0], r.standard_normal((s.n, s.h)).astype(dt))),
    "sigmoid": Case(kernels.sigmoid, ref.sigmoid, lambda r, s, dt: (_pre(r, s, dt),)),
    "sigmoid_grad": Case(kernels.sigmoid_grad, ref.sigmoid_grad, lambda r, s, dt: (_pre(r, s, dt),)),
    "softmax": Case(kernels.softmax, ref.softmax, lambda r, s, dt: (_logits(r, s, dt),)),
    "softmax_cross_entropy": Case(
        kernels.softmax_cross_entropy, _ref_ce,
        lambda r, s, dt: (_logits(r, s, dt), labels(r, s.n, s.c))),
    "softmax_cross_entropy_grad": Case(
        kernels.softmax_cross_entropy_grad, ref.softmax_cross_entropy_grad,
        lambda r, s, dt: (_logits(r, s, dt), labels(r, s.n, s.c))),
    "two_layer_predict": Case(
        kernels.two_layer_predict, lambda x, *p: _ref_net(*p).predict(x),
        lambda r, s, dt: (_x(r, s, dt), *_params(r, s, dt))),
    "two_layer_loss": Case(
        kernels.two_layer_loss, _ref_loss,
        lambda r, s, dt: (_x(r, s, dt), labels(r, s.n, s.c), *_params(r, s, dt))),
    "two_layer_gradient": Case(
        kernels.two_layer_gradient, _ref_gradient,
        lambda r, s, dt: (_x(r, s, dt), labels(r, s.n, s.c), *_params(r, s, dt))),
    "softmax_sum_squared": Case(
        kernels.softmax_sum_squared, _ref_sum_squared,
        lambda r, s, dt: (_logits(r, s, dt), labels(r, s.n, s.c))),
    "softmax_sum_squared_grad": Case(
        kernels.softmax_sum_squared_grad, ref.softmax_sum_squared_grad,
        lambda r, s, dt: (_logits(r, s, dt), labels(r, s.n, s.c))),
    "two_layer_loss[sum_squared]": Case(
        kernels.two_layer_loss, _ref_loss,
        lambda r, s, dt: (_x(r, s, dt), labels(r, s.n, s.c), *_params(r, s, dt), kernels.SUM_SQUARED)),
    "two_layer_gradient[sum_squared]": Case(
        kernels.two_layer_gradient, _ref_gradient,
        lambda r, s, dt: (_x(r, s, dt), labels(r, s.n, s.c), *_params(r, s, dt), kernels.SUM_SQUARED)),
}


NUMGRAD_KERNELS = {"complex_step_loop", "complex_step_loop_serial", "numerical_gradient_loop",
                   "numerical_gradient_loop_serial", "two_layer_complex_step",
                   "two_layer_numerical_gradient"}  # tested in test_numgrad.py and test_gradient.py


def _dispatchers():
    """Names of the compiled kernels the `kernels` package exposes."""
    return {n for n in dir(kernels) if isinstance(getattr(kernels, n), numba.core.dispatcher.Dispatcher)}


@needs_jit
def test_table_covers_every_kernel():
    assert _dispatchers() - NUMGRAD_KERNELS == {case.kernel.__name__ for case in CASES.values()}


@needs_jit
def test_every_kernel_is_in_all():
    assert _dispatchers() <= set(kernels.__all__), _dispatchers() - set(kernels.__all__)


def _as_tuple(out):
    return tuple(out) if isinstance(out, tuple) else (out,)


def _upcast(args):
    return tuple(a.astype(np.float64) if getattr(a, "dtype", None) is not None and a.dtype.kind == "f"
                 else a for a in args)


def _return_type(kernel, args):
    """The numba return type of the specialisation `args` selected."""
    types = tuple(numba.typeof(a) for a in args)
    # a kernel with a defaulted trailing argument (loss) is keyed with it as `omitted(...)`
    (sig,) = [k for k in kernel.overloads if k[:len(types)] == types
              and all(isinstance(x, numba.types.Omitted) for x in k[len(types):])]
    return kernel.overloads[sig].signature.return_type


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", CASES, ids=str)
def test_kernel_matches_reference(name, shape, dtype):
    case, s = CASES[name], SHAPES[shape]
    rng = np.random.default_rng([list(CASES).index(name), list(SHAPES).index(shape)])
    args = case.build(rng, s, dtype)
    before = [np.copy(a) for a in args]
    got = _as_tuple(case.kernel(*args))
    want = _as_tuple(case.reference(*_upcast(args)))
    for a, b in zip(args, before):  # kernels are pure: inputs untouched
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(g, np.ndarray):
            assert g.dtype == dtype, "output dtype must follow the inputs"
            assert g.shape == np.shape(w)
        else:
            assert np.ndim(w) == 0
            if not numba.config.DISABLE_JIT:
                assert _return_type(case.kernel, args) == numba.from_dtype(np.dtype(dtype))
            if dtype == np.float32:
                assert np.float32(g) == g  # a float32 value, boxed as a Python float
        assert np.isfinite(g).all()
        assert max_rel(g, w) <= rtol_for(dtype), f"{name} output off by {max_rel(g, w):.2e} (max norm)"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_labels_are_indices_equivalent_to_reference_one_hot(rng, dtype):
    a = _logits(rng, Shape(9, 0, 0, 4, ""), dtype)
    t = labels(rng, 9, 4)
    got = kernels.softmax_cross_entropy(a, t)
    want = ref.softmax_cross_entropy(a.astype(np.float64), one_hot(t, 4))
    assert abs(got - want) <= rtol_for(dtype) * abs(want)
    g = kernels.softmax_cross_entropy_grad(a, t)
    assert max_rel(g, ref.softmax_cross_entropy_grad(a.astype(np.float64), one_hot(t, 4))) <= rtol_for(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sigmoid_of_other_ranks(rng, dtype):
    for shape in [(5,), (2, 3, 4)]:
        a = (4 * rng.standard_normal(shape)).astype(dtype)
        for k, r in [(kernels.sigmoid, ref.sigmoid), (kernels.sigmoid_grad, ref.sigmoid_grad)]:
            out = k(a)
            assert out.shape == a.shape and out.dtype == dtype
            assert max_rel(out, r(a.astype(np.float64))) <= rtol_for(dtype)


# -- overflow -------------------------------------------------------------------------------

def _lse_mean_longdouble(a, t):
    """mean(logsumexp(a) - a[t]) evaluated in np.longdouble with the max shift (the exact loss)."""
    a = np.asarray(a, dtype=np.longdouble)
    m = a.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(a - m).sum(axis=1))
    return (lse - a[np.arange(a.shape[0]), t]).mean()


@needs_jit
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sigmoid_saturates_without_warning(dtype):
    big = np.finfo(dtype).max
    a = np.array([[1e4, -1e4, 1e3, -1e3, big, -big, 0.0, -0.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            s = kernels.sigmoid(a)
            g = kernels.sigmoid_grad(a)
    assert s.dtype == dtype and g.dtype == dtype
    np.testing.assert_array_equal(s[0, :6], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(s[0, 6:], [0.5, 0.5])
    np.testing.assert_array_equal(g[0, :6], 0)
    np.testing.assert_array_equal(g[0, 6:], 0.25)
    assert not np.isnan(s).any() and not np.isnan(g).any()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_cross_entropy_of_huge_logits_is_finite_and_exact(dtype):
    a = np.array([[1e4, -1e4, 0.0],
                  [-1e4, 1e4, 5e3],
                  [1e4, 1e4 - 0.5, -1e4],
                  [-1e4, -1e4, -1e4],
                  [1e4, -1e4, 1e4 - 2]], dtype=dtype)
    t = np.array([1, 0, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = kernels.softmax_cross_entropy(a, t)
        g = kernels.softmax_cross_entropy_grad(a, t)
        p = kernels.softmax(a)
    want = _lse_mean_longdouble(a, t)
    # rows 0 and 1 lose 2e4, row 2 log(1 + e^0.5), row 3 log 3, row 4 2 + log(1 + e^-2)
    hand = (2e4 + 2e4 + np.log1p(np.exp(0.5)) + np.log(3.0) + 2 + np.log1p(np.exp(-2.0))) / 5
    assert abs(float(want) - hand) <= 1e-12 * hand
    assert np.isfinite(loss)
    eps = np.finfo(dtype).eps
    # the loss is a difference of numbers of size 1e4: its rounding is relative to them
    assert abs(loss - float(want)) <= 4 * eps * 1e4
    assert np.isfinite(g).all() and np.isfinite(p).all()
    assert g.dtype == dtype and p.dtype == dtype
    np.testing.assert_allclose(p[[0, 1]], [[1, 0, 0], [0, 1, 0]], atol=0)
    np.testing.assert_allclose(g[0], np.array([1, -1, 0]) / 5, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_two_layer_loss_with_saturated_hidden_units_and_huge_logits(rng, dtype):
    x = mnist_like(rng, 8, 30, dtype)
    x[:, 0] = 1.0
    W1 = (1e3 * rng.standard_normal((30, 6))).astype(dtype)  # sigmoid saturates to 0 or 1
    b1 = np.zeros(6, dtype)
    W2 = (3e3 * rng.standard_normal((6, 4))).astype(dtype)  # logits of order 1e4
    b2 = np.zeros(4, dtype)
    t = labels(rng, 8, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = kernels.two_layer_loss(x, t, W1, b1, W2, b2)
        grads = kernels.two_layer_gradient(x, t, W1, b1, W2, b2)
    a1 = x.astype(np.longdouble) @ W1.astype(np.longdouble) + b1
    z = np.where(a1 >= 0, 1 / (1 + np.exp(-np.abs(a1))), np.exp(-np.abs(a1)) / (1 + np.exp(-np.abs(a1))))
    a2 = z @ W2.astype(np.longdouble) + b2
    want = _lse_mean_longdouble(a2, t)
    scale = float(np.abs(a2).max())
    assert scale > 1e3
    assert np.isfinite(loss) and abs(loss - float(want)) <= 64 * np.finfo(dtype).eps * scale
    assert all(np.isfinite(g).all() and g.dtype == dtype for g in grads)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_rows_sum_to_one_for_huge_logits(dtype):
    a = np.array([[1e4, 1e4], [1e4, 1e4 - 1], [-1e4, -1e4], [1e4, 1e4 + 0.5]], dtype=dtype)
    eps = np.finfo(dtype).eps
    p = kernels.softmax(a)
    want = ref.softmax(a.astype(np.float64))
    assert np.abs(p.sum(axis=1, dtype=np.float64) - 1).max() <= 4 * a.shape[1] * eps
    assert np.abs(p - want).max() <= 4 * a.shape[1] * eps


# -- no silent upcast -----------------------------------------------------------------------

# Double-precision arithmetic or double libm calls in the LLVM IR of a float32 specialisation.
# Conversions of integers to double (numba's shape checks) and the boxing of the result into a
# Python float are not arithmetic and do not match.
_DOUBLE_MATH = re.compile(
    r"=\s*(?:fadd|fsub|fmul|fdiv|frem|fneg)\b[^\n]*\bdouble\b"
    r"|call[^\n]*@llvm\.[a-z0-9]+\.(?:v\d+)?f64\b"
    r"|call[^\n]*\bdouble\b[^\n]*@(?:exp|expm1|log|log1p|pow|sin|cos|tan|atan2|sqrt|tanh)\b")


def _float32_ir(kernel, args):
    """LLVM IR of a fresh (uncached, so inspectable) compile of `kernel` for `args`.

    A kernel that is a Python driver of compiled blocks (the two-layer numerical gradients) is run
    once, and the IR of every block it compiled for float32 is returned, each compiled afresh.
    """
    if not isinstance(kernel, numba.core.dispatcher.Dispatcher):
        kernel(*args)
        module = sys.modules[kernel.__module__]
        parts = []
        for block in vars(module).values():
            if not isinstance(block, numba.core.dispatcher.Dispatcher) or block.targetoptions.get("cache") is False:
                continue
            for sig in block.signatures:
                if any("float32" in str(a) for a in sig):
                    opts = {k: v for k, v in block.targetoptions.items()
                            if k in ("fastmath", "parallel", "boundscheck")}
                    fresh = numba.njit(sig, **opts)(block.py_func)
                    parts.extend(fresh.inspect_llvm().values())
        assert parts, f"{kernel.__name__} compiled no float32 block"
        return "\n".join(parts)
    opts = {k: v for k, v in kernel.targetoptions.items() if k in ("fastmath", "parallel", "boundscheck")}
    fresh = numba.njit(**opts)(kernel.py_func)
    fresh(*args)
    (ir,) = fresh.inspect_llvm().values()
    return ir


@needs_jit
def test_upcast_detector_detects_an_upcast():
    @numba.njit
    def upcasting(a):
        return a[0] * 0.1 + np.exp(a[1] * 1.0)  # float64 literal: float32 -> float64

    @numba.njit
    def clean(a):
        return a[0] * a.dtype.type(0.1) + np.exp(a[1])

    a = np.ones(2, dtype=np.float32)
    assert _DOUBLE_MATH.search(_float32_ir(upcasting, (a,)))
    assert not _DOUBLE_MATH.search(_float32_ir(clean, (a,)))


def _float32_calls():
    rng = np.random.default_rng(5)
    s = SHAPES["non-square"]
    calls = {name: (case.kernel, case.build(rng, s, np.float32)) for name, case in CASES.items()}
    x, t, *p = CASES["two_layer_loss"].build(rng, s, np.float32)
    # method and loss are run-time arguments: one specialisation serves every method and both losses
    calls["two_layer_numerical_gradient"] = (
        kernels.two_layer_numerical_gradient, (x, t, *p, np.float32(1e-4), kernels.CENTRAL, kernels.SUM_SQUARED))
    calls["two_layer_complex_step"] = (
        kernels.two_layer_complex_step, (x, t, *p, np.float32(1e-20), kernels.SUM_SQUARED))
    return calls


FLOAT32_CALLS = _float32_calls()


@needs_jit
@pytest.mark.parametrize("name", FLOAT32_CALLS, ids=str)
def test_float32_kernels_do_no_double_arithmetic(name):
    kernel, args = FLOAT32_CALLS[name]
    ir = _float32_ir(kernel, args)
    found = _DOUBLE_MATH.findall(ir)
    assert not found, f"{name}: float64 arithmetic in the float32 kernel: {found[:3]}"


# -- properties -----------------------------------------------------------------------------

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def logits_and_labels(draw, max_n=6, max_c=6, bound=1e4):
    """(a (n, c) logits up to +-bound, many exact zeros and ties, t (n,) labels, dtype)."""
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(1, max_c))
    width = 32 if dtype == np.float32 else 64
    elem = st.one_of(st.just(0.0), st.sampled_from([bound, -bound]),
                     st.floats(-bound, bound, width=width), st.floats(-3, 3, width=width))
    a = draw(hnp.arrays(dtype, (n, c), elements=elem))
    t = draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    return a, t, dtype


@st.composite
def sparse_batch(draw, max_n=5, max_d=8, max_h=5):
    """x (n, d) with many exact zeros, W (d, h), b (h,), dout (n, h) and the dtype."""
    dtype = draw(st.sampled_from(DTYPES))
    n, d, h = (draw(st.integers(1, m)) for m in (max_n, max_d, max_h))
    width = 32 if dtype == np.float32 else 64
    vals = st.floats(-10, 10, width=width)
    x = draw(hnp.arrays(dtype, (n, d), elements=st.one_of(st.just(0.0), st.just(0.0), st.just(1.0), vals)))
    W = draw(hnp.arrays(dtype, (d, h), elements=vals))
    b = draw(hnp.arrays(dtype, h, elements=vals))
    dout = draw(hnp.arrays(dtype, (n, h), elements=vals))
    return x, W, b, dout, dtype


@PROPS
@given(logits_and_labels())
def test_softmax_properties(case):
    a, _, dtype = case
    eps = float(np.finfo(dtype).eps)
    p = kernels.softmax(a)
    assert p.dtype == dtype and p.shape == a.shape
    assert ((p >= 0) & (p <= 1)).all()
    # exp(a - max) rounds a - max with an error of eps * |a|: the tolerance grows with |a|
    scale = 1 + float(np.abs(a).max())
    np.testing.assert_allclose(p, ref.softmax(a.astype(np.float64)), rtol=0, atol=8 * eps * scale)
    assert np.abs(p.sum(axis=1, dtype=np.float64) - 1).max() <= 4 * eps * (a.shape[1] + scale)


@PROPS
@given(logits_and_labels())
def test_softmax_cross_entropy_properties(case):
    a, t, dtype = case
    eps = float(np.finfo(dtype).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = kernels.softmax_cross_entropy(a, t)
        g = kernels.softmax_cross_entropy_grad(a, t)
    want = float(_lse_mean_longdouble(a, t))
    assert np.isfinite(loss) and loss >= 0
    # lse - a[t] subtracts numbers as large as max |a|: rounding is relative to that
    assert abs(loss - want) <= 8 * eps * (float(np.abs(a).max()) + want + 1)
    if dtype == np.float32:
        assert np.float32(loss) == loss
    assert g.dtype == dtype and np.isfinite(g).all()
    n, c = a.shape
    scale = 1 + float(np.abs(a).max())
    assert np.abs(g.sum(axis=1, dtype=np.float64)).max() <= 4 * eps * (c + scale) / n
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        np.testing.assert_allclose(g, ref.softmax_cross_entropy_grad(a.astype(np.float64), t),
                                   rtol=0, atol=8 * eps * scale / n)


def _sum_squared_longdouble(a, t):
    """Mean half squared distance between softmax(a) and one-hot t, in np.longdouble."""
    a = np.asarray(a, dtype=np.longdouble)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    y[np.arange(a.shape[0]), t] -= 1
    return (y * y).sum(axis=1).mean() / 2


@PROPS
@given(logits_and_labels())
def test_softmax_sum_squared_properties(case):
    a, t, dtype = case
    eps = float(np.finfo(dtype).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = kernels.softmax_sum_squared(a, t)
        g = kernels.softmax_sum_squared_grad(a, t)
    assert np.isfinite(loss) and 0 <= loss <= 1  # half of |y - onehot|^2 <= half of 2
    # softmax rounds a - max with an error of eps * |a|: the loss inherits it
    scale = 1 + float(np.abs(a).max())
    assert abs(loss - float(_sum_squared_longdouble(a, t))) <= 16 * eps * scale
    if dtype == np.float32:
        assert np.float32(loss) == loss
    n, c = a.shape
    assert g.dtype == dtype and np.isfinite(g).all()
    # the gradient's rows sum to zero: softmax ignores a common shift of the logits
    assert np.abs(g.sum(axis=1, dtype=np.float64)).max() <= 8 * eps * c / n
    np.testing.assert_allclose(g, ref.softmax_sum_squared_grad(a.astype(np.float64), t),
                               rtol=0, atol=16 * eps * scale / n)


@PROPS
@given(logits_and_labels(max_n=4, max_c=5, bound=1e4))
def test_sigmoid_properties(case):
    a, _, dtype = case
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).tiny)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = kernels.sigmoid(a)
        g = kernels.sigmoid_grad(a)
    assert s.dtype == dtype and g.dtype == dtype
    # sigmoid' <= 1/4 exactly; its rounded value may sit an ulp above
    assert ((s >= 0) & (s <= 1)).all() and ((g >= 0) & (g <= 0.25 * (1 + 4 * eps))).all()
    al = a.astype(np.longdouble)
    e = np.exp(-np.abs(al))
    s_true = np.where(al >= 0, 1 / (1 + e), e / (1 + e))
    g_true = e / (1 + e) ** 2
    # elementwise relative accuracy (both are evaluated from exp(-|a|), with no cancellation)
    assert (np.abs(s - s_true) <= 4 * eps * s_true + tiny).all()
    assert (np.abs(g - g_true) <= 6 * eps * g_true + tiny).all()
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(s, ref.sigmoid(a.astype(np.float64)), rtol=4 * eps, atol=tiny)
        np.testing.assert_allclose(g, ref.sigmoid_grad(a.astype(np.float64)), rtol=0, atol=2 * eps)


def _product_bound(A, B, k, dtype):
    """Elementwise rounding bound of a k-term product A @ B in dtype: (k + 2) eps (|A| @ |B|).

    Plus (k + 2) times the smallest subnormal, for products that underflow.
    """
    fi = np.finfo(dtype)
    return (k + 2) * (fi.eps * (np.abs(A) @ np.abs(B)) + fi.smallest_subnormal)


@PROPS
@given(sparse_batch())
def test_affine_properties(case):
    x, W, b, dout, dtype = case
    n, d = x.shape
    h = W.shape[1]
    x64, W64, b64, dout64 = (v.astype(np.float64) for v in (x, W, b, dout))
    out = kernels.affine_forward(x, W, b)
    assert out.dtype == dtype and out.shape == (n, h)
    want = ref.affine_forward(x64, W64, b64)
    # twice the bound: the float64 reference rounds too (negligibly for float32 inputs)
    bound = _product_bound(np.hstack([x64, np.ones((n, 1))]), np.vstack([W64, b64]), d + 1, dtype)
    assert (np.abs(out - want) <= 2 * bound).all()
    dx, dW, db = kernels.affine_backward(x, W, dout)
    assert (dx.dtype, dW.dtype, db.dtype) == (dtype, dtype, dtype)
    rdx, rdW, rdb = ref.affine_backward(x64, W64, dout64)
    assert (np.abs(dx - rdx) <= 2 * _product_bound(dout64, W64.T, h, dtype)).all()
    assert (np.abs(dW - rdW) <= 2 * _product_bound(x64.T, dout64, n, dtype)).all()
    assert (np.abs(db - rdb) <= 2 * _product_bound(np.ones((1, n)), dout64, n, dtype)[0]).all()
    # an input that is zero in every row has exactly zero weight gradient
    unused = ~x.any(axis=0)
    assert (dW[unused] == 0).all()


@settings(PROPS, max_examples=40)
@given(sparse_batch(max_n=4, max_d=6, max_h=4), st.integers(1, 4), st.data())
def test_two_layer_kernels_properties(case, c, data):
    x, W1, b1, _, dtype = case
    x = np.clip(x, 0, 1).astype(dtype)  # inputs in [0, 1] with many exact zeros, as MNIST
    n, d = x.shape
    h = W1.shape[1]
    width = 32 if dtype == np.float32 else 64
    W2 = data.draw(hnp.arrays(dtype, (h, c), elements=st.floats(-10, 10, width=width)))
    b2 = data.draw(hnp.arrays(dtype, c, elements=st.floats(-3, 3, width=width)))
    t = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    eps = float(np.finfo(dtype).eps)
    params = (W1, b1, W2, b2)
    p = kernels.two_layer_predict(x, *params)
    loss = kernels.two_layer_loss(x, t, *params)
    grads = kernels.two_layer_gradient(x, t, *params)
    assert p.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert ((p >= 0) & (p <= 1)).all() and np.isfinite(loss) and loss >= 0

    # Forward error analysis: rounding of a1 (d-term sums), of z, then of a2 (h-term sums plus
    # the propagated error of z); the loss and p are 1-Lipschitz in the logits (max norm).
    W1l, b1l, W2l, b2l = (v.astype(np.longdouble) for v in params)
    xl = x.astype(np.longdouble)
    d_a1 = (d + 2) * eps * (np.abs(xl) @ np.abs(W1l) + np.abs(b1l))
    d_z = d_a1 / 4 + 2 * eps
    a2_scale = float(np.abs(W2l).sum(axis=0).max() + np.abs(b2l).max())
    d_a2 = float(((h + 2) * eps * a2_scale + d_z @ np.abs(W2l)).max())
    rnet = ref.TwoLayerNet.from_params(dict(zip(("W1", "b1", "W2", "b2"), (W1l, b1l, W2l, b2l))), delta=0.0)
    want_loss = float(rnet.loss(xl, one_hot(t, c)))
    lse_round = 8 * eps * (a2_scale + want_loss + 1)
    assert abs(loss - want_loss) <= 4 * (2 * d_a2 + lse_round)
    np.testing.assert_allclose(p, rnet.predict(xl).astype(np.float64), rtol=0,
                               atol=4 * (2 * d_a2 + lse_round))
    assert np.abs(p.sum(axis=1, dtype=np.float64) - 1).max() <= 4 * (c * eps + lse_round)
    # each gradient entry averages products of x (<= 1), sigmoid' (<= 1/4) and W2 rows with the
    # softmax error, whose size is that of the logits' error
    want = rnet.gradient(xl, t)
    g_tol = 16 * (2 * d_a2 + lse_round + float(d_z.max())) * (1 + c * float(np.abs(W2).max()))
    for g, k in zip(grads, ("W1", "b1", "W2", "b2")):
        err = float(np.abs(g - want[k].astype(np.float64)).max())
        assert err <= g_tol, (k, err, g_tol)


# -- thread-count independence of the parallel kernels ----------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("data", ["mnist-like", "dense"])
@pytest.mark.parametrize("n", [1, 3, 37, 250])
@needs_threads
def test_parallel_kernels_give_the_same_bits_for_any_thread_count(data, n, dtype):
    """Rows in parallel, then ranges of input index: every sum in a fixed order."""
    from fastnet.threads import max_threads, num_threads

    rng = np.random.default_rng(n)
    d = 203  # not a multiple of the phase-2 ranges
    x = mnist_like(rng, n, d, dtype) if data == "mnist-like" else dense(rng, n, d, dtype)
    t = labels(rng, n, 7)
    params = _params(rng, Shape(n, d, 11, 7, data), dtype)
    results = []
    for threads in sorted({1, 2, max_threads()} & set(range(1, max_threads() + 1))):
        with num_threads(threads):
            out = [kernels.two_layer_loss(x, t, *params, loss) for loss in (0, 1)]
            out += [kernels.two_layer_predict(x, *params)]
            for loss in (0, 1):
                out += list(kernels.two_layer_gradient(x, t, *params, loss))
            out += [kernels.affine_forward(x, params[0], params[1])]
            out += list(kernels.affine_backward(x, params[0], x @ params[0]))
        results.append(out)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("d", [1, 7, 8, 9, 64, 127, 203, 784, 2000])
def test_column_tasks_cover_every_column_once_in_near_equal_blocks(d):
    """numba gives each thread a run of consecutive iterations whatever they cost: dW's column
    tasks must split the input columns evenly, in whole blocks of eight, with none left out."""
    from kernels import affine

    ranges = [affine.column_task_range(ch, d) for ch in range(affine.NCHUNK)]
    assert ranges[0][0] == 0 and ranges[-1][1] == d
    for (lo, hi), (nxt, _) in zip(ranges, ranges[1:]):
        assert hi == nxt and lo % affine.BLOCK == 0 and lo <= hi
    blocks = [-(-(hi - lo) // affine.BLOCK) for lo, hi in ranges]
    assert max(blocks) - min(blocks) <= 1


@pytest.mark.parametrize("blocks", [1, 2, 13, 125])
def test_parallel_row_blocks_take_the_last_block_first_and_every_block_once(blocks):
    """numba's first threads take the longer runs of iterations: the short last block goes
    first, into the first run, and the order is a permutation whatever the prange counter's type."""
    from kernels import affine

    order = [affine.block_order(np.uint64(it), blocks) for it in range(blocks)]
    assert order[0] == blocks - 1 and order[1:] == list(range(blocks - 1))
    assert all(isinstance(b, (int, np.integer)) and not isinstance(b, np.unsignedinteger)
               for b in order)
    rows = 100  # 12 whole blocks and one of four rows: two threads' runs of 7 and 6 blocks
    sizes = [min(8, rows - 8 * b) for b in (affine.block_order(it, 13) for it in range(13))]
    assert (sum(sizes[:7]), sum(sizes[7:])) == (52, 48)


def _blocks_with_zero_columns(rng, pattern, n, d, dtype):
    """Dense x whose blocks of eight rows share all-zero columns in some blocks and not in others:
    a block's union of non-zeros is then all of x's columns in one block and fewer in the next."""
    x = dense(rng, n, d, dtype)
    blocks = -(-n // 8)
    for blk in range(blocks):
        rows = slice(8 * blk, 8 * blk + 8)
        if pattern == "first" and blk == 0:
            x[rows, 0] = 0
        elif pattern == "middle" and blk == blocks // 2:
            x[rows, d // 3:d // 3 + 4] = 0
        elif pattern == "alternate" and blk % 2 == 0:
            x[rows, (blk * 5) % d] = 0
        elif pattern == "mixed" and blk % 3 == 1:
            x[rows] = mnist_like(rng, x[rows].shape[0], d, dtype)
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("pattern", ["first", "middle", "alternate", "mixed"])
@pytest.mark.parametrize("n", [16, 41, 250])
def test_blocks_whose_rows_share_zero_columns_beside_dense_blocks(pattern, n, dtype):
    """Each block of rows lists its own union of non-zero columns: a block whose rows share a zero
    column must not leave its list where a block without zeros reads every column."""
    from fastnet.threads import num_threads

    rng = np.random.default_rng(n)
    d, h, c = 784, 50, 10
    x = _blocks_with_zero_columns(rng, pattern, n, d, dtype)
    t = labels(rng, n, c)
    W1 = (0.1 * rng.standard_normal((d, h))).astype(dtype)
    b1 = (0.1 * rng.standard_normal(h)).astype(dtype)
    W2 = (0.1 * rng.standard_normal((h, c))).astype(dtype)
    b2 = (0.1 * rng.standard_normal(c)).astype(dtype)
    x64 = x.astype(np.float64)
    rnet = ref.TwoLayerNet.from_params({"W1": W1.astype(np.float64), "b1": b1.astype(np.float64),
                                        "W2": W2.astype(np.float64), "b2": b2.astype(np.float64)},
                                       delta=0.0)
    want = rnet.gradient(x64, t)
    tol = 1e-9 if dtype == np.float64 else 2e-3
    for threads in THREAD_COUNTS:
        with num_threads(threads):
            a1 = kernels.affine_forward(x, W1, b1)
            np.testing.assert_allclose(a1, x64 @ W1 + b1, rtol=tol, atol=tol)
            np.testing.assert_allclose(kernels.two_layer_predict(x, W1, b1, W2, b2),
                                       rnet.predict(x64), rtol=tol, atol=tol)
            assert abs(float(kernels.two_layer_loss(x, t, W1, b1, W2, b2)) - rnet.loss(x64, t)) <= tol
            for got, k in zip(kernels.two_layer_gradient(x, t, W1, b1, W2, b2), ("W1", "b1", "W2", "b2")):
                np.testing.assert_allclose(got, want[k], rtol=tol, atol=tol * 1e-3)
