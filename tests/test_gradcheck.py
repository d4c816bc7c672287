"""gradient_check (backprop vs numerical, per parameter) and step_study (error against h)."""

from __future__ import annotations

import numpy as np
import pytest

import fastnet
from conftest import PARAM_NAMES, assert_unchanged, snapshot
from fastnet.gradcheck import relative_error


def test_relative_error_definition_and_edge_cases():
    a = np.array([1.0, 0.0, -2.0, 3.0, 1e-300, 0.0])
    n = np.array([1.0, 0.0, 2.0, 3.3, 0.0, -0.0])
    r = relative_error(a, n)
    assert not np.isnan(r).any()
    np.testing.assert_allclose(r, [0.0, 0.0, 1.0, 0.3 / 6.3, 1.0, 0.0], rtol=1e-15)
    assert relative_error(0.0, 0.0) == 0
    assert relative_error(np.zeros((3, 2)), np.zeros((3, 2))).max() == 0
    # float32 inputs are compared in float64
    assert relative_error(np.float32(1), np.float32(1 + 2**-23)) == pytest.approx(2**-23 / (2 + 2**-23))


def test_gradient_check_on_a_fresh_net(net784, mnist_batch):
    x, t = mnist_batch
    before = snapshot({"x": x, **net784.params})
    check = fastnet.gradient_check(net784, x, t)
    assert_unchanged({"x": x, **net784.params}, before)
    text = str(check)
    for name in PARAM_NAMES:
        assert name in text
        row = check[name]
        assert row.shape == net784.params[name].shape
        assert np.isfinite([row.max_abs, row.max_rel, row.mean_abs]).all()
        # h = 1e-4: O(h^2) truncation only; the relative error peaks on the smallest gradients
        assert row.max_abs < 1e-9 and row.max_rel < 1e-4
        assert row.mean_abs <= row.max_abs
    assert "central" in text and "0.0001" in text
    assert check.max_abs == max(check[n].max_abs for n in PARAM_NAMES)
    assert check.max_rel == max(check[n].max_rel for n in PARAM_NAMES)
    d = check.as_dict()
    assert set(d) == set(PARAM_NAMES) and d["W2"]["max_rel"] == check["W2"].max_rel
    # it reports what the two gradients actually give
    g, n = net784.gradient(x, t), net784.numerical_gradient(x, t)
    for name in PARAM_NAMES:
        assert check[name].max_abs == np.abs(g[name] - n[name]).max()
        assert check[name].max_rel == relative_error(g[name], n[name]).max()
    with pytest.raises(KeyError):
        check["W3"]


def test_complex_step_check_is_tighter(net784, mnist_batch):
    x, t = mnist_batch
    check = fastnet.gradient_check(net784, x, t, method="complex")
    assert check.max_rel < 1e-9 and check.max_abs < 1e-15
    assert "complex" in str(check)


def test_a_wrong_backprop_is_detected(net784, mnist_batch, monkeypatch):
    x, t = mnist_batch
    good = fastnet.gradient_check(net784, x, t)
    backprop = net784.gradient

    def off_by_one_percent(x_, t_):
        g = backprop(x_, t_)
        g["W1"] = g["W1"] * 1.01
        return g

    monkeypatch.setattr(net784, "gradient", off_by_one_percent)
    bad = fastnet.gradient_check(net784, x, t)
    # |1.01 a - a| / (1.01 |a| + |a|) = 0.01 / 2.01 wherever the gradient is not tiny
    assert bad["W1"].max_rel == pytest.approx(0.01 / 2.01, rel=1e-3)
    assert bad.max_rel > 100 * good.max_rel
    for name in ("b1", "W2", "b2"):
        assert bad[name] == good[name]
    assert f"{bad['W1'].max_rel:12.3e}".strip() in str(bad)


def test_float32_gradient_check(mnist_batch):
    x, t = mnist_batch
    net = fastnet.TwoLayerNet(784, 50, 10, dtype=np.float32, seed=7)
    check = fastnet.gradient_check(net, x, t, h=1e-2)
    assert check.max_abs < 1e-5
    assert not np.isnan([r.max_rel for r in check.rows]).any()


@pytest.mark.parametrize("bad,exc", [(dict(h=0.0), ValueError), (dict(method="exact"), ValueError),
                                     (dict(h=-1.0), ValueError)])
def test_gradient_check_rejects_bad_arguments(small_net, bad, exc):
    net, x, t = small_net
    with pytest.raises(exc):
        fastnet.gradient_check(net, x, t, **bad)


