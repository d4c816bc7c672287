"""TwoLayerNet against fastnet.reference: values, dtypes, seeds, labels, and every bad input."""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pytest

import fastnet
import kernels
from conftest import (PARAM_NAMES, assert_unchanged, dense, labels, max_rel, mnist_like, one_hot,
                      snapshot)
from fastnet import reference as ref

EPS32 = float(np.finfo(np.float32).eps)
# float32 net vs the float64 reference on the same float32 parameters and inputs: see RTOL32 in
# test_kernels.py (measured <= 5 eps; 300 eps leaves margin, a wrong formula misses by far more).
RTOL32 = 300 * EPS32


def _ref(net):
    """The reference net with net's parameters (as float64) and the exact loss."""
    return ref.TwoLayerNet.from_params({k: v.astype(np.float64) for k, v in net.params.items()}, delta=0.0)


def _check_against_reference(net, x, t, rtol):
    r = _ref(net)
    x64 = np.asarray(x, dtype=np.float64)
    # the reference gets one-hot labels: with C = 1 its cross_entropy_error reads index labels as
    # one-hot rows (t.size == y.size) and fails
    oh = one_hot(np.asarray(t), net.output_size)
    loss = net.loss(x, t)
    want = r.loss(x64, oh)
    assert abs(loss - want) <= rtol * abs(want), (loss, want)
    grads = net.gradient(x, t)
    want_g = r.gradient(x64, oh)
    assert set(grads) == set(PARAM_NAMES)
    for k in PARAM_NAMES:
        assert grads[k].shape == net.params[k].shape
        assert max_rel(grads[k], want_g[k]) <= rtol, (k, max_rel(grads[k], want_g[k]))
    p = net.predict(x)
    assert max_rel(p, r.predict(x64)) <= rtol
    assert net.accuracy(x, t) == r.accuracy(x64, oh)


# -- acceptance: values ----------------------------------------------------------------------

@pytest.mark.parametrize("batch", ["mnist_batch", "dense_batch", "real_mnist"])
def test_784_50_10_matches_reference_to_1e_12(request, net784, batch):
    x, t = request.getfixturevalue(batch)
    x0, t0 = snapshot({"x": x, "t": t}), snapshot(net784.params)
    if batch != "dense_batch":
        assert 0.75 < np.mean(x == 0) < 0.87 and x.min() >= 0 and x.max() <= 1
    _check_against_reference(net784, x, t, 1e-12)
    p = net784.predict(x)
    assert p.shape == (100, 10) and p.dtype == np.float64
    assert np.abs(p.sum(axis=1) - 1).max() <= 10 * np.finfo(np.float64).eps
    assert isinstance(net784.loss(x, t), np.float64)
    assert_unchanged({"x": x, "t": t}, x0)
    assert_unchanged(net784.params, t0)


def test_loss_is_the_exact_cross_entropy_not_the_books_delta(net784, mnist_batch):
    x, t = mnist_batch
    exact = _ref(net784).loss(x, t)
    book = ref.TwoLayerNet.from_params(net784.params).loss(x, t)  # delta = 1e-7 inside the log
    assert abs(book - exact) > 1e-7  # the two differ by far more than the tolerance below
    assert abs(net784.loss(x, t) - exact) <= 1e-12 * exact


def test_trained_like_weights_match_reference(mnist_batch):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, weight_init_std=0.3, seed=5)
    net.params["W2"] *= 20
    net.params["b1"][:] = np.linspace(-3, 3, 50)
    _check_against_reference(net, x, t, 1e-12)


