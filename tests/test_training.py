"""fastnet.train: the book's SGD loop, its epoch bookkeeping, determinism, validation and History."""

import json
import math

import numba
import numpy as np
import pytest

import fastnet
from fastnet import reference
from fastnet.history import TIMING_FIELDS, History
from fastnet.training import eval_iterations, is_eval_iteration, train

D, H, C = 5, 8, 3


def blobs(n_train=60, n_test=30, seed=1, spread=0.35):
    """Three well-separated Gaussian blobs in D dimensions: ((x_train, t_train), (x_test, t_test))."""
    rng = np.random.default_rng(seed)
    centers = 1.5 * np.eye(C, D)
    out = []
    for n in (n_train, n_test):
        t = rng.integers(0, C, size=n).astype(np.uint8)
        x = centers[t] + spread * rng.standard_normal((n, D)) / math.sqrt(D)
        out.append((x, t))
    return tuple(out)


def make_net(dtype=np.float64, seed=0, std=0.5):
    return fastnet.TwoLayerNet(D, H, C, weight_init_std=std, dtype=dtype, seed=seed)


def book_loop(params, data, iters, batch_size, lr, seed, grad="backprop", h=1e-4):
    """The book's train_neuralnet.py loop on the NumPy reference net, with a Generator for the batches."""
    (x_train, t_train), _ = data
    net = reference.TwoLayerNet.from_params(params, delta=0.0)  # the exact loss, as fastnet computes it
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(iters):
        idx = rng.integers(0, x_train.shape[0], size=batch_size)
        xb, tb = x_train[idx], t_train[idx].astype(np.int64)
        g = net.gradient(xb, tb) if grad == "backprop" else net.numerical_gradient(xb, tb, h=h)
        for k in ("W1", "b1", "W2", "b2"):
            net.params[k] -= lr * g[k]
        losses.append(net.loss(xb, tb))
    return net, losses


def test_training_reduces_loss_and_learns_blobs():
    data = blobs()
    net = make_net()
    hist = train(net, data, iters=300, batch_size=20, lr=1.0, seed=3)
    assert len(hist.loss) == 300
    assert np.mean(hist.loss[-30:]) < 0.5 * np.mean(hist.loss[:30])
    assert hist.test_acc[-1] >= 0.9
    assert hist.train_acc[-1] >= 0.9
    assert all(isinstance(v, float) for v in hist.loss)


@pytest.mark.parametrize("grad", ["backprop", "numerical"])
def test_train_matches_the_books_loop_on_the_reference_net(grad):
    # Same batches (same Generator draws), same update rule: the losses and final parameters agree
    # with the book's loop up to the rounding differences between the kernels and NumPy.
    data = blobs()
    net = make_net()
    start = {k: v.copy() for k, v in net.params.items()}
    iters = 40 if grad == "backprop" else 8
    hist = train(net, data, iters=iters, batch_size=10, lr=0.5, grad=grad, h=1e-4, seed=11, threads=1)
    ref, ref_losses = book_loop(start, data, iters, 10, 0.5, 11, grad=grad)
    np.testing.assert_allclose(hist.loss, ref_losses, rtol=1e-9)
    for k in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(net.params[k], ref.params[k], rtol=1e-9, atol=1e-12)
    assert hist.train_acc[-1] == pytest.approx(ref.accuracy(data[0][0], data[0][1]))


@pytest.mark.parametrize("grad,iters", [("backprop", 60), ("numerical", 6)])
def test_same_seed_gives_identical_history(grad, iters):
    data = blobs()
    runs = []
    for _ in range(2):
        net = make_net(seed=5)
        hist = train(net, data, iters=iters, batch_size=16, lr=0.3, grad=grad, seed=123, threads=1, eval_every=2)
        runs.append((hist, net))
    (h1, n1), (h2, n2) = runs
    assert h1.without_timing() == h2.without_timing()
    assert h1.loss == h2.loss  # exact float equality, list by list
    assert h1.train_acc == h2.train_acc and h1.test_acc == h2.test_acc
    for k in n1.params:
        assert np.array_equal(n1.params[k], n2.params[k])
    # And a different seed really draws other batches.
    h3 = train(make_net(seed=5), data, iters=iters, batch_size=16, lr=0.3, grad=grad, seed=124, threads=1)
    assert h3.loss != h1.loss


def test_seed_accepts_a_generator_and_records_int_seeds():
    data = blobs()
    h1 = train(make_net(), data, iters=20, batch_size=8, seed=np.random.default_rng(9))
    h2 = train(make_net(), data, iters=20, batch_size=8, seed=9)
    assert h1.loss == h2.loss
    assert h1.settings["seed"] is None and h2.settings["seed"] == 9
    h3 = train(make_net(), data, iters=3, batch_size=8, seed=np.int64(9))
    assert h3.settings["seed"] == 9


