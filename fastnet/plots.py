"""PNG figures: learning curves, the error-vs-step-size study, gradient-descent paths and sweeps.

matplotlib is imported only when a plot is made, so `import fastnet` does not need it. The figures
are drawn on a bare `matplotlib.figure.Figure` (Agg canvas), never through pyplot, so no global
backend is switched and no window opens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fastnet._typing import ArrayLike, NDArray
from fastnet.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fastnet.history import History
    from fastnet.sweeps import SweepResult


def _figure(**kwargs: Any) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            'plotting needs matplotlib, which is not installed; install it with: pip install "fastnet-dlfs[train]"'
        ) from exc
    return Figure(**kwargs)


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)


def plot_history(history: History | dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a two-panel PNG to `path`: loss per iteration (book fig. 4-11) and train/test accuracy per epoch (fig. 4-12).

    Parameters
    ----------
    history : History or dict
        A training run, or its `History.to_dict` form.
    path : str or os.PathLike
        The PNG file to write (atomically).

    Raises
    ------
    ImportError
        matplotlib is not installed.
    TypeError, ValueError
        history is neither a History nor its dict.
    OSError
        The file cannot be written.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastnet import History
    >>> h = History(loss=[2.3, 1.2, 0.8], train_acc=[0.1, 0.7], test_acc=[0.1, 0.6],
    ...             eval_iters=[0, 2], eval_seconds=[0.0, 0.1], settings={"train_size": 3, "batch_size": 1})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     plot_history(h, os.path.join(d, "curves.png"))
    ...     os.listdir(d)
    ['curves.png']
    """
    from fastnet.history import History

    if isinstance(history, dict):
        history = History.from_dict(history)
    if not isinstance(history, History):
        raise TypeError(f"history must be a History or its dict, got {type(history).__name__}")

    fig = _figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)

    loss = np.asarray(history.loss, dtype=float)
    ax_loss.plot(np.arange(loss.size), loss, linewidth=0.6, color="tab:blue")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("training loss (mini-batch)")
    if loss.size:
        ax_loss.set_xlim(0, max(loss.size - 1, 1))
    finite = loss[np.isfinite(loss)]
    if finite.size:
        ax_loss.set_ylim(0, max(float(finite.max()) * 1.05, 1e-12))

    epochs = np.asarray(history.epochs, dtype=float)
    ax_acc.plot(epochs, history.train_acc, label="train acc", color="tab:blue")
    ax_acc.plot(epochs, history.test_acc, label="test acc", color="tab:orange", linestyle="--")
    ax_acc.set_xlabel("epochs")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.0)
    ax_acc.set_title("accuracy on the full sets")
    # Outside the axes: on a short run the curves end anywhere, and a legend inside covers them.
    ax_acc.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax_acc.grid(True, alpha=0.3)

    s = history.settings
    if s:
        fig.suptitle(
            f"{s.get('grad', '?')} gradients, sizes {s.get('sizes')}, batch {s.get('batch_size')}, "
            f"lr {s.get('lr')}, {history.iterations} iterations",
            fontsize=10,
        )
    _save(fig, path)


