"""`fastnet bench`: time fastnet against the NumPy reference (and JAX and PyTorch, when installed) in
one run and print a table."""

from __future__ import annotations

import argparse
import json
import sys

from fastnet.commands.argtypes import names_from
from fastnet.commands.argtypes import positive_int as _positive_int

HELP = ("Time fastnet's kernels and numerical gradients against the NumPy reference, side by side "
        "(and the kernels against JAX and PyTorch twins, when installed).")


def _int_list(text: str) -> tuple[int, ...]:
    values = tuple(_positive_int(p) for p in text.split(",") if p.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


_dtype_list = names_from(("float32", "float64"), "float32/float64")


def _net(text: str) -> tuple[int, int, int]:
    from fastnet.bench import parse_net

    try:
        return parse_net(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `fastnet bench` on `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> parser.parse_args(["--net", "20-8-10"]).net
    (20, 8, 10)
    """
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes, repetitions and reference parameters (about a minute); "
                             "the kernel rows still cover both kinds of input (mnist-like and dense) "
                             "and the twins")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON instead of a table")
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                        help="numba threads for fastnet's kernels (default: numba's setting)")
    parser.add_argument("--repeat", type=_positive_int, default=None, metavar="R",
                        help="repetitions per timing; the median is reported (default 7, quick 3)")
    parser.add_argument("--subset", type=_positive_int, default=None, metavar="K",
                        help="entries per parameter array the reference numerical gradient is "
                             "timed on before extrapolating (default 400, quick 100)")
    parser.add_argument("--sizes", type=_int_list, default=None, metavar="LIST",
                        help="batch sizes for the kernel rows, e.g. 1,10,100,1000")
    parser.add_argument("--dtypes", type=_dtype_list, default=None, metavar="LIST",
                        help="float32,float64 (default both)")
    parser.add_argument("--net", type=_net, default=None, metavar="D-H-C",
                        help="network for every row (default 784-50-10; the full run also times "
                             "784-100-10 at batch 256)")
    parser.add_argument("--batch", type=_positive_int, default=None, metavar="N",
                        help="batch of the numerical-gradient rows (default 100)")
    parser.add_argument("--no-twins", action="store_true",
                        help="skip the JAX and PyTorch twins of the kernels (by default each kernel "
                             "row also times them, in columns jax, torch, vs jax, vs torch; a "
                             "library that is not installed shows '-' and a note; install both "
                             'with pip install "fastnet-dlfs[compare]")')


def run(args: argparse.Namespace) -> int:
    """Run `fastnet bench` with parsed arguments; returns the exit status.

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
    >>> import contextlib, io
    >>> argv = ["bench", "--quick", "--json", "--net", "20-4-10", "--batch", "4", "--sizes", "2",
    ...         "--dtypes", "float64", "--subset", "2", "--repeat", "1", "--no-twins"]
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    ...     status = run(build_parser().parse_args(argv))
    >>> status, out.getvalue().lstrip().startswith("{")
    (0, True)
    """
    from fastnet import bench
    from fastnet.threads import check_threads

    if args.threads is not None:
        try:
            check_threads(args.threads, "--threads")
        except ValueError as exc:
            print(f"fastnet bench: error: {exc}", file=sys.stderr)
            return 2
    report = bench.run(quick=args.quick, threads=args.threads, batch_sizes=args.sizes,
                       dtypes=args.dtypes, net=args.net, batch=args.batch, subset=args.subset,
                       repeat=args.repeat, twins=not args.no_twins,
                       progress=bench._stderr_progress)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.format_table())
    return 0
