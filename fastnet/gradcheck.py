"""Gradient checking (backprop against numerical differences) and the step-size study."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from typing import Any

import numpy as np
import numpy.typing as npt

from fastnet._typing import ArrayLike, NDArray, Params
from fastnet.checks import GradientCheckError
from fastnet.validation import positive_float
from fastnet.methods import DEFAULT_STEP, method_code, step_for
from fastnet.network import PARAM_NAMES
from fastnet.validation import check_seed, check_step_for, positive_int

if TYPE_CHECKING:
    from fastnet.network import TwoLayerNet

TINY = np.finfo(np.float64).tiny


def relative_error(a: ArrayLike, n: ArrayLike) -> NDArray[np.float64]:
    """Elementwise ``|a - n| / max(|a| + |n|, tiny)``: 0 for equal entries, 1 for opposite signs, never NaN.

    Parameters
    ----------
    a, n : array_like
        Two gradients (or any numbers) of broadcastable shapes.

    Returns
    -------
    ndarray of float64
        The relative error of each entry, in [0, 1].

    Examples
    --------
    >>> relative_error([1.0, 0.0, 1.0], [1.0, 0.0, -1.0])
    array([0., 0., 1.])
    """
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), TINY)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ParamCheck:
    """One parameter's agreement between backprop and the numerical gradient.

    Parameters
    ----------
    name : str
        W1, b1, W2 or b2.
    shape : tuple of int
        The parameter's shape.
    max_abs, max_rel, mean_abs : float
        Max absolute difference, max relative error and mean absolute difference.
    failures : int, default 0
        Entries beyond ``atol + rtol |numerical|``; `passed` when there are none.

    Examples
    --------
    >>> row = ParamCheck("b2", (2,), 1e-12, 3e-8, 5e-13)
    >>> row["max_rel"], row.passed
    (3e-08, True)
    """

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    mean_abs: float
    failures: int = 0  # entries beyond atol + rtol |numerical|

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def __getitem__(self, key: str) -> float:
        """check["W1"]["max_rel"] reads like the dict from GradientCheck.as_dict()."""
        if key not in ("max_abs", "max_rel", "mean_abs"):
            raise KeyError(key)
        return float(getattr(self, key))


@dataclass(frozen=True)
class GradientCheck:
    """Per-parameter ``max |backprop - numerical|`` and relative error; str() prints a table.

    Returned by `gradient_check`; ``check["W1"]`` is that parameter's `ParamCheck`.

    Parameters
    ----------
    rows : tuple of ParamCheck
        One per parameter.
    h : float
        The step of the numerical gradient.
    method : str
        Its difference formula.
    rtol, atol : float, default 1e-4 and 1e-6
        The tolerance of the verdict: an entry passes when
        ``|backprop - numerical| <= atol + rtol |numerical|``.

    Examples
    --------
    >>> check = GradientCheck((ParamCheck("b2", (2,), 1e-12, 3e-8, 5e-13),), 1e-4, "central")
    >>> check.max_rel, check["b2"].max_abs
    (3e-08, 1e-12)
    >>> print(check)  # doctest: +NORMALIZE_WHITESPACE
    gradient check: backprop vs numerical (central, h=0.0001)
    param         shape    max |a-n|   mean |a-n|  max rel err  failed
    b2                2    1.000e-12    5.000e-13    3.000e-08       0
    passed at rtol=0.0001, atol=1e-06 (|backprop - numerical| <= atol + rtol |numerical| for
    every entry)
    """

    rows: tuple[ParamCheck, ...]
    h: float
    method: str
    rtol: float = 1e-4
    atol: float = 1e-6

    @property
    def passed(self) -> bool:
        """True when every entry satisfies ``|backprop - numerical| <= atol + rtol |numerical|``."""
        return all(r.passed for r in self.rows)

    def __getitem__(self, name: str) -> ParamCheck:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    @property
    def max_abs(self) -> float:
        """The largest ``max |a - n|`` over the parameters."""
        return max(r.max_abs for r in self.rows)

    @property
    def max_rel(self) -> float:
        """The largest relative error over the parameters."""
        return max(r.max_rel for r in self.rows)

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{name: {"max_abs": ..., "max_rel": ..., "mean_abs": ...}}``, ready for JSON.

        Returns
        -------
        dict of str to dict

        Examples
        --------
        >>> GradientCheck((ParamCheck("b2", (2,), 1e-12, 3e-8, 5e-13),), 1e-4, "central").as_dict()
        {'b2': {'max_abs': 1e-12, 'max_rel': 3e-08, 'mean_abs': 5e-13}}
        """
        return {r.name: {"max_abs": r.max_abs, "max_rel": r.max_rel, "mean_abs": r.mean_abs}
                for r in self.rows}

    def __str__(self) -> str:
        head = f"gradient check: backprop vs numerical ({self.method}, h={self.h:g})"
        lines = [head, f"{'param':<6} {'shape':>12} {'max |a-n|':>12} {'mean |a-n|':>12} "
                       f"{'max rel err':>12} {'failed':>7}"]
        for r in self.rows:
            shape = "x".join(map(str, r.shape))
            lines.append(f"{r.name:<6} {shape:>12} {r.max_abs:12.3e} {r.mean_abs:12.3e} "
                         f"{r.max_rel:12.3e} {r.failures:7d}")
        verdict = "passed" if self.passed else "FAILED"
        lines.append(f"{verdict} at rtol={self.rtol:g}, atol={self.atol:g} "
                     "(|backprop - numerical| <= atol + rtol |numerical| for every entry)")
        return "\n".join(lines)