@pytest.mark.parametrize("sizes,n", [
    ((784, 50, 10), 1),  # batch 1
    ((7, 5, 1), 6),  # one class: loss 0, gradient 0
    ((9, 1, 4), 5),  # one hidden unit
    ((1, 6, 3), 8),  # one input
    ((13, 11, 5), 7),  # non-square
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_odd_shapes_match_reference(sizes, n, dtype):
    rng = np.random.default_rng(sum(sizes) + n)
    d, h, c = sizes
    net = fastnet.TwoLayerNet(d, h, c, weight_init_std=0.5, dtype=dtype, seed=3)
    x = mnist_like(rng, n, d)
    t = labels(rng, n, c)
    rtol = 1e-12 if dtype == np.float64 else RTOL32
    _check_against_reference(net, x.astype(dtype), t, rtol)
    p = net.predict(x)
    assert p.shape == (n, c) and p.dtype == dtype
    if c == 1:
        np.testing.assert_array_equal(p, 1)
        assert net.loss(x, t) == 0
        assert all((g == 0).all() for g in net.gradient(x, t).values())


@pytest.mark.parametrize("batch", ["mnist_batch", "dense_batch"])
def test_one_hot_and_index_labels_give_identical_results(request, net784, batch):
    x, t = request.getfixturevalue(batch)
    oh = one_hot(t, 10)
    assert net784.loss(x, t) == net784.loss(x, oh)
    assert net784.loss(x, t) == net784.loss(x, oh.astype(np.int8))
    assert net784.accuracy(x, t) == net784.accuracy(x, oh)
    for method in ("gradient", "numerical_gradient"):
        a, b = getattr(net784, method)(x, t), getattr(net784, method)(x, oh)
        for k in PARAM_NAMES:
            assert a[k].tobytes() == b[k].tobytes(), (method, k)
    # integer-valued float labels and other integer dtypes are class indices too
    assert net784.loss(x, t.astype(np.float64)) == net784.loss(x, t.astype(np.uint8)) == net784.loss(x, t)
    # and the reference agrees with either form
    assert abs(_ref(net784).loss(x, oh) - net784.loss(x, t)) <= 1e-12 * net784.loss(x, t)


def test_accuracy_counts_argmax_hits(net784, mnist_batch):
    x, t = mnist_batch
    pred = np.argmax(_ref(net784).predict(x), axis=1)
    assert net784.accuracy(x, pred) == 1.0
    wrong = (pred + 1) % 10
    assert net784.accuracy(x, wrong) == 0.0
    mixed = np.where(np.arange(100) < 37, pred, wrong)
    assert net784.accuracy(x, mixed) == pytest.approx(0.37, abs=0)
    assert isinstance(net784.accuracy(x, t), float)


def test_inputs_of_other_types_and_layouts_are_converted(net784, mnist_batch):
    x, t = mnist_batch
    want = net784.loss(x, t)
    assert net784.loss(np.asfortranarray(x), t) == want
    assert net784.loss(x.tolist(), t.tolist()) == want
    big = np.zeros((100, 2 * 784))
    big[:, ::2] = x
    assert net784.loss(big[:, ::2], t) == want  # a strided view
    assert net784.loss((x * 255).astype(np.uint8), t) == net784.loss(np.round(x * 255), t)
    ro = x.copy()
    ro.flags.writeable = False
    assert net784.loss(ro, t) == want


def test_params_may_be_replaced_and_updated_in_place(net784, mnist_batch):
    x, t = mnist_batch
    g = net784.gradient(x, t)
    for k in PARAM_NAMES:  # one SGD step, in place, as the book's training loop does
        net784.params[k] -= 0.5 * g[k]
    _check_against_reference(net784, x, t, 1e-12)
    before = net784.loss(x, t)
    net784.params["W1"] = np.asfortranarray(net784.params["W1"])  # same values, other layout
    assert net784.loss(x, t) == before
    net784.params = {k: v.copy() for k, v in net784.params.items()}  # a new dict
    assert net784.loss(x, t) == before


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_logits_of_1e4_give_a_finite_exact_loss(mnist_batch, dtype):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, dtype=dtype, seed=2)
    net.params["W1"] *= 300  # saturated hidden units: z is 0 or 1
    net.params["W2"] = (np.sign(net.params["W2"]) * 1e4 / 50).astype(dtype)  # logits up to 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = net.loss(x, t)
        p = net.predict(x)
        grads = net.gradient(x, t)
    assert np.isfinite(loss) and loss > 100
    assert np.isfinite(p).all() and all(np.isfinite(g).all() for g in grads.values())
    # the exact loss, in extended precision from the same parameters
    P = {k: v.astype(np.longdouble) for k, v in net.params.items()}
    a1 = x.astype(np.longdouble) @ P["W1"] + P["b1"]
    z = np.exp(-np.logaddexp(0, -a1))  # sigmoid without overflow
    a2 = z @ P["W2"] + P["b2"]
    assert np.abs(a2).max() > 2e3
    m = a2.max(axis=1)
    want = np.mean(m + np.log(np.exp(a2 - m[:, None]).sum(axis=1)) - a2[np.arange(100), t])
    assert abs(float(loss) - float(want)) <= 64 * np.finfo(dtype).eps * float(np.abs(a2).max())


# -- float32 --------------------------------------------------------------------------------

def test_float32_net_computes_and_returns_float32(mnist_batch):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, dtype=np.float32, seed=7)
    assert all(v.dtype == np.float32 for v in net.params.values())
    p = net.predict(x)
    assert p.dtype == np.float32
    loss = net.loss(x, t)
    assert isinstance(loss, np.float32)
    # computed in float32 by the kernel, not computed in float64 and cast afterwards
    x32 = x.astype(np.float32)
    args = (x32, t.astype(np.int64), *(net.params[k] for k in PARAM_NAMES), kernels.CROSS_ENTROPY)
    sig = tuple(numba.typeof(a) for a in args)  # the net passes its loss explicitly
    assert kernels.two_layer_loss.overloads[sig].signature.return_type == numba.float32
    for method in ("gradient", "numerical_gradient"):
        g = getattr(net, method)(x, t)
        assert all(g[k].dtype == np.float32 and g[k].shape == net.params[k].shape for k in PARAM_NAMES)
    for m in ("central", "forward", "backward", "complex"):
        g = net.numerical_gradient(x, t, method=m)
        assert all(g[k].dtype == np.float32 for k in PARAM_NAMES), m
    _check_against_reference(net, x32, t, RTOL32)
    # float32 results are not float64 results rounded: the loss differs from float32(exact)
    # for some batch (a kernel computing in float64 would round to it every time)
    rng = np.random.default_rng(0)
    diffs = 0
    for _ in range(8):
        xb = mnist_like(rng, 100, 784, np.float32)
        tb = labels(rng, 100, 10)
        diffs += net.loss(xb, tb) != np.float32(_ref(net).loss(xb.astype(np.float64), tb))
    assert diffs > 0