def plot_step_study(hs: ArrayLike, errors: Mapping[str, ArrayLike], path: str | os.PathLike[str],
                    title: str | None = None) -> None:
    """Write a log-log PNG to `path`: error against step size h, one line per method.

    hs: (K,) positive step sizes; errors: dict method -> (K,) errors. Non-positive or non-finite
    errors (e.g. an exact 0) cannot be drawn on a log axis and are left out of that line.
    Each line has its own dash pattern, marker and fill, so curves that coincide stay visible.

    Parameters
    ----------
    hs : array_like, shape (K,)
        Positive, finite step sizes.
    errors : dict of str to array_like
        Errors of each method, each of shape (K,); `StepStudy.errors` fits.
    path : str or os.PathLike
        The PNG file to write (atomically).
    title : str, optional
        Title of the plot.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    TypeError, ValueError
        Bad steps or errors.
    OSError
        The file cannot be written.

    Examples
    --------
    >>> import os, tempfile
    >>> hs = [1e-6, 1e-4, 1e-2]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     plot_step_study(hs, {"central": [1e-12, 1e-9, 1e-5], "forward": [1e-6, 1e-4, 1e-2]},
    ...                     os.path.join(d, "steps.png"))
    ...     os.listdir(d)
    ['steps.png']
    """
    hs = np.asarray(hs, dtype=float)
    if hs.ndim != 1 or hs.size == 0:
        raise ValueError(f"hs must be a non-empty 1-D array of step sizes, got shape {hs.shape}")
    if not (np.isfinite(hs).all() and (hs > 0).all()):
        raise ValueError("hs must hold positive finite step sizes")
    if not isinstance(errors, dict) or not errors:
        raise TypeError("errors must be a non-empty dict: method name -> array of errors")
    series: dict[str, Any] = {}
    for name, e in errors.items():
        e = np.asarray(e, dtype=float)
        if e.shape != hs.shape:
            raise ValueError(f"errors[{name!r}] must have shape {hs.shape} like hs, got {e.shape}")
        series[name] = np.where(np.isfinite(e) & (e > 0), e, np.nan)

    fig = _figure(figsize=(8.4, 4.8), layout="constrained")
    ax = fig.subplots()
    # Curves can coincide (forward and backward truncation errors are equal in size; the complex
    # step matches central at small h), so each line differs in dash pattern, marker shape, marker
    # size and fill: a hollow, larger marker stays visible around a filled one on the same point.
    markers = "os^dvx*+"
    dashes = ("-", "--", ":", "-.")
    drawn = 0
    for j, (name, e) in enumerate(series.items()):
        ok = ~np.isnan(e)
        if not ok.any():
            continue
        hollow = j % 2 == 1
        # Only the drawable points, so a gap does not split the line into invisible pieces.
        line, = ax.plot(hs[ok], e[ok], linestyle=dashes[j % len(dashes)], marker=markers[j % len(markers)],
                        markersize=8 if hollow else 4, label=str(name), zorder=10 - j % 10)
        if hollow:
            line.set_markerfacecolor("none")
        drawn += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step size h")
    ax.set_ylabel("max abs error vs backprop")
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        # Beside the axes: inside, it would cover the ends of the curves wherever it is put.
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_title(title if title is not None else "numerical gradient error vs step size", fontsize="small")
    if drawn == 0:
        ax.set_xlim(float(hs.min()), float(hs.max()) if hs.max() > hs.min() else float(hs.min()) * 10)
        ax.set_ylim(1e-16, 1.0)
        ax.text(0.5, 0.5, "no positive errors to draw", transform=ax.transAxes, ha="center")
    _save(fig, path)


