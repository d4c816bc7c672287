"""`fastnet train`: the book's experiment (two-layer net, mini-batch SGD) with backprop or numerical gradients."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from typing import Any

import numpy as np

from fastnet.commands.argtypes import nonnegative_float, nonnegative_int, positive_float, positive_int
from fastnet.commands.data import check_data_name, load_error_text, t10k_only_note

HELP = "train the two-layer net by mini-batch SGD (book ch. 4) and write history.json, params.npz, curves.png"

# Table rows to aim for when there are many epochs (digits: ~700), plus the last one.
TABLE_ROWS = 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `fastnet train`; the defaults are the book's settings on the bundled digits.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args([])
    >>> args.iters, args.batch_size, args.lr, args.hidden
    (10000, 100, 0.1, 50)
    """
    parser.add_argument(
        "--data",
        default="digits",
        metavar="digits|mnist|mnist-test|PATH",
        help="digits (scikit-learn's 8x8 set, no download), mnist (60k/10k), mnist-test "
        "(8000/2000 split of the 10k test file), or a directory holding the MNIST IDX files (all four, or only "
        "the t10k pair, which is then split 8000/2000 like mnist-test) (default: digits)",
    )
    parser.add_argument("--grad", choices=("backprop", "numerical"), default="backprop", help="gradient method (default: backprop)")
    parser.add_argument("--iters", type=positive_int, default=10000, metavar="N", help="iterations (default: 10000)")
    parser.add_argument("--batch-size", type=positive_int, default=100, metavar="N", help="mini-batch size (default: 100)")
    parser.add_argument("--lr", type=positive_float, default=0.1, metavar="X", help="learning rate (default: 0.1)")
    parser.add_argument("--hidden", type=positive_int, default=50, metavar="N", help="hidden units (default: 50)")
    parser.add_argument("--weight-init-std", type=nonnegative_float, default=0.01, metavar="X",
                        help="standard deviation of the initial weights (default: 0.01, the book's)")
    parser.add_argument("--weight-decay", type=nonnegative_float, default=0.0, metavar="X",
                        help="L2 weight decay lambda (the book's weight_decay_lambda, ch. 6; default: 0)")
    parser.add_argument(
        "--loss", choices=("cross_entropy", "sum_squared"), default="cross_entropy",
        help="loss of the softmax outputs: cross_entropy (the book's for the net) or sum_squared (half the "
        "squared distance to the one-hot label, the book's mean_squared_error); default: cross_entropy",
    )
    parser.add_argument("--h", type=positive_float, default=1e-4, metavar="X", help="numerical-gradient step (default: 1e-4)")
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, metavar="N", help="seed of the weight init and the batch draws (default: 0)"
    )
    parser.add_argument(
        "--split-seed", type=nonnegative_int, default=None, metavar="N",
        help="digits only: seed of the train/test split (default: 0); test accuracy moves by about a point "
        "from one split to another, so compare runs on the same split",
    )
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help="numba threads (default: numba's)")
    parser.add_argument("--out", default=os.path.join("runs", "train"), metavar="DIR", help="output directory (default: runs/train)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64", help="float type (default: float64)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it is also off when stderr is not a terminal)")
    parser.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    parser.add_argument("--resume", default=None, metavar="DIR",
                        help="continue the interrupted run in DIR with its own options, to the same result "
                             "as a run that was never stopped")


def _fail(message: str, code: int = 2) -> int:
    print(f"fastnet train: error: {message}", file=sys.stderr)
    return code


# The files of a run directory; RESUME_FILE says where the run stopped and how to continue it.
RUN_FILES = ("history.json", "params.npz", "curves.png")
RESUME_FILE = "resume.json"
RESUME_FORMAT = "fastnet.train-resume"

# Options that define a run: `--resume` takes them from the run directory. Given together with
# --resume, each must equal the run's value (or be left at its default).
RUN_OPTIONS = {
    "data": "digits", "grad": "backprop", "iters": 10000, "batch_size": 100, "lr": 0.1,
    "hidden": 50, "h": 1e-4, "seed": 0, "split_seed": None, "dtype": "float64",
    "weight_init_std": 0.01, "weight_decay": 0.0, "loss": "cross_entropy",
}


