"""TwoLayerNet.numerical_gradient against the book's perturb-and-evaluate loop.

The reference loop (`reference.numerical_gradient` over the exact loss of `reference.TwoLayerNet`)
costs about 0.3 ms per parameter at 784-50-10, batch 100, so the full-size comparisons use a subset
of entries per array (spread evenly, plus where inputs are non-zero and where the gradient is
largest); the small nets compare every entry.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastnet
import kernels
from conftest import PARAM_NAMES, assert_unchanged, labels, max_rel, mnist_like, one_hot, snapshot
from fastnet import reference as ref
from fastnet.threads import max_threads

METHODS = ("central", "forward", "backward")


# -- the reference, written from the book's loss ------------------------------------------

def _ref_net(net, dtype=np.float64):
    """The book's net with the same parameters and loss (exact cross-entropy: no delta in the log)."""
    return ref.TwoLayerNet.from_params({k: v.astype(dtype) for k, v in net.params.items()}, delta=0.0,
                                       loss=net.loss_name)


def ref_differences(net, x, t, key, h, idx, method="central"):
    """The book's loop over entries idx of params[key]: central, forward or backward differences."""
    r = _ref_net(net)
    x = np.asarray(x, dtype=np.float64)
    oh = one_hot(np.asarray(t), net.output_size)  # index labels confuse the reference when C = 1

    def f(W):  # the book's loss_W: ignores W, reads the perturbed params
        return r.loss(x, oh)

    if method == "central":
        return ref.numerical_gradient(f, r.params[key], h=h, indices=idx).ravel()[idx]
    flat = r.params[key].reshape(-1)
    base = f(None)
    out = np.empty(len(idx))
    for n, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + h if method == "forward" else old - h
        moved = f(None)
        flat[i] = old
        out[n] = (moved - base) / h if method == "forward" else (base - moved) / h
    return out


def ref_complex_step(net, x, t, key, h, idx):
    """Im L(theta + i h e_p) / h from the reference formulas evaluated on complex parameters."""
    r = ref.TwoLayerNet.from_params({k: v.astype(np.complex128) for k, v in net.params.items()}, delta=0.0,
                                    loss=net.loss_name)
    flat = r.params[key].reshape(-1)
    oh = one_hot(np.asarray(t), net.output_size)
    out = np.empty(len(idx))
    for n, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + 1j * h
        out[n] = r.loss(np.asarray(x, dtype=np.float64), oh).imag / h
        flat[i] = old
    return out


def pick(net, x, t, key, n_even=40, n_extra=10):
    """Flat indices of params[key] to compare: evenly spread, where x is non-zero, largest gradient."""
    size = net.params[key].size
    if size <= n_even + 2 * n_extra:
        return np.arange(size)
    idx = set(np.linspace(0, size - 1, n_even).astype(int).tolist())
    g = np.abs(net.gradient(x, t)[key]).ravel()
    idx.update(np.argsort(-g, kind="stable")[:n_extra].tolist())
    if key == "W1":  # inputs that many samples see
        h = net.params["W1"].shape[1]
        busy = np.argsort(-(np.asarray(x) != 0).sum(axis=0), kind="stable")[:n_extra]
        idx.update((busy * h + np.arange(n_extra) % h).tolist())
    return np.array(sorted(idx))


def _tol(h):
    """Acceptance: 1e-9 absolute at h = 1e-4, 1e-7 at h = 1e-2 and 1e-1."""
    return 1e-9 if h < 1e-3 else 1e-7


# -- acceptance: 784-50-10, batch 100 ---------------------------------------------------------

