"""Mini-batch gradient descent for the two-layer net, following the book's `train_neuralnet.py`."""

from __future__ import annotations

import dataclasses
import numbers
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import NDArray

from fastnet._typing import ArrayLike, FloatArray, NDArray, Params, Seed
from fastnet.history import History
from fastnet.threads import check_threads, num_threads
from fastnet.validation import (
    check_inputs,
    check_labels,
    check_seed,
    check_step_for,
    positive_float,
    positive_int,
)

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


def eval_iterations(iters: int, train_size: int, batch_size: int,
                    eval_every: str | int = "epoch") -> Iterator[int]:
    """The iterations of a full run (no early stop) that are followed by an evaluation, in order.

    A generator: it steps from one evaluation to the next, so a run of 10^9 iterations costs
    nothing until it is consumed (use `eval_count` for how many there are).

    Parameters
    ----------
    iters, train_size, batch_size : int
        As for `train`.
    eval_every : "epoch" or int
        As for `train`.

    Yields
    ------
    int
        The evaluated iterations, ascending; the first is 0 and the last ``iters - 1``.

    Examples
    --------
    >>> list(eval_iterations(10, 250, 100))
    [0, 3, 5, 8, 9]
    """
    if iters < 1:
        return
    i = 0
    while True:
        yield i
        if i >= iters - 1:
            return
        i = _next_eval(i, iters, train_size, batch_size, eval_every)