def _check_out(out: str, force: bool) -> str | None:
    """Why `out` cannot be used as a new run directory, or None; creates nothing."""
    if os.path.exists(out):
        if not os.path.isdir(out):
            return f"--out {out} exists and is not a directory"
        held = [f for f in (*RUN_FILES, RESUME_FILE) if os.path.exists(os.path.join(out, f))]
        if held and not force:
            return (f"--out {out} already holds a run ({', '.join(held)}); pass --force to overwrite it, "
                    f"or --resume {out} to continue it")
        if not os.access(out, os.W_OK | os.X_OK):
            return f"--out {out} is not writable"
        return None
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create --out {out}: {parent} is not a writable directory"
    return None


def _read_resume(run_dir: str) -> tuple[Any, Any, dict[str, Any]]:
    """(History, TrainState, run options) of an interrupted run; ValueError/OSError when unusable."""
    from fastnet.history import History
    from fastnet.training import TrainState

    path = os.path.join(run_dir, RESUME_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"--resume {run_dir}: no {RESUME_FILE} there (not a run directory of fastnet train)")
    with open(path, encoding="utf-8") as f:
        try:
            d = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("format") != RESUME_FORMAT:
        raise ValueError(f"{path}: not a fastnet train resume file")
    if d.get("complete"):
        raise ValueError(f"--resume {run_dir}: that run is complete ({d.get('next_iteration')} iterations)")
    options = d.get("options")
    if not isinstance(options, dict) or set(options) != set(RUN_OPTIONS):
        raise ValueError(f"{path}: the run's options are missing")
    state = TrainState.from_dict(d.get("state"))
    history = History.from_json(os.path.join(run_dir, "history.json"))
    return history, state, options


def _write_run(out: str, net: Any, history: Any, options: dict[str, Any], complete: bool) -> list[str]:
    """history.json, params.npz, resume.json, curves.png, each atomically; returns what was written."""
    from fastnet.io import atomic_write, save

    os.makedirs(out, exist_ok=True)
    history.to_json(os.path.join(out, "history.json"))
    save(net, os.path.join(out, "params.npz"))
    resume = {"format": RESUME_FORMAT, "version": 1, "complete": complete,
              "next_iteration": history.iterations, "options": options,
              "state": None if history.state is None else history.state.to_dict()}
    with atomic_write(os.path.join(out, RESUME_FILE), "w") as f:
        f.write(json.dumps(resume, indent=1) + "\n")
    written = [os.path.join(out, "history.json"), os.path.join(out, "params.npz")]
    from fastnet.plots import plot_history

    plot_history(history, os.path.join(out, "curves.png"))
    written.append(os.path.join(out, "curves.png"))
    return written