@pytest.mark.parametrize("h", [1e-4, 1e-2, 1e-1])
@pytest.mark.parametrize("batch", ["mnist_batch", "dense_batch", "real_mnist"])
def test_central_differences_match_the_book_loop(request, net784, batch, h):
    x, t = request.getfixturevalue(batch)
    before = snapshot({"x": x, "t": t, **net784.params})
    got = net784.numerical_gradient(x, t, h=h)
    assert_unchanged({"x": x, "t": t, **net784.params}, before)
    bp = net784.gradient(x, t)
    far_from_backprop = 0.0
    for key in PARAM_NAMES:
        assert got[key].shape == net784.params[key].shape and got[key].dtype == np.float64
        idx = pick(net784, x, t, key)
        want = ref_differences(net784, x, t, key, h, idx)
        err = np.abs(got[key].ravel()[idx] - want).max()
        assert err <= _tol(h), f"{key}: |fastnet - book loop| = {err:.2e} at h={h}"
        far_from_backprop = max(far_from_backprop, np.abs(bp[key].ravel()[idx] - want).max())
    if h >= 1e-2:
        # the comparison can tell: returning backprop instead would fail it
        assert far_from_backprop > 10 * _tol(h)


def test_every_entry_of_a_small_net(small_net):
    net, x, t = small_net
    bp = net.gradient(x, t)
    for h in (1e-4, 1e-2, 1e-1, 1.0):
        for method in METHODS:
            got = net.numerical_gradient(x, t, h=h, method=method)
            far = 0.0
            for key in PARAM_NAMES:
                idx = np.arange(net.params[key].size)
                want = ref_differences(net, x, t, key, h, idx, method)
                err = np.abs(got[key].ravel() - want).max()
                assert err <= _tol(h), (h, method, key, err)
                far = max(far, np.abs(bp[key].ravel() - want).max())
            if h >= 1e-2:
                assert far > 10 * _tol(h)  # returning backprop would fail
    # an input no sample sees has an exactly zero W1 row, both ways
    for method in METHODS + ("complex",):
        assert (net.numerical_gradient(x, t, method=method)["W1"][0] == 0).all()
    assert (bp["W1"][0] == 0).all()


@pytest.mark.parametrize("method", ["forward", "backward"])
@pytest.mark.parametrize("h", [1e-4, 1e-2])
def test_one_sided_differences_match_the_book_loop(net784, mnist_batch, method, h):
    x, t = mnist_batch
    got = net784.numerical_gradient(x, t, h=h, method=method)
    central = net784.numerical_gradient(x, t, h=h)
    for key in PARAM_NAMES:
        idx = pick(net784, x, t, key, n_even=20, n_extra=5)
        want = ref_differences(net784, x, t, key, h, idx, method)
        assert np.abs(got[key].ravel()[idx] - want).max() <= _tol(h), key
    # one-sided truncation is O(h): they are not the central differences
    assert max(np.abs(got[k] - central[k]).max() for k in PARAM_NAMES) > 1e-3 * h


def test_all_zero_input_columns_give_exact_zeros(net784, mnist_batch):
    x, t = mnist_batch
    unused = ~(x != 0).any(axis=0)
    assert unused.sum() > 300  # the border pixels
    for method in METHODS + ("complex",):
        g = net784.numerical_gradient(x, t, method=method)["W1"]
        assert (g[unused] == 0).all()
        assert (g[~unused] != 0).any()


# -- complex step -------------------------------------------------------------------------

@pytest.mark.parametrize("batch", ["mnist_batch", "dense_batch", "real_mnist"])
def test_complex_step_equals_backprop(request, net784, batch):
    x, t = request.getfixturevalue(batch)
    before = snapshot({"x": x, **net784.params})
    got = net784.numerical_gradient(x, t, method="complex")
    bp = net784.gradient(x, t)
    for key in PARAM_NAMES:
        assert got[key].dtype == np.float64
        assert max_rel(got[key], bp[key]) <= 1e-12, (key, max_rel(got[key], bp[key]))
    assert_unchanged({"x": x, **net784.params}, before)


def test_complex_step_on_trained_like_weights_equals_backprop(mnist_batch):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, seed=3)
    net.params["W1"] *= 10
    net.params["W2"] *= 50
    got = net.numerical_gradient(x, t, method="complex")
    bp = net.gradient(x, t)
    for key in PARAM_NAMES:
        assert max_rel(got[key], bp[key]) <= 1e-12, key


