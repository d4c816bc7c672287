"""fastnet.gradient / jacobian / hessian: steps, no silent wrong answers, Richardson, threads.

Cases and tolerances follow scipy's (optimize/tests/test__numdiff.py, differentiate/tests) and
numdifftools' test suites: their functions, points and tolerances, written here afresh.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pytest
from conftest import assert_unchanged, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit

import fastnet
from fastnet.threads import max_threads

METHODS = ["central", "forward", "backward", "complex"]


@njit
def rosen(x):
    s = 0.0
    for i in range(x.size - 1):
        s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def rosen_grad(x):
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosen_hess(x):
    n = x.size
    H = np.zeros((n, n))
    i = np.arange(n - 1)
    H[i, i + 1] = H[i + 1, i] = -400 * x[:-1]
    d = np.zeros(n)
    d[:-1] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    H[np.arange(n), np.arange(n)] = d
    return H


@njit
def logsumexp(x):
    m = x.max()
    return m + np.log(np.exp(x - m).sum())


@njit
def vector_fun(x):  # scipy's vector-vector case
    return np.array([x[0] * np.sin(x[1]), x[1] * np.cos(x[0]), x[0] ** 3 * x[1] ** -0.5])


def vector_jac(x):
    return np.array([[np.sin(x[1]), x[0] * np.cos(x[1])],
                     [-x[1] * np.sin(x[0]), np.cos(x[0])],
                     [3 * x[0] ** 2 * x[1] ** -0.5, -0.5 * x[0] ** 3 * x[1] ** -1.5]])


# scalar gradient cases: (f, x, exact gradient, rtol per method) as in scipy's and numdifftools' suites
CASES = {
    "scipy sinh at 1": (lambda v: np.sinh(v[0]), np.array([1.0]), np.array([np.cosh(1.0)]),
                        {"central": 1e-9, "forward": 1e-6, "backward": 1e-6, "complex": 1e-12}),
    "scipy sin(x0 x1) log x0": (
        lambda v: np.sin(v[0] * v[1]) * np.log(v[0]), np.array([100.0, -0.5]),
        np.array([-0.5 * np.cos(-50.0) * np.log(100.0) + np.sin(-50.0) / 100.0,
                  100.0 * np.cos(-50.0) * np.log(100.0)]),
        {"central": 1e-7, "forward": 1e-6, "backward": 1e-6, "complex": 1e-12}),
    "numdifftools sum x^2": (lambda v: np.sum(v ** 2), np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]),
                             {m: 1e-7 for m in METHODS}),
    "numdifftools 1/(exp x0 + cos x1 + 10)": (
        lambda v: 1.0 / (np.exp(v[0]) + np.cos(v[1]) + 10), np.array([1.0, 2.0]),
        np.array([-0.017961123762187736, 0.0060082083648822]), {m: 1e-7 for m in METHODS}),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
def test_default_steps_pass_scipy_and_numdifftools_cases(case, method):
    f, x, exact, rtol = CASES[case]
    g = fastnet.numerical_gradient(f, x.copy(), method=method)
    np.testing.assert_allclose(g, exact, rtol=rtol[method])


@pytest.mark.parametrize("method", METHODS)
def test_numdifftools_example_functions_at_their_tolerance(method):
    """numdifftools' first-order test: every example function at x = 0.5 to 7 decimals."""
    examples = pytest.importorskip("numdifftools.example_functions")
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in examples.function_names:
            f, true_df = examples.get_function(name, n=1)
            if true_df is None:
                continue
            exact = true_df(0.5)
            assert abs(fastnet.numerical_diff(f, 0.5, h=None, method=method) - exact) < 1.5e-7, name
            g = fastnet.numerical_gradient(lambda v, f=f: f(v[0]), np.array([0.5]), method=method)
            assert abs(g[0] - exact) < 1.5e-7, name
            checked += 1
    assert checked >= 15