def eval_count(iters: int, train_size: int, batch_size: int, eval_every: str | int = "epoch") -> int:
    """How many iterations `eval_iterations` yields, computed in O(1).

    Parameters
    ----------
    iters, train_size, batch_size : int
        As for `train`.
    eval_every : "epoch" or int
        As for `train`.

    Returns
    -------
    int

    Examples
    --------
    >>> eval_count(10, 250, 100), eval_count(10**9, 1438, 100)
    (5, 69541031)
    """
    if iters <= 2:
        return max(iters, 0)
    inner = iters - 2  # iterations 1 .. iters - 2, between the always-evaluated first and last
    if eval_every == "epoch":
        # Iteration i is an epoch boundary when i = ceil(k * train_size / batch_size) for some k >= 1:
        # distinct k give distinct i when train_size >= batch_size; otherwise every i is one.
        boundaries = min(inner, inner * batch_size // train_size)
    else:
        boundaries = inner // int(eval_every)
    return 2 + boundaries


@dataclass
class TrainState:
    """Where an interrupted run stopped, enough to continue it with the same batches.

    next_iteration: the first iteration not run. The batch indices are drawn in blocks;
    rng_state is the bit generator's state before the block that starts at block_start drew.
    extra_eval: the last evaluation was added because the run stopped, not by the schedule.

    Parameters
    ----------
    next_iteration, block_start : int
    rng_state : dict
    extra_eval : bool, default False

    Examples
    --------
    >>> TrainState.from_dict(TrainState(5, 0, {"state": 1}).to_dict()).next_iteration
    5
    """

    next_iteration: int
    block_start: int
    rng_state: dict[str, Any]
    extra_eval: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the PCG64 state holds Python ints, which JSON keeps exactly).

        Returns
        -------
        dict

        Examples
        --------
        >>> TrainState(3, 0, {}).to_dict()["next_iteration"]
        3
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> "TrainState":
        """Rebuild from to_dict()'s output; ValueError on anything else.

        Parameters
        ----------
        d : dict
            What `to_dict` returned.

        Returns
        -------
        TrainState

        Raises
        ------
        ValueError
            Not such a dict.

        Examples
        --------
        >>> TrainState.from_dict({"next_iteration": 2, "block_start": 0, "rng_state": {}}).block_start
        0
        """
        if not isinstance(d, dict):
            raise ValueError("training state must be a dict")
        try:
            state = cls(int(d["next_iteration"]), int(d["block_start"]), dict(d["rng_state"]),
                        bool(d.get("extra_eval", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"training state is incomplete or malformed ({exc})") from None
        if not 0 <= state.block_start <= state.next_iteration:
            raise ValueError("training state has block_start outside [0, next_iteration]")
        return state


def train(
    net: Any,
    data: Any,
    *,
    iters: int = 10000,
    batch_size: int = 100,
    lr: float = 0.1,
    grad: str = "backprop",
    h: float = 1e-4,
    seed: int | np.random.Generator | None = None,
    eval_every: str | int = "epoch",
    callback: Callable[[int, History], bool | None] | None = None,
    threads: int | None = None,
    progress: bool = False,
    weight_decay: float = 0.0,
    history: History | None = None,
    resume: TrainState | None = None,
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
    weight_decay=lambda adds the book's L2 penalty (ch. 6, `weight_decay_lambda`): the loss gains
    ``lambda / 2 (|W1|^2 + |W2|^2)`` and the gradients lambda W1 and lambda W2 (biases are not
    decayed). For grad="numerical" that term is added exactly: the central difference of a
    quadratic is its derivative.

    Each step is all or nothing: the new parameters are computed aside and checked finite before
    any is written, so a step that fails leaves the net as it was before it. The returned
    History's `state` (a TrainState) says where the run stopped; pass it back as `resume`, with
    that History as `history` and the same net, data and settings, to continue: the result is the
    same, bit for bit, as a run that was never stopped.

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
    weight_decay : float, default 0
        L2 penalty lambda on W1 and W2 (the book's ``weight_decay_lambda``).
    history, resume : History and TrainState, optional
        An interrupted run's History and its ``state``, to continue it.

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
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
        raise TypeError(f"weight_decay must be a real number >= 0, got {weight_decay!r}")
    if not np.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay!r}")
    weight_decay = float(weight_decay)
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
    check_seed(seed)
    rng = np.random.default_rng(seed)

    dtype, sizes = _net_layout(net)
    if grad == "numerical":
        check_step_for(h, dtype, (net.params[k] for k in _PARAM_NAMES))
    for k in _PARAM_NAMES:
        if not net.params[k].flags.writeable:
            raise ValueError(f"net.params[{k!r}] is read-only; training updates it in place")
    (x_train, t_train), (x_test, t_test) = _prepare_data(data, dtype, sizes)

    train_size = x_train.shape[0]
    settings = {
        "iters": iters,
        "batch_size": batch_size,
        "lr": lr,
        "grad": grad,
        "h": h,
        "weight_decay": weight_decay,
        "seed": int(seed) if isinstance(seed, numbers.Integral) else None,
        "sizes": list(sizes),
        "loss": getattr(net, "loss_name", "cross_entropy"),
        "dtype": dtype.name,
        "train_size": int(train_size),
        "test_size": int(x_test.shape[0]),
        "eval_every": eval_every,
        "iter_per_epoch": max(train_size / batch_size, 1.0),
        "threads": threads,
    }
    if resume is None:
        if history is not None:
            raise ValueError("history= continues a run and needs resume= (its TrainState)")
        history = History(settings=settings)
    else:
        if not isinstance(resume, TrainState):
            raise TypeError(f"resume must be a TrainState, got {type(resume).__name__}")
        if not isinstance(history, History):
            raise TypeError("resume needs the interrupted run's History as history=")
        _check_same_run(history.settings, settings)
        if not resume.next_iteration <= iters or len(history.loss) != resume.next_iteration:
            raise ValueError(f"resume state says iteration {resume.next_iteration}, but the history "
                             f"has {len(history.loss)} losses of {iters} iterations")
        try:
            rng.bit_generator.state = resume.rng_state
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"resume state has an unusable rng_state ({exc})") from None
        if resume.extra_eval and history.eval_iters:
            # The interrupted run evaluated where it stopped; the uninterrupted run has no such entry.
            for name in ("train_acc", "test_acc", "eval_iters", "eval_seconds"):
                getattr(history, name).pop()
        history.settings["threads"] = threads

    if threads is None:
        return _loop(net, x_train, t_train, x_test, t_test, rng, history, callback, progress, resume)
    with num_threads(threads):
        return _loop(net, x_train, t_train, x_test, t_test, rng, history, callback, progress, resume)


def _check_same_run(saved: dict[str, Any], settings: dict[str, Any]) -> None:
    for key, value in settings.items():
        if key != "threads" and saved.get(key) != value:
            raise ValueError(f"cannot resume: {key} is {value!r} but the interrupted run had {saved.get(key)!r}")


def _next_eval(i: int, iters: int, train_size: int, batch_size: int, eval_every: str | int) -> int:
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


def _loop(net: Any, x_train: NDArray[Any], t_train: NDArray[np.int64], x_test: NDArray[Any],
          t_test: NDArray[np.int64], rng: np.random.Generator, history: History,
          callback: Callable[[int, History], bool | None] | None, progress: bool,
          resume: TrainState | None) -> History:
    s = history.settings
    iters, batch_size, train_size = s["iters"], s["batch_size"], s["train_size"]
    eval_every, grad_name, h = s["eval_every"], s["grad"], s["h"]
    params = net.params
    lr = np.dtype(s["dtype"]).type(s["lr"])
    # (name, param, lr * grad, new value): the new values are checked before any param is written.
    updates = [(k, params[k], np.empty_like(params[k]), np.empty_like(params[k])) for k in _PARAM_NAMES]
    gradient: Callable[[FloatArray, NDArray[np.int64]], Params]
    if grad_name == "backprop":
        gradient = net.gradient
    else:
        def gradient(x: FloatArray, t: NDArray[np.int64]) -> Params:
            grads: Params = net.numerical_gradient(x, t, h=h)
            return grads
    decay = float(s.get("weight_decay", 0.0))
    if decay:
        data_gradient = gradient
        lam = np.dtype(s["dtype"]).type(decay)

        def decayed(x: FloatArray, t: NDArray[np.int64]) -> Params:
            g = dict(data_gradient(x, t))
            for k in ("W1", "W2"):
                g[k] = g[k] + lam * params[k]
            return g

        gradient = decayed

    def net_loss(x: FloatArray, t: NDArray[np.int64]) -> float:
        value = float(net.loss(x, t))
        if decay:  # the recorded loss includes the penalty, as the book's does
            value += 0.5 * decay * sum(float(np.sum(np.square(params[k], dtype=np.float64))) for k in ("W1", "W2"))
        return value

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
    first = 0
    block_start, block_state = 0, rng.bit_generator.state
    t_grad, t_update = history.seconds_gradient, history.seconds_update
    t_loss, t_eval = history.seconds_loss, history.seconds_eval
    # On resume, times continue from where the interrupted run left off.
    start = bar_time = perf() - history.seconds_total
    if resume is not None:
        first = resume.next_iteration
        block_start, block_state = resume.block_start, resume.rng_state
        if first > block_start:
            block = rng.integers(0, train_size, size=(min(block_rows, iters - block_start), batch_size))
            row = first - block_start
    next_eval = 0 if first == 0 else _next_eval(first - 1, iters, train_size, batch_size, eval_every)
    if bar is not None:
        bar.update(first)
    last = first - 1
    extra_eval = False
    try:
        for i in range(first, iters):
            if row == block_rows:
                block_start, block_state = i, rng.bit_generator.state
                block = rng.integers(0, train_size, size=(min(block_rows, iters - i), batch_size))
                row = 0
            assert block is not None
            idx = block[row]
            row += 1
            xb = take_x(idx, axis=0)
            tb = take_t(idx, axis=0)

            t0 = perf()
            g = gradient(xb, tb)
            t1 = perf()
            for k, p, step, new in updates:
                # step = lr * grad in the params' dtype, new = params - step: the same bits as an
                # in-place update, but nothing is written until every new value is known finite.
                with np.errstate(over="ignore", invalid="ignore"):  # reported just below, as an error
                    np.multiply(g[k], lr, out=step, casting="same_kind")
                    np.subtract(p, step, out=new)
                if not np.isfinite(new).all():
                    raise ValueError(f"iteration {i}: the update of {k} is not finite (lr {s['lr']:g}, "
                                     f"{grad_name} gradient); the net is left as before this iteration")
            for k, p, step, new in updates:
                if not p.flags.writeable:
                    raise ValueError(f"iteration {i}: net.params[{k!r}] became read-only; "
                                     "the net is left as before this iteration")
            for k, p, step, new in updates:
                np.copyto(p, new)
            t2 = perf()
            loss = float(net_loss(xb, tb))
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
            extra_eval = not is_eval_iteration(last, iters, train_size, batch_size, eval_every)
    finally:
        if row == block_rows or block is None:
            # The next iteration starts a new block: the generator is exactly where it must be.
            block_start, block_state = last + 1, rng.bit_generator.state
        history.state = TrainState(last + 1, block_start, dict(block_state), extra_eval)
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