def gradient_check(net: TwoLayerNet, x: ArrayLike, t: ArrayLike, h: float | None = None, method: str = "central",
                   *, threads: int | None = None, rtol: float = 1e-4, atol: float = 1e-6,
                   raise_on_failure: bool = False) -> GradientCheck:
    """Compare net.gradient (backprop) with net.numerical_gradient parameter by parameter.

    The relative error ``|a - n| / max(|a| + |n|, tiny)`` is the maximum over entries; entries where
    both gradients are exactly 0 count as 0. The check passes when every entry satisfies
    ``|a - n| <= atol + rtol |n|`` (`.passed`; per parameter, `.failures`); raise_on_failure=True
    raises GradientCheckError (an AssertionError) when it does not.

    Parameters
    ----------
    net : TwoLayerNet
        The network, at its current parameters.
    x : array_like, shape (N, D)
        Inputs.
    t : array_like, shape (N,) or (N, C)
        Class indices or one-hot rows.
    h : float, optional
        Step of the numerical gradient (default 1e-4, or 1e-20 for ``method="complex"``).
    method : {"central", "forward", "backward", "complex"}
        Difference formula of the numerical gradient.
    threads : int, optional
        numba threads for the numerical gradient.
    rtol, atol : float, default 1e-4 and 1e-6
        The tolerance of the pass/fail verdict, per entry.
    raise_on_failure : bool, default False
        Raise GradientCheckError when the check fails (for use in tests).

    Returns
    -------
    GradientCheck
        Per parameter: max and mean ``|a - n|`` and the max relative error; ``str()`` is a table.

    Raises
    ------
    TypeError, ValueError
        Bad inputs, labels, method, step, tolerances or thread count (see
        `TwoLayerNet.numerical_gradient`).
    GradientCheckError
        With raise_on_failure=True, when an entry is outside the tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnet import TwoLayerNet
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> check = gradient_check(net, np.linspace(0, 1, 20).reshape(5, 4), [0, 1, 0, 1, 1])
    >>> check.max_rel < 1e-6, check.passed
    (True, True)
    >>> sorted(check.as_dict())
    ['W1', 'W2', 'b1', 'b2']
    """
    h = step_for(method, h)
    rtol = positive_float(rtol, "rtol")
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not math.isfinite(atol) \
            or atol < 0:
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    if not isinstance(raise_on_failure, bool):
        raise TypeError(f"raise_on_failure must be True or False, got {raise_on_failure!r}")
    analytic = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t, h=h, method=method, threads=threads)
    rows = []
    for name in PARAM_NAMES:
        a, n = analytic[name], numeric[name]
        diff = np.abs(a.astype(np.float64) - n.astype(np.float64))
        failures = int((diff > atol + rtol * np.abs(n.astype(np.float64))).sum())
        rows.append(ParamCheck(name, tuple(a.shape), float(diff.max()),
                               float(relative_error(a, n).max()), float(diff.mean()), failures))
    check = GradientCheck(tuple(rows), h, method, rtol, float(atol))
    if raise_on_failure and not check.passed:
        raise GradientCheckError(str(check))
    return check