def test_numdifftools_derivative_cases():
    np.testing.assert_allclose(fastnet.numerical_diff(np.exp, 0.0, h=None), 1.0, rtol=1e-8)
    x = np.linspace(0, 2 * np.pi, 13)
    np.testing.assert_allclose(fastnet.numerical_diff(np.sin, x, h=None), np.cos(x), atol=1e-8)
    x = np.full((3, 2), 2.0)
    np.testing.assert_allclose(fastnet.numerical_diff(lambda v: v * v * v, x, h=None), 3 * x ** 2,
                               rtol=1e-8)
    np.testing.assert_allclose(fastnet.numerical_diff(np.sinh, 0.0, h=None, method="backward"), 1.0,
                               rtol=1e-7)
    # log at 0.001 (numdifftools extrapolates there): Richardson, central and one-sided
    for method in ("central", "forward", "backward"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fastnet.gradient(lambda v: float(np.log(v[0])), np.array([0.001]), method=method,
                                 richardson=True)
        np.testing.assert_allclose(r.value, [1000.0], rtol=1e-7)
        assert r.error[0] >= abs(r.value[0] - 1000.0)


def test_rosenbrock_100_central_and_richardson():
    x = np.random.default_rng(0).uniform(-2, 2, 100)
    exact = rosen_grad(x)
    scale = np.maximum(1, np.abs(exact))
    central = fastnet.gradient(rosen, x)
    assert central.evaluations == 201
    assert (np.abs(central.value - exact) / scale).max() <= 1e-7
    r = fastnet.gradient(rosen, x, richardson=True)
    true_err = np.abs(r.value - exact)
    assert (true_err / scale).max() <= 1e-11
    assert np.mean(r.error >= true_err) >= 0.95
    assert r.evaluations == 1 + 2 * 8 * 100


@pytest.mark.parametrize("f", [rosen, lambda v: rosen(v)], ids=["njit", "python"])
@pytest.mark.parametrize("method,calls", [("forward", 11), ("backward", 11), ("central", 21)])
def test_one_sided_differences_evaluate_f_n_plus_1_times(f, method, calls):
    x = np.linspace(-1, 1, 10)
    r = fastnet.gradient(f, x, method=method)
    assert r.evaluations == calls
    np.testing.assert_allclose(r.value, rosen_grad(x), rtol=1e-5, atol=1e-5)
    if f is not rosen:
        n = {"n": 0}

        def counted(v):
            n["n"] += 1
            return rosen(v)

        fastnet.numerical_gradient(counted, x, method=method)
        assert n["n"] == calls


def test_default_step_scales_with_x_and_dtype():
    x = np.array([1e-3, 1.0, 100.0, 1e20])
    r = fastnet.gradient(lambda v: float(np.sum(v ** 2)), x)
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(r.step / 2, eps ** (1 / 3) * np.maximum(1, x), rtol=1e-6)
    for v in x:  # one at a time: in a sum, 1e40 would swamp the others' contributions
        g = fastnet.numerical_gradient(lambda u: float(u[0] ** 2), np.array([v]))
        np.testing.assert_allclose(g, [2 * v], rtol=1e-8)  # 1e20: the step is never lost
    x32 = np.array([1.0, 3.0], dtype=np.float32)
    g = fastnet.numerical_gradient(lambda v: np.sum(v.astype(np.float64) ** 3), x32)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 3 * x32.astype(np.float64) ** 2, rtol=1e-4)


def test_division_by_the_step_actually_taken():
    # x = 100, h = 1.49e-8: (x + h) - (x - h) != 2h; dividing by 2h costs a factor of ~100
    f = CASES["scipy sin(x0 x1) log x0"][0]
    x = np.array([100.0, -0.5])
    exact = CASES["scipy sin(x0 x1) log x0"][2]
    g = fastnet.numerical_gradient(f, x, h=1.49e-8)
    assert np.abs(g - exact).max() / np.abs(exact).max() <= 3e-9  # scipy's abs_step tolerance


def test_array_h():
    x = np.array([1.0, 2.0, 3.0])
    h = np.array([1e-3, 1e-4, 1e-5])
    r = fastnet.gradient(lambda v: float(np.sum(v ** 3)), x, h)
    np.testing.assert_allclose(r.step, 2 * h, rtol=1e-9)
    np.testing.assert_allclose(r.value, 3 * x ** 2 + (r.step / 2) ** 2, rtol=1e-9)
    with pytest.raises(ValueError, match=r"\bh\b"):
        fastnet.gradient(np.sum, x, np.ones(2))
    with pytest.raises(ValueError, match=r"\bh\b"):
        fastnet.gradient(np.sum, x, np.array([1e-3, 0.0, 1e-3]))


@pytest.mark.parametrize("f", [rosen, lambda v: rosen(v)], ids=["njit", "python"])
def test_lost_step_is_an_error_naming_entry_and_step(f):
    x = np.array([1.0, 1e20])
    with pytest.raises(ValueError, match=r"entry \(1,\).*x \+ h == x|h = 0.0001.*entry \(1,\)"):
        fastnet.numerical_gradient(f, x, h=1e-4)
    with pytest.raises(ValueError, match=r"float32"):
        fastnet.numerical_gradient(f, np.ones(3, dtype=np.float32), h=1e-50)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, np.int64, np.complex128])
