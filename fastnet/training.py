"""Mini-batch gradient descent for the two-layer net, following the book's `train_neuralnet.py`."""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from fastnet._typing import ArrayLike, FloatArray, NDArray, Params, Seed
from fastnet.history import History
from fastnet.threads import check_threads, num_threads
from fastnet.validation import check_inputs, check_labels, positive_float, positive_int

if TYPE_CHECKING:
    from fastnet.network import TwoLayerNet

#: ((x_train, t_train), (x_test, t_test))
Data = tuple[tuple[ArrayLike, ArrayLike], tuple[ArrayLike, ArrayLike]]
#: "epoch" or a number of iterations
EvalEvery = Union[str, int]

GRADS = ("backprop", "numerical")
_PARAM_NAMES = ("W1", "b1", "W2", "b2")


def is_eval_iteration(i: int, iters: int, train_size: int, batch_size: int, eval_every: EvalEvery = "epoch") -> bool:
    """Whether iteration i (0-based) of `iters` ends with an evaluation on the full train and test sets.

    With eval_every="epoch", evaluation happens at i = 0 and at the first iteration i with
    i * batch_size >= k * train_size for each k = 1, 2, ...: one epoch = train_size / batch_size
    iterations (at least 1). When train_size is a multiple of batch_size this is exactly the book's
    `i % iter_per_epoch == 0` (e.g. MNIST: i = 0, 600, 1200, ...); otherwise epochs of
    floor or ceil(train_size / batch_size) iterations alternate so that they average the exact ratio.
    With an int eval_every = k, evaluation happens at i % k == 0. The last iteration is always
    evaluated too, so the final accuracies describe the returned parameters.

    Parameters
    ----------
    i : int
        The iteration, 0-based.
    iters : int
        Iterations of the run.
    train_size : int
        Rows of the training set.
    batch_size : int
        Rows per mini-batch.
    eval_every : "epoch" or int
        Evaluation schedule.

    Returns
    -------
    bool

    Examples
    --------
    >>> [i for i in range(10) if is_eval_iteration(i, 10, 300, 100)]
    [0, 3, 6, 9]
    """
    if i == iters - 1 or i == 0:
        return True
    if eval_every == "epoch":
        return (i * batch_size) // train_size != ((i - 1) * batch_size) // train_size
    return i % int(eval_every) == 0


def eval_iterations(iters: int, train_size: int, batch_size: int, eval_every: EvalEvery = "epoch") -> list[int]:
    """The iterations of a full run (no early stop) that are followed by an evaluation, as a list.

    Parameters
    ----------
    iters, train_size, batch_size : int
        As for `train`.
    eval_every : "epoch" or int
        As for `train`.

    Returns
    -------
    list of int
        The evaluated iterations, ascending; the first is 0 and the last ``iters - 1``.

    Examples
    --------
    >>> eval_iterations(10, 250, 100)
    [0, 3, 5, 8, 9]
    """
    return [i for i in range(iters) if is_eval_iteration(i, iters, train_size, batch_size, eval_every)]


