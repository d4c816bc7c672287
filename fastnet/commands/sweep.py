"""`fastnet sweep`: many training runs (or gradient checks, step studies) over a grid or a random search, on Dask."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from fastnet.commands.argtypes import nonnegative_int, positive_int

HELP = "run many trainings (or gradchecks, step studies) over a grid or random search, on Dask, resumable"

EPILOG = """\
settings: data, split_seed, seed, iters, batch_size, lr, hidden, grad, h, weight_init_std,
weight_decay, dtype, loss (train); method, train_iters (gradcheck, steps). Dashes or underscores.

examples:
  fastnet sweep --grid split_seed=0..9 seed=0..4          # the digits table: 10 splits x 5 seeds
  fastnet sweep --random lr=log:1e-6:1e-2 weight_decay=log:1e-8:1e-4 --trials 100 --fixed iters=2000
  fastnet sweep --config sweep.toml --out runs/search
  fastnet sweep --resume --out runs/sweep                 # after Ctrl-C: only the missing trials
  fastnet sweep --grid lr=0.01,0.1 --scheduler tcp://127.0.0.1:8786   # an existing Dask cluster

A config file (TOML, or YAML with PyYAML installed) holds the same parts:
  kind = "train"
  trials = 100
  [fixed]
  iters = 2000
  [random]
  lr = "log:1e-6:1e-2"
  [grid]
  seed = "0..4"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `fastnet sweep` on `parser`, with examples and a config sketch as its epilog.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--grid", "split_seed=0..9", "seed=0..4", "--fixed", "iters=2000"])
    >>> args.grid, args.fixed, args.out, args.retries
    (['split_seed=0..9', 'seed=0..4'], ['iters=2000'], 'runs/sweep', 2)
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--kind", choices=("train", "gradcheck", "steps"), default=None,
                        help="what each trial runs (default: train)")
    parser.add_argument("--grid", nargs="+", default=None, metavar="NAME=VALUES",
                        help="grid axes: lr=0.01,0.1 or seed=0..4 (integers, both ends included)")
    parser.add_argument("--random", nargs="+", default=None, metavar="NAME=DIST",
                        help="random-search axes: lr=log:1e-6:1e-2, uniform:LO:HI, int:LO:HI, choice:A,B")
    parser.add_argument("--trials", type=positive_int, default=None, metavar="N",
                        help="number of random draws (each combined with every grid point)")
    parser.add_argument("--fixed", nargs="+", default=None, metavar="NAME=VALUE",
                        help="settings shared by every trial, e.g. iters=2000 (others: fastnet train's defaults)")
    parser.add_argument("--config", metavar="FILE", help="a TOML or YAML file with kind, trials, fixed, grid, random")
    parser.add_argument("--out", default=os.path.join("runs", "sweep"), metavar="DIR",
                        help="results directory (default: runs/sweep)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the sweep stored in --out, running only trials without a result")
    parser.add_argument("--force", action="store_true", help="start afresh in an --out that holds results")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="use an existing Dask cluster, e.g. tcp://127.0.0.1:8786 (default: a local cluster)")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--retries", type=nonnegative_int, default=2, metavar="N",
                        help="times a trial whose worker died is started again (local cluster; default: 2)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                        help="seed of the random search's draws (default: 0)")
    parser.add_argument("--dashboard", action="store_true", help="serve Dask's dashboard on :8787")
    parser.add_argument("--no-plot", action="store_true", help="do not write sweep.png")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is also off when stderr is not a terminal)")


def _fail(message: str, code: int = 2) -> int:
    print(f"fastnet sweep: error: {message}", file=sys.stderr)
    return code


def _read_config(path: str) -> dict[str, Any]:
    """The config file as a dict (TOML by default, YAML for .yaml/.yml)."""
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"--config {path}: YAML needs PyYAML (pip install pyyaml); or use TOML") from None
        with open(path) as f:
            data = yaml.safe_load(f)
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # Python 3.10
            import tomli as tomllib
        with open(path, "rb") as f:
            data = tomllib.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a table of settings")
    unknown = set(data) - {"kind", "trials", "fixed", "grid", "random", "seed"}
    if unknown:
        raise ValueError(f"--config {path}: unknown entries {', '.join(sorted(unknown))} "
                         "(expected kind, trials, seed, fixed, grid, random)")
    return data