@pytest.mark.parametrize("f", [rosen, lambda v: rosen(v)], ids=["njit", "python"])
def test_only_float32_and_float64(f, dtype):
    with pytest.raises(TypeError, match=r"\bx\b"):
        fastnet.numerical_gradient(f, np.ones(3, dtype=dtype))


@pytest.mark.parametrize("richardson", [False, True])
def test_non_finite_side_retreats_with_a_warning(richardson):
    x = np.array([1e-6, 2.0])
    with pytest.warns(fastnet.DifferenceWarning, match=r"\(0,\)"), \
            np.errstate(invalid="ignore", divide="ignore"):
        r = fastnet.gradient(lambda v: float(np.sum(np.log(v))), x, richardson=richardson)
    assert (0,) in r.retreated
    np.testing.assert_allclose(r.value, 1 / x, rtol=1e-7)


def test_no_finite_difference_is_an_error_naming_the_entry():
    def f(v):
        return 0.0 if v[1] == 0.5 else np.nan

    with pytest.raises(ValueError, match=r"entry \(1,\)"):
        fastnet.numerical_gradient(lambda v: float(np.sum(v[:1])) + f(v), np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match=r"f\(x\) is not finite"):
        fastnet.numerical_gradient(lambda v: np.nan, np.ones(2))


@pytest.mark.parametrize("f", [rosen, lambda v: rosen(v)], ids=["njit", "python"])
@pytest.mark.parametrize("threads", [0, -1, 1000, "x", 1.5])
def test_threads_validated_on_every_path(f, threads):
    for x in (np.ones(3), np.array(1.0)):
        with pytest.raises((TypeError, ValueError), match="threads"):
            fastnet.numerical_gradient(f if x.ndim else (lambda v: float(v)), x, threads=threads)


def test_method_must_be_a_name():
    with pytest.raises(ValueError, match="method must be a string"):
        fastnet.numerical_gradient(rosen, np.ones(3), method=["central"])
    with pytest.raises(ValueError, match="method"):
        fastnet.gradient_check(fastnet.TwoLayerNet(2, 2, 2, seed=0), np.ones((1, 2)), [0],
                               method=["central"])


def test_non_scalar_f_names_f():
    with pytest.raises(TypeError, match=r"f must return a scalar"):
        fastnet.numerical_gradient(lambda v: v * 2, np.ones(3))
    with pytest.raises(TypeError, match=r"\bf\b"):
        fastnet.numerical_gradient(lambda v: [v[0], [1, 2]], np.ones(3))


@njit
def raise_once_at_entry_3(x, flag):
    # only the thread that perturbs entry 3 touches flag: f raises exactly once, deterministically
    if x[3] > 1.0 + 1e-9 and flag[0] == 0:
        flag[0] = 1
        raise KeyError("entry 3, once")
    return (x * x).sum()


@pytest.mark.skipif(max_threads() < 2, reason="numba has only 1 thread here")
def test_njit_f_raising_once_in_the_parallel_loop_is_reported_not_indexerror():
    x = np.ones(40)
    before = snapshot({"x": x})
    flag = np.zeros(1, dtype=np.int64)
    # f raised in the parallel loop, where numba cannot carry the exception out; the rerun of that
    # entry on one thread does not raise again, so fastnet says what happened, naming the entry
    with pytest.raises(RuntimeError, match=r"f raised inside the parallel loop at entry \(3,\)"):
        fastnet.numerical_gradient(raise_once_at_entry_3, x, args=(flag,), threads=2)
    assert flag[0] == 1
    assert_unchanged({"x": x}, before)
    flag[0] = 0  # raising again on the rerun: f's own exception
    with pytest.raises(KeyError, match="entry 3, once"):
        fastnet.numerical_gradient(raise_once_at_entry_3, x, args=(flag,), threads=1)


@pytest.mark.filterwarnings("ignore::fastnet.DifferenceWarning")  # x1 - 0.5 = 0 at the largest step
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.parametrize("rich,tol", [(False, 1e-7), (True, 1e-10)])
@pytest.mark.parametrize("f", [vector_fun, vector_fun.py_func], ids=["njit", "python"])
def test_jacobian_matches_analytic(f, rich, tol):
    x = np.array([20.0, 0.5])  # scipy's vector-vector point (with x1 > 0)
    J = fastnet.jacobian(f, x, richardson=rich)
    exact = vector_jac(x)
    assert J.value.shape == (3, 2)
    assert (np.abs(J.value - exact) / np.maximum(1, np.abs(exact))).max() <= tol
    if rich:
        assert (J.error >= np.abs(J.value - exact)).mean() >= 0.95


