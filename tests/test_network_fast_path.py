"""TwoLayerNet's fast path for arguments already in the kernels' form: same results as the full
checks, and every problem they catch is still caught (then reported by the full checks)."""

from __future__ import annotations

import numpy as np
import pytest

import fastnet
from conftest import labels, mnist_like

DTYPES = (np.float64, np.float32)


def _setup(dtype, n=5):
    rng = np.random.default_rng(17)
    net = fastnet.TwoLayerNet(784, 20, 10, weight_init_std=0.3, dtype=dtype, seed=3)
    x = mnist_like(rng, n, 784, dtype)
    t = labels(rng, n, 10)
    return net, x, t


def _all(net, x, t):
    return (net.predict(x), net.loss(x, t), net.accuracy(x, t), net.gradient(x, t))


def _same(a, b):
    pa, la, aa, ga = a
    pb, lb, ab, gb = b
    assert np.array_equal(pa, pb) and la == lb and type(la) is type(lb) and aa == ab
    assert all(np.array_equal(ga[k], gb[k]) for k in ga)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_and_full_checks_give_identical_results(dtype):
    net, x, t = _setup(dtype)
    assert net._ready(x, t) is not None
    fast = _all(net, x, t)
    onehot = np.eye(10)[t]  # one-hot labels and a strided x take the full checks
    strided = np.asfortranarray(x)
    assert net._ready(strided, onehot) is None
    _same(fast, _all(net, strided, onehot))
    # other float dtypes and integer label types are converted on the fast path
    other = x.astype(np.float32 if dtype == np.float64 else np.float64)
    converted = x if dtype == np.float32 else other.astype(dtype)
    assert net._ready(other, t.astype(np.uint8)) is not None
    _same(_all(net, converted, t), _all(net, other, t.astype(np.uint8)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key, where", [("W1", (0, 0)), ("b1", (4,)), ("W2", (19, 9)), ("b2", (0,))])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_parameter_written_in_place_is_caught(dtype, key, where, bad):
    net, x, t = _setup(dtype)
    net.gradient(x, t)  # a valid call first: nothing about it may be remembered
    before = {k: v.copy() for k, v in net.params.items()}
    net.params[key][where] = bad  # W1[0] multiplies a border pixel, zero in every row of x
    for call in (lambda: net.predict(x), lambda: net.loss(x, t), lambda: net.accuracy(x, t),
                 lambda: net.gradient(x, t)):
        with pytest.raises(ValueError, match=rf"params\['{key}'\]"):
            call()
    net.params[key][where] = before[key][where]
    assert all(np.array_equal(net.params[k], before[k]) for k in before)
    net.gradient(x, t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bad_inputs_and_labels_are_caught_on_the_fast_path(dtype):
    net, x, t = _setup(dtype)
    bad_x = x.copy()
    bad_x[1, 400] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        net.loss(bad_x, t)
    for label, err in ((10, ValueError), (-1, ValueError)):
        bad_t = t.copy()
        bad_t[2] = label
        with pytest.raises(err, match="t has label"):
            net.gradient(x, bad_t)
    if dtype == np.float32:
        huge = x.astype(np.float64)
        huge[0, 300] = 1e300  # finite in float64, inf once cast to the net's float32
        with pytest.raises(ValueError, match="overflows"):
            net.predict(huge)