def test_params_updated_in_place_and_dtype_kept():
    data = blobs()
    for dtype in (np.float32, np.float64):
        net = make_net(dtype=dtype)
        ids = {k: id(v) for k, v in net.params.items()}
        before = {k: v.copy() for k, v in net.params.items()}
        hist = train(net, data, iters=10, batch_size=8, lr=0.5, seed=0)
        for k, v in net.params.items():
            assert id(v) == ids[k]
            assert v.dtype == dtype
            assert not np.array_equal(v, before[k])
        assert hist.settings["dtype"] == np.dtype(dtype).name


def test_one_hot_labels_give_the_same_run_as_indices():
    (x, t), (xt, tt) = blobs()
    eye = np.eye(C)
    h_idx = train(make_net(), ((x, t), (xt, tt)), iters=25, batch_size=8, seed=2, threads=1)
    h_hot = train(make_net(), ((x, eye[t]), (xt, eye[tt])), iters=25, batch_size=8, seed=2, threads=1)
    assert h_idx.without_timing() == h_hot.without_timing()


@pytest.mark.parametrize(
    "train_size,batch_size,iters",
    [(60, 10, 25), (60, 10, 23), (600, 100, 1801), (60, 60, 5), (60, 100, 4)],
)
def test_epoch_bookkeeping_is_the_books_rule_when_the_ratio_is_whole(train_size, batch_size, iters):
    ipe = max(train_size / batch_size, 1)
    book = [i for i in range(iters) if i % ipe == 0]
    expected = book + ([iters - 1] if book[-1] != iters - 1 else [])
    assert list(eval_iterations(iters, train_size, batch_size)) == expected


def test_epoch_bookkeeping_with_a_fractional_ratio():
    # 25 samples, batches of 10: 2.5 iterations per epoch. The k-th epoch boundary is the first
    # iteration that has drawn k * 25 samples: i = 3, 5, 8, 10, 13, 15, ...
    its = list(eval_iterations(21, 25, 10))
    assert its == [0, 3, 5, 8, 10, 13, 15, 18, 20]
    # digits-like: 1437 samples, batches of 100, 10000 iterations -> one evaluation per epoch boundary
    its = list(eval_iterations(10000, 1437, 100))
    assert len(its) == (9999 * 100) // 1437 + 2  # i = 0, each boundary crossed, and the last iteration
    gaps = np.diff(its[:-1])
    assert set(gaps.tolist()) <= {14, 15}


def test_history_records_evaluations_at_the_epoch_iterations():
    data = blobs(n_train=60)
    hist = train(make_net(), data, iters=25, batch_size=10, seed=0)
    assert hist.eval_iters == [0, 6, 12, 18, 24]
    assert len(hist.train_acc) == len(hist.test_acc) == len(hist.eval_seconds) == 5
    assert hist.epochs == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert hist.settings["iter_per_epoch"] == 6.0
    assert all(0.0 <= a <= 1.0 for a in hist.train_acc + hist.test_acc)
    hist = train(make_net(), data, iters=10, batch_size=10, seed=0, eval_every=4)
    assert hist.eval_iters == [0, 4, 8, 9]


def test_accuracies_are_measured_on_the_full_sets():
    data = blobs()
    net = make_net()
    hist = train(net, data, iters=7, batch_size=10, seed=0)
    (x, t), (xt, tt) = data
    assert hist.train_acc[-1] == pytest.approx(float(net.accuracy(x, t)))
    assert hist.test_acc[-1] == pytest.approx(float(net.accuracy(xt, tt)))


def test_callback_sees_every_iteration_and_can_stop_early():
    data = blobs()
    seen = []

    def cb(i, history):
        seen.append((i, len(history.loss)))
        return True if i == 8 else None

    hist = train(make_net(), data, iters=100, batch_size=10, seed=0, callback=cb)
    assert seen == [(i, i + 1) for i in range(9)]
    assert len(hist.loss) == 9
    assert hist.eval_iters == [0, 6, 8]  # the stop iteration is evaluated too
    with pytest.raises(TypeError, match="callback"):
        train(make_net(), data, iters=2, callback=42)


def test_threads_sets_and_restores_numba_threads():
    data = blobs()
    before = numba.get_num_threads()
    inside = []
    train(make_net(), data, iters=3, batch_size=4, threads=1, callback=lambda i, h: inside.append(numba.get_num_threads()))
    assert inside == [1, 1, 1]
    assert numba.get_num_threads() == before


def test_timings_are_recorded():
    hist = train(make_net(), blobs(), iters=20, batch_size=10, seed=0)
    parts = hist.seconds_gradient + hist.seconds_update + hist.seconds_loss + hist.seconds_eval
    assert hist.seconds_gradient > 0 and hist.seconds_update > 0 and hist.seconds_eval > 0
    assert parts <= hist.seconds_total
    assert hist.eval_seconds == sorted(hist.eval_seconds)