@pytest.fixture
def study(small_net):
    net, x, t = small_net
    before = snapshot({"x": x, **net.params})
    s = fastnet.step_study(net, x, t, hs=[1e-10, 1e-4, 1e-2], naive_entries=60)
    assert_unchanged({"x": x, **net.params}, before)
    return s


def test_step_study_truncation_arm(study):
    e = study.errors
    for m in ("central", "forward", "backward", "complex"):
        assert m in e and len(e[m]) == 3 and np.isfinite(e[m]).all()
    # O(h^2) for central differences and the complex step: 1e-2 vs 1e-4 is a factor ~1e4
    for m in ("central", "complex"):
        ratio = e[m][2] / e[m][1]
        assert 1e3 < ratio < 1e5, (m, ratio)
    # O(h) one-sided: a factor ~1e2
    for m in ("forward", "backward"):
        ratio = e[m][2] / e[m][1]
        assert 30 < ratio < 300, (m, ratio)
    assert e["forward"][1] > 100 * e["central"][1]
    # fastnet sums exact per-sample loss differences: no rounding arm at tiny h
    assert e["central"][0] < 1e-3 * e["central"][1]


def test_step_study_full_loss_rounding_arm(study):
    e = study.errors
    # subtracting whole losses: eps * L / h dominates at h = 1e-10, the V's rounding arm
    naive = e["central (full loss)"]
    assert naive[0] > 10 * naive[1], naive
    for m in ("central", "forward", "backward"):
        assert len(e[f"{m} (full loss)"]) == 3
        # where fastnet's kernel has only its (tiny) truncation error left
        assert e[f"{m} (full loss)"][0] > 1e3 * e[m][0], m
    assert "complex (full loss)" not in e
    assert study.best("central (full loss)")[0] in (1e-4, 1e-2)
    assert study.best("central")[0] == 1e-10
    text = str(study)
    assert "central (full loss)" in text and "best h" in text
    d = study.as_dict()
    assert d["hs"] == [1e-10, 1e-4, 1e-2] and set(d["errors"]) == set(e)


def test_step_study_errors_are_what_the_kernel_gives(small_net):
    net, x, t = small_net
    s = fastnet.step_study(net, x, t, hs=[1e-3], methods=("central",), naive=False)
    assert set(s.errors) == {"central"}
    g, n = net.gradient(x, t), net.numerical_gradient(x, t, h=1e-3)
    want = max(np.abs(g[k] - n[k]).max() for k in PARAM_NAMES)
    assert s.errors["central"][0] == want
    assert s.scale == max(np.abs(g[k]).max() for k in PARAM_NAMES)


@pytest.mark.parametrize("bad", [dict(hs=[]), dict(hs=[1e-4, 0.0]), dict(hs=[-1e-3]),
                                 dict(hs=[[1e-4]]), dict(methods=("central", "fwd"))])
def test_step_study_rejects_bad_arguments(small_net, bad):
    net, x, t = small_net
    with pytest.raises(ValueError):
        fastnet.step_study(net, x, t, **bad)


def test_rows_read_like_the_dict(small_net):
    net, x, t = small_net
    check = fastnet.gradient_check(net, x, t)
    as_dict = check.as_dict()
    for name in ("W1", "b1", "W2", "b2"):
        for key in ("max_abs", "max_rel", "mean_abs"):
            assert check[name][key] == as_dict[name][key] == getattr(check[name], key)
    with pytest.raises(KeyError):
        check["W1"]["nope"]


def test_gradient_check_tolerance_and_pass_fail():
    import fastnet
    from fastnet import GradientCheckError

    rng = np.random.default_rng(11)
    net = fastnet.TwoLayerNet(6, 4, 3, seed=1)
    x = rng.random((5, 6))
    t = rng.integers(0, 3, 5)
    good = fastnet.gradient_check(net, x, t)
    assert good.passed and all(r.failures == 0 for r in good.rows)
    assert "passed at rtol=0.0001" in str(good)
    # h = 0.5: truncation far beyond a tight tolerance
    bad = fastnet.gradient_check(net, x, t, h=0.5, rtol=1e-9, atol=1e-12)
    assert not bad.passed and sum(r.failures for r in bad.rows) > 0
    assert "FAILED" in str(bad)
    with pytest.raises(GradientCheckError, match="FAILED"):
        fastnet.gradient_check(net, x, t, h=0.5, rtol=1e-9, atol=1e-12, raise_on_failure=True)
    with pytest.raises(ValueError, match="rtol"):
        fastnet.gradient_check(net, x, t, rtol=0)
    with pytest.raises(ValueError, match="atol"):
        fastnet.gradient_check(net, x, t, atol=-1.0)