def train(
    net: TwoLayerNet,
    data: Data,
    *,
    iters: int = 10000,
    batch_size: int = 100,
    lr: float = 0.1,
    grad: str = "backprop",
    h: float = 1e-4,
    seed: Seed = None,
    eval_every: EvalEvery = "epoch",
    callback: Callable[[int, History], object] | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> History:
    """Train `net` in place by mini-batch SGD on data = ((x_train (N,D), t_train), (x_test (M,D), t_test)); return a History.

    Each iteration draws batch_size indices with replacement from a `numpy.random.default_rng(seed)`
    generator (seed: int, None or a Generator), computes grad = net.gradient(xb, tb) ("backprop") or
    net.numerical_gradient(xb, tb, h=h) ("numerical"), updates params[key] -= lr * grad[key] in place,
    then records net.loss(xb, tb). Train and test accuracy on the full sets are measured at the
    iterations given by `is_eval_iteration` (every epoch, or every `eval_every` iterations if an int).
    Labels t are (N,) class indices or (N, C) one-hot. The same seed, data and initial net give an
    identical history apart from the timing fields, whatever the thread count (the parallel
    kernels sum every entry in a fixed order on one thread).

    callback(i, history), if given, runs after iteration i (and after its evaluation, if any);
    returning True stops training after that iteration (which is then evaluated if it was not).
    threads=n runs with numba's thread count set to n and restores it afterwards.
    A Generator passed as `seed` is advanced by blocks of batches, so after an early stop it is
    further along than the batches used.
    progress=True shows a tqdm bar with the current loss on stderr.

    Parameters
    ----------
    net : TwoLayerNet
        Trained in place.
    data : ((x_train, t_train), (x_test, t_test))
        Inputs (N, D) and (M, D); labels as class indices or one-hot rows.
    iters : int, default 10000
        Iterations (mini-batch updates).
    batch_size : int, default 100
        Rows per mini-batch, drawn with replacement.
    lr : float, default 0.1
        Learning rate.
    grad : {"backprop", "numerical"}
        How each gradient is computed.
    h : float, default 1e-4
        Step of the numerical gradient.
    seed : int, numpy.random.Generator or None
        Seed of the batch draws.
    eval_every : "epoch" or int
        Evaluation schedule (see `is_eval_iteration`).
    callback : callable, optional
        ``callback(i, history)``; returning True stops training.
    threads : int, optional
        numba threads for the run (the previous count is restored afterwards).
    progress : bool, default False
        Show a progress bar on stderr.

    Returns
    -------
    History
        Losses, accuracies, timings and the settings of the run.

    Raises
    ------
    TypeError, ValueError
        A bad argument, named in the message, found before any iteration runs.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnet import TwoLayerNet
    >>> rng = np.random.default_rng(0)
    >>> x, t = rng.random((40, 4)), np.arange(40) % 2
    >>> net = TwoLayerNet(4, 5, 2, seed=0)
    >>> history = train(net, ((x[:30], t[:30]), (x[30:], t[30:])), iters=20, batch_size=10, seed=0)
    >>> history.iterations, history.eval_iters[-1]
    (20, 19)
    """
    iters = positive_int(iters, "iters")
    batch_size = positive_int(batch_size, "batch_size")
    lr = positive_float(lr, "lr")
    h = positive_float(h, "h")
    if not isinstance(grad, str) or grad not in GRADS:
        raise ValueError(f"grad must be one of {', '.join(map(repr, GRADS))}, got {grad!r}")
    if eval_every != "epoch":
        if isinstance(eval_every, str):
            raise ValueError(f"eval_every must be 'epoch' or a positive int, got {eval_every!r}")
        eval_every = positive_int(eval_every, "eval_every")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if threads is not None:
        threads = check_threads(threads)
    if isinstance(seed, bool):
        raise TypeError("seed must be an int, None or a numpy.random.Generator, got bool")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"seed must be a non-negative int, None or a numpy.random.Generator ({exc})") from None

    dtype, sizes = _net_layout(net)
    (x_train, t_train), (x_test, t_test) = _prepare_data(data, dtype, sizes)

    train_size = x_train.shape[0]
    settings = {
        "iters": iters,
        "batch_size": batch_size,
        "lr": lr,
        "grad": grad,
        "h": h,
        "seed": int(seed) if isinstance(seed, numbers.Integral) else None,
        "sizes": list(sizes),
        "dtype": dtype.name,
        "train_size": int(train_size),
        "test_size": int(x_test.shape[0]),
        "eval_every": eval_every,
        "iter_per_epoch": max(train_size / batch_size, 1.0),
        "threads": threads,
    }
    history = History(settings=settings)

    if threads is None:
        return _loop(net, x_train, t_train, x_test, t_test, rng, history, callback, progress)
    with num_threads(threads):
        return _loop(net, x_train, t_train, x_test, t_test, rng, history, callback, progress)


