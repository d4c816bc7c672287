"""`fastnet descent`: the book's gradient descent (ch. 4) on a named test function, with its path."""

from __future__ import annotations

import argparse
import math
import sys
import warnings

import numpy as np

from fastnet.commands.argtypes import nonnegative_int, positive_float

HELP = "gradient descent on a test function (book ch. 4): final point, f along the way, optional path plot"

# Rows of the iterate table to aim for, plus the last one.
TABLE_ROWS = 10


def _point(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like -3,4, got {text!r}") from None
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected two finite numbers like -3,4, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `fastnet descent` on `parser`.

    Starting points such as ``-3,4`` are taken as values, not as options, although they begin with
    a dash: no option of this command starts with a digit.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--init", "-3,4", "--steps", "20"])
    >>> args.function, args.init, args.steps, args.grad
    ('square-sum', [-3.0, 4.0], 20, 'numerical')
    """
    import re

    from fastnet.functions import FUNCTIONS

    # argparse takes "-3,4" for an option because it is not a plain negative number; no option of
    # this command starts with a digit, so anything like "-3,4" or "-.5,1" is a value here.
    parser._negative_number_matcher = re.compile(r"^-\.?\d")

    names = ", ".join(f"{k} ({v.formula})" for k, v in FUNCTIONS.items())
    parser.add_argument("--function", choices=tuple(FUNCTIONS), default="square-sum", metavar="NAME",
                        help=f"the function to minimise: {names} (default: square-sum, the book's)")
    parser.add_argument("--init", type=_point, default=None, metavar="X0,X1",
                        help="starting point (default: the function's usual one; -3,4 for square-sum)")
    parser.add_argument("--lr", type=positive_float, default=None, metavar="X",
                        help="learning rate (default: the function's: 0.1 for square-sum)")
    parser.add_argument("--steps", type=nonnegative_int, default=100, metavar="N",
                        help="number of steps (default: 100, the book's)")
    parser.add_argument("--grad", choices=("numerical", "analytic"), default="numerical",
                        help="numerical gradient (the book's) or the function's analytic one (default: numerical)")
    parser.add_argument("--method", choices=("central", "forward", "backward", "complex"), default="central",
                        help="numerical-gradient method (default: central)")
    parser.add_argument("--h", type=positive_float, default=None, metavar="X",
                        help="numerical-gradient step (default: numerical_gradient's)")
    parser.add_argument("--plot", metavar="PNG", help="write the path over the function's contours to this file")


def run(args: argparse.Namespace) -> int:
    """Run `fastnet descent` with parsed arguments: print the iterates and f, optionally plot the path.

    A diverging descent (learning rate too large) is not an error: the table shows it, a warning
    line says from which step f grew, and the status is 0.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see `add_arguments`).

    Returns
    -------
    int
        0 on success (also for a diverging descent), 2 for a usage error: an unusable ``--plot``
        folder, matplotlib missing for ``--plot``, ``--method complex`` with the numerical
        gradient, or a bad step.

    Examples
    --------
    The book's example (``function_2`` from (-3, 4) with lr 0.1), three steps:

    >>> from fastnet.cli import build_parser
    >>> run(build_parser().parse_args(["descent", "--steps", "3"]))
    fastnet descent: square-sum f(x) = x0^2 + x1^2, from (-3, 4), lr 0.1, 3 steps, numerical gradient (central)
      step              x0              x1            f(x)
         0              -3               4              25
         1            -2.4             3.2              16
         2           -1.92            2.56           10.24
         3          -1.536           2.048          6.5536
    final point: (-1.536, 2.048), f = 6.5536 (minimum 0, 0)
    f went from 25 to 6.5536 in 3 steps; the iterates moved 1.95 (max over coordinates)
    0

    The complex-step method needs a function that accepts complex input, which the test
    functions do not:

    >>> run(build_parser().parse_args(["descent", "--method", "complex"]))
    2
    """
    import os

    from fastnet.descent import DivergenceWarning, gradient_descent
    from fastnet.functions import FUNCTIONS

    fn = FUNCTIONS[args.function]
    init = np.array(args.init if args.init is not None else fn.init, dtype=np.float64)
    lr = args.lr if args.lr is not None else fn.lr
    if args.plot:
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            print(f"fastnet descent: error: --plot {args.plot}: folder {folder} does not exist", file=sys.stderr)
            return 2
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print('fastnet descent: error: --plot needs matplotlib: pip install "fastnet-dlfs[train]"', file=sys.stderr)
            return 2
    if args.method == "complex" and args.grad == "numerical":
        print("fastnet descent: error: --method complex needs f to accept complex input; the test "
              "functions here return real numbers, use central, forward or backward", file=sys.stderr)
        return 2

    grad = fn.grad if args.grad == "analytic" else None
    print(f"fastnet descent: {args.function} f(x) = {fn.formula}, from ({init[0]:g}, {init[1]:g}), "
          f"lr {lr:g}, {args.steps} steps, {args.grad} gradient"
          + (f" ({args.method}{'' if args.h is None else f', h={args.h:g}'})" if grad is None else ""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        try:
            result = gradient_descent(fn.f, init, lr=lr, step_num=args.steps, grad=grad,
                                      method=args.method, h=args.h, path=True)
        except (ValueError, TypeError) as exc:
            print(f"fastnet descent: error: {exc}", file=sys.stderr)
            return 2
    every = max(1, math.ceil(result.steps / TABLE_ROWS))
    print(f"{'step':>6}  {'x0':>14}  {'x1':>14}  {'f(x)':>14}")
    for k in sorted(set(range(0, result.steps + 1, every)) | {result.steps}):
        x0, x1 = result.path[k]
        print(f"{k:6d}  {x0:14.6g}  {x1:14.6g}  {result.values[k]:14.6g}")
    print(f"final point: ({result.x[0]:.10g}, {result.x[1]:.10g}), f = {result.values[-1]:.6g}"
          f" (minimum {fn.minimum[0]:g}, {fn.minimum[1]:g})")
    if result.diverged:
        print(f"warning: {result.message}")
    else:
        moved = float(np.abs(result.x - init).max())
        print(f"{result.message}; the iterates moved {moved:.3g} (max over coordinates)")
    for w in caught:
        if not issubclass(w.category, DivergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if args.plot:
        from fastnet.plots import plot_descent

        plot_descent(fn.f, result.path, args.plot,
                     title=f"{args.function}, lr {lr:g}, {result.steps} steps" + (" (diverged)" if result.diverged else ""))
        print(f"wrote {args.plot}")
    return 0
