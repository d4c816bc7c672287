"""Generic perturb-and-evaluate loops for a user's @njit function: gradients, Jacobians, Hessians.

These loops only evaluate f; the differences, the steps actually taken and any extrapolation are
formed afterwards (in `fastnet.gradient` and friends) from the values they return. Every thread
perturbs its own copy of x, each output entry is written by exactly one thread in a fixed order,
so the results are identical for any thread count. In the parallel versions a call of f that
raises is caught and reported in `failed` (numba cannot carry an exception out of a parallel
region reliably); the serial versions let f's exception through unchanged, and are what the
Python layer reruns to surface it.
"""

from __future__ import annotations

from numba import get_num_threads, prange

from kernels._jit import jit


@jit(cache=False)
def _put_scalar(f, buf, args, out, q, k):
    out[q, k] = f(buf, *args)


@jit(cache=False)
def _put_vector(f, buf, args, out, q, k):
    v = f(buf, *args)
    flat = v.ravel()
    if flat.size != out.shape[2]:
        raise ValueError("f returned a different number of values than at x")
    for i in range(out.shape[2]):
        out[q, k, i] = flat[i]


def _guard(put):
    def guarded(f, buf, args, out, q, k):
        try:
            put(f, buf, args, out, q, k)
        except Exception:  # noqa: BLE001 - reported in `failed`; the serial rerun raises it
            return False
        return True

    return jit(guarded, cache=False)


def _direct(put):
    def direct(f, buf, args, out, q, k):
        put(f, buf, args, out, q, k)
        return True

    return jit(direct, cache=False)


def _values_loop(call, parallel):
    def loop(f, x, entries, points, args, out, failed):
        n = x.size
        m = entries.size
        n_points = points.shape[1]
        chunks = max(1, min(get_num_threads(), m)) if parallel else 1
        for c in prange(chunks):
            buf = x.copy()
            flat = buf.reshape(n)
            for q in range(c, m, chunks):
                p = entries[q]
                old = flat[p]
                for k in range(n_points):
                    flat[p] = points[q, k]
                    if not call(f, buf, args, out, q, k):
                        failed[q] = 1
                flat[p] = old

    loop.__doc__ = """out[q, k] = f(x with flat entry entries[q] set to points[q, k], *args).

    x is a C-contiguous copy (never written: each thread perturbs its own copy of it).
    """
    return jit(loop, parallel=parallel, cache=False)


def _hessian_loop(call, parallel):
    def loop(f, x, plus, minus, args, out, failed):
        n = x.size
        # rows are dealt out round-robin: row i holds n - i pairs, so the chunks stay balanced
        chunks = max(1, min(get_num_threads(), n)) if parallel else 1
        for c in prange(chunks):
            buf = x.copy()
            flat = buf.reshape(n)
            for i in range(c, n, chunks):
                oi = flat[i]
                # diagonal: f(x + 2h e_i), f(x - 2h e_i) (plus/minus hold the doubled steps here)
                flat[i] = plus[i, 0]
                if not call(f, buf, args, out, i, 4 * i):
                    failed[i] = 1
                flat[i] = minus[i, 0]
                if not call(f, buf, args, out, i, 4 * i + 1):
                    failed[i] = 1
                flat[i] = oi
                for j in range(i + 1, n):
                    oj = flat[j]
                    flat[i] = plus[i, 1]
                    flat[j] = plus[j, 1]
                    if not call(f, buf, args, out, i, 4 * j):
                        failed[i] = 1
                    flat[j] = minus[j, 1]
                    if not call(f, buf, args, out, i, 4 * j + 1):
                        failed[i] = 1
                    flat[i] = minus[i, 1]
                    if not call(f, buf, args, out, i, 4 * j + 3):
                        failed[i] = 1
                    flat[j] = plus[j, 1]
                    if not call(f, buf, args, out, i, 4 * j + 2):
                        failed[i] = 1
                    flat[i] = oi
                    flat[j] = oj

    loop.__doc__ = """The values the Hessian's second differences need, row by row.

    out has shape (n, 4 n): out[i, 4 i] and out[i, 4 i + 1] are f(x + 2h_i e_i) and
    f(x - 2h_i e_i) (the points plus[i, 0], minus[i, 0]); for j > i, out[i, 4 j + s] for
    s = 0, 1, 2, 3 is f at (x_i, x_j) = (+, +), (+, -), (-, +), (-, -) with the points
    plus[:, 1], minus[:, 1]. Only the upper triangle is evaluated.
    """
    return jit(loop, parallel=parallel, cache=False)


values_loop = _values_loop(_guard(_put_scalar), parallel=True)
values_loop_serial = _values_loop(_direct(_put_scalar), parallel=False)
vector_values_loop = _values_loop(_guard(_put_vector), parallel=True)
vector_values_loop_serial = _values_loop(_direct(_put_vector), parallel=False)
hessian_values_loop = _hessian_loop(_guard(_put_scalar), parallel=True)
hessian_values_loop_serial = _hessian_loop(_direct(_put_scalar), parallel=False)


@jit(cache=False)
def scalar_map(f, points, out):
    """out[i] = f(points[i]) for a scalar f, over a flat array of points."""
    for i in range(points.size):
        out[i] = f(points[i])