def plot_descent(f: Callable[[NDArray[np.float64]], Any], path: ArrayLike, out: str | os.PathLike[str],
                 title: str | None = None, resolution: int = 200) -> None:
    """Write a PNG to `out`: the iterates of a gradient descent over the contours of f (book fig. 4-10).

    The view covers the iterates, except that a path that runs off far beyond its start (a
    diverging one) is shown around the start, with a note: its whole extent would flatten every
    contour into the start point.

    Parameters
    ----------
    f : callable
        f(x) -> scalar for a 2-vector x, evaluated on a `resolution` x `resolution` grid.
    path : array_like
        The iterates, shape (K, 2), the start first: for instance
        ``gradient_descent(..., path=True).path``.
    out : str or os.PathLike
        The PNG file to write (atomically).
    title : str, optional
        The plot's title (default: "gradient descent").
    resolution : int, default 200
        Grid points per axis for the contours.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    TypeError, ValueError
        `f` is not callable, or `path` is not a finite (K, 2) array.
    OSError
        The file cannot be written.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastnet.descent import gradient_descent
    >>> from fastnet.functions import square_sum
    >>> result = gradient_descent(square_sum, np.array([-3.0, 4.0]), lr=0.1, step_num=20, path=True)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     plot_descent(square_sum, result.path, os.path.join(d, "descent.png"), resolution=20)
    ...     os.listdir(d)
    ['descent.png']
    """
    pts = np.asarray(path, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
        raise ValueError(f"path must have shape (K, 2) with K >= 1 (2-D descents only), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("path holds NaN or inf")
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")

    start = pts[0]
    reach = max(1.0, float(np.abs(start).max()))
    lo = pts.min(axis=0)
    hi = pts.max(axis=0)
    clipped = bool(np.abs(pts - start).max() > 20 * reach)
    if clipped:  # a diverging path: show where it started, not the whole run to 1e100
        lo, hi = start - 2 * reach, start + 2 * reach
    span = np.maximum(hi - lo, 0.1 * reach)
    lo, hi = lo - 0.15 * span, hi + 0.15 * span
    # square view so that the axes read like the book's figure
    centre = (lo + hi) / 2
    half = float((hi - lo).max()) / 2
    lo, hi = centre - half, centre + half
    gx = np.linspace(lo[0], hi[0], resolution)
    gy = np.linspace(lo[1], hi[1], resolution)
    values = np.empty((resolution, resolution))
    point = np.empty(2)
    for i, yv in enumerate(gy):
        for j, xv in enumerate(gx):
            point[0], point[1] = xv, yv
            values[i, j] = f(point)

    fig = _figure(figsize=(5.6, 5.0), layout="constrained")
    ax = fig.subplots()
    finite = values[np.isfinite(values)]
    if finite.size and finite.max() > finite.min():
        # levels spaced in sqrt(f - min): circles of a quadratic come out evenly spaced
        vmin = float(finite.min())
        levels = vmin + np.linspace(0, np.sqrt(float(finite.max()) - vmin), 16)[1:] ** 2
        cs = ax.contour(gx, gy, values, levels=levels, colors="0.55", linewidths=0.7)
        ax.clabel(cs, fontsize=6, fmt="%.3g")
    ax.axhline(0, color="0.6", linestyle="--", linewidth=0.7)
    ax.axvline(0, color="0.6", linestyle="--", linewidth=0.7)
    inside = pts if not clipped else pts[(np.abs(pts - start) <= 2.2 * reach).all(axis=1)]
    ax.plot(inside[:, 0], inside[:, 1], "o-", color="tab:blue", markersize=3, linewidth=0.8,
            label=f"iterates ({pts.shape[0] - 1} steps)")
    ax.plot(pts[0, 0], pts[0, 1], "s", color="tab:green", markersize=6, label="start")
    if not clipped:
        ax.plot(pts[-1, 0], pts[-1, 1], "*", color="tab:red", markersize=10, label="end")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.legend(loc="best", fontsize="small")
    if clipped:
        ax.text(0.5, 0.02, f"the path leaves this view (ends at |x| = {np.abs(pts[-1]).max():.3g})",
                transform=ax.transAxes, ha="center", fontsize="small", color="tab:red")
    ax.set_title(title if title is not None else "gradient descent", fontsize="small")
    _save(fig, out)


def plot_sweep(result: SweepResult, path: str | os.PathLike[str], best: int = 20) -> None:
    """Write a PNG to `path` for a training sweep (`fastnet.sweep`'s result).

    A random search gets the book's figure 6-24: the test-accuracy curves (solid) and training
    curves (dashed) of the `best` trials, one small panel each, titled with their rank, final
    accuracy and the searched values. A grid gets the final test accuracy against the first swept
    setting, one line per combination of the other settings, mean and standard deviation over
    the replicates (seeds) as error bars.

    Parameters
    ----------
    result : fastnet.SweepResult
        A sweep of kind "train" with at least one finished trial.
    path : str or os.PathLike
        The PNG file to write (atomically).
    best : int, default 20
        How many of the best trials a random search shows.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    ValueError
        The sweep is not a training sweep, or no trial of it finished.
    OSError
        The file cannot be written.

    Examples
    --------
    A grid over the learning rate, built by hand from two finished trials:

    >>> import os, tempfile
    >>> from fastnet.sweeps import SweepResult
    >>> records = [{"id": "a", "status": "ok", "settings": {"lr": 0.01}, "test_acc": 0.81},
    ...            {"id": "b", "status": "ok", "settings": {"lr": 0.1}, "test_acc": 0.93}]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     result = SweepResult("train", records, swept=["lr"], out=d, group_by=["lr"])
    ...     plot_sweep(result, os.path.join(d, "sweep.png"))
    ...     os.listdir(d)
    ['sweep.png']
    """
    if result.kind != "train":
        raise ValueError(f"plot_sweep draws training sweeps, got a {result.kind!r} sweep")
    ok = result.ok()
    if not ok:
        raise ValueError("the sweep has no finished trial to plot")
    random_search = bool(result.random_axes)
    if random_search:
        top = result.best(best)
        cols = 5
        n_rows = max(1, -(-len(top) // cols))
        fig = _figure(figsize=(2.6 * cols, 2.1 * n_rows + 0.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(n_rows, cols, sharex=False, sharey=True)).ravel()
        for k, (ax, r) in enumerate(zip(axes, top)):
            ax.plot(r["epochs"], r["test_acc_curve"], color="tab:blue", linewidth=1)
            ax.plot(r["epochs"], r["train_acc_curve"], color="tab:blue", linestyle="--", linewidth=0.8)
            ax.set_ylim(0, 1.0)
            label = ", ".join(f"{g} {r['settings'][g]:.3g}" if isinstance(r["settings"][g], float)
                              else f"{g} {r['settings'][g]}" for g in result.group_by)
            ax.set_title(f"Best-{k + 1} (test acc {r['test_acc']:.3f})\n{label}", fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in axes[len(top):]:
            ax.set_axis_off()
        fig.suptitle(f"best {len(top)} of {len(ok)} trials: test accuracy (solid), train (dashed) "
                     "against epochs", fontsize=9)
    else:
        rows = result.summary()
        axis = result.group_by[0] if result.group_by else None
        fig = _figure(figsize=(6.4, 4.6), layout="constrained")
        ax = fig.subplots()
        if axis is None:
            vals = [r["test_acc"] for r in ok]
            ax.errorbar([0], [np.mean(vals)], yerr=[np.std(vals)], fmt="o", capsize=4)
            ax.set_xticks([0], ["all trials"])
        else:
            others = result.group_by[1:]
            lines: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for row in rows:
                lines.setdefault(tuple(row[o] for o in others), []).append(row)
            numeric = all(isinstance(row[axis], (int, float)) for row in rows)
            for key, pts in lines.items():
                xs = [p[axis] for p in pts]
                xpos = xs if numeric else list(range(len(xs)))
                lab = ", ".join(f"{o}={v}" for o, v in zip(others, key)) or None
                ax.errorbar(xpos, [p["mean"] for p in pts], yerr=[p["std"] for p in pts], marker="o",
                            capsize=3, label=lab)
                if not numeric:
                    ax.set_xticks(xpos, [str(x) for x in xs])
            if numeric and axis in ("lr", "h", "weight_decay", "weight_init_std"):
                ax.set_xscale("log")
            ax.set_xlabel(axis)
            if len(lines) > 1:
                ax.legend(fontsize="small", loc="best")
        ax.set_ylabel("final test accuracy (mean, std over seeds)")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{len(ok)} trials", fontsize="small")
    _save(fig, path)


__all__ = ["plot_descent", "plot_history", "plot_step_study", "plot_sweep"]