@pytest.mark.parametrize("rich,tol", [(False, 1e-7), (True, 1e-10)])
def test_hessian_matches_analytic(rich, tol):
    x = np.random.default_rng(1).standard_normal(12)
    p = np.exp(x - x.max())
    p /= p.sum()
    exact = np.diag(p) - np.outer(p, p)
    for f in (logsumexp, logsumexp.py_func):
        H = fastnet.hessian(f, x.copy(), richardson=rich)
        assert (H.value == H.value.T).all()
        assert np.abs(H.value - exact).max() <= tol
    xr = np.random.default_rng(2).uniform(-2, 2, 30)
    H = fastnet.hessian(rosen, xr, richardson=True)
    exact = rosen_hess(xr)
    err = np.abs(H.value - exact)
    assert (err / np.maximum(1, np.abs(exact))).max() <= 1e-10
    assert (H.error >= err).mean() >= 0.95


@pytest.mark.skipif(max_threads() < 2, reason="numba has only 1 thread here")
def test_jacobian_and_hessian_identical_for_one_and_two_threads():
    x = np.random.default_rng(3).uniform(-2, 2, 17)
    for run in (lambda t: fastnet.hessian(rosen, x, threads=t).value,
                lambda t: fastnet.hessian(rosen, x, richardson=True, threads=t).value,
                lambda t: fastnet.jacobian(vector_fun, x[:2] ** 2 + 1, threads=t).value,
                lambda t: fastnet.gradient(rosen, x, richardson=True, threads=t).value):
        assert run(1).tobytes() == run(2).tobytes()


class Boom(Exception):
    pass


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=1, max_dims=3, max_side=3),
                  elements=st.floats(-4, 4, width=32)),
       st.sampled_from(["gradient", "hessian", "jacobian"]), st.integers(1, 40), st.booleans())
def test_x_restored_bit_for_bit_whatever_f_raises(x, kind, fail_at, transpose):
    if transpose:
        x = x.T  # another layout
    before = snapshot({"x": x})
    calls = {"n": 0}

    def f(v):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise Boom
        s = float(np.sum(v.astype(np.float64) ** 2))
        return np.array([s, s]) if kind == "jacobian" else s

    run = {"gradient": fastnet.gradient, "hessian": fastnet.hessian, "jacobian": fastnet.jacobian}[kind]
    try:
        run(f, x)
    except Boom:
        pass
    assert_unchanged({"x": x}, before)


@pytest.mark.parametrize("f", [rosen, lambda v: rosen(v)], ids=["njit", "python"])
def test_check_gradient_passes_fails_and_raises(f):
    x = np.random.default_rng(4).uniform(-2, 2, 8)
    ok = fastnet.check_gradient(f, rosen_grad, x)
    assert ok.passed and ok.failures == 0 and ok.max_abs < 1e-6
    wrong = lambda v: rosen_grad(v) * np.r_[np.ones(7), 1.001]
    bad = fastnet.check_gradient(f, wrong, x, rtol=1e-5)
    assert not bad.passed and bad.failures == 1 and bad.worst[0][0] == (7,)
    assert "FAILED" in str(bad) and "(7,)" in str(bad)
    with pytest.raises(fastnet.GradientCheckError, match=r"\(7,\)"):
        fastnet.check_gradient(f, wrong, x, rtol=1e-5, raise_on_failure=True)
    with pytest.raises(ValueError, match="shape"):
        fastnet.check_gradient(f, lambda v: np.zeros(3), x)


