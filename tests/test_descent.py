"""gradient_descent (the book's ch04/gradient_method.py), its test functions, plot and command."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

import fastnet
from fastnet.descent import Descent, DivergenceWarning, gradient_descent
from fastnet.functions import FUNCTIONS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def function_2(x):
    """The book's function_2: x0^2 + x1^2."""
    return x[0] ** 2 + x[1] ** 2


@pytest.mark.parametrize("grad", [None, FUNCTIONS["square-sum"].grad], ids=["numerical", "analytic"])
def test_the_books_example_reaches_the_origin(grad):
    init = np.array([-3.0, 4.0])
    before = init.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        x = gradient_descent(function_2, init, lr=0.1, step_num=100, grad=grad)
    assert isinstance(x, np.ndarray) and x.shape == (2,)
    assert np.abs(x).max() <= 1e-8
    # each step multiplies x by 1 - 2 lr = 0.8: the book's answer, to rounding
    np.testing.assert_allclose(x, 0.8 ** 100 * before, rtol=1e-6)
    np.testing.assert_array_equal(init, before)  # init_x is never modified


def test_path_has_every_iterate_and_unpacks_like_the_book():
    result = gradient_descent(function_2, [-3.0, 4.0], lr=0.1, step_num=100, path=True)
    assert isinstance(result, Descent)
    assert result.path.shape == (101, 2) and result.values.shape == (101,)
    assert result.steps == 100 and not result.diverged and result.growth_step is None
    np.testing.assert_array_equal(result.path[0], [-3.0, 4.0])
    np.testing.assert_array_equal(result.path[-1], result.x)
    assert (np.diff(result.values) < 0).all()
    x, x_history = result
    assert x is result.x and x_history is result.path


def test_a_learning_rate_too_large_is_announced_as_diverging():
    with pytest.warns(DivergenceWarning, match=r"lr=10.*first at step 1"):
        result = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=10.0, step_num=100, path=True)
    assert result.diverged and result.growth_step == 1
    assert result.values[-1] > result.values[0]
    assert result.path.shape[0] == result.steps + 1
    assert "diverged" in result.message


def test_the_books_step_is_not_lost_silently_at_lr_10():
    # The book's loop, with h = 1e-4 fixed, stalls once x + 1e-4 rounds to x (it prints
    # [-2.58983747e+13 -1.29524862e+12]): every difference is 0 from there on. fastnet names the lost
    # step instead of descending on a gradient of zeros.
    with pytest.raises(ValueError, match="lost to rounding"):
        gradient_descent(function_2, np.array([-3.0, 4.0]), lr=10.0, step_num=100, h=1e-4)


