"""`fastnet gradcheck`: backprop against the numerical gradient, per parameter."""

from __future__ import annotations

import argparse
import json
import sys

from fastnet.commands.argtypes import positive_float
from fastnet.commands.batch import add_batch_arguments, check_batch_arguments, make_batch
from fastnet.validation import check_step_for

HELP = "compare backprop with the numerical gradient per parameter (max abs and relative error)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_batch_arguments(parser)
    parser.add_argument("--h", type=positive_float, default=None, metavar="X",
                        help="step (default: 1e-4, or 1e-20 for --method complex)")
    parser.add_argument("--method", choices=("central", "forward", "backward", "complex"), default="central")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from fastnet import gradient_check

    try:
        check_batch_arguments(args)
        net, x, t, desc = make_batch(args)
        if args.h is not None:
            check_step_for(args.h, net.dtype, net.params.values(), args.method, name="--h")
    except (ValueError, TypeError, ImportError, FileNotFoundError) as exc:
        print(f"fastnet gradcheck: error: {exc}", file=sys.stderr)
        return 2
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
