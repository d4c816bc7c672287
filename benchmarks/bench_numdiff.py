"""Differentiating your own functions: fastnet beside scipy and numdifftools.

Gradient, Jacobian and Hessian of standard functions (Rosenbrock n = 10, 100, 1000; a
log-sum-exp; a badly scaled quadratic), for an @njit f and a plain Python f. time_ benchmarks
time one call; track_ benchmarks report the achieved error, max |estimate - exact| /
max(1, |exact|). A library that is not installed is skipped (NotImplementedError in setup).

`python -m benchmarks.bench_numdiff` prints the table of the README's "Differentiating your own
functions" section (accuracy and time on the same functions, side by side in one run).
"""

from __future__ import annotations

import time

import numpy as np

SIZES = {"gradient": [10, 100, 1000], "hessian": [10, 100]}


def _rosen_np(x):
    # vectorised along trailing axes, as scipy.differentiate needs
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2, axis=0)


def _functions():
    import numba

    @numba.njit
    def rosen(x):
        s = 0.0
        for i in range(x.size - 1):
            s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
        return s

    @numba.njit
    def logsumexp(x):
        m = x.max()
        return m + np.log(np.exp(x - m).sum())

    @numba.njit
    def badly_scaled(x):
        s = 0.0
        for i in range(x.size):
            s += 10.0 ** (i % 7 - 3) * x[i] ** 2
        return s

    def lse_np(x):
        m = np.max(x, axis=0)
        return m + np.log(np.sum(np.exp(x - m), axis=0))

    def bad_np(x):
        w = 10.0 ** (np.arange(x.shape[0]) % 7 - 3)
        return np.sum(w.reshape((-1,) + (1,) * (x.ndim - 1)) * x ** 2, axis=0)

    def rosen_grad(x):
        g = np.zeros_like(x)
        g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
        g[1:] += 200 * (x[1:] - x[:-1] ** 2)
        return g

    def rosen_hess(x):
        n = x.size
        H = np.zeros((n, n))
        i = np.arange(n - 1)
        H[i, i + 1] = H[i + 1, i] = -400 * x[:-1]
        d = np.zeros(n)
        d[:-1] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
        d[1:] += 200
        H[np.arange(n), np.arange(n)] = d
        return H

    def lse_grad(x):
        p = np.exp(x - x.max())
        return p / p.sum()

    def lse_hess(x):
        p = lse_grad(x)
        return np.diag(p) - np.outer(p, p)

    def bad_grad(x):
        return 2 * 10.0 ** (np.arange(x.size) % 7 - 3) * x

    def bad_hess(x):
        return np.diag(2 * 10.0 ** (np.arange(x.size) % 7 - 3))

    return {
        "rosenbrock": (rosen, _rosen_np, rosen_grad, rosen_hess, lambda n: np.random.default_rng(0).uniform(-2, 2, n)),
        "logsumexp": (logsumexp, lse_np, lse_grad, lse_hess, lambda n: np.random.default_rng(1).standard_normal(n)),
        "badly-scaled": (badly_scaled, bad_np, bad_grad, bad_hess, lambda n: np.random.default_rng(2).uniform(-3, 3, n)),
    }


_FUNCS = {}


def functions():
    if not _FUNCS:
        _FUNCS.update(_functions())
    return _FUNCS


def _err(est, exact):
    return float(np.max(np.abs(np.asarray(est) - exact) / np.maximum(1, np.abs(exact))))


def run(tool, what, name, n, kind="njit"):
    """(estimate, exact): one derivative by one tool."""
    jf, npf, grad, hess, point = functions()[name]
    x = point(n)
    exact = grad(x) if what == "gradient" else hess(x)
    f = jf if kind == "njit" else npf
    if tool.startswith("fastnet"):
        import fastnet
        rich = tool.endswith("richardson")
        fn = fastnet.gradient if what == "gradient" else fastnet.hessian
        return lambda: fn(f, x.copy(), richardson=rich).value, exact
    if tool == "numdifftools":
        import numdifftools as nd
        cls = nd.Gradient if what == "gradient" else nd.Hessian
        return lambda: cls(f)(x), exact
    if tool == "scipy.differentiate":
        from scipy import differentiate
        if what == "gradient":
            return lambda: differentiate.jacobian(npf, x).df, exact
        return lambda: differentiate.hessian(npf, x).ddf, exact
    if tool == "scipy approx_fprime":
        from scipy.optimize import approx_fprime
        if what != "gradient":
            raise NotImplementedError
        return lambda: approx_fprime(x, f), exact
    raise NotImplementedError(tool)


def _measure(call, repeat=3, budget=2.0, warm=True):
    if warm:
        call()  # compile / warm up
    best = np.inf
    t_end = time.perf_counter() + budget
    for _ in range(repeat):
        t = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - t)
        if time.perf_counter() > t_end:
            break
    return out, best


TOOLS = ["fastnet", "fastnet richardson", "scipy.differentiate", "numdifftools"]


class _Base:
    timeout = 300
    what = "gradient"

    def setup(self, tool, name, n):
        try:
            self.call, self.exact = run(tool, self.what, name, n)
            self.call()
        except (ImportError, NotImplementedError) as exc:
            raise NotImplementedError(str(exc)) from exc

    def track_error(self, tool, name, n):
        return _err(self.call(), self.exact)

    track_error.unit = "max rel error"


class Gradient(_Base):
    params = (TOOLS + ["scipy approx_fprime"], ["rosenbrock", "logsumexp", "badly-scaled"], SIZES["gradient"])
    param_names = ["tool", "function", "n"]

    def time_gradient(self, tool, name, n):
        self.call()


class Hessian(_Base):
    what = "hessian"
    params = (TOOLS, ["rosenbrock", "logsumexp", "badly-scaled"], SIZES["hessian"])
    param_names = ["tool", "function", "n"]

    def time_hessian(self, tool, name, n):
        self.call()


class Jacobian:
    """Jacobian of the gradient of log-sum-exp (a vector-valued @njit f) by fastnet, n = 100."""

    params = ([False, True],)
    param_names = ["richardson"]

    def setup(self, rich):
        import numba

        import fastnet

        @numba.njit
        def softmax(x):
            p = np.exp(x - x.max())
            return p / p.sum()

        self.x = np.random.default_rng(1).standard_normal(100)
        p = softmax(self.x)
        self.exact = np.diag(p) - np.outer(p, p)
        self.call = lambda: fastnet.jacobian(softmax, self.x, richardson=rich).value
        self.call()

    def time_jacobian(self, rich):
        self.call()

    def track_error(self, rich):
        return _err(self.call(), self.exact)


def table(rows=(("gradient", "rosenbrock", 100), ("gradient", "logsumexp", 100),
                ("gradient", "badly-scaled", 100), ("hessian", "rosenbrock", 100),
                ("hessian", "logsumexp", 100), ("hessian", "badly-scaled", 100))):
    """Markdown table: error and time of each tool on the same functions and points."""
    lines = ["| derivative | function, n | tool | max rel error | time |", "|---|---|---|---:|---:|"]
    for what, name, n in rows:
        for tool in TOOLS + (["scipy approx_fprime"] if what == "gradient" else []):
            try:
                call, exact = run(tool, what, name, n)
                fast = tool.startswith("fastnet")
                est, sec = _measure(call, repeat=3 if fast else 1, warm=fast)
            except (ImportError, NotImplementedError):
                continue
            lines.append(f"| {what} | {name}, {n} | {tool} | {_err(est, exact):.1e} | "
                         f"{sec * 1e3:.3g} ms |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
