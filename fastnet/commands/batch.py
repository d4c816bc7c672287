"""The net and mini-batch that `fastnet gradcheck` and `fastnet steps` differentiate."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from fastnet.commands.argtypes import nonnegative_int, positive_int
from fastnet._typing import FloatArray, NDArray
from fastnet.commands.data import check_data_name, t10k_only_note

if TYPE_CHECKING:
    from fastnet.network import TwoLayerNet


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --batch, --hidden, --seed, --dtype, --train-iters, --threads.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_batch_arguments(parser)
    >>> parser.parse_args(["--data", "synthetic"]).batch
    100
    """
    parser.add_argument("--data", default="digits", metavar="digits|mnist|mnist-test|synthetic|PATH",
                        help="where the batch comes from: a data set name as in `fastnet train`, or "
                             "synthetic (784 inputs, 81%% exact zeros, no data needed); default: digits")
    parser.add_argument("--batch", type=positive_int, default=100, metavar="N", help="batch size (default: 100)")
    parser.add_argument("--hidden", type=positive_int, default=50, metavar="N", help="hidden units (default: 50)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N", help="seed (default: 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--train-iters", type=nonnegative_int, default=0, metavar="N",
                        help="first train N backprop iterations (lr 0.1) so the weights are not "
                             "at their initial values (default: 0)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="numba threads (default: numba's)")


def check_batch_arguments(args: argparse.Namespace) -> None:
    """ValueError for options that are well-formed but unusable here (--threads above the cap).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed `add_batch_arguments` options.

    Raises
    ------
    ValueError
        --threads above numba's thread cap.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_batch_arguments(parser)
    >>> check_batch_arguments(parser.parse_args(["--threads", "1"]))
    """
    from fastnet.threads import check_threads

    if args.threads is not None:
        check_threads(args.threads, "--threads")


def make_batch(args: argparse.Namespace) -> tuple[TwoLayerNet, FloatArray, NDArray[Any], str]:
    """(net, x, t, description) from parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed `add_batch_arguments` options.

    Returns
    -------
    (TwoLayerNet, ndarray, ndarray, str)
        The net, the batch's inputs and labels, and a one-line description.

    Raises
    ------
    ValueError
        An unknown --data value (the message lists the accepted ones).
    ImportError, OSError
        The data set cannot be loaded.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_batch_arguments(parser)
    >>> net, x, t, desc = make_batch(parser.parse_args(["--data", "synthetic", "--batch", "4", "--hidden", "3"]))
    >>> x.shape, desc
    ((4, 784), 'net 784-3-10 float64, batch 4 of synthetic MNIST-like data, initial weights')
    """
    from fastnet import TwoLayerNet, datasets

    rng = np.random.default_rng(args.seed)
    x_train: NDArray[Any]
    t_train: NDArray[Any]
    if args.data == "synthetic":
        x_train = rng.random((max(args.batch, 1000), 784))
        x_train[x_train < 0.81] = 0
        t_train = rng.integers(0, 10, x_train.shape[0])  # type: ignore[assignment]  # an array: size is given
        what = "synthetic MNIST-like data"
    else:
        bad_data = check_data_name(args.data, extra=("synthetic",))
        if bad_data is not None:
            raise ValueError(bad_data)
        (x_train, t_train), _ = datasets.load(args.data)
        note = t10k_only_note(args.data)
        if note is not None:
            print(note, file=sys.stderr)
        what = f"{args.data} data"
    net = TwoLayerNet(x_train.shape[1], args.hidden, int(t_train.max()) + 1 if args.data == "synthetic" else 10,
                      dtype=args.dtype, seed=args.seed)
    for _ in range(args.train_iters):
        idx = rng.integers(0, x_train.shape[0], args.batch)
        grads = net.gradient(x_train[idx], t_train[idx])
        for key, g in grads.items():
            net.params[key] -= net.dtype.type(0.1) * g
    idx = rng.choice(x_train.shape[0], size=min(args.batch, x_train.shape[0]), replace=False)
    trained = f", {args.train_iters} training iterations" if args.train_iters else ", initial weights"
    desc = (f"net {net.input_size}-{net.hidden_size}-{net.output_size} {net.dtype.name}, "
            f"batch {idx.size} of {what}{trained}")
    return net, x_train[idx], t_train[idx], desc