class _Stop:
    """SIGINT/SIGTERM handlers that only note the signal: the current step finishes, then training stops.

    Raising KeyboardInterrupt inside a compiled kernel's caller is what left numba SystemError
    chains and half-run steps; a flag read between steps never interrupts anything.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_Stop":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._note)
            except ValueError:  # not the main thread: no handlers, no graceful stop
                pass
        return self

    def _note(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    """Load the data, train, print the per-epoch table and a summary, write the run directory.

    SIGINT or SIGTERM stops after the current step; the run so far is written and can be
    continued with --resume, to the same final parameters as a run that was never stopped.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see `add_arguments`).

    Returns
    -------
    int
        0 on success, 1 for a runtime failure, 2 for a usage error (including a missing optional
        dependency).

    Examples
    --------
    >>> import contextlib, io, os, tempfile
    >>> from fastnet.cli import build_parser
    >>> out = tempfile.mkdtemp()
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     status = run(build_parser().parse_args(["train", "--iters", "3", "--no-progress", "--out", out]))
    >>> status, sorted(os.listdir(out))
    (0, ['curves.png', 'history.json', 'params.npz', 'resume.json'])
    """
    from fastnet import datasets
    from fastnet.io import load
    from fastnet.network import TwoLayerNet
    from fastnet.threads import check_threads
    from fastnet.training import eval_count, train
    from fastnet.validation import check_step_for

    wall_start = time.perf_counter()
    history = state = None
    if args.resume is not None:
        try:
            history, state, options = _read_resume(args.resume)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
        for name, default in RUN_OPTIONS.items():
            given = getattr(args, name)
            if given != default and given != options[name]:
                return _fail(f"--{name.replace('_', '-')} {given} differs from the resumed run's "
                             f"{options[name]}; --resume continues a run with its own options")
            setattr(args, name, options[name])
        out = args.resume
    else:
        out = args.out
        why = _check_out(out, args.force)
        if why:
            return _fail(why)
        options = {name: getattr(args, name) for name in RUN_OPTIONS}
    if args.threads is not None:
        try:
            check_threads(args.threads, "--threads")
        except ValueError as exc:
            return _fail(str(exc))

    digits = args.data == "digits"
    if args.split_seed is not None and not digits:
        return _fail(f"--split-seed applies only to --data digits, not to --data {args.data}")
    split_seed = 0 if args.split_seed is None else args.split_seed  # load_digits' default split
    bad_data = check_data_name(args.data)
    if bad_data is not None:
        return _fail(bad_data)
    try:
        if digits:
            (x_train, t_train), (x_test, t_test) = datasets.load_digits(seed=split_seed)
        else:
            (x_train, t_train), (x_test, t_test) = datasets.load(args.data)
    except ImportError as exc:
        return _fail(f"cannot load --data {args.data}: {exc}")
    except (OSError, ValueError, TypeError) as exc:
        return _fail(f"cannot load --data {args.data}: {load_error_text(exc)}", 1)
    note = t10k_only_note(args.data)
    if note is not None:
        print(note, file=sys.stderr)
    try:
        import matplotlib.figure  # noqa: F401  (curves.png needs it: know that before training)
    except ImportError:
        return _fail('curves.png needs matplotlib, which is not installed; install it with: '
                     'pip install "fastnet-dlfs[train]"')

    t_train = np.asarray(t_train)
    t_test = np.asarray(t_test)
    if t_train.ndim == 2:
        classes = t_train.shape[1]
    else:
        classes = int(max(t_train.max(initial=0), t_test.max(initial=0))) + 1
    train_size = np.asarray(x_train).shape[0]

    try:
        if state is None:
            net = TwoLayerNet(np.asarray(x_train).shape[1], args.hidden, classes, args.weight_init_std,
                              dtype=np.dtype(args.dtype), seed=args.seed, loss=args.loss)
        else:
            net = load(os.path.join(out, "params.npz"))
            expected = (np.asarray(x_train).shape[1], args.hidden, classes)
            if (net.input_size, net.hidden_size, net.output_size) != expected \
                    or net.dtype != np.dtype(args.dtype) or net.loss_name != args.loss:
                return _fail(f"--resume {out}: params.npz does not fit the run's options")
        if args.grad == "numerical":
            check_step_for(args.h, net.dtype, net.params.values(), name="--h")
        _check_batch_memory(args.batch_size, net)
    except (ValueError, TypeError, OSError) as exc:
        return _fail(str(exc))

    n_evals = eval_count(args.iters, train_size, args.batch_size)
    every = max(1, math.ceil(n_evals / TABLE_ROWS))
    ipe = max(train_size / args.batch_size, 1.0)
    data_name = f"digits split {split_seed}" if digits else args.data

    from tqdm import tqdm

    def header() -> None:
        # Printed once training has started, i.e. after train() accepted every argument.
        print(
            f"fastnet train: {data_name} ({train_size} train / {np.asarray(x_test).shape[0]} test), "
            f"{args.grad} gradients, net {net.input_size}-{args.hidden}-{classes} {args.dtype}"
            f"{'' if args.loss == 'cross_entropy' else ' sum_squared loss'}"
            f"{f', weight decay {args.weight_decay:g}' if args.weight_decay else ''}, "
            f"{args.iters} iterations of batch {args.batch_size}, lr {args.lr}, seed {args.seed}"
        )
        if state is not None:
            print(f"resuming {out} at iteration {state.next_iteration}")
        print(f"one epoch = {ipe:.2f} iterations; {n_evals} evaluations", end="")
        print(f", showing every {every}{_ordinal(every)} and the last" if every > 1 else "")
        print(f"{'epoch':>7}  {'iter':>6}  {'train acc':>9}  {'test acc':>8}  {'loss':>8}  {'seconds':>8}")
        sys.stdout.flush()

    prev = {"i": -1 if history is None or not history.eval_iters else history.eval_iters[-1],
            "started": False}
    stop = _Stop()

    def on_iteration(i: int, hist: Any) -> bool | None:
        if not prev["started"]:
            prev["started"] = True
            header()
        if hist.eval_iters and hist.eval_iters[-1] == i:
            last, prev["i"] = prev["i"], i
            k = len(hist.eval_iters) - 1
            if k % every == 0 or i == args.iters - 1:
                # Mean batch loss since the previous evaluation: the single last batch loss is noisy.
                recent = hist.loss[last + 1 : i + 1]
                row = (
                    f"{i * args.batch_size / train_size:7.2f}  {i:6d}  {hist.train_acc[-1]:9.4f}  "
                    f"{hist.test_acc[-1]:8.4f}  {sum(recent) / len(recent):8.4f}  {hist.eval_seconds[-1]:8.2f}"
                )
                tqdm.write(row, file=sys.stdout)
        return True if stop.signum is not None else None

    try:
        created = _prepare_out(out)
    except OSError as exc:
        return _fail(f"cannot write to --out {out}: {exc}")
    progress = not args.no_progress and sys.stderr.isatty()
    with stop:
        try:
            history = train(
                net,
                ((x_train, t_train), (x_test, t_test)),
                iters=args.iters,
                batch_size=args.batch_size,
                lr=args.lr,
                grad=args.grad,
                h=args.h,
                seed=args.seed,
                callback=on_iteration,
                threads=args.threads,
                progress=progress,
                history=history,
                resume=state,
                weight_decay=args.weight_decay,
            )
        except (ValueError, TypeError) as exc:
            # Before the first step: an argument train() refused. After: a step failed (the net is
            # as before that step, nothing is written).
            _remove_empty(created)
            return _fail(str(exc), 1 if prev["started"] else 2)
        if not prev["started"]:
            header()
        complete = history.iterations == args.iters

        # The library's History does not know where its data came from; the command does.
        history.settings["data"] = os.fspath(args.data)
        if digits:
            history.settings["split_seed"] = split_seed
        try:
            written = _write_run(out, net, history, options, complete)
        except (OSError, ImportError) as exc:
            return _fail(f"cannot write the run to {out}: {exc}", 1)

    if stop.signum is not None and not complete:
        name = signal.Signals(stop.signum).name
        print(f"fastnet train: {name} after iteration {history.iterations} of {args.iters}; wrote {out} "
              f"(history, params, curves); continue with: fastnet train --resume {out}", file=sys.stderr)
        return 128 + stop.signum
    print("(loss: mean mini-batch loss since the previous row's evaluation; seconds: since training started)")
    print(
        f"final: train acc {history.train_acc[-1]:.4f}, test acc {history.test_acc[-1]:.4f}; "
        f"training {history.seconds_total:.2f} s, of which gradients {history.seconds_gradient:.2f} s "
        f"({history.seconds_gradient / max(history.seconds_total, 1e-12) * 100:.0f}%), "
        f"evaluation {history.seconds_eval:.2f} s; wall {time.perf_counter() - wall_start:.2f} s"
    )
    print(f"wrote {', '.join(written)}")
    return 128 + stop.signum if stop.signum is not None else 0


def _prepare_out(out: str) -> list[str]:
    """Create `out` and prove it writable with a throw-away file; returns the directories created.

    Permission bits do not tell (root may write anywhere but on read-only or virtual file
    systems), so the only sure test is writing, done before training rather than after it.
    """
    import tempfile

    created = []
    missing = os.path.abspath(out)
    while not os.path.exists(missing):
        created.append(missing)
        missing = os.path.dirname(missing)
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError:
        _remove_empty(created)
        raise
    return created


def _remove_empty(created: list[str]) -> None:
    """Remove the directories _prepare_out created, deepest first, if still empty."""
    for d in created:
        try:
            os.rmdir(d)
        except OSError:
            break


def _check_batch_memory(batch_size: int, net: Any) -> None:
    """ValueError when one step's arrays (the batch, its activations, the index block) cannot fit."""
    from fastnet.network import _format_bytes, available_memory

    per_row = (net.input_size + 3 * net.hidden_size + 3 * net.output_size) * net.dtype.itemsize + 16
    need = batch_size * per_row
    available = available_memory()
    if available is not None and need > available:
        raise ValueError(f"--batch-size {batch_size} needs about {_format_bytes(need)} per step, more than "
                         f"the {_format_bytes(available)} available")


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