# -- seeds and construction -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_same_seed_same_params_as_the_reference(dtype):
    a = fastnet.TwoLayerNet(784, 50, 10, dtype=dtype, seed=123)
    b = fastnet.TwoLayerNet(784, 50, 10, dtype=dtype, seed=123)
    r = ref.TwoLayerNet(784, 50, 10, seed=123, dtype=dtype)
    g = fastnet.TwoLayerNet(784, 50, 10, dtype=dtype, seed=np.random.default_rng(123))
    for k in PARAM_NAMES:
        assert a.params[k].dtype == dtype
        assert a.params[k].tobytes() == b.params[k].tobytes() == r.params[k].tobytes() \
            == g.params[k].tobytes(), k
    assert (a.params["b1"] == 0).all() and (a.params["b2"] == 0).all()
    c = fastnet.TwoLayerNet(784, 50, 10, dtype=dtype, seed=124)
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_seed_generator_is_used_not_copied():
    rng = np.random.default_rng(9)
    a = fastnet.TwoLayerNet(4, 3, 2, seed=rng)
    b = fastnet.TwoLayerNet(4, 3, 2, seed=rng)  # the generator has moved on
    assert not np.array_equal(a.params["W1"], b.params["W1"])
    rng2 = np.random.default_rng(9)
    expect = 0.01 * rng2.standard_normal((4, 3))
    np.testing.assert_array_equal(a.params["W1"], expect)


def test_weight_init_std_scales_the_weights():
    a = fastnet.TwoLayerNet(50, 40, 10, seed=1)
    b = fastnet.TwoLayerNet(50, 40, 10, weight_init_std=0.5, seed=1)
    np.testing.assert_allclose(b.params["W1"], 50 * a.params["W1"], rtol=1e-15)
    assert 0.005 < a.params["W1"].std() < 0.02
    z = fastnet.TwoLayerNet(5, 4, 3, weight_init_std=0, seed=1)
    assert all((v == 0).all() for v in z.params.values())
    assert "TwoLayerNet(784, 50, 10" in repr(fastnet.TwoLayerNet(784, 50, 10))