def test_check_jacobian():
    x = np.array([20.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fastnet.check_jacobian(vector_fun, vector_jac, x).passed
        res = fastnet.check_jacobian(vector_fun, lambda v: vector_jac(v).T.copy().T * 1.01, x)
    assert not res.passed and res.failures >= 5


@njit
def book_f(x):
    return 0.01 * x ** 2 + 0.1 * x


@pytest.mark.parametrize("f", [book_f, book_f.py_func], ids=["njit", "python"])
def test_numerical_diff_the_books_example(f):
    assert abs(fastnet.numerical_diff(f, 5) - 0.2) <= 1e-9
    assert abs(fastnet.numerical_diff(f, 10.0) - 0.3) <= 1e-9
    pts = np.array([[5.0, 10.0], [0.0, -3.0]])
    d = fastnet.numerical_diff(f, pts)
    assert d.shape == pts.shape and d.dtype == np.float64
    np.testing.assert_allclose(d, 0.02 * pts + 0.1, rtol=0, atol=1e-9)
    for method in METHODS:
        np.testing.assert_allclose(fastnet.numerical_diff(f, pts, h=None, method=method),
                                   0.02 * pts + 0.1, rtol=0, atol=1e-7)


def test_numerical_diff_guarantees():
    with pytest.raises(ValueError, match=r"entry \(1,\)"):
        fastnet.numerical_diff(np.sin, np.array([1.0, 1e20]))  # h = 1e-4 lost at 1e20
    with pytest.raises(TypeError, match=r"\bx\b"):
        fastnet.numerical_diff(np.sin, np.ones(2, dtype=np.float16))
    with pytest.raises(ValueError, match="method"):
        fastnet.numerical_diff(np.sin, 1.0, method=["central"])
    with pytest.raises(TypeError, match="elementwise"):
        fastnet.numerical_diff(lambda v: np.sum(v), np.ones(3))
    with pytest.warns(fastnet.DifferenceWarning), np.errstate(invalid="ignore"):
        d = fastnet.numerical_diff(np.log, np.array([1e-6, 1.0]))
    np.testing.assert_allclose(d, [1e6, 1.0], rtol=1e-6)
    import math
    assert abs(fastnet.numerical_diff(math.sin, 1.0, h=None) - math.cos(1.0)) <= 1e-10


@njit
def raises_above(x):
    if x[2] > 0.5 + 1e-9:
        raise ZeroDivisionError("perturbed entry 2")
    return (x * x).sum()


@njit
def vector_raises_above(x):
    if x[2] > 0.5 + 1e-9:
        raise ZeroDivisionError("perturbed entry 2")
    return x * x


@pytest.mark.parametrize("threads", [1, 2])
def test_njit_f_raising_in_jacobian_and_hessian_propagates(threads):
    if threads > max_threads():
        pytest.skip("numba has only 1 thread here")
    x = np.full(5, 0.5)
    before = snapshot({"x": x})
    n = numba.get_num_threads()
    for run in (lambda: fastnet.hessian(raises_above, x, threads=threads),
                lambda: fastnet.jacobian(vector_raises_above, x, threads=threads)):
        with pytest.raises(ZeroDivisionError, match="entry 2"):
            run()
        assert numba.get_num_threads() == n
        assert_unchanged({"x": x}, before)


def test_float32_defaults_are_accurate_to_the_dtype():
    x = np.random.default_rng(5).uniform(0.5, 2.5, 20).astype(np.float32)
    exact = 3 * x.astype(np.float64) ** 2
    for f in (lambda v: np.sum(v * v * v), njit(lambda v: np.sum(v * v * v))):
        g = fastnet.numerical_gradient(f, x)
        assert g.dtype == np.float32
        assert np.abs(g - exact).max() / np.abs(exact).max() <= 2e-4
        r = fastnet.gradient(f, x, richardson=True)
        assert np.abs(r.value - exact).max() / np.abs(exact).max() <= 2e-5


@pytest.mark.parametrize("richardson", [False, True])
def test_hessian_retreats_where_f_is_not_finite(richardson):
    x = np.array([1e-5, 2.0])
    with pytest.warns(fastnet.DifferenceWarning, match=r"\(0,\)"), np.errstate(all="ignore"):
        H = fastnet.hessian(lambda v: float(np.sum(np.log(v))), x, richardson=richardson)
    assert H.retreated == ((0,),)
    np.testing.assert_allclose(np.diagonal(H.value), -1 / x ** 2, rtol=1e-5)
    assert abs(H.value[0, 1]) <= 1e-6 and H.value[0, 1] == H.value[1, 0]
    with pytest.raises(ValueError, match=r"Hessian entry \(\(0,\), \(0,\)\)"), np.errstate(all="ignore"):
        fastnet.hessian(lambda v: float(np.log(v[0])) if v[0] == 0.5 else np.nan, np.array([0.5]))


def test_zero_dimensional_read_only_x_with_an_njit_f():
    x = np.array(2.0)
    x.flags.writeable = False
    f = njit(lambda v: v * v * v)
    r = fastnet.gradient(f, x)
    assert r.value.shape == () and abs(float(r.value) - 12.0) <= 1e-8
    assert abs(float(fastnet.hessian(f, x).value) - 12.0) <= 1e-6


# scipy.differentiate's Jacobian examples (from Wikipedia's Jacobian article) and its Rosenbrock
SCIPY_JACOBIANS = {
    "f1": (lambda z: np.array([z[0] ** 2 * z[1], 5 * z[0] + np.sin(z[1])]),
           lambda z: np.array([[2 * z[0] * z[1], z[0] ** 2], [5.0, np.cos(z[1])]]), 2),
    "f2": (lambda z: np.array([z[0] * np.cos(z[1]), z[0] * np.sin(z[1])]),
           lambda z: np.array([[np.cos(z[1]), -z[0] * np.sin(z[1])],
                               [np.sin(z[1]), z[0] * np.cos(z[1])]]), 2),
    "f3": (lambda z: np.array([z[0] * np.sin(z[1]) * np.cos(z[2]), z[0] * np.sin(z[1]) * np.sin(z[2]),
                               z[0] * np.cos(z[1])]),
           lambda z: np.array([[np.sin(z[1]) * np.cos(z[2]), z[0] * np.cos(z[1]) * np.cos(z[2]),
                                -z[0] * np.sin(z[1]) * np.sin(z[2])],
                               [np.sin(z[1]) * np.sin(z[2]), z[0] * np.cos(z[1]) * np.sin(z[2]),
                                z[0] * np.sin(z[1]) * np.cos(z[2])],
                               [np.cos(z[1]), -z[0] * np.sin(z[1]), 0.0]]), 3),
    "f4": (lambda z: np.array([z[0], 5 * z[2], 4 * z[1] ** 2 - 2 * z[2], z[2] * np.sin(z[0])]),
           lambda z: np.array([[1.0, 0, 0], [0, 0, 5], [0, 8 * z[1], -2],
                               [z[2] * np.cos(z[0]), 0, np.sin(z[0])]]), 3),
    "f5": (lambda z: np.array([5 * z[1], 4 * z[0] ** 2 - 2 * np.sin(z[1] * z[2]), z[1] * z[2]]),
           lambda z: np.array([[0, 5.0, 0], [8 * z[0], -2 * z[2] * np.cos(z[1] * z[2]),
                                             -2 * z[1] * np.cos(z[1] * z[2])], [0, z[2], z[1]]]), 3),
    "rosen": (lambda z: np.array([rosen(np.asarray(z, dtype=np.float64))]),
              lambda z: rosen_grad(np.asarray(z, dtype=np.float64))[None, :], 5),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(SCIPY_JACOBIANS))
def test_scipy_jacobian_examples(name, dtype):
    f, jac, n = SCIPY_JACOBIANS[name]
    x = np.random.default_rng(458912319542).random(n).astype(dtype)
    exact = jac(x.astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastnet.DifferenceWarning)
        J = fastnet.jacobian(f, x, richardson=True)
    assert J.value.dtype == dtype
    # scipy's tolerances: atol 1e-10 in float64, 1.99e-3 in float32
    np.testing.assert_allclose(J.value, exact, rtol=0, atol=1e-10 if dtype == np.float64 else 1.99e-3)


def test_scipy_hessian_examples():
    x = np.random.default_rng(458912319542).random(3)
    H = fastnet.hessian(rosen, x, richardson=True)
    np.testing.assert_allclose(H.value, rosen_hess(x), rtol=0, atol=1e-8)
    x32 = x.astype(np.float32)
    exact = rosen_hess(x32.astype(np.float64))
    H32 = fastnet.hessian(lambda v: rosen(v.astype(np.float64)), x32, richardson=True).value
    mask = exact != 0
    np.testing.assert_allclose(H32[mask], exact[mask], rtol=1e-3)
    np.testing.assert_allclose(H32[~mask], 0, atol=1e-2 * np.abs(exact[mask]).min())


@pytest.mark.parametrize("f", [njit(lambda v: np.sum(v.real ** 2)), lambda v: float(np.sum(np.real(v) ** 2))],
                         ids=["njit", "python"])
def test_complex_step_with_an_f_that_drops_the_imaginary_part_is_an_error(f):
    with pytest.raises(TypeError, match="complex"):
        fastnet.numerical_gradient(f, np.ones(3), method="complex")
    with pytest.raises(TypeError, match="complex"):
        fastnet.numerical_diff(np.real, np.ones(3), method="complex")
    with pytest.raises(TypeError, match="complex"):
        fastnet.numerical_diff(njit(lambda v: v.real), np.ones(3), method="complex")