@dataclass(frozen=True)
class StepStudy:
    """``errors[method][k]`` = max over all parameters of ``|numerical(h = hs[k]) - backprop|``.

    Returned by `step_study`; ``str()`` prints the table, `best` the step with the smallest error.

    Parameters
    ----------
    hs : ndarray, shape (K,)
        The steps.
    errors : dict of str to ndarray
        The errors of each method at each step.
    scale : float, default 1.0
        ``max |backprop|``, to read the errors as relative ones.

    Examples
    --------
    >>> study = StepStudy(np.array([1e-3, 1e-2]), {"central": np.array([2e-9, 1e-7])}, scale=0.5)
    >>> study.best("central")
    (0.001, 2e-09)
    """

    hs: NDArray[np.float64]
    errors: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    scale: float = 1.0  # max |backprop gradient|, to read errors as relative ones

    def best(self, method: str) -> tuple[float, float]:
        """(h, error) at the smallest error of `method`.

        Parameters
        ----------
        method : str
            A key of `errors`, e.g. ``"central"`` or ``"central (full loss)"``.

        Returns
        -------
        (float, float)
            The step h and its error.

        Raises
        ------
        KeyError
            `method` was not studied.

        Examples
        --------
        >>> import numpy as np
        >>> StepStudy(np.array([1e-3, 1e-2]), {"central": np.array([2e-9, 1e-7])}).best("central")
        (0.001, 2e-09)
        """
        e = np.asarray(self.errors[method])
        k = int(np.nanargmin(e))
        return float(self.hs[k]), float(e[k])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: hs, scale and the errors of each method as lists.

        Returns
        -------
        dict

        Examples
        --------
        >>> StepStudy(np.array([1e-3]), {"central": np.array([2e-9])}).as_dict()
        {'hs': [0.001], 'scale': 1.0, 'errors': {'central': [2e-09]}}
        """
        return {"hs": [float(h) for h in self.hs], "scale": self.scale,
                "errors": {m: [float(v) for v in e] for m, e in self.errors.items()}}

    def __str__(self) -> str:
        methods = list(self.errors)
        lines = [f"max |numerical - backprop| over all parameters (max |backprop| = {self.scale:.3e})",
                 f"{'h':>10} " + " ".join(f"{m:>11}" for m in methods)]
        for k, h in enumerate(self.hs):
            lines.append(f"{h:10.1e} " + " ".join(f"{self.errors[m][k]:11.3e}" for m in methods))
        lines.append("best h: " + ", ".join(f"{m} {self.best(m)[0]:.1e}" for m in methods))
        return "\n".join(lines)


def _naive_errors(net: TwoLayerNet, x: ArrayLike, t: ArrayLike, hs: NDArray[np.float64], methods: Iterable[str],
                  analytic: Params, n_entries: int, seed: int | None) -> dict[str, NDArray[np.float64]]:
    """Max error of the book's full-loss differences on a sample of parameter entries."""
    import kernels

    xc = net._x(x)
    tc = np.asarray(net._xt(x, t)[1])
    params = [p.copy() for p in net._checked_params()]
    rng = np.random.default_rng(seed)
    sizes = [p.size for p in params]
    picks = rng.choice(sum(sizes), size=min(n_entries, sum(sizes)), replace=False)
    offsets = np.cumsum([0] + sizes)
    entries = [(int(np.searchsorted(offsets, p, side="right") - 1), int(p)) for p in picks]
    entries = [(k, p - offsets[k]) for k, p in entries]
    dt = net.dtype.type
    out = {}
    for m in methods:
        if m == "complex":
            continue  # no subtraction, so no naive counterpart to show
        errs = np.zeros(hs.size)
        for k, h in enumerate(hs):
            step = dt(h)
            for which, idx in entries:
                flat = params[which].reshape(-1)
                old = flat[idx]
                flat[idx] = old + step
                lp = kernels.two_layer_loss(xc, tc, *params, net._loss)
                flat[idx] = old - step
                lm = kernels.two_layer_loss(xc, tc, *params, net._loss)
                flat[idx] = old
                l0 = kernels.two_layer_loss(xc, tc, *params, net._loss) if m != "central" else 0.0
                if m == "central":
                    g = (lp - lm) / (2 * h)
                elif m == "forward":
                    g = (lp - l0) / h
                else:
                    g = (l0 - lm) / h
                a = analytic[PARAM_NAMES[which]].reshape(-1)[idx]
                errs[k] = max(errs[k], abs(float(g) - float(a)))
        out[f"{m} (full loss)"] = errs
    return out