def _next_eval(i: int, iters: int, train_size: int, batch_size: int, eval_every: EvalEvery) -> int:
    """The first evaluated iteration after iteration i (iters - 1 at the latest)."""
    if eval_every == "epoch":
        # First j with j * batch_size >= k * train_size for the next epoch k after iteration i.
        k = (i * batch_size) // train_size + 1
        j = -(-k * train_size // batch_size)
    else:
        j = (i // int(eval_every) + 1) * int(eval_every)
    return min(j, iters - 1)


# Batch indices are drawn this many at a time: one Generator call per block instead of one per
# iteration (~7 us each). With default_rng's PCG64 the indices are the same as drawing each batch
# separately, as the book does (tests compare with a per-iteration loop).
_INDEX_BLOCK = 1 << 16


def _loop(net: TwoLayerNet, x_train: FloatArray, t_train: NDArray[np.int64], x_test: FloatArray,
          t_test: NDArray[np.int64], rng: np.random.Generator, history: History,
          callback: Callable[[int, History], object] | None, progress: bool) -> History:
    s = history.settings
    iters, batch_size, train_size = s["iters"], s["batch_size"], s["train_size"]
    eval_every, grad_name, h = s["eval_every"], s["grad"], s["h"]
    params = net.params
    lr = np.dtype(s["dtype"]).type(s["lr"])
    updates = [(k, params[k], np.empty_like(params[k])) for k in _PARAM_NAMES]
    gradient: Callable[[FloatArray, NDArray[np.int64]], Params]
    if grad_name == "backprop":
        gradient = net.gradient
    else:
        def gradient(x: FloatArray, t: NDArray[np.int64]) -> Params:
            return net.numerical_gradient(x, t, h=h)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=iters, desc=f"train ({grad_name})", unit="it", file=sys.stderr, dynamic_ncols=True)

    loss_list = history.loss
    perf = time.perf_counter
    take_x, take_t = x_train.take, t_train.take
    block_rows = max(1, _INDEX_BLOCK // batch_size)
    block: NDArray[np.int64] | None = None
    row = block_rows
    next_eval = 0
    t_grad = t_update = t_loss = t_eval = 0.0
    start = bar_time = perf()
    last = -1
    try:
        for i in range(iters):
            if row == block_rows:
                block = rng.integers(0, train_size, size=(min(block_rows, iters - i), batch_size))
                row = 0
            idx = block[row]  # type: ignore[index]  # drawn on the first iteration
            row += 1
            xb = take_x(idx, axis=0)
            tb = take_t(idx, axis=0)

            t0 = perf()
            g = gradient(xb, tb)
            t1 = perf()
            for k, p, step in updates:
                # step = lr * grad in the params' dtype, then params -= step in place.
                np.multiply(g[k], lr, out=step, casting="same_kind")
                np.subtract(p, step, out=p)
            t2 = perf()
            loss = float(net.loss(xb, tb))
            t3 = perf()
            loss_list.append(loss)
            t_grad += t1 - t0
            t_update += t2 - t1
            t_loss += t3 - t2
            last = i

            if i == next_eval:
                t_eval += _evaluate(net, x_train, t_train, x_test, t_test, history, i, start)
                next_eval = _next_eval(i, iters, train_size, batch_size, eval_every)
            if bar is not None and (t3 - bar_time >= 0.1 or i == iters - 1):
                # Redrawing the bar costs microseconds: do it at most ten times a second.
                bar.set_postfix_str(f"loss={loss:.4f}", refresh=False)
                bar.update(i + 1 - bar.n)
                bar_time = t3
            if callback is not None and callback(i, history) is True:
                break
        if last >= 0 and (not history.eval_iters or history.eval_iters[-1] != last):
            t_eval += _evaluate(net, x_train, t_train, x_test, t_test, history, last, start)
    finally:
        if bar is not None:
            bar.update(len(loss_list) - bar.n)
            bar.close()
        history.seconds_gradient = t_grad
        history.seconds_update = t_update
        history.seconds_loss = t_loss
        history.seconds_eval = t_eval
        history.seconds_total = perf() - start
    return history


def _evaluate(net: TwoLayerNet, x_train: FloatArray, t_train: NDArray[np.int64], x_test: FloatArray,
              t_test: NDArray[np.int64], history: History, i: int, start: float) -> float:
    t0 = time.perf_counter()
    history.train_acc.append(float(net.accuracy(x_train, t_train)))
    history.test_acc.append(float(net.accuracy(x_test, t_test)))
    t1 = time.perf_counter()
    history.eval_iters.append(i)
    history.eval_seconds.append(t1 - start)
    return t1 - t0


def _net_layout(net: TwoLayerNet) -> tuple[np.dtype[Any], tuple[int, int, int]]:
    """The net's float dtype and (input, hidden, output) sizes, read from its params."""
    params = getattr(net, "params", None)
    if not isinstance(params, dict):
        raise TypeError(f"net must be a TwoLayerNet (with a `params` dict), got {type(net).__name__}")
    for name in ("gradient", "numerical_gradient", "loss", "accuracy"):
        if not callable(getattr(net, name, None)):
            raise TypeError(f"net must have a {name}() method, got {type(net).__name__}")
    missing = [k for k in _PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"net.params is missing {', '.join(missing)}")
    dtype = np.dtype(getattr(net, "dtype", params["W1"].dtype))
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"net dtype must be float32 or float64, got {dtype}")
    for k in _PARAM_NAMES:
        p = params[k]
        if not isinstance(p, np.ndarray) or p.dtype != dtype:
            raise ValueError(f"net.params[{k!r}] must be a {dtype} ndarray")
    W1, W2 = params["W1"], params["W2"]
    return dtype, (W1.shape[0], W1.shape[1], W2.shape[1])


def _prepare_data(data: Data, dtype: np.dtype[Any],
                  sizes: tuple[int, int, int]) -> list[tuple[FloatArray, NDArray[np.int64]]]:
    """Check ((x_train, t_train), (x_test, t_test)) once and convert: x to contiguous `dtype`, t to int64 indices."""
    try:
        (x_train, t_train), (x_test, t_test) = data
    except (TypeError, ValueError):
        raise TypeError(
            "data must be ((x_train, t_train), (x_test, t_test)), "
            f"got {type(data).__name__}"
        ) from None
    d, _, c = sizes
    # The net's own checks, done here once on the full sets, so that the per-iteration calls on
    # batches cut from these arrays find them already in the right dtype and layout.
    out = []
    for part, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        x = check_inputs(x, d, dtype, name=f"x_{part}")
        t = check_labels(t, x.shape[0], c, name=f"t_{part}")
        out.append((x, t))
    return out