@pytest.mark.parametrize("h", [1e-3, 1e-1])
def test_complex_step_is_taken_at_the_given_h(net784, mnist_batch, h):
    x, t = mnist_batch
    got = net784.numerical_gradient(x, t, h=h, method="complex")
    bp = net784.gradient(x, t)
    far = 0.0
    for key in PARAM_NAMES:
        idx = pick(net784, x, t, key, n_even=15, n_extra=5)
        want = ref_complex_step(net784, x, t, key, h, idx)
        # no subtraction on either side: agreement to rounding of the gradient's size
        assert np.abs(got[key].ravel()[idx] - want).max() <= 1e-13, key
        far = max(far, np.abs(bp[key].ravel()[idx] - want).max())
    assert far > 1e-11  # O(h^2) away from backprop: the kernel did not return backprop


# -- accuracy against extended precision ---------------------------------------------------

def test_central_difference_agrees_with_extended_precision(net784, mnist_batch):
    if np.finfo(np.longdouble).eps >= 1e-18:
        pytest.skip(f"np.longdouble here is not extended precision (eps = {np.finfo(np.longdouble).eps})")
    x, t = mnist_batch
    h = 1e-4
    got = net784.numerical_gradient(x, t, h=h)
    rl = _ref_net(net784, np.longdouble)
    xl = x.astype(np.longdouble)
    r64 = _ref_net(net784)
    seen = (x != 0).sum(axis=0)
    picks = {
        # W1 rows of inputs that samples see (the others are exactly 0 either way)
        "W1": [int(i) * 50 + j for i, j in zip(np.flatnonzero(seen > 10)[::37][:8], range(3, 50, 6))],
        "b1": [0, 17, 33, 49],
        "W2": [0, 137, 311, 499],
        "b2": [0, 3, 6, 9],
    }
    assert sum(len(v) for v in picks.values()) == 20
    worst64 = 0.0
    for key, idx in picks.items():
        want = ref.numerical_gradient(lambda W: rl.loss(xl, t), rl.params[key], h=np.longdouble(h),
                                      indices=idx).ravel()[idx]
        assert want.dtype == np.longdouble
        err = np.abs(got[key].ravel()[idx] - want).max()
        assert err <= 1e-13, f"{key}: |fastnet - 80-bit| = {float(err):.2e}"
        book64 = ref.numerical_gradient(lambda W: r64.loss(x, t), r64.params[key], h=h, indices=idx)
        worst64 = max(worst64, float(np.abs(book64.ravel()[idx] - want).max()))
    # the float64 book loop carries rounding noise of ~1e-12 here: the bound above is meaningful
    assert worst64 > 1e-13


# -- float32 ------------------------------------------------------------------------------

# A float32 net's numerical gradient is compared with the float64 one of the same (float32-valued)
# parameters and inputs. The forward pass alone rounds at the float32 level (backprop float32 vs
# float64 differs by ~3e-7 of each array's max norm), and the kernel's sums of per-sample loss
# differences add a few more ulps: measured ~6e-7 (5 ulps of float32's 1.2e-7). 1e-5 (~80 ulps)
# is the tolerance: loose enough for other CPUs and summation orders, yet 100 times tighter than
# a float32 loop that subtracts whole losses (error ~ eps L / h ~ 3e-3, shown below).
F32_TOL = 1e-5


@pytest.mark.parametrize("method,h", [("central", 1e-4), ("central", 1e-2), ("forward", 1e-3),
                                      ("backward", 1e-3), ("complex", None)])
def test_float32_agrees_with_float64(mnist_batch, method, h):
    x, t = mnist_batch
    net32 = fastnet.TwoLayerNet(784, 50, 10, dtype=np.float32, seed=7)
    net64 = fastnet.TwoLayerNet(784, 50, 10, seed=7)
    net64.params = {k: v.astype(np.float64) for k, v in net32.params.items()}
    x32 = x.astype(np.float32)
    before = snapshot({"x": x32, **net32.params})
    g32 = net32.numerical_gradient(x32, t, h=h, method=method)
    assert_unchanged({"x": x32, **net32.params}, before)
    # the same step: h rounded to float32 is what the float32 net uses
    h64 = None if h is None else float(np.float32(h))
    g64 = net64.numerical_gradient(x32.astype(np.float64), t, h=h64, method=method)
    for key in PARAM_NAMES:
        assert g32[key].dtype == np.float32 and g32[key].shape == net32.params[key].shape
        assert max_rel(g32[key], g64[key]) <= F32_TOL, (key, max_rel(g32[key], g64[key]))


