"""The sum-of-squares loss: kernels, TwoLayerNet(loss="sum_squared") and its exact numerical gradient.

The reference is the book's formula (`fastnet.reference.mean_squared_error` of the softmax output
against the one-hot label, averaged over the batch) and the book's perturb-and-evaluate loop over it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastnet
import kernels
from conftest import PARAM_NAMES, assert_unchanged, labels, max_rel, mnist_like, one_hot, snapshot
from fastnet import reference as ref
from fastnet.threads import max_threads
from test_numgrad import _hidden_blocks, _ref_net, pick, ref_complex_step, ref_differences

METHODS = ("central", "forward", "backward")


def _tol(h):
    """The book loop's own noise: it subtracts whole losses (below 1 here), ~eps L / h per entry.

    1e-10 absolute is 100 times that at h = 1e-4; the sum of squares' gradients are ~1e-3 to 1e-1
    here, and at h = 1e-2 central differences differ from backprop by ~1e-6 (checked below), so a
    kernel returning backprop would fail.
    """
    return 1e-10


@pytest.fixture
def sse784():
    """A fresh float64 784-50-10 net on the sum of squares, weights large enough to make h matter."""
    return fastnet.TwoLayerNet(784, 50, 10, weight_init_std=0.3, seed=7, loss="sum_squared")


# -- loss and gradient against the book's formula -----------------------------------------------

@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("batch", ["mnist_batch", "dense_batch"])
def test_loss_and_gradient_equal_the_books_formula(request, batch, dtype, tol):
    x, t = request.getfixturevalue(batch)
    net = fastnet.TwoLayerNet(784, 50, 10, weight_init_std=0.3, seed=3, dtype=dtype, loss="sum_squared")
    xd = x.astype(dtype)
    r = _ref_net(net)
    x64 = xd.astype(np.float64)
    y = r.predict(x64)
    book = ref.mean_squared_error(y, one_hot(t, 10)) / x.shape[0]  # the book's plain sum, per sample
    loss = net.loss(xd, t)
    assert loss.dtype == dtype
    assert abs(float(loss) - book) <= tol * book
    assert abs(float(r.loss(x64, t)) - book) <= 1e-15 * book
    grads = net.gradient(xd, t)
    want = r.gradient(x64, t)
    for key in PARAM_NAMES:
        assert grads[key].dtype == dtype
        assert max_rel(grads[key], want[key]) <= tol, (key, max_rel(grads[key], want[key]))
    # and the gradient is the gradient: the reference's central differences agree to O(h^2)
    idx = pick(net, x64, t, "W2", n_even=10, n_extra=3)
    fd = ref_differences(net, x64, t, "W2", 1e-5, idx)
    assert np.abs(want["W2"].ravel()[idx] - fd).max() <= 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
def test_logit_kernels_take_indices_or_one_hot_through_the_reference(rng, dtype):
    a = (3 * rng.standard_normal((9, 4))).astype(dtype)
    t = labels(rng, 9, 4)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for tt in (t, one_hot(t, 4)):
        want = ref.softmax_sum_squared(a.astype(np.float64), tt)
        assert abs(kernels.softmax_sum_squared(a, t) - want) <= tol * want
        assert max_rel(kernels.softmax_sum_squared_grad(a, t),
                       ref.softmax_sum_squared_grad(a.astype(np.float64), tt)) <= tol


def test_confident_net_keeps_the_digits_of_a_tiny_loss():
    # p[label] = 1 - 1e-20: the loss is ~1e-40 / 2, which 1 - p[label] computed as a difference loses
    a = np.array([[0.0, -46.0, -46.0]])
    t = np.array([0])
    q = 2 * np.exp(-46.0) / (1 + 2 * np.exp(-46.0))
    p = np.exp(-46.0) / (1 + 2 * np.exp(-46.0))
    want = (q * q + 2 * p * p) / 2
    got = kernels.softmax_sum_squared(a, t)
    assert got > 0 and abs(got - want) <= 1e-14 * want


# -- the structure-aware numerical gradient ----------------------------------------------------

@pytest.mark.parametrize("h", [1e-4, 1e-2])
@pytest.mark.parametrize("batch", ["mnist_batch", "dense_batch"])
def test_central_differences_match_the_book_loop(request, sse784, batch, h):
    x, t = request.getfixturevalue(batch)
    before = snapshot({"x": x, "t": t, **sse784.params})
    got = sse784.numerical_gradient(x, t, h=h)
    assert_unchanged({"x": x, "t": t, **sse784.params}, before)
    bp = sse784.gradient(x, t)
    far_from_backprop = 0.0
    for key in PARAM_NAMES:
        assert got[key].shape == sse784.params[key].shape and got[key].dtype == np.float64
        idx = pick(sse784, x, t, key, n_even=30, n_extra=8)
        want = ref_differences(sse784, x, t, key, h, idx)
        err = np.abs(got[key].ravel()[idx] - want).max()
        assert err <= _tol(h), f"{key}: |fastnet - book loop| = {err:.2e} at h={h}"
        far_from_backprop = max(far_from_backprop, np.abs(bp[key].ravel()[idx] - want).max())
    if h >= 1e-2:
        assert far_from_backprop > 10 * _tol(h)  # returning backprop instead would fail


@pytest.mark.parametrize("h", [1e-4, 1e-2])
def test_float32_matches_the_book_loop(mnist_batch, h):
    """A float32 net: against the book's loop on the same float32 values at the same (rounded) step.

    The loop runs in float64, where its own noise (~eps64 L / h) is far below float32's rounding.
    Relative to each array's max norm, 1e-5 is ~80 float32 ulps; a float32 loop that subtracted
    whole losses would be off by ~eps32 L / h (3e-4 at h = 1e-4).
    """
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, weight_init_std=0.3, seed=5, dtype=np.float32, loss="sum_squared")
    x32 = x.astype(np.float32)
    got = net.numerical_gradient(x32, t, h=h)
    step = float(np.float32(h))
    for key in PARAM_NAMES:
        assert got[key].dtype == np.float32
        idx = pick(net, x32, t, key, n_even=20, n_extra=5)
        want = ref_differences(net, x32, t, key, step, idx)
        scale = np.abs(net.gradient(x32, t)[key]).max()
        err = np.abs(got[key].ravel()[idx] - want).max()
        assert err <= 1e-5 * scale, f"{key}: {err:.2e} vs scale {scale:.2e}"


def test_every_entry_of_a_small_net_every_method_and_step():
    rng = np.random.default_rng(3)
    net = fastnet.TwoLayerNet(20, 8, 3, weight_init_std=0.5, seed=11, loss="sum_squared")
    x = mnist_like(rng, 7, 20)
    x[:, 0] = 0.0  # an input nobody sees: exactly zero W1 row
    t = labels(rng, 7, 3)
    bp = net.gradient(x, t)
    for h in (1e-4, 1e-2, 1e-1, 1.0, 10.0):
        for method in METHODS:
            got = net.numerical_gradient(x, t, h=h, method=method)
            far = 0.0
            for key in PARAM_NAMES:
                idx = np.arange(net.params[key].size)
                want = ref_differences(net, x, t, key, h, idx, method)
                err = np.abs(got[key].ravel() - want).max()
                tol = _tol(h) if h <= 1e-1 else 1e-12 + 50 * np.finfo(float).eps / h
                assert err <= tol, (h, method, key, err)
                far = max(far, np.abs(bp[key].ravel() - want).max())
            if h >= 1e-2:
                assert far > 10 * _tol(h)
    for method in METHODS + ("complex",):
        assert (net.numerical_gradient(x, t, method=method)["W1"][0] == 0).all()


def test_central_difference_agrees_with_extended_precision(sse784, mnist_batch):
    if np.finfo(np.longdouble).eps >= 1e-18:
        pytest.skip(f"np.longdouble here is not extended precision (eps = {np.finfo(np.longdouble).eps})")
    x, t = mnist_batch
    h = 1e-4
    got = sse784.numerical_gradient(x, t, h=h)
    rl = _ref_net(sse784, np.longdouble)
    xl = x.astype(np.longdouble)
    seen = (x != 0).sum(axis=0)
    picks = {
        "W1": [int(i) * 50 + j for i, j in zip(np.flatnonzero(seen > 10)[::37][:6], range(3, 50, 7))],
        "b1": [0, 17, 33, 49],
        "W2": [0, 137, 311, 499],
        "b2": [0, 3, 6, 9],
    }
    for key, idx in picks.items():
        want = ref.numerical_gradient(lambda W: rl.loss(xl, t), rl.params[key], h=np.longdouble(h),
                                      indices=idx).ravel()[idx]
        scale = max(1e-3, float(np.abs(want).max()))
        err = float(np.abs(got[key].ravel()[idx] - want).max())
        assert err <= 1e-12 * scale, f"{key}: |fastnet - 80-bit| = {err:.2e}"


@pytest.mark.parametrize("h", [1e-4, 1e-3, 1e-2, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("weights", ["initial", "trained-like"])
def test_large_steps_and_weights_match_the_book_loop(mnist_batch, h, weights):
    x, t = mnist_batch
    x, t = x[:40], t[:40]
    net = fastnet.TwoLayerNet(784, 30, 10, seed=8, loss="sum_squared")
    if weights == "trained-like":
        net.params["W1"] *= 10
        net.params["W2"] *= 50
        net.params["b2"][:] = np.linspace(-2, 2, 10)
    loss = float(net.loss(x, t))
    tol = 1e-12 + 50 * np.finfo(np.float64).eps * max(loss, 1.0) / h
    for method in ("central", "forward"):
        got = net.numerical_gradient(x, t, h=h, method=method)
        for key in PARAM_NAMES:
            idx = pick(net, x, t, key, n_even=10, n_extra=3)
            want = ref_differences(net, x, t, key, h, idx, method)
            err = np.abs(got[key].ravel()[idx] - want).max()
            assert err <= tol, f"{method} {key} h={h}: {err:.2e} > {tol:.1e}"


@numba.njit
def _sse_w1(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, theta, b1, W2, b2, kernels.SUM_SQUARED)


@numba.njit
def _sse_b1(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, W1, theta, W2, b2, kernels.SUM_SQUARED)


@numba.njit
def _sse_w2(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, W1, b1, theta, b2, kernels.SUM_SQUARED)


@numba.njit
def _sse_b2(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, W1, b1, W2, theta, kernels.SUM_SQUARED)


@pytest.mark.parametrize("w2_scale", [1.0, 30.0])
@pytest.mark.parametrize("h", [1.0, 30.0, 1e3, 1e6])
def test_huge_steps_and_logits_match_whole_loss_differences(h, w2_scale):
    """Far beyond any expm1/exp range, probabilities underflowing: finite, and the loss difference."""
    rng = np.random.default_rng(0)
    x = mnist_like(rng, 9, 12)
    t = labels(rng, 9, 4)
    net = fastnet.TwoLayerNet(12, 5, 4, weight_init_std=1.0, seed=1, loss="sum_squared")
    net.params["W2"] *= w2_scale
    p = net.params
    got = net.numerical_gradient(x, t, h=h)
    args = (x, t.astype(np.int64), p["W1"], p["b1"], p["W2"], p["b2"])
    for name, f in zip(PARAM_NAMES, (_sse_w1, _sse_b1, _sse_w2, _sse_b2)):
        want = fastnet.numerical_gradient(f, p[name], h=h, args=args)
        assert np.isfinite(got[name]).all()
        # the loss is at most 1, so the whole-loss differences are accurate to ~eps / h here
        assert np.abs(got[name] - want).max() <= 1e-12 + 4 * np.finfo(float).eps / h, name


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("h", [0.5, 3.0])
def test_grouping_inputs_by_value_changes_no_bit(dtype, h):
    rng = np.random.default_rng(3)
    x = mnist_like(rng, 40, 784, dtype)
    t = labels(rng, 40, 10)
    net = fastnet.TwoLayerNet(784, 20, 10, weight_init_std=0.3, seed=2, dtype=dtype, loss="sum_squared")
    direct, grouped, used = _hidden_blocks(x, t, net, h, loss=kernels.SUM_SQUARED)
    assert used and np.isfinite(direct).all()
    np.testing.assert_array_equal(grouped, direct)


def test_complex_step_equals_backprop_and_is_taken_at_the_given_h(sse784, mnist_batch):
    x, t = mnist_batch
    bp = sse784.gradient(x, t)
    got = sse784.numerical_gradient(x, t, method="complex")
    for key in PARAM_NAMES:
        assert max_rel(got[key], bp[key]) <= 1e-12, key
    # at a large complex step the result is Im L(theta + i h e_p) / h, not backprop
    h = 0.5
    got = sse784.numerical_gradient(x, t, h=h, method="complex")
    for key in PARAM_NAMES:
        idx = pick(sse784, x, t, key, n_even=6, n_extra=2)
        want = ref_complex_step(sse784, x, t, key, h, idx)
        assert np.abs(got[key].ravel()[idx] - want).max() <= 1e-13, key
        assert np.abs(bp[key].ravel()[idx] - want).max() > 1e-9  # the step mattered


@pytest.mark.skipif(max_threads() < 2, reason="numba has only 1 thread here: nothing to compare")
@pytest.mark.parametrize("h", [1e-4, 0.5])
def test_bit_identical_for_any_thread_count(sse784, mnist_batch, h):
    x, t = mnist_batch
    for method in ("central", "complex"):
        one = sse784.numerical_gradient(x, t, h=h, method=method, threads=1)
        two = sse784.numerical_gradient(x, t, h=h, method=method, threads=2)
        assert all(one[k].tobytes() == two[k].tobytes() for k in PARAM_NAMES), method


def test_cross_entropy_net_is_unchanged_by_the_loss_option(net784, mnist_batch):
    x, t = mnist_batch
    explicit = fastnet.TwoLayerNet(784, 50, 10, seed=7, loss="cross_entropy")
    a = net784.numerical_gradient(x, t)
    b = explicit.numerical_gradient(x, t)
    assert all(a[k].tobytes() == b[k].tobytes() for k in PARAM_NAMES)
    sse = fastnet.TwoLayerNet(784, 50, 10, seed=7, loss="sum_squared")
    assert float(sse.loss(x, t)) != float(net784.loss(x, t))


# -- the Python layer ------------------------------------------------------------------------

@pytest.mark.parametrize("loss,exc", [("mse", ValueError), ("", ValueError), (None, TypeError),
                                      (1, TypeError), (["sum_squared"], TypeError)])
def test_bad_loss_is_rejected(loss, exc):
    with pytest.raises(exc, match="loss"):
        fastnet.TwoLayerNet(4, 3, 2, loss=loss)


def test_repr_names_a_non_default_loss():
    assert "sum_squared" in repr(fastnet.TwoLayerNet(4, 3, 2, loss="sum_squared"))
    assert "loss" not in repr(fastnet.TwoLayerNet(4, 3, 2))


def test_save_and_load_keep_the_loss(tmp_path, mnist_batch):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 20, 10, weight_init_std=0.3, seed=1, loss="sum_squared")
    fastnet.save(net, tmp_path / "net.npz")
    back = fastnet.load(tmp_path / "net.npz")
    assert back.loss_name == "sum_squared"
    assert float(back.loss(x, t)) == float(net.loss(x, t))
    # files without a recorded loss hold cross-entropy nets
    with np.load(tmp_path / "net.npz") as f:
        arrays = {k: f[k] for k in f.files if k != "loss"}
    np.savez(tmp_path / "old.npz", **arrays)
    assert fastnet.load(tmp_path / "old.npz").loss_name == "cross_entropy"
    arrays["loss"] = np.array("hinge")
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="loss"):
        fastnet.load(tmp_path / "bad.npz")


def test_training_with_numerical_gradients_follows_backprop():
    rng = np.random.default_rng(0)
    x = mnist_like(rng, 60, 16)
    t = labels(rng, 60, 3)
    data = ((x[:40], t[:40]), (x[40:], t[40:]))
    nets = {g: fastnet.TwoLayerNet(16, 6, 3, weight_init_std=0.5, seed=2, loss="sum_squared")
            for g in ("backprop", "numerical")}
    hist = {g: fastnet.train(nets[g], data, grad=g, iters=30, batch_size=10, lr=2.0, seed=0)
            for g in nets}
    assert hist["backprop"].settings["loss"] == "sum_squared"
    np.testing.assert_allclose(hist["numerical"].loss, hist["backprop"].loss, rtol=1e-7)
    assert hist["backprop"].loss[-1] < hist["backprop"].loss[0]


def test_fastnet_train_loss_option(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "fastnet", "train", "--loss", "sum_squared", "--iters", "30", "--lr", "5",
         "--hidden", "10", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "sum_squared loss" in proc.stdout.splitlines()[0]
    history = json.loads((out / "history.json").read_text())
    assert history["settings"]["loss"] == "sum_squared"
    assert fastnet.load(out / "params.npz").loss_name == "sum_squared"
    bad = subprocess.run([sys.executable, "-m", "fastnet", "train", "--loss", "mse"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--loss" in bad.stderr
