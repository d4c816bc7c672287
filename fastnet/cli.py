"""The `fastnet` command line: one subcommand per module in `fastnet.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from fastnet._version import __version__

# name -> module defining HELP, add_arguments(parser) and run(args) -> int
COMMANDS = {
    "train": "fastnet.commands.train",
    "gradcheck": "fastnet.commands.gradcheck",
    "steps": "fastnet.commands.steps",
    "bench": "fastnet.commands.bench",
    "descent": "fastnet.commands.descent",
    "sweep": "fastnet.commands.sweep",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastnet",
        description="Numba-compiled two-layer network and fast numerical differentiation.",
    )
    parser.add_argument("--version", action="version", version=f"fastnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
