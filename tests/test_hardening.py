"""Training that never destroys a net, steps checked against the dtype, sizes and seeds refused up front."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnet
import fastnet.network
from fastnet.history import History
from fastnet.training import TrainState, eval_count, eval_iterations, is_eval_iteration, train
from fastnet.validation import check_labels, step_range

PARAMS = ("W1", "b1", "W2", "b2")


def _data(rng, n=60, d=9, c=3):
    x = rng.random((n, d))
    t = rng.integers(0, c, n)
    return (x[:40], t[:40]), (x[40:], t[40:])


def _snapshot(net):
    return {k: net.params[k].copy() for k in PARAMS}


def _same(net, snap):
    return all(np.array_equal(net.params[k], snap[k]) and net.params[k].dtype == snap[k].dtype
               for k in PARAMS)


# -- a failed step leaves the net as it was -----------------------------------------------------

@pytest.mark.parametrize("dtype, h", [(np.float32, 1e-50), (np.float64, 1e-320), (np.float32, 1e39),
                                      (np.float64, 1e-310)])
def test_unusable_h_is_refused_before_any_step(dtype, h):
    net = fastnet.TwoLayerNet(9, 4, 3, dtype=dtype, seed=0)
    snap = _snapshot(net)
    with pytest.raises(ValueError, match=r"h=.*usable range \["):
        train(net, _data(np.random.default_rng(0)), iters=3, batch_size=5, grad="numerical", h=h)
    assert _same(net, snap)


def test_read_only_param_is_refused_before_any_step():
    net = fastnet.TwoLayerNet(9, 4, 3, seed=0)
    net.params["b1"].flags.writeable = False
    snap = _snapshot(net)
    with pytest.raises(ValueError, match=r"params\['b1'\] is read-only"):
        train(net, _data(np.random.default_rng(0)), iters=3, batch_size=5)
    assert _same(net, snap)


def test_param_made_read_only_mid_run_fails_that_step_without_writing():
    net = fastnet.TwoLayerNet(9, 4, 3, seed=0)
    snaps = []

    def freeze_after_two(i, history):
        if i == 1:
            snaps.append(_snapshot(net))
            net.params["b1"].flags.writeable = False
        return None

    with pytest.raises(ValueError, match=r"iteration 2: net.params\['b1'\] became read-only"):
        train(net, _data(np.random.default_rng(0)), iters=5, batch_size=5, callback=freeze_after_two)
    assert _same(net, snaps[0])  # W1 was not updated either


def test_non_finite_update_leaves_the_net_as_before_that_step():
    net = fastnet.TwoLayerNet(9, 4, 3, seed=0)
    snaps = []

    def blow_up(i, history):
        if i == 1:
            # A bias next to the largest float: lr * gradient soon pushes it past it.
            net.params["b2"][...] = [1.7e308, -1.7e308, 0.0]
        snaps.append(_snapshot(net))
        return None

    # b2 is updated last: W1, b1 and W2 had finite new values, and must not have been written.
    with pytest.raises(ValueError, match=r"iteration 4: the update of b2 is not finite"):
        train(net, _data(np.random.default_rng(0)), iters=5, batch_size=5, lr=1e308, seed=0, callback=blow_up)
    assert len(snaps) == 4 and _same(net, snaps[-1])


# -- h against the dtype --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_range_edges(dtype):
    net = fastnet.TwoLayerNet(9, 4, 3, dtype=dtype, seed=0)
    x, t = np.random.default_rng(1).random((6, 9)), np.arange(6) % 3
    low, high = step_range(dtype, net.params.values())
    largest = max(float(np.abs(p).max()) for p in net.params.values())
    assert dtype(largest) + dtype(low) != dtype(largest)
    g = net.numerical_gradient(x, t, h=low)
    assert all(np.isfinite(v).all() for v in g.values())
    for bad in (low / 4, high * 4):
        with pytest.raises(ValueError, match="usable range"):
            net.numerical_gradient(x, t, h=bad)
    # The complex step subtracts nothing: any normal step works, down to the dtype's tiny.
    c_low, _ = step_range(dtype, net.params.values(), "complex")
    assert c_low == float(np.finfo(dtype).tiny)
    g = net.numerical_gradient(x, t, h=1e-30, method="complex")
    assert all(np.isfinite(v).all() for v in g.values())
    with pytest.raises(ValueError, match="usable range"):
        net.numerical_gradient(x, t, h=c_low / 4, method="complex")


def test_h_checks_in_gradient_check_and_step_study():
    net = fastnet.TwoLayerNet(9, 4, 3, dtype=np.float32, seed=0)
    x, t = np.random.default_rng(1).random((6, 9)), np.arange(6) % 3
    with pytest.raises(ValueError, match="h=1e-50 is outside the usable range"):
        fastnet.gradient_check(net, x, t, h=1e-50)
    with pytest.raises(ValueError, match="hs entry=.* is outside the usable range"):
        fastnet.step_study(net, x, t, hs=[1e-3, 1e-320])
    with pytest.raises(ValueError, match="naive_entries must be >= 1, got -1"):
        fastnet.step_study(net, x, t, hs=[1e-3], naive_entries=-1)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        fastnet.step_study(net, x, t, hs=[1e-3], seed=-1)


def test_method_must_be_a_name():
    net = fastnet.TwoLayerNet(9, 4, 3, seed=0)
    x, t = np.random.default_rng(1).random((6, 9)), np.arange(6) % 3
    with pytest.raises(ValueError, match="method must be a string, one of 'central'"):
        net.numerical_gradient(x, t, method=["central"])


# -- sizes, init and seeds --------------------------------------------------------------------------

def test_sizes_that_cannot_fit_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"TwoLayerNet\(1000000, 1000000, 10\) .* needs 16.0 TB"):
        fastnet.TwoLayerNet(10**6, 10**6, 10)


def test_size_check_uses_the_available_memory(monkeypatch):
    monkeypatch.setattr(fastnet.network, "available_memory", lambda: 10**9)
    with pytest.raises(ValueError, match=r"needs 12.6 GB to build \(6.4 GB of parameters\), more than the 1.0 GB available"):
        fastnet.TwoLayerNet(784, 10**6, 10)
    assert fastnet.TwoLayerNet(784, 1000, 10).params["W1"].shape == (784, 1000)


def test_weight_init_std_that_overflows_is_refused():
    with pytest.raises(ValueError, match="weight_init_std=1e\\+300 overflows float32"):
        fastnet.TwoLayerNet(5, 3, 2, 1e300, dtype=np.float32)
    net = fastnet.TwoLayerNet(5, 3, 2, 1e300, dtype=np.float64, seed=0)
    assert np.isfinite(net.params["W1"]).all()


@pytest.mark.parametrize("make", [
    lambda: fastnet.TwoLayerNet(5, 3, 2, seed=-1),
    lambda: train(fastnet.TwoLayerNet(9, 4, 3), _data(np.random.default_rng(0)), iters=1, seed=-1),
])
def test_negative_seed_names_seed(make):
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        make()


def test_label_errors_print_plain_ints():
    with pytest.raises(ValueError, match=r"has label 10 outside \[0, 10\)") as info:
        check_labels(np.array([1, 10], dtype=np.int64), 2, 10)
    assert "np.int64" not in str(info.value)


# -- the evaluation schedule ------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(iters=st.integers(1, 300), train_size=st.integers(1, 200), batch_size=st.integers(1, 200),
       every=st.one_of(st.just("epoch"), st.integers(1, 50)))
def test_lazy_schedule_matches_the_rule(iters, train_size, batch_size, every):
    expected = [i for i in range(iters) if is_eval_iteration(i, iters, train_size, batch_size, every)]
    assert list(eval_iterations(iters, train_size, batch_size, every)) == expected
    assert eval_count(iters, train_size, batch_size, every) == len(expected)


def test_schedule_of_a_billion_iterations_is_instant():
    evals = eval_iterations(10**9, 1437, 100)
    assert [next(evals) for _ in range(3)] == [0, 15, 29]
    assert eval_count(10**9, 60000, 100) == (10**9 - 2) * 100 // 60000 + 2


# -- stop and resume --------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size, stop_at", [
    (5, 0), (5, 6), (5, 12),             # one block of batches
    (30000, 0), (30000, 1), (30000, 2),  # two rows per block: stops at, after and inside a block
    (30000, 3), (30000, 10),
])
def test_resume_gives_the_uninterrupted_result_bit_for_bit(batch_size, stop_at):
    data = _data(np.random.default_rng(3))
    kwargs = dict(iters=13, batch_size=batch_size, lr=0.5, seed=11, eval_every=4)
    full_net = fastnet.TwoLayerNet(9, 4, 3, seed=2)
    full = train(full_net, data, **kwargs)

    net = fastnet.TwoLayerNet(9, 4, 3, seed=2)
    part = train(net, data, callback=lambda i, h: i == stop_at, **kwargs)
    assert part.iterations == stop_at + 1
    state = TrainState.from_dict(part.state.to_dict())
    saved = History.from_dict(part.to_dict())
    resumed = train(net, data, history=saved, resume=state, **kwargs)
    assert _same(net, full_net.params)
    assert resumed.without_timing() == full.without_timing()
    assert resumed.state.next_iteration == 13


def test_resume_refuses_a_different_run():
    data = _data(np.random.default_rng(3))
    net = fastnet.TwoLayerNet(9, 4, 3, seed=2)
    part = train(net, data, iters=10, batch_size=5, callback=lambda i, h: i == 3)
    with pytest.raises(ValueError, match="cannot resume: lr is 0.2 but the interrupted run had 0.1"):
        train(net, data, iters=10, batch_size=5, lr=0.2, history=part, resume=part.state)
