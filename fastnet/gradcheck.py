"""Gradient checking (backprop against numerical differences) and the step-size study."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastnet.checks import GradientCheckError
from fastnet.validation import positive_float

from fastnet.methods import DEFAULT_STEP, method_code, step_for
from fastnet.network import PARAM_NAMES

TINY = np.finfo(np.float64).tiny


def relative_error(a, n):
    """Elementwise |a - n| / max(|a| + |n|, tiny): 0 for equal entries, 1 for opposite signs, never NaN."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), TINY)


@dataclass(frozen=True)
class ParamCheck:
    """One parameter's agreement between backprop and the numerical gradient."""

    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    mean_abs: float
    failures: int = 0  # entries beyond atol + rtol |numerical|

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def __getitem__(self, key):
        """check["W1"]["max_rel"] reads like the dict from GradientCheck.as_dict()."""
        if key not in ("max_abs", "max_rel", "mean_abs"):
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True)
class GradientCheck:
    """Per-parameter max |backprop - numerical| and relative error; str() prints a table."""

    rows: tuple
    h: float
    method: str
    rtol: float = 1e-4
    atol: float = 1e-6

    @property
    def passed(self) -> bool:
        """Every entry of every parameter within |backprop - numerical| <= atol + rtol |numerical|."""
        return all(r.passed for r in self.rows)

    def __getitem__(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    @property
    def max_abs(self):
        return max(r.max_abs for r in self.rows)

    @property
    def max_rel(self):
        return max(r.max_rel for r in self.rows)

    def as_dict(self):
        """{name: {"max_abs": ..., "max_rel": ..., "mean_abs": ...}}."""
        return {r.name: {"max_abs": r.max_abs, "max_rel": r.max_rel, "mean_abs": r.mean_abs}
                for r in self.rows}

    def __str__(self):
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


def gradient_check(net: Any, x: Any, t: Any, h: Any = None, method: str = "central", *,
                   threads: int | None = None, rtol: float = 1e-4, atol: float = 1e-6,
                   raise_on_failure: bool = False) -> GradientCheck:
    """Compare net.gradient (backprop) with net.numerical_gradient parameter by parameter.

    The relative error |a - n| / max(|a| + |n|, tiny) is the maximum over entries; entries where
    both gradients are exactly 0 count as 0. The check passes when every entry satisfies
    |a - n| <= atol + rtol |n| (`.passed`; per parameter, `.failures`); raise_on_failure=True
    raises GradientCheckError (an AssertionError) when it does not.
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
    """errors[method][k] = max over all parameters of |numerical(h = hs[k]) - backprop|."""

    hs: np.ndarray
    errors: dict = field(default_factory=dict)
    scale: float = 1.0  # max |backprop gradient|, to read errors as relative ones

    def best(self, method):
        """(h, error) at the smallest error of `method`."""
        e = np.asarray(self.errors[method])
        k = int(np.nanargmin(e))
        return float(self.hs[k]), float(e[k])

    def as_dict(self):
        return {"hs": [float(h) for h in self.hs], "scale": self.scale,
                "errors": {m: [float(v) for v in e] for m, e in self.errors.items()}}

    def __str__(self):
        methods = list(self.errors)
        lines = [f"max |numerical - backprop| over all parameters (max |backprop| = {self.scale:.3e})",
                 f"{'h':>10} " + " ".join(f"{m:>11}" for m in methods)]
        for k, h in enumerate(self.hs):
            lines.append(f"{h:10.1e} " + " ".join(f"{self.errors[m][k]:11.3e}" for m in methods))
        lines.append("best h: " + ", ".join(f"{m} {self.best(m)[0]:.1e}" for m in methods))
        return "\n".join(lines)


def _naive_errors(net, x, t, hs, methods, analytic, n_entries, seed):
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
                lp = kernels.two_layer_loss(xc, tc, *params)
                flat[idx] = old - step
                lm = kernels.two_layer_loss(xc, tc, *params)
                flat[idx] = old
                l0 = kernels.two_layer_loss(xc, tc, *params) if m != "central" else 0.0
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


def step_study(net, x, t, hs=None, methods=("central", "forward", "backward", "complex"), *,
               naive=True, naive_entries=100, seed=0, threads=None):
    """Error of the numerical gradient against backprop for each method and step h.

    hs defaults to 25 steps from 1e-12 to 1 (log-spaced). fastnet's kernel sums exact per-sample
    loss differences, so it shows only the truncation arm (error ~ h^2 central, ~ h one-sided).
    With naive=True the study adds the book's way, (L(theta + h e_p) - L(theta - h e_p)) / 2h with
    whole losses subtracted, on `naive_entries` sampled parameters: its rounding arm (~ eps / h)
    gives the classic V whose bottom is the step to choose for such a loop.
    """
    if hs is None:
        hs = np.logspace(-12, 0, 25)
    hs = np.asarray(hs, dtype=np.float64)
    if hs.ndim != 1 or hs.size == 0:
        raise ValueError(f"hs must be a non-empty 1-D sequence of steps, got shape {hs.shape}")
    for h in hs:
        step_for("central", float(h))
    if isinstance(methods, str):
        methods = (methods,)
    for m in methods:
        method_code(m)
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