def _fixed(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--fixed: expected NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        out[name] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Run `fastnet sweep` with parsed arguments; returns the exit status.

    Every error in the settings (config file, grid, random axes, fixed settings) is reported
    before a Dask cluster starts. SIGTERM stops the sweep as Ctrl-C does: the finished trials
    are saved and ``--resume`` continues.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see `add_arguments`).

    Returns
    -------
    int
        0 on success, 1 for a runtime failure (the cluster or the results directory), 2 for a
        usage error, 130 when interrupted by Ctrl-C and 143 by SIGTERM.

    Examples
    --------
    A bad value is refused (one line on stderr) before any cluster starts:

    >>> from fastnet.cli import build_parser
    >>> run(build_parser().parse_args(["sweep", "--grid", "lr=0.01,-1"]))
    2
    >>> run(build_parser().parse_args(["sweep", "--kind", "steps", "--grid", "lr=0.01,0.1"]))
    2
    """
    from fastnet import sweeps as sweeping

    try:
        config = _read_config(args.config) if args.config else {}
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a TOML/YAML syntax error, whatever the parser's type
        return _fail(f"--config {args.config}: {exc}")
    kind = args.kind or config.get("kind", "train")
    grid = args.grid if args.grid is not None else config.get("grid")
    random = args.random if args.random is not None else config.get("random")
    trials = args.trials if args.trials is not None else config.get("trials")
    seed = config.get("seed", args.seed) if args.seed == 0 else args.seed
    try:
        fixed = {**(config.get("fixed") or {}), **_fixed(args.fixed)} if (args.fixed or config.get("fixed")) else None
        if grid is not None:
            grid = sweeping.parse_grid(grid)
        if random is not None:
            random = sweeping.parse_random(random)
        if not args.resume:
            # every spec error shows before a cluster starts
            sweeping.trials_from(kind, grid, random, trials, fixed, seed)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    try:
        import distributed  # noqa: F401
    except ImportError:
        return _fail('fastnet sweep runs on Dask, which is not installed: pip install "fastnet-dlfs[sweep]"')

    terminated = []

    def on_sigterm(signum: int, frame: object) -> None:  # SIGTERM stops the sweep the way Ctrl-C does, exit 143
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    progress = not args.no_progress and sys.stderr.isatty()
    print(f"fastnet sweep: {kind} trials into {args.out}"
          + (f" on {args.scheduler}" if args.scheduler else
             f" on a local Dask cluster of {args.workers or os.cpu_count()} worker processes"), flush=True)
    try:
        result = sweeping.sweep(kind, grid=grid, random=random, trials=trials, fixed=fixed, out=args.out,
                                resume=args.resume, force=args.force, scheduler=args.scheduler,
                                workers=args.workers, retries=args.retries, seed=seed,
                                dashboard=args.dashboard, progress=progress)
    except sweeping.SweepInterrupted as exc:
        print(f"fastnet sweep: interrupted after {exc.done} of {exc.total} trials; every finished trial "
              f"is saved in {exc.out}. Continue with: fastnet sweep --resume --out {exc.out}", file=sys.stderr)
        return 143 if terminated else 130
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    except (ImportError, OSError) as exc:
        return _fail(str(exc), 1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{result.total} trials: {result.ran} run now, {result.skipped} already done"
          f"{f', {len(result.failed())} failed' if result.failed() else ''}; {result.seconds:.1f} s")
    # a random search has one setting per trial: show the best ones
    print(result.table(top=20 if result.random_axes else None))
    if result.best(1):
        b = result.best(1)[0]
        shown = ", ".join(f"{k}={b['settings'][k]}" for k in result.swept) or "the only setting"
        print(f"best: {result.metric} {b[result.metric]:.4f} with {shown}")
    written = ["sweep.json", "trials/", "results.csv", "results.json", "summary.csv"]
    if kind == "train" and not args.no_plot and result.ok():
        try:
            from fastnet.plots import plot_sweep

            plot_sweep(result, os.path.join(args.out, "sweep.png"))
            written.append("sweep.png")
        except ImportError as exc:
            print(f"fastnet sweep: sweep.png not written: {exc}", file=sys.stderr)
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0