def test_float32_naive_loop_would_miss_the_tolerance(mnist_batch):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, dtype=np.float32, seed=7)
    x32 = x.astype(np.float32)
    g = net.numerical_gradient(x32, t)["b2"]
    params = [net.params[k].copy() for k in PARAM_NAMES]
    h = np.float32(1e-4)
    naive = np.empty(10, dtype=np.float32)
    for i in range(10):
        params[3][i] += h
        lp = kernels.two_layer_loss(x32, t, *params)
        params[3][i] -= 2 * h
        lm = kernels.two_layer_loss(x32, t, *params)
        params[3][i] += h
        naive[i] = (lp - lm) / (2 * h)
    assert max_rel(naive, g) > 10 * F32_TOL
    assert max_rel(g, net.gradient(x32, t)["b2"]) <= F32_TOL


# -- threads ------------------------------------------------------------------------------

@pytest.fixture
def restore_numba_threads():
    n = numba.get_num_threads()
    yield
    numba.set_num_threads(n)


needs_two_threads = pytest.mark.skipif(max_threads() < 2, reason="numba has only 1 thread here "
                                       "(NUMBA_NUM_THREADS=1): nothing to compare")


@needs_two_threads
@pytest.mark.parametrize("method", ["central", "forward", "complex"])
@pytest.mark.parametrize("batch", ["mnist_batch", "dense_batch"])
def test_bit_identical_for_any_thread_count(request, net784, batch, method, restore_numba_threads):
    x, t = request.getfixturevalue(batch)
    counts = sorted({1, 2, max_threads()})
    results = []
    for n in counts:
        numba.set_num_threads(1 if n > 1 else max_threads())  # something else than n
        before = numba.get_num_threads()
        results.append(net784.numerical_gradient(x, t, method=method, threads=n))
        assert numba.get_num_threads() == before, "threads= must restore numba's setting"
    with fastnet.num_threads(2):
        assert numba.get_num_threads() == 2
        results.append(net784.numerical_gradient(x, t, method=method))
    with fastnet.num_threads(1):
        results.append(net784.numerical_gradient(x, t, method=method))
    previous = fastnet.set_num_threads(2)
    results.append(net784.numerical_gradient(x, t, method=method))
    assert fastnet.set_num_threads(previous) == 2
    for r in results[1:]:
        for key in PARAM_NAMES:
            assert r[key].tobytes() == results[0][key].tobytes(), key


@needs_two_threads
def test_large_steps_bit_identical_for_any_thread_count(net784, mnist_batch, restore_numba_threads):
    x, t = mnist_batch  # values k/255 and h = 0.5: the hidden block groups inputs by value
    results = [net784.numerical_gradient(x, t, h=0.5, threads=n) for n in sorted({1, 2, max_threads()})]
    for r in results[1:]:
        for key in PARAM_NAMES:
            assert r[key].tobytes() == results[0][key].tobytes(), key


@needs_two_threads
def test_num_threads_restores_after_an_error(net784, restore_numba_threads):
    numba.set_num_threads(2)
    with pytest.raises(RuntimeError):
        with fastnet.num_threads(1):
            assert numba.get_num_threads() == 1
            raise RuntimeError("inside")
    assert numba.get_num_threads() == 2


# -- nothing lost -------------------------------------------------------------------------

def test_params_and_x_untouched_bit_for_bit_after_every_call(mnist_batch):
    x, t = mnist_batch
    x = x.copy()
    x[0, 0] = -0.0  # a sign bit that a "restore by adding back h" would lose
    net = fastnet.TwoLayerNet(784, 50, 10, seed=4)
    net.params["b1"][:] = np.linspace(-1e-300, 1e-300, 50)  # subnormal-sized entries
    net.params["b2"][3] = -0.0
    before = snapshot({"x": x, "t": t, **net.params})
    for method in METHODS:
        for h in (1e-4, 1e-1, 10.0):
            net.numerical_gradient(x, t, h=h, method=method)
            assert_unchanged({"x": x, "t": t, **net.params}, before)
    net.numerical_gradient(x, t, method="complex")
    net.gradient(x, t)
    net.loss(x, t)
    assert_unchanged({"x": x, "t": t, **net.params}, before)


