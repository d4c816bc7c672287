"""`fastnet compile`: compile the kernels into numba's on-disk cache before their first use."""

from __future__ import annotations

import argparse
import json
import sys

from fastnet.commands.argtypes import names_from

HELP = ("compile fastnet's kernels into numba's on-disk cache now, so that later processes "
        "load them instead of compiling on their first call")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `fastnet compile` on `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> parser.parse_args(["--dtypes", "float32"]).dtypes
    ('float32',)
    """
    from fastnet.precompile import DTYPES, KERNELS

    parser.add_argument("--kernels", type=names_from(KERNELS, f"kernels ({', '.join(KERNELS)})"),
                        default=None, metavar="LIST",
                        help="comma-separated kernels (default: all): " + ", ".join(KERNELS))
    parser.add_argument("--dtypes", type=names_from(DTYPES, f"dtypes ({', '.join(DTYPES)})"),
                        default=None, metavar="LIST",
                        help="float64,float32 (default both)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fastnet compile` with parsed arguments; returns the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see `add_arguments`).

    Returns
    -------
    int
        0 on success.

    Examples
    --------
    >>> from fastnet.cli import build_parser
    >>> import contextlib, io
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out):
    ...     status = run(build_parser().parse_args(["compile", "--kernels", "sigmoid",
    ...                                             "--dtypes", "float64"]))
    >>> status, out.getvalue().splitlines()[2].split()[:2]
    (0, ['sigmoid', 'float64'])
    """
    from fastnet.precompile import cache_location, format_records, precompile

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    records = precompile(args.kernels, args.dtypes, progress=progress)
    if args.json:
        json.dump({"cache": cache_location(), "kernels": [r.to_dict() for r in records]},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_records(records))
    return 0