def step_study(net: TwoLayerNet, x: ArrayLike, t: ArrayLike, hs: ArrayLike | None = None,
               methods: str | Sequence[str] = ("central", "forward", "backward", "complex"), *,
               naive: bool = True, naive_entries: int = 100, seed: int | None = 0,
               threads: int | None = None) -> StepStudy:
    """Error of the numerical gradient against backprop for each method and step h.

    hs defaults to 25 steps from 1e-12 to 1 (log-spaced). fastnet's kernel sums exact per-sample
    loss differences, so it shows only the truncation arm (error ~ h^2 central, ~ h one-sided).
    With naive=True the study adds the book's way, (L(theta + h e_p) - L(theta - h e_p)) / 2h with
    whole losses subtracted, on `naive_entries` sampled parameters: its rounding arm (~ eps / h)
    gives the classic V whose bottom is the step to choose for such a loop.

    Parameters
    ----------
    net : TwoLayerNet
        The network, at its current parameters.
    x : array_like, shape (N, D)
        Inputs.
    t : array_like, shape (N,) or (N, C)
        Class indices or one-hot rows.
    hs : array_like of float, optional
        The steps, each finite and > 0.
    methods : str or sequence of str
        Any of "central", "forward", "backward", "complex".
    naive : bool, default True
        Add the book's full-loss differences ("central (full loss)", ...), except for complex.
    naive_entries : int, default 100
        How many parameter entries the full-loss differences are evaluated on.
    seed : int, default 0
        Seed of the choice of those entries.
    threads : int, optional
        numba threads for the numerical gradients.

    Returns
    -------
    StepStudy
        The steps, the errors of each method and the scale ``max |backprop|``.

    Raises
    ------
    TypeError, ValueError
        Bad steps, an unknown method, or bad inputs/labels.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnet import TwoLayerNet
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> study = step_study(net, np.linspace(0, 1, 20).reshape(5, 4), [0, 1, 0, 1, 1],
    ...                    hs=[1e-6, 1e-3], methods="central", naive=False)
    >>> list(study.errors)
    ['central']
    >>> bool(study.errors["central"][0] < study.errors["central"][1])
    True
    """
    if hs is None:
        hs = np.logspace(-12, 0, 25)
    hs = np.asarray(hs, dtype=np.float64)
    if hs.ndim != 1 or hs.size == 0:
        raise ValueError(f"hs must be a non-empty 1-D sequence of steps, got shape {hs.shape}")
    if isinstance(methods, str):
        methods = (methods,)
    for m in methods:
        method_code(m)
    if naive:
        naive_entries = positive_int(naive_entries, "naive_entries")
        check_seed(seed)
    # Every step checked against the net's dtype and weights before any gradient is computed.
    params = net._checked_params()
    for h in hs:
        for m in methods:
            check_step_for(float(h), net.dtype, params, m, name="hs entry")
    analytic = net.gradient(x, t)
    flat_a = np.concatenate([analytic[k].ravel().astype(np.float64) for k in PARAM_NAMES])
    errors = {}
    for m in methods:
        errs = np.empty(hs.size)
        for k, h in enumerate(hs):
            g = net.numerical_gradient(x, t, h=float(h), method=m, threads=threads)
            flat_n = np.concatenate([g[key].ravel().astype(np.float64) for key in PARAM_NAMES])
            errs[k] = np.abs(flat_n - flat_a).max()
        errors[m] = errs
    if naive:
        errors.update(_naive_errors(net, x, t, hs, methods, analytic, naive_entries, seed))
    return StepStudy(hs, errors, float(np.abs(flat_a).max()))


__all__ = ["GradientCheck", "ParamCheck", "StepStudy", "gradient_check", "relative_error",
           "step_study", "DEFAULT_STEP"]
