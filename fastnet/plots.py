"""PNG figures: learning curves of a training run and the error-vs-step-size study.

matplotlib is imported only when a plot is made, so `import fastnet` does not need it. The figures
are drawn on a bare `matplotlib.figure.Figure` (Agg canvas), never through pyplot, so no global
backend is switched and no window opens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fastnet._typing import ArrayLike
from fastnet.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fastnet.history import History


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


__all__ = ["plot_history", "plot_step_study"]