def test_seed_none_gives_a_random_net():
    a, b = fastnet.TwoLayerNet(30, 5, 2), fastnet.TwoLayerNet(30, 5, 2)
    assert not np.array_equal(a.params["W1"], b.params["W1"])


@pytest.mark.parametrize("kwargs,exc,name", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(input_size=-3), ValueError, "input_size"),
    (dict(input_size=2.5), TypeError, "input_size"),
    (dict(input_size=784.0), TypeError, "input_size"),
    (dict(input_size="784"), TypeError, "input_size"),
    (dict(input_size=True), TypeError, "input_size"),
    (dict(hidden_size=0), ValueError, "hidden_size"),
    (dict(hidden_size=-1), ValueError, "hidden_size"),
    (dict(hidden_size=1.5), TypeError, "hidden_size"),
    (dict(output_size=0), ValueError, "output_size"),
    (dict(output_size=-10), ValueError, "output_size"),
    (dict(output_size=None), TypeError, "output_size"),
    (dict(weight_init_std=-0.01), ValueError, "weight_init_std"),
    (dict(weight_init_std=float("nan")), ValueError, "weight_init_std"),
    (dict(weight_init_std=float("inf")), ValueError, "weight_init_std"),
    (dict(weight_init_std="0.01"), TypeError, "weight_init_std"),
    (dict(dtype=int), TypeError, "dtype"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype=np.float16), TypeError, "dtype"),
    (dict(dtype=np.complex128), TypeError, "dtype"),
    (dict(dtype="banana"), TypeError, "dtype"),
    (dict(seed="abc"), TypeError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=True), TypeError, "seed"),
])
def test_bad_constructor_arguments(kwargs, exc, name):
    args = dict(input_size=784, hidden_size=50, output_size=10)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        fastnet.TwoLayerNet(args.pop("input_size"), args.pop("hidden_size"), args.pop("output_size"),
                            **args)


def test_integer_like_sizes_are_accepted():
    net = fastnet.TwoLayerNet(np.int64(6), np.int32(4), np.uint8(3), seed=0)
    assert net.params["W1"].shape == (6, 4) and net.params["b2"].shape == (3,)


# -- bad inputs: each raises, names the argument, runs no kernel, leaves params unchanged --

@pytest.fixture
def no_kernels(monkeypatch):
    """Make every kernel TwoLayerNet may call fail loudly: bad input must be caught before."""
    def ran(*args, **kwargs):
        raise AssertionError("a kernel ran before the input was rejected")

    for name in kernels.__all__:  # compiled kernels, and the Python drivers of compiled blocks
        if callable(getattr(kernels, name)):
            monkeypatch.setattr(kernels, name, ran)


def test_no_kernels_fixture_does_intercept(no_kernels):
    net = fastnet.TwoLayerNet(5, 4, 3, seed=0)
    for method in X_METHODS:
        with pytest.raises(AssertionError, match="kernel ran"):
            _call(net, method, np.zeros((2, 5)), [0, 1])


def _bad_x_cases():
    r = np.random.default_rng(0)
    x = mnist_like(r, 4, 784)
    nan = x.copy()
    nan[2, 300] = np.nan
    inf = x.copy()
    inf[0, 0] = np.inf
    ninf = x.copy()
    ninf[3, 783] = -np.inf
    return {
        "1-D": x[0],
        "wrong width": x[:, :783],
        "too wide": np.hstack([x, x[:, :1]]),
        "3-D": x.reshape(4, 28, 28),
        "scalar": np.float64(1.0),
        "empty batch": x[:0],
        "NaN": nan,
        "inf": inf,
        "-inf": ninf,
        "strings": np.full((4, 784), "a"),
        "objects": np.full((4, 784), None, dtype=object),
        "complex": x.astype(np.complex128),
        "ragged": [[0.0] * 784, [0.0] * 783],
        "None": None,
    }


BAD_X = _bad_x_cases()
X_METHODS = ("predict", "loss", "accuracy", "gradient", "numerical_gradient")


def _call(net, method, x, t):
    if method == "predict":
        return net.predict(x)
    return getattr(net, method)(x, t)