def test_progress_bar_goes_to_stderr(capsys):
    train(make_net(), blobs(), iters=15, batch_size=10, seed=0, progress=True)
    captured = capsys.readouterr()
    assert "15/15" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        ({"iters": 0}, ValueError, "iters"),
        ({"iters": 2.5}, TypeError, "iters"),
        ({"iters": True}, TypeError, "iters"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": "10"}, TypeError, "batch_size"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": -0.1}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"lr": float("inf")}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"grad": "adam"}, ValueError, "grad"),
        ({"grad": None}, ValueError, "grad"),
        ({"h": 0.0}, ValueError, "h"),
        ({"h": float("inf")}, ValueError, "h"),
        ({"eval_every": 0}, ValueError, "eval_every"),
        ({"eval_every": "iteration"}, ValueError, "eval_every"),
        ({"threads": 0}, ValueError, "threads"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "abc"}, TypeError, "seed"),
        ({"seed": True}, TypeError, "seed"),
    ],
)
def test_bad_arguments_are_rejected_before_training(kwargs, exc, name):
    net = make_net()
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(exc, match=name):
        train(net, blobs(), **kwargs)
    for k in before:
        assert np.array_equal(net.params[k], before[k])


def test_bad_data_is_rejected_naming_the_array():
    (x, t), (xt, tt) = blobs()
    net = make_net()
    cases = [
        ((x, t), TypeError, "data"),
        ([(x, t)], TypeError, "data"),
        (((x, t[:-1]), (xt, tt)), ValueError, "t_train"),
        (((x[:, :-1], t), (xt, tt)), ValueError, "x_train"),
        (((x, t), (xt[:, :2], tt)), ValueError, "x_test"),
        (((x, t), (xt, tt + 3)), ValueError, "t_test"),
        (((x, t + 0.5), (xt, tt)), TypeError, "t_train"),
        (((x[:0], t[:0]), (xt, tt)), ValueError, "x_train"),
        (((np.where(x > 0.5, np.nan, x), t), (xt, tt)), ValueError, "x_train"),
        (((x.astype(str), t), (xt, tt)), TypeError, "x_train"),
        (((x, np.full((len(t), C), 0.5)), (xt, tt)), ValueError, "one-hot"),
        (((x, t[:, None]), (xt, tt)), ValueError, "t_train"),
    ]
    for data, exc, name in cases:
        with pytest.raises(exc, match=name):
            train(net, data, iters=2)


def test_net_without_params_is_rejected():
    with pytest.raises(TypeError, match="net"):
        train(object(), blobs(), iters=2)


def test_history_json_round_trip(tmp_path):
    hist = train(make_net(), blobs(), iters=12, batch_size=10, seed=4)
    path = tmp_path / "h.json"
    hist.to_json(path)
    back = History.from_json(path)
    assert back == hist
    assert back.loss == hist.loss  # floats survive JSON bit for bit
    assert History.from_dict(hist.to_dict()) == hist
    assert set(TIMING_FIELDS) <= set(hist.to_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["h.json"]
    assert json.loads(path.read_text())["format"] == "fastnet.history"


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: d.pop("loss"), "loss"),
        (lambda d: d.update(train_acc=[0.5]), "train_acc"),
        (lambda d: d.update(loss=["x"]), "loss"),
        (lambda d: d.update(seconds_total="fast"), "seconds_total"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=99), "version"),
    ],
)
def test_history_from_dict_rejects_malformed(edit, match):
    d = train(make_net(), blobs(), iters=8, batch_size=10, seed=4).to_dict()
    edit(d)
    with pytest.raises(ValueError, match=match):
        History.from_dict(d)


def test_history_from_json_rejects_non_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        History.from_json(p)


def test_is_eval_iteration_first_and_last():
    assert is_eval_iteration(0, 10, 1000, 10)
    assert is_eval_iteration(9, 10, 1000, 10)
    assert not is_eval_iteration(5, 10, 1000, 10)


@pytest.mark.parametrize(
    "n_train,batch_size,iters,eval_every",
    [(60, 10, 31, "epoch"), (25, 10, 17, "epoch"), (60, 7, 40, "epoch"), (30, 64, 6, "epoch"), (60, 10, 17, 5)],
)
def test_recorded_evaluations_follow_eval_iterations(n_train, batch_size, iters, eval_every):
    data = blobs(n_train=n_train)
    hist = train(make_net(), data, iters=iters, batch_size=batch_size, seed=0, eval_every=eval_every)
    assert hist.eval_iters == list(eval_iterations(iters, n_train, batch_size, eval_every))


def test_too_many_threads_is_rejected_up_front():
    from fastnet.threads import max_threads

    with pytest.raises(ValueError, match="threads"):
        train(make_net(), blobs(), iters=2, threads=max_threads() + 1)
