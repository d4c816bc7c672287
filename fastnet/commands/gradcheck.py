"""`fastnet gradcheck`: backprop against the numerical gradient, per parameter."""

from __future__ import annotations

import argparse
import json
import sys

from fastnet.commands.argtypes import positive_float
from fastnet.commands.batch import add_batch_arguments, check_batch_arguments, make_batch
from fastnet.commands.data import load_error_text
from fastnet.validation import check_step_for

HELP = "compare backprop with the numerical gradient per parameter (max abs and relative error)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `fastnet gradcheck` on `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> (parser.parse_args([]).data, parser.parse_args([]).method)
    ('digits', 'central')
    """
    add_batch_arguments(parser)
    parser.add_argument("--h", type=positive_float, default=None, metavar="X",
                        help="step (default: 1e-4, or 1e-20 for --method complex)")
    parser.add_argument("--method", choices=("central", "forward", "backward", "complex"), default="central")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fastnet gradcheck` with parsed arguments; returns the exit status.

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
    >>> run(build_parser().parse_args(["gradcheck", "--data", "synthetic", "--batch", "4", "--hidden", "3"]))
    net 784-3-10 float64, batch 4 of synthetic MNIST-like data, initial weights
    gradient check: backprop vs numerical (central, h=0.0001)
    ...
    0
    """
    from fastnet import gradient_check

    try:
        check_batch_arguments(args)
        net, x, t, desc = make_batch(args)
        if args.h is not None:
            check_step_for(args.h, net.dtype, net.params.values(), args.method, name="--h")
    except (ValueError, TypeError, ImportError) as exc:
        print(f"fastnet gradcheck: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fastnet gradcheck: error: {load_error_text(exc)}", file=sys.stderr)
        return 1
    try:
        check = gradient_check(net, x, t, h=args.h, method=args.method, threads=args.threads)
    except ValueError as exc:  # a non-finite numerical gradient
        print(f"fastnet gradcheck: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"description": desc, "h": check.h, "method": check.method,
                          "params": check.as_dict()}, indent=2))
    else:
        print(desc)
        print(check)
    return 0
