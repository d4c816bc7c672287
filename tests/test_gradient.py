"""fastnet.numerical_gradient(f, x, h, method, args, threads): compiled for @njit f, Python otherwise."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from numba import njit

import fastnet
from conftest import assert_unchanged, snapshot
from fastnet import reference as ref
from fastnet.threads import max_threads


@njit
def cube_sum(x):
    return (x * x * x).sum()


def py_cube_sum(x):
    return np.sum(x * x * x)


@njit
def sin_sum(x, a):
    return np.sin(a * x).sum()


def py_sin_sum(x, a):
    return np.sum(np.sin(a * x))


@njit
def not_complex_safe(x):
    return math.exp(x.ravel()[0]) + np.floor(x).sum()  # math.exp and floor take no complex input


@njit
def raises_at_entry_3(x):
    if x.ravel()[3] > 0.5 + 1e-9:
        raise ZeroDivisionError("perturbed entry 3")
    return (x * x).sum()


@njit
def counts_calls(x, counter):
    counter[0] += 1
    if counter[0] == 100:
        raise KeyError("call 100")
    return (x * x).sum()


def _x(shape=(3, 4), seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return np.asarray(rng.random(shape) * 2 + 0.5, dtype=dtype)


def _analytic_cube(x, h, method):
    """Exact finite differences of sum(x^3) (other entries cancel): 3x^2 + h^2 (+- 3xh one-sided)."""
    if method == "central":
        return 3 * x * x + h * h
    if method == "forward":
        return 3 * x * x + 3 * x * h + h * h
    if method == "backward":
        return 3 * x * x - 3 * x * h + h * h
    return 3 * x * x - h * h  # complex step: Im (x + ih)^3 / h


@pytest.mark.parametrize("method", ["central", "forward", "backward", "complex"])
@pytest.mark.parametrize("f", [cube_sum, py_cube_sum], ids=["njit", "python"])
def test_each_method_is_its_own_finite_difference(f, method):
    x = _x()
    h = 1e-3
    before = snapshot({"x": x})
    g = fastnet.numerical_gradient(f, x, h=h, method=method)
    assert_unchanged({"x": x}, before)
    assert g.shape == x.shape and g.dtype == np.float64
    # rounding of f (~1e1) over h: ~1e-12; the method terms 3xh (~3e-3) and h^2 (1e-6) are far above
    np.testing.assert_allclose(g, _analytic_cube(x, h, method), rtol=0, atol=1e-9)


@pytest.mark.parametrize("f", [sin_sum, py_sin_sum], ids=["njit", "python"])
def test_args_and_default_steps(f):
    x = _x((7,), seed=1)
    a = 1.7
    exact = a * np.cos(a * x)
    central = fastnet.numerical_gradient(f, x, args=(a,))
    assert np.abs(central - exact).max() <= 1e-8  # h = 1e-4: truncation a^3 h^2 / 6 ~ 8e-9
    cs = fastnet.numerical_gradient(f, x, method="complex", args=(a,))
    np.testing.assert_allclose(cs, exact, rtol=1e-14, atol=1e-15)  # h = 1e-20: exact to rounding


def test_any_shape():
    # compiled: one more shape only (each shape, dtype and f is a fresh, uncacheable compile)
    x = _x((2, 3, 4), seed=2)
    np.testing.assert_allclose(fastnet.numerical_gradient(cube_sum, x), 3 * x * x, rtol=1e-8)
    for shape in [(5,), (2, 3, 4), (1, 1), ()]:
        x = _x(shape, seed=len(shape))
        g = fastnet.numerical_gradient(py_cube_sum, x)
        assert g.shape == shape
        np.testing.assert_allclose(g, 3 * x * x, rtol=1e-8)


def test_float32_x_gives_float32():
    x = _x(dtype=np.float32)
    g = fastnet.numerical_gradient(cube_sum, x, h=1e-2)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-3)
    for method, h in (("central", 1e-2), ("complex", None)):
        g = fastnet.numerical_gradient(py_cube_sum, x, h=h, method=method)
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-3)


def test_the_books_usage_with_a_closure_restores_w():
    """f = lambda W: net.loss(x, t); numerical_gradient(f, net.params['W1']) perturbs W in place."""
    rng = np.random.default_rng(3)
    r = ref.TwoLayerNet(6, 5, 3, weight_init_std=0.5, seed=2, delta=0.0)
    x = rng.random((4, 6))
    t = np.array([0, 2, 1, 2])
    r.params["W1"][0, 0] = -0.0
    for key in ("W1", "b1", "W2", "b2"):
        W = r.params[key]
        before = snapshot({"W": W})

        def f(_):
            return r.loss(x, t)  # ignores its argument, reads W through the net

        got = fastnet.numerical_gradient(f, W, h=1e-4)  # the book's absolute step
        assert_unchanged({"W": W}, before)
        assert r.params[key] is W
        want = ref.numerical_gradient(f, W)  # the book's own loop, on the same W
        assert_unchanged({"W": W}, before)
        # the same differences; fastnet divides by the step actually taken, not the nominal 2h
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        # and the book's loop is what it is: the backprop gradient to ~1e-9
        np.testing.assert_allclose(got, r.gradient(x, t)[key], rtol=0, atol=1e-8)


class Boom(Exception):
    pass


@pytest.mark.parametrize("method", ["central", "forward", "backward", "complex"])
def test_python_f_raising_midway_leaves_x_unchanged(method):
    x = _x((8, 20), seed=4)
    x[0, 0] = -0.0
    x[1, 1] = 5e-324  # a subnormal: bits must survive
    before = snapshot({"x": x})
    calls = {"n": 0}

    def f(v):
        calls["n"] += 1
        if calls["n"] == 100:
            raise Boom("call 100")
        return np.sum(v * v)  # complex for the complex step, real otherwise

    with pytest.raises(Boom, match="call 100"):
        fastnet.numerical_gradient(f, x, method=method)
    assert calls["n"] == 100
    assert_unchanged({"x": x}, before)


def test_njit_f_raising_on_call_100_single_thread():
    x = _x((8, 20), seed=5)
    before = snapshot({"x": x})
    counter = np.zeros(1, dtype=np.int64)
    with pytest.raises(KeyError):
        fastnet.numerical_gradient(counts_calls, x, args=(counter,), threads=1)
    assert counter[0] == 100
    assert_unchanged({"x": x}, before)


@pytest.mark.parametrize("threads", [1, 2])
def test_njit_f_raising_for_a_perturbed_entry_propagates(threads):
    if threads > max_threads():
        pytest.skip("numba has only 1 thread here")
    x = np.full(6, 0.5)
    before = snapshot({"x": x})
    n = numba.get_num_threads()
    try:
        with pytest.raises(ZeroDivisionError):
            fastnet.numerical_gradient(raises_at_entry_3, x, threads=threads)
    finally:
        assert numba.get_num_threads() == n  # restored also on error
        assert_unchanged({"x": x}, before)


def test_non_contiguous_x():
    base = _x((6, 8), seed=6)
    for view in (base.T, base[::2, 1::3], base[:, ::-1]):
        assert not view.flags.c_contiguous
        want = 3 * view * view
        for f in (cube_sum, py_cube_sum):
            before = snapshot({"base": base})
            g = fastnet.numerical_gradient(f, view)
            assert g.shape == view.shape
            np.testing.assert_allclose(g, want, rtol=1e-8)
            assert_unchanged({"base": base}, before)


def test_read_only_x():
    x = _x(seed=7)
    x.flags.writeable = False
    g = fastnet.numerical_gradient(cube_sum, x)
    np.testing.assert_allclose(g, 3 * x * x, rtol=1e-7)
    with pytest.raises(ValueError, match="read-only"):
        fastnet.numerical_gradient(py_cube_sum, x)


@pytest.mark.parametrize("x,exc,match", [
    (np.arange(6).reshape(2, 3), TypeError, r"\bx\b"),
    (np.array([1, 2, 3], dtype=np.int32), TypeError, r"\bx\b"),
    (np.array([True, False]), TypeError, r"\bx\b"),
    (np.array([1 + 2j, 3j]), TypeError, r"\bx\b"),
    (np.zeros((0, 3)), ValueError, r"\bx\b"),
    (np.array([1.0, np.nan]), ValueError, r"\bx\b"),
    (np.array([1.0, np.inf]), ValueError, r"\bx\b"),
    ([1.0, 2.0], TypeError, r"\bx\b"),
    (3.0, TypeError, r"\bx\b"),
])
@pytest.mark.parametrize("f", [cube_sum, py_cube_sum], ids=["njit", "python"])
def test_bad_x_is_rejected(f, x, exc, match):
    with pytest.raises(exc, match=match):
        fastnet.numerical_gradient(f, x)


@pytest.mark.parametrize("h,exc", [(0, ValueError), (-1e-4, ValueError), (float("nan"), ValueError),
                                   (float("inf"), ValueError), ("1e-4", TypeError)])
@pytest.mark.parametrize("f", [cube_sum, py_cube_sum], ids=["njit", "python"])
def test_bad_step_is_rejected(f, h, exc):
    x = _x()
    before = snapshot({"x": x})
    with pytest.raises(exc, match=r"\bh\b"):
        fastnet.numerical_gradient(f, x, h=h)
    assert_unchanged({"x": x}, before)


@pytest.mark.parametrize("f", [cube_sum, py_cube_sum], ids=["njit", "python"])
def test_bad_method_args_and_f_are_rejected(f):
    x = _x()
    with pytest.raises(ValueError, match="method"):
        fastnet.numerical_gradient(f, x, method="centered")
    with pytest.raises(TypeError, match="args"):
        fastnet.numerical_gradient(f, x, args=[1.0])
    with pytest.raises(TypeError, match=r"\bf\b"):
        fastnet.numerical_gradient(np.zeros(3), x)


def test_complex_step_with_an_njit_f_that_takes_no_complex_input():
    x = _x()
    before = snapshot({"x": x})
    with pytest.raises(TypeError, match="complex"):
        fastnet.numerical_gradient(not_complex_safe, x, method="complex")
    assert_unchanged({"x": x}, before)


def test_njit_f_that_returns_an_array_is_a_type_error():
    @njit
    def vector(x):
        return x * 2.0

    with pytest.raises(TypeError, match=r"\bf\b"):
        fastnet.numerical_gradient(vector, _x())


@pytest.mark.skipif(max_threads() < 2, reason="numba has only 1 thread here: nothing to compare")
@pytest.mark.parametrize("method", ["central", "forward", "backward", "complex"])
def test_identical_for_one_and_two_threads(method):
    x = _x((13, 7), seed=8)
    n = numba.get_num_threads()
    h = 1e-20 if method == "complex" else 1e-4
    one = fastnet.numerical_gradient(cube_sum, x, h, method=method, threads=1)
    assert numba.get_num_threads() == n
    two = fastnet.numerical_gradient(cube_sum, x, h, method=method, threads=2)
    assert numba.get_num_threads() == n
    with fastnet.num_threads(2):
        three = fastnet.numerical_gradient(cube_sum, x, h, method=method)
    assert one.tobytes() == two.tobytes() == three.tobytes()
    np.testing.assert_allclose(one, _analytic_cube(x, h, method), rtol=0, atol=1e-7)


@numba.njit
def cube_np_sum(x):
    return np.sum(x * x * x)  # numba makes x * x * x of a 0-d array a scalar, without .sum()


def test_zero_dimensional_x():
    x = np.array(2.0)
    before = snapshot({"x": x})
    for f in (cube_np_sum, py_cube_sum):
        for method in ("central", "complex"):
            g = fastnet.numerical_gradient(f, x, method=method)
            assert g.shape == () and abs(float(g) - 12.0) <= 1e-6
    assert_unchanged({"x": x}, before)
