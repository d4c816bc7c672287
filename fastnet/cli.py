"""The `fastnet` command line: one subcommand per module in `fastnet.commands`.

Every subcommand follows one exit-status convention, applied here so that no subcommand has to
repeat it (see `EXIT_STATUS`, which `fastnet --help` prints).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastnet._version import __version__

# name -> module defining HELP, add_arguments(parser) and run(args) -> int
COMMANDS = {
    "train": "fastnet.commands.train",
    "gradcheck": "fastnet.commands.gradcheck",
    "steps": "fastnet.commands.steps",
    "bench": "fastnet.commands.bench",
    "compile": "fastnet.commands.compile",
    "descent": "fastnet.commands.descent",
    "sweep": "fastnet.commands.sweep",
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM

EXIT_STATUS = f"""\
exit status (the same for every command):
  {EXIT_OK:<4} success
  {EXIT_FAILURE:<4} runtime failure: data that cannot be found, downloaded or read, files that
       cannot be written
  {EXIT_USAGE:<4} usage error: no command, a bad option or value, or a missing optional
       dependency (pip install "fastnet-dlfs[train]"); one line on stderr, no traceback
  {EXIT_INTERRUPTED:<4} interrupted (Ctrl-C, SIGINT)
  {EXIT_TERMINATED:<4} terminated (SIGTERM)
"""


class _Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler, so that cleanup code runs as for Ctrl-C."""


def build_parser() -> argparse.ArgumentParser:
    """The `fastnet` argument parser with every subcommand registered.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each subcommand's namespace carries its ``run`` function as ``_run``.

    Examples
    --------
    >>> parser = build_parser()
    >>> parser.parse_args(["gradcheck", "--batch", "8"]).batch
    8
    """
    parser = argparse.ArgumentParser(
        prog="fastnet",
        description="Numba-compiled two-layer network and fast numerical differentiation.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fastnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=EXIT_STATUS,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `_Terminated` for the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: types.FrameType | None) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if isinstance(exc, ImportError) else text


def main(argv: list[str] | None = None) -> int:
    """Run the ``fastnet`` command line and return its exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        0 on success, 1 for a runtime failure, 2 for a usage error (including a missing optional
        dependency), 130 when interrupted by SIGINT (Ctrl-C), 143 when terminated by SIGTERM.

    Raises
    ------
    SystemExit
        With status 0 for ``--help`` and ``--version``, and 2 when argparse rejects an argument.

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()):
    ...     main([])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], Any] | None = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        print("fastnet: error: a command is required", file=sys.stderr)
        return EXIT_USAGE
    prog = f"fastnet {args.command}"
    try:
        with _sigterm_raises():
            return int(run(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except ImportError as exc:
        # An optional dependency (matplotlib, scikit-learn) that the command needed is missing.
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