@pytest.mark.parametrize("method", X_METHODS)
@pytest.mark.parametrize("case", BAD_X, ids=str)
def test_bad_x_is_rejected(case, method, no_kernels):
    net = fastnet.TwoLayerNet(784, 50, 10, seed=1)
    t = np.arange(4) % 10
    if case == "empty batch":
        t = t[:0]
    before = snapshot(net.params)
    with pytest.raises((ValueError, TypeError), match=r"\bx\b"):
        _call(net, method, BAD_X[case], t)
    assert_unchanged(net.params, before)


# validation.check_inputs casts before it checks, so NumPy warns about the overflow it then reports
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_x_that_overflows_float32_is_rejected(no_kernels):
    net = fastnet.TwoLayerNet(784, 50, 10, dtype=np.float32, seed=1)
    x = np.zeros((2, 784))
    x[1, 5] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError, match=r"\bx\b.*float32"):
        net.loss(x, [0, 1])


def _bad_t_cases():
    t = np.array([3, 0, 9, 1])
    oh = one_hot(t, 10)
    two_ones = oh.copy()
    two_ones[1, 5] = 1
    zero_row = oh.copy()
    zero_row[2] = 0
    half = oh * 0.5
    twos = oh * 2
    neg = oh.copy()
    neg[0, 0] = -1
    return {
        "too few rows": (t[:3], ValueError),
        "too many rows": (np.append(t, 0), ValueError),
        "one-hot too narrow": (oh[:, :9], ValueError),
        "one-hot too wide": (np.hstack([oh, np.zeros((4, 1))]), ValueError),
        "one-hot wrong rows": (oh[:3], ValueError),
        "label -1": (np.array([3, -1, 9, 1]), ValueError),
        "label C": (np.array([3, 0, 10, 1]), ValueError),
        "label huge": (np.array([3, 0, 2**40, 1]), ValueError),
        "non-integer labels": (np.array([3.0, 0.5, 9.0, 1.0]), TypeError),
        "NaN labels": (np.array([3.0, np.nan, 9.0, 1.0]), TypeError),
        "bool labels": (np.array([True, False, True, False]), TypeError),
        "string labels": (np.array(["3", "0", "9", "1"]), TypeError),
        "3-D labels": (oh.reshape(4, 10, 1), ValueError),
        "one-hot with two ones": (two_ones, ValueError),
        "one-hot with a zero row": (zero_row, ValueError),
        "one-hot with 0.5": (half, ValueError),
        "one-hot with 2": (twos, ValueError),
        "one-hot with -1": (neg, ValueError),
        "None": (None, (TypeError, ValueError)),
    }


BAD_T = _bad_t_cases()
T_METHODS = ("loss", "accuracy", "gradient", "numerical_gradient")


@pytest.mark.parametrize("method", T_METHODS)
@pytest.mark.parametrize("case", BAD_T, ids=str)
def test_bad_t_is_rejected(case, method, no_kernels):
    net = fastnet.TwoLayerNet(784, 50, 10, seed=1)
    x = mnist_like(np.random.default_rng(0), 4, 784)
    t, exc = BAD_T[case]
    before = snapshot(net.params)
    with pytest.raises(exc, match=r"\bt\b"):
        _call(net, method, x, t)
    assert_unchanged(net.params, before)


def _bad_params_cases():
    def set_(key, fn):
        return lambda p: p.__setitem__(key, fn(p[key]))

    return {
        "W1 wrong shape": (set_("W1", lambda a: a[:, :49].copy()), ValueError, r"params\['W1'\]"),
        "W1 transposed": (set_("W1", lambda a: a.T.copy()), ValueError, r"params\['W1'\]"),
        "b1 2-D": (set_("b1", lambda a: a.reshape(1, -1).copy()), ValueError, r"params\['b1'\]"),
        "W2 wrong shape": (set_("W2", lambda a: np.zeros((50, 11))), ValueError, r"params\['W2'\]"),
        "b2 wrong shape": (set_("b2", lambda a: np.zeros(9)), ValueError, r"params\['b2'\]"),
        "W2 float32": (set_("W2", lambda a: a.astype(np.float32)), TypeError, r"params\['W2'\]"),
        "b1 int": (set_("b1", lambda a: a.astype(np.int64)), TypeError, r"params\['b1'\]"),
        "W1 list": (set_("W1", lambda a: a.tolist()), TypeError, r"params\['W1'\]"),
        "b1 NaN": (set_("b1", lambda a: np.where(np.arange(a.size) == 3, np.nan, a)), ValueError,
                   r"params\['b1'\]"),
        "W1 inf": (set_("W1", lambda a: np.where(a == a.max(), np.inf, a)), ValueError, r"params\['W1'\]"),
        "W2 NaN in place": (lambda p: p["W2"].__setitem__((3, 4), np.nan), ValueError, r"params\['W2'\]"),
        "missing b2": (lambda p: p.pop("b2"), ValueError, "b2"),
        "missing W1": (lambda p: p.pop("W1"), ValueError, "W1"),
    }


