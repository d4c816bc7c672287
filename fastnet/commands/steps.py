"""`fastnet steps`: the step-size study, as a table and optionally a log-log plot."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from fastnet.commands.argtypes import positive_float, positive_int
from fastnet.commands.batch import add_batch_arguments, check_batch_arguments, make_batch
from fastnet.methods import method_code
from fastnet.validation import check_step_for
from fastnet.commands.data import load_error_text

HELP = "error of the numerical gradient against backprop for each method and step h (the V curve)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `fastnet steps` on `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> parser.parse_args(["--num", "5"]).num
    5
    """
    add_batch_arguments(parser)
    parser.add_argument("--h-min", type=positive_float, default=1e-12, metavar="X", help="smallest step (default: 1e-12)")
    parser.add_argument("--h-max", type=positive_float, default=1.0, metavar="X", help="largest step (default: 1)")
    parser.add_argument("--num", type=positive_int, default=25, metavar="N", help="number of steps, log-spaced (default: 25)")
    parser.add_argument("--methods", default="central,forward,backward,complex",
                        help="comma-separated methods (default: all four)")
    parser.add_argument("--no-naive", action="store_true",
                        help="leave out the book's full-loss differences (the curves with a rounding arm)")
    parser.add_argument("--plot", metavar="PNG", help="write a log-log plot of the errors to this file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fastnet steps` with parsed arguments; returns the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see `add_arguments`).

    Returns
    -------
    int
        0 on success, 1 for a runtime failure, 2 for a usage error.

    Examples
    --------
    >>> from fastnet.cli import build_parser
    >>> run(build_parser().parse_args(["steps", "--data", "synthetic", "--batch", "4", "--hidden", "3",
    ...                                "--num", "2", "--methods", "central", "--no-naive"]))
    net 784-3-10 float64, batch 4 of synthetic MNIST-like data, initial weights
    max |numerical - backprop| over all parameters ...
    0
    """
    from fastnet import step_study

    if args.h_min > args.h_max:
        print("fastnet steps: error: --h-min must not exceed --h-max", file=sys.stderr)
        return 2
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    try:
        check_batch_arguments(args)
        if args.plot:
            _check_plot_path(args.plot)
        net, x, t, desc = make_batch(args)
        hs = np.logspace(np.log10(args.h_min), np.log10(args.h_max), args.num)
        for m in methods:
            method_code(m)
            for h in (args.h_min, args.h_max):
                check_step_for(h, net.dtype, net.params.values(), m,
                               name="--h-min" if h == args.h_min else "--h-max")
    except (ValueError, TypeError, ImportError) as exc:
        print(f"fastnet steps: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fastnet steps: error: {load_error_text(exc)}", file=sys.stderr)
        return 1
    try:
        study = step_study(net, x, t, hs=hs, methods=methods, naive=not args.no_naive,
                           threads=args.threads)
    except ValueError as exc:  # a non-finite numerical gradient
        print(f"fastnet steps: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"description": desc, **study.as_dict()}, indent=2))
    else:
        print(desc)
        print(study)
    if args.plot:
        from fastnet.plots import plot_step_study

        try:
            plot_step_study(study.hs, study.errors, args.plot, title=desc)
        except OSError as exc:
            print(f"fastnet steps: error: cannot write --plot {args.plot}: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _check_plot_path(path: str) -> None:
    """ValueError/ImportError before any work when the plot could not be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"--plot {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"--plot {path}: the directory {directory} is not writable")
    if os.path.isdir(path):
        raise ValueError(f"--plot {path} is a directory")
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f'--plot needs matplotlib (pip install "fastnet-dlfs[train]"): {exc}') from None
