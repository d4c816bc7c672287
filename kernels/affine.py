"""Affine transform x @ W + b, forward and backward, skipping exact zeros of x.

MNIST rows are about 81% exact zeros; a row-by-row update that skips them does a fifth of the work
of a dense product and needs no BLAS (so no BLAS thread pool competes with numba's threads).
"""

from __future__ import annotations

import numpy as np

from kernels._jit import jit


@jit
def affine_row(x, r, W, b, out):
    """out[r] = x[r] @ W + b, adding only the rows of W where x[r] is non-zero."""
    d = x.shape[1]
    h = W.shape[1]
    # Collect the non-zeros first (branch-free), then add their rows of W four at a time: one
    # pass over out[r] per four rows instead of one per row, and no data-dependent branch inside.
    nz = np.empty(d, dtype=np.int64)
    m = 0
    for i in range(d):
        nz[m] = i
        m += x[r, i] != 0
    for j in range(h):
        out[r, j] = b[j]
    k = 0
    while k + 4 <= m:
        i0 = nz[k]
        i1 = nz[k + 1]
        i2 = nz[k + 2]
        i3 = nz[k + 3]
        v0 = x[r, i0]
        v1 = x[r, i1]
        v2 = x[r, i2]
        v3 = x[r, i3]
        for j in range(h):
            out[r, j] += (v0 * W[i0, j] + v1 * W[i1, j]) + (v2 * W[i2, j] + v3 * W[i3, j])
        k += 4
    while k < m:
        i0 = nz[k]
        v0 = x[r, i0]
        for j in range(h):
            out[r, j] += v0 * W[i0, j]
        k += 1


@jit
def affine_forward(x, W, b):
    """out = x @ W + b: x (N, D), W (D, H), b (H,) -> (N, H)."""
    n = x.shape[0]
    out = np.empty((n, W.shape[1]), dtype=W.dtype)
    for r in range(n):
        affine_row(x, r, W, b, out)
    return out


@jit
def affine_backward(x, W, dout):
    """Gradients of x @ W + b given dout (N, H): dx (N, D), dW (D, H), db (H,)."""
    n, d = x.shape
    h = W.shape[1]
    # dx[r, :] accumulates dout[r, j] * W[:, j]: with W transposed the inner loop is contiguous
    # and vectorises, where a dot product over j would be a serial floating-point reduction.
    WT = np.ascontiguousarray(W.T)
    dx = np.zeros((n, d), dtype=W.dtype)
    dW = np.zeros((d, h), dtype=W.dtype)
    db = np.zeros(h, dtype=W.dtype)
    for r in range(n):
        for j in range(h):
            g = dout[r, j]
            db[j] += g
            for i in range(d):
                dx[r, i] += g * WT[j, i]
        for i in range(d):
            xv = x[r, i]
            if xv != 0:
                for j in range(h):
                    dW[i, j] += xv * dout[r, j]
    return dx, dW, db
