"""`fastnet train`: the book's experiment (two-layer net, mini-batch SGD) with backprop or numerical gradients."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from fastnet.commands.argtypes import nonnegative_int, positive_float, positive_int
from fastnet.commands.data import check_data_name, load_error_text, t10k_only_note
from fastnet.history import History

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


def _fail(message: str, code: int = 2) -> int:
    print(f"fastnet train: error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Load the data, train, print the per-epoch table and a summary, write the three output files.

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
    (0, ['curves.png', 'history.json', 'params.npz'])
    """
    from fastnet import datasets
    from fastnet.io import save
    from fastnet.network import TwoLayerNet
    from fastnet.training import eval_iterations, train

    wall_start = time.perf_counter()
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

    t_train = np.asarray(t_train)
    t_test = np.asarray(t_test)
    if t_train.ndim == 2:
        classes = t_train.shape[1]
    else:
        classes = int(max(t_train.max(initial=0), t_test.max(initial=0))) + 1
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        return _fail(f"cannot create --out {args.out}: {exc}", 1)

    try:
        net = TwoLayerNet(
            np.asarray(x_train).shape[1], args.hidden, classes, dtype=np.dtype(args.dtype), seed=args.seed
        )
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))

    train_size = np.asarray(x_train).shape[0]
    evals = eval_iterations(args.iters, train_size, args.batch_size)
    every = max(1, math.ceil(len(evals) / TABLE_ROWS))
    shown = set(evals[::every]) | {evals[-1]}
    ipe = max(train_size / args.batch_size, 1.0)

    data_name = f"digits split {split_seed}" if digits else args.data
    print(
        f"fastnet train: {data_name} ({train_size} train / {np.asarray(x_test).shape[0]} test), "
        f"{args.grad} gradients, net {net.params['W1'].shape[0]}-{args.hidden}-{classes} {args.dtype}, "
        f"{args.iters} iterations of batch {args.batch_size}, lr {args.lr}, seed {args.seed}"
    )
    print(f"one epoch = {ipe:.2f} iterations; {len(evals)} evaluations", end="")
    print(f", showing every {every}{_ordinal(every)} and the last" if every > 1 else "")
    header = f"{'epoch':>7}  {'iter':>6}  {'train acc':>9}  {'test acc':>8}  {'loss':>8}  {'seconds':>8}"
    print(header)
    sys.stdout.flush()

    from tqdm import tqdm

    state = {"prev": -1}

    def on_iteration(i: int, history: History) -> None:
        if not history.eval_iters or history.eval_iters[-1] != i:
            return None
        prev, state["prev"] = state["prev"], i
        if i not in shown:
            return None
        # Mean batch loss since the previous evaluation: the single last batch loss is noisy.
        recent = history.loss[prev + 1 : i + 1]
        row = (
            f"{i * args.batch_size / train_size:7.2f}  {i:6d}  {history.train_acc[-1]:9.4f}  "
            f"{history.test_acc[-1]:8.4f}  {sum(recent) / len(recent):8.4f}  {history.eval_seconds[-1]:8.2f}"
        )
        tqdm.write(row, file=sys.stdout)
        return None

    progress = not args.no_progress and sys.stderr.isatty()
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
        )
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))

    print("(loss: mean mini-batch loss since the previous row's evaluation; seconds: since training started)")
    print(
        f"final: train acc {history.train_acc[-1]:.4f}, test acc {history.test_acc[-1]:.4f}; "
        f"training {history.seconds_total:.2f} s, of which gradients {history.seconds_gradient:.2f} s "
        f"({history.seconds_gradient / max(history.seconds_total, 1e-12) * 100:.0f}%), "
        f"evaluation {history.seconds_eval:.2f} s; wall {time.perf_counter() - wall_start:.2f} s"
    )

    # The library's History does not know where its data came from; the command does.
    history.settings["data"] = os.fspath(args.data)
    if digits:
        history.settings["split_seed"] = split_seed

    paths = {name: os.path.join(args.out, name) for name in ("history.json", "params.npz", "curves.png")}
    try:
        history.to_json(paths["history.json"])
        save(net, paths["params.npz"])
    except OSError as exc:
        return _fail(f"cannot write to --out {args.out}: {exc}", 1)
    try:
        from fastnet.plots import plot_history

        plot_history(history, paths["curves.png"])
    except ImportError as exc:
        print(f"wrote {paths['history.json']}, {paths['params.npz']}")
        return _fail(f"curves.png not written: {exc}")
    except OSError as exc:
        return _fail(f"cannot write to --out {args.out}: {exc}", 1)
    print(f"wrote {paths['history.json']}, {paths['params.npz']}, {paths['curves.png']}")
    return 0


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