def test_results_follow_parameter_updates(net784, mnist_batch):
    x, t = mnist_batch
    first = net784.numerical_gradient(x, t)
    net784.params["W2"] += 0.3
    second = net784.numerical_gradient(x, t)
    assert not np.array_equal(first["W2"], second["W2"])
    idx = pick(net784, x, t, "W2", n_even=10, n_extra=3)
    want = ref_differences(net784, x, t, "W2", 1e-4, idx)
    assert np.abs(second["W2"].ravel()[idx] - want).max() <= 1e-9


def test_input_layouts_give_identical_results(net784, mnist_batch):
    x, t = mnist_batch
    want = net784.numerical_gradient(x, t)
    big = np.zeros((100, 2 * 784))
    big[:, 1::2] = x
    for other in (np.asfortranarray(x), big[:, 1::2], x.tolist()):
        got = net784.numerical_gradient(other, t)
        assert all(got[k].tobytes() == want[k].tobytes() for k in PARAM_NAMES)


def test_read_only_input_is_handled(net784, mnist_batch):
    x, t = mnist_batch
    ro = x.copy()
    ro.flags.writeable = False
    got = net784.numerical_gradient(ro, t)
    want = net784.numerical_gradient(x, t)
    assert all(got[k].tobytes() == want[k].tobytes() for k in PARAM_NAMES)


# -- large steps and large weights: the libm fallback paths ---------------------------------

