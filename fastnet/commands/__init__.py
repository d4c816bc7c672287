"""Subcommands of the `fastnet` command line, one module each."""
