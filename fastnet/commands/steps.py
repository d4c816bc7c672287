"""`fastnet steps`: the step-size study, as a table and optionally a log-log plot."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from fastnet.commands.argtypes import positive_float, positive_int
from fastnet.commands.batch import add_batch_arguments, make_batch
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
        net, x, t, desc = make_batch(args)
        hs = np.logspace(np.log10(args.h_min), np.log10(args.h_max), args.num)
        study = step_study(net, x, t, hs=hs, methods=methods, naive=not args.no_naive,
                           threads=args.threads)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"fastnet steps: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fastnet steps: error: {load_error_text(exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"description": desc, **study.as_dict()}, indent=2))
    else:
        print(desc)
        print(study)
    if args.plot:
        from fastnet.plots import plot_step_study

        plot_step_study(study.hs, study.errors, args.plot, title=desc)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0