BAD_PARAMS = _bad_params_cases()


@pytest.mark.parametrize("method", X_METHODS)
@pytest.mark.parametrize("case", BAD_PARAMS, ids=str)
def test_bad_params_are_rejected(case, method, no_kernels):
    net = fastnet.TwoLayerNet(784, 50, 10, seed=1)
    x = mnist_like(np.random.default_rng(0), 4, 784)
    t = np.array([3, 0, 9, 1])
    corrupt, exc, name = BAD_PARAMS[case]
    corrupt(net.params)
    before = snapshot(net.params)  # what the user left there must stay as it is
    with pytest.raises(exc, match=name):
        _call(net, method, x, t)
    assert_unchanged(net.params, before)


def test_params_that_is_not_a_dict_is_rejected(no_kernels):
    net = fastnet.TwoLayerNet(5, 4, 3, seed=1)
    net.params = [net.params[k] for k in PARAM_NAMES]
    with pytest.raises(TypeError, match="params"):
        net.loss(np.zeros((2, 5)), [0, 1])


@pytest.mark.parametrize("h,exc", [
    (0, ValueError), (0.0, ValueError), (-1e-4, ValueError), (float("nan"), ValueError),
    (float("inf"), ValueError), (-np.inf, ValueError), ("1e-4", TypeError), (True, TypeError),
    (1e-4 + 0j, TypeError), (np.array([1e-4, 1e-4]), TypeError),
])
@pytest.mark.parametrize("method", ["central", "forward", "backward", "complex"])
def test_bad_step_is_rejected(h, exc, method, no_kernels):
    net = fastnet.TwoLayerNet(784, 50, 10, seed=1)
    x = mnist_like(np.random.default_rng(0), 4, 784)
    before = snapshot(net.params)
    with pytest.raises(exc, match=r"\bh\b"):
        net.numerical_gradient(x, [3, 0, 9, 1], h=h, method=method)
    assert_unchanged(net.params, before)


@pytest.mark.parametrize("method", ["centre", "Central", "", None, 0, "complex-step"])
def test_unknown_method_is_rejected(method, no_kernels):
    net = fastnet.TwoLayerNet(784, 50, 10, seed=1)
    before = snapshot(net.params)
    with pytest.raises(ValueError, match="method"):
        net.numerical_gradient(np.zeros((2, 784)), [0, 1], method=method)
    assert_unchanged(net.params, before)


@pytest.mark.parametrize("threads,exc", [(0, ValueError), (-1, ValueError), (10**6, ValueError),
                                         ("2", TypeError), (1.0, TypeError), (True, TypeError)])
def test_bad_thread_count_is_rejected(threads, exc, no_kernels):
    net = fastnet.TwoLayerNet(784, 50, 10, seed=1)
    before_threads = numba.get_num_threads()
    with pytest.raises(exc, match="threads"):
        net.numerical_gradient(np.zeros((2, 784)), [0, 1], threads=threads)
    assert numba.get_num_threads() == before_threads


def test_good_call_after_rejections_still_works(net784, mnist_batch):
    x, t = mnist_batch
    with pytest.raises(ValueError):
        net784.loss(x[:, :10], t)
    with pytest.raises(ValueError):
        net784.gradient(x, t[:5])
    _check_against_reference(net784, x, t, 1e-12)


def test_dense_x_of_other_dtypes(net784):
    rng = np.random.default_rng(4)
    x = dense(rng, 10, 784, np.float32)
    t = labels(rng, 10, 10)
    # a float32 x given to a float64 net is used exactly (every float32 is a float64)
    assert net784.loss(x, t) == net784.loss(x.astype(np.float64), t)