@pytest.mark.parametrize("h", [1e-4, 1e-3, 1e-2, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("weights", ["initial", "trained-like"])
def test_large_steps_and_weights_match_the_book_loop(mnist_batch, h, weights):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, seed=8)
    if weights == "trained-like":
        net.params["W1"] *= 10
        net.params["W2"] *= 50
        net.params["b2"][:] = np.linspace(-2, 2, 10)
    loss = float(net.loss(x, t))
    # the book loop subtracts two whole losses: its rounding noise is ~eps L / h
    tol = 1e-12 + 50 * np.finfo(np.float64).eps * max(loss, 1.0) / h
    for method in ("central", "forward"):
        got = net.numerical_gradient(x, t, h=h, method=method)
        for key in PARAM_NAMES:
            idx = pick(net, x, t, key, n_even=12, n_extra=4)
            want = ref_differences(net, x, t, key, h, idx, method)
            err = np.abs(got[key].ravel()[idx] - want).max()
            assert err <= tol, f"{method} {key} h={h}: {err:.2e} > {tol:.1e}"


def _hidden_blocks(x, t, net, h, loss=kernels.CROSS_ENTROPY):
    """The hidden block of the kernel, direct and grouped by input value: (direct, grouped, used)."""
    from kernels import numgrad

    p = net.params
    t = np.asarray(t, dtype=np.int64)
    cache, xT, order, largest, hidden, _ = numgrad._setup(
        x, t, p["W1"], p["b1"], p["W2"], p["b2"], loss)
    a1, z, zc, E, prob, q, M, W2T, B, L0, Y, cbar = cache
    h = x.dtype.type(h)
    one = x.dtype.type(1)
    direct = np.full_like(hidden, np.nan)
    grouped = np.full_like(hidden, np.nan)
    block = (t, a1, zc, E, prob, M, W2T, B, L0, Y, cbar, loss, h, one, -one)
    numgrad._hidden_block(order, xT, *block, direct)
    largest = x.dtype.type(largest)
    used = numgrad._grouping_pays(x, largest, W2T, h) and numgrad._hidden_grouped(x, largest, *block, grouped)
    return direct, grouped, used


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("values", ["k/255 (MNIST)", "k/16 (digits)"])
@pytest.mark.parametrize("h", [0.5, 3.0])
def test_grouping_inputs_by_value_changes_no_bit(values, dtype, h):
    """At large steps the hidden block works once per (sample, input value): same bits as per input."""
    rng = np.random.default_rng(3)
    if values.startswith("k/255"):
        x = mnist_like(rng, 40, 784, dtype)
        sizes = (784, 20, 10)
    else:
        x = (rng.integers(0, 17, (40, 64)) * (rng.random((40, 64)) < 0.6) / 16).astype(dtype)
        sizes = (64, 20, 10)
    t = labels(rng, 40, 10)
    net = fastnet.TwoLayerNet(*sizes, weight_init_std=0.3, seed=2, dtype=dtype)
    direct, grouped, used = _hidden_blocks(x, t, net, h)
    assert used
    assert np.isfinite(direct).all()
    np.testing.assert_array_equal(grouped, direct)


@pytest.mark.parametrize("case", ["small step", "distinct values"])
def test_grouping_is_skipped_where_it_does_not_pay(case):
    rng = np.random.default_rng(4)
    if case == "small step":  # the polynomial path: hashing would cost what it saves
        x, h = mnist_like(rng, 20, 784), 1e-4
    else:  # no repeated values to share work between
        x, h = rng.random((20, 784)), 0.5
    net = fastnet.TwoLayerNet(784, 20, 10, weight_init_std=0.3, seed=2)
    _, grouped, used = _hidden_blocks(x, labels(rng, 20, 10), net, h)
    assert not used
    assert np.isnan(grouped).all()  # left untouched for the direct block to fill


def test_row_groups_put_equal_values_together():
    from kernels import numgrad

    x = np.array([[0.0, 0.5, 1.0, 0.5, -0.5, 0.0, 1e-300, 1e-300, 3.0, 1.0]])
    vlocT = np.empty((11, 1), dtype=np.int32)
    gvals = np.empty(9)
    count = numgrad._row_groups(x, 0, vlocT, gvals)
    groups = vlocT[:, 0]
    # distinct non-zeros 0.5, 1.0, -0.5, 1e-300, 3.0; the bias input (index 10) is 1.0 too
    assert count == 5
    assert groups[0] == groups[5] == -1
    assert groups[1] == groups[3] and groups[2] == groups[9] == groups[10] and groups[6] == groups[7]
    assert len({groups[1], groups[2], groups[4], groups[6], groups[8]}) == 5
    for i, v in enumerate(list(x[0]) + [1.0]):
        if v != 0:
            assert gvals[groups[i]] == v


# -- odd shapes -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["zero init", "constant W2 rows", "one class"])
def test_w2_with_constant_rows(case):
    rng = np.random.default_rng(6)
    c = 1 if case == "one class" else 3
    net = fastnet.TwoLayerNet(6, 4, c, weight_init_std=0.0 if case == "zero init" else 0.3, seed=1)
    if case == "constant W2 rows":
        net.params["W2"][:] = np.linspace(-1, 1, 4)[:, None]
    x = mnist_like(rng, 5, 6)
    x[:, 0] = 0.5
    t = labels(rng, 5, c)
    got = net.numerical_gradient(x, t)
    for key in PARAM_NAMES:
        idx = np.arange(net.params[key].size)
        want = ref_differences(net, x, t, key, 1e-4, idx)
        assert np.abs(got[key].ravel() - want).max() <= 1e-9, key

@pytest.mark.parametrize("sizes,n", [
    ((784, 50, 10), 1),  # batch 1
    ((12, 5, 1), 4),  # one class
    ((10, 1, 4), 6),  # one hidden unit
    ((1, 4, 3), 5),  # one input
    ((1, 1, 1), 1),
])
@pytest.mark.parametrize("method", ["central", "forward", "backward", "complex"])
def test_odd_shapes(sizes, n, method):
    rng = np.random.default_rng(n + sum(sizes))
    d, hid, c = sizes
    net = fastnet.TwoLayerNet(d, hid, c, weight_init_std=0.7, seed=2)
    x = mnist_like(rng, n, d)
    if d == 1:
        x[:] = rng.random((n, 1)) + 0.1
    t = labels(rng, n, c)
    got = net.numerical_gradient(x, t, method=method)
    bp = net.gradient(x, t)
    for key in PARAM_NAMES:
        assert got[key].shape == net.params[key].shape
        if method == "complex":
            assert max_rel(got[key], bp[key]) <= 1e-12
            continue
        idx = pick(net, x, t, key, n_even=20, n_extra=5)
        want = ref_differences(net, x, t, key, 1e-4, idx, method)
        assert np.abs(got[key].ravel()[idx] - want).max() <= 1e-9, key
    if c == 1:  # the loss is identically 0
        assert all((g == 0).all() for g in got.values())


# The fused loss as a function of one parameter array, the others passed through.
@numba.njit
def _loss_w1(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, theta, b1, W2, b2)


@numba.njit
def _loss_b1(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, W1, theta, W2, b2)


@numba.njit
def _loss_w2(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, W1, b1, theta, b2)


@numba.njit
def _loss_b2(theta, x, t, W1, b1, W2, b2):
    return kernels.two_layer_loss(x, t, W1, b1, W2, theta)


@pytest.mark.parametrize("w2_scale", [1.0, 30.0])
@pytest.mark.parametrize("h", [1.0, 30.0, 1e3, 1e6])
def test_huge_steps_and_logits_match_whole_loss_differences(h, w2_scale):
    """Steps far beyond any expm1/exp range and logits in the hundreds: finite and exact.

    At such steps the whole-loss difference (the fused, log-sum-exp-stable loss evaluated at
    theta +- h, compiled) has a rounding error far below the tolerance, so it is the yardstick.
    Probabilities underflow to 0 here, so the kernel must work from the logits.
    """
    rng = np.random.default_rng(0)
    x = mnist_like(rng, 9, 12)
    t = labels(rng, 9, 4)
    net = fastnet.TwoLayerNet(12, 5, 4, weight_init_std=1.0, seed=1)
    net.params["W2"] *= w2_scale
    p = net.params
    got = net.numerical_gradient(x, t, h=h)
    args = (x, t.astype(np.int64), p["W1"], p["b1"], p["W2"], p["b2"])
    for name, f in zip(PARAM_NAMES, (_loss_w1, _loss_b1, _loss_w2, _loss_b2)):
        want = fastnet.numerical_gradient(f, p[name], h=h, args=args)
        assert np.isfinite(got[name]).all()
        scale = max(1.0, float(np.abs(want).max()))
        assert np.abs(got[name] - want).max() <= 1e-12 * scale, name


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("h", [1e-4, 0.5], ids=["small step", "large step"])
def test_numerical_gradient_kernels_are_callable_from_compiled_code(dtype, h):
    """From Python the kernels compile block by block; inside a user's @njit function they compile
    whole: the same bits either way, every method, both losses."""
    rng = np.random.default_rng(8)
    x = mnist_like(rng, 6, 30, dtype)
    t = labels(rng, 6, 4)
    net = fastnet.TwoLayerNet(30, 5, 4, weight_init_std=0.3, seed=1, dtype=dtype)
    params = tuple(net.params[k] for k in PARAM_NAMES)

    @numba.njit
    def compiled(x, t, W1, b1, W2, b2, h, method, loss):
        return kernels.two_layer_numerical_gradient(x, t, W1, b1, W2, b2, h, method, loss)

    @numba.njit
    def compiled_complex(x, t, W1, b1, W2, b2, h, loss):
        return kernels.two_layer_complex_step(x, t, W1, b1, W2, b2, h, loss)

    step = dtype(h)
    for loss in (kernels.CROSS_ENTROPY, kernels.SUM_SQUARED):
        for method in (kernels.CENTRAL, kernels.FORWARD, kernels.BACKWARD):
            want = kernels.two_layer_numerical_gradient(x, t, *params, step, method, loss)
            got = compiled(x, t, *params, step, method, loss)
            for g, w in zip(got, want):
                assert g.dtype == dtype
                np.testing.assert_array_equal(g, w)
        tiny = dtype(1e-20)
        for g, w in zip(compiled_complex(x, t, *params, tiny, loss),
                        kernels.two_layer_complex_step(x, t, *params, tiny, loss)):
            np.testing.assert_array_equal(g, w)