def test_a_learning_rate_too_small_barely_moves():
    init = np.array([-3.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        result = gradient_descent(function_2, init, lr=1e-10, step_num=100, path=True)
    assert not result.diverged
    moved = np.abs(result.x - init).max()
    assert 0 < moved < 1e-6  # 100 steps of 2e-10 of the way each
    assert result.values[-1] < result.values[0]
    assert result.path.shape == (101, 2)


def test_a_non_finite_iterate_stops_the_loop_and_is_announced():
    def quartic(x):
        with np.errstate(over="ignore"):  # the overflow is what the loop must catch
            return np.sum(x ** 4)

    def quartic_grad(x):
        with np.errstate(over="ignore"):
            return 4 * x ** 3

    with pytest.warns(DivergenceWarning, match="not finite"):
        result = gradient_descent(quartic, np.array([3.0, -2.0]), lr=1.0, step_num=100,
                                  grad=quartic_grad, path=True)
    assert result.diverged and result.steps < 100
    assert np.isfinite(result.path).all() and np.isfinite(result.values).all()
    assert result.path.shape == (result.steps + 1, 2)
    assert result.growth_step == 1


def test_callback_sees_every_step():
    seen = []
    gradient_descent(function_2, [-3.0, 4.0], lr=0.1, step_num=7,
                     callback=lambda k, x, v: seen.append((k, x.copy(), v)))
    assert [k for k, _, _ in seen] == list(range(1, 8))
    k, x, v = seen[-1]
    assert v == pytest.approx(function_2(x))


def test_integer_start_and_float32():
    x = gradient_descent(function_2, [-3, 4], lr=0.1, step_num=50)
    assert x.dtype == np.float64 and np.abs(x).max() < 1e-4
    x32 = gradient_descent(function_2, np.array([-3.0, 4.0], dtype=np.float32), lr=0.1, step_num=50)
    assert x32.dtype == np.float32 and np.abs(x32).max() < 1e-3


def test_an_njit_function_runs_compiled():
    @numba.njit
    def f(x):
        return np.sum((x - 1.5) ** 2)

    x = gradient_descent(f, np.zeros(6), lr=0.1, step_num=200)
    np.testing.assert_allclose(x, 1.5, atol=1e-12)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_test_functions_have_their_gradient_and_minimum(name):
    fn = FUNCTIONS[name]
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.uniform(-2, 2, 2)
        num = fastnet.numerical_gradient(fn.f, x.copy(), h=1e-6)
        np.testing.assert_allclose(fn.grad(x), num, rtol=1e-6, atol=1e-6)
    assert fn.f(np.array(fn.minimum)) == 0
    np.testing.assert_array_equal(fn.grad(np.array(fn.minimum)), 0)


def test_rosenbrock_and_himmelblau_descend_towards_their_minimum():
    for name in ("rosenbrock", "himmelblau"):
        fn = FUNCTIONS[name]
        r = gradient_descent(fn.f, np.array(fn.init), lr=fn.lr, step_num=3000, grad=fn.grad, path=True)
        assert not r.diverged
        assert r.values[-1] < 0.01 * r.values[0], name


@pytest.mark.parametrize("kwargs,exc,word", [
    ({"lr": 0.0}, ValueError, "lr"), ({"lr": -1.0}, ValueError, "lr"), ({"lr": float("nan")}, ValueError, "lr"),
    ({"lr": "0.1"}, TypeError, "lr"), ({"lr": True}, TypeError, "lr"),
    ({"step_num": -1}, ValueError, "step_num"), ({"step_num": 1.5}, TypeError, "step_num"),
    ({"step_num": True}, TypeError, "step_num"),
    ({"init_x": []}, ValueError, "init_x"), ({"init_x": [1.0, np.nan]}, ValueError, "init_x"),
    ({"init_x": ["a", "b"]}, TypeError, "init_x"), ({"init_x": [1 + 2j, 0j]}, TypeError, "init_x"),
    ({"f": 3}, TypeError, "f must be callable"), ({"grad": 3}, TypeError, "grad"),
    ({"grad": lambda x: np.zeros(3)}, ValueError, "grad returned shape"),
    ({"callback": 3}, TypeError, "callback"), ({"method": "sideways"}, ValueError, "method"),
    ({"f": lambda x: x}, ValueError, "scalar"), ({"f": lambda x: np.inf}, ValueError, "not finite"),
])
def test_bad_arguments_are_named(kwargs, exc, word):
    args = {"f": function_2, "init_x": [-3.0, 4.0], "lr": 0.1, "step_num": 3}
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        gradient_descent(args.pop("f"), args.pop("init_x"), **args)


# -- plot and command line ------------------------------------------------------------------

def test_plot_descent_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from fastnet.plots import plot_descent

    good = gradient_descent(function_2, [-3.0, 4.0], lr=0.1, step_num=20, path=True)
    plot_descent(function_2, good.path, tmp_path / "good.png")
    with pytest.warns(DivergenceWarning):
        bad = gradient_descent(function_2, [-3.0, 4.0], lr=10.0, step_num=20, path=True)
    plot_descent(function_2, bad.path, tmp_path / "bad.png", title="diverging")
    for name in ("good.png", "bad.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    with pytest.raises(ValueError, match="path"):
        plot_descent(function_2, np.zeros((3, 3)), tmp_path / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "good.png"]


def _fastnet(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastnet", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_fastnet_descent_plots_the_path_and_prints_the_final_point(tmp_path):
    pytest.importorskip("matplotlib")
    proc = _fastnet("descent", "--function", "square-sum", "--init", "-3,4", "--lr", "0.1",
                    "--steps", "20", "--plot", "path.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    final = [line for line in proc.stdout.splitlines() if line.startswith("final point:")]
    assert len(final) == 1
    x0, x1 = (float(v) for v in final[0].split("(")[1].split(")")[0].split(","))
    np.testing.assert_allclose([x0, x1], 0.8 ** 20 * np.array([-3.0, 4.0]), rtol=1e-6)
    assert (tmp_path / "path.png").read_bytes().startswith(PNG_MAGIC)


def test_fastnet_descent_announces_divergence_and_stagnation():
    big = _fastnet("descent", "--lr", "10")
    assert big.returncode == 0 and "diverged" in big.stdout
    small = _fastnet("descent", "--lr", "1e-10", "--function", "square-sum")
    assert small.returncode == 0 and "diverged" not in small.stdout
    assert "moved" in small.stdout


@pytest.mark.parametrize("args,word", [
    (("--init", "1,2,3"), "--init"), (("--init", "a,b"), "--init"), (("--function", "x**2"), "--function"),
    (("--lr", "0"), "--lr"), (("--steps", "-1"), "--steps"), (("--plot", "no/such/dir/p.png"), "--plot"),
    (("--method", "complex"), "complex"),
])
def test_fastnet_descent_usage_errors(args, word, tmp_path):
    proc = _fastnet("descent", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert word in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
