"""The two-layer net fused: affine -> sigmoid -> affine -> softmax -> loss in one kernel.

Shapes: x (N, D), t (N,) int class indices, W1 (D, H), b1 (H,), W2 (H, C), b2 (C,). All float
arrays share one dtype and every intermediate stays in it. `loss` is CROSS_ENTROPY (the default)
or SUM_SQUARED (half the squared distance between the softmax output and the one-hot label), each
averaged over the batch.
"""

from __future__ import annotations

import numpy as np

from kernels._jit import jit
from kernels.activation import sigmoid_pair
from kernels.affine import affine_row
from kernels.softmax import (
    CROSS_ENTROPY,
    SUM_SQUARED,
    row_max_sumexp,
    row_sum_squared_delta,
    softmax_cross_entropy,
    softmax_rows,
    softmax_sum_squared,
)


@jit
def hidden_row(x, r, W1, b1, a1, z, zc):
    """Row r of a1 = x @ W1 + b1 (skipping zeros of x), z = sigmoid(a1) and zc = 1 - z = sigmoid(-a1)."""
    h = W1.shape[1]
    one = W1.dtype.type(1)
    affine_row(x, r, W1, b1, a1)
    for j in range(h):
        z[r, j], zc[r, j] = sigmoid_pair(a1[r, j], one)


@jit
def hidden_forward(x, W1, b1):
    """a1 = x @ W1 + b1, z = sigmoid(a1) and zc = 1 - z = sigmoid(-a1), each (N, H)."""
    n = x.shape[0]
    h = W1.shape[1]
    a1 = np.empty((n, h), dtype=W1.dtype)
    z = np.empty((n, h), dtype=W1.dtype)
    zc = np.empty((n, h), dtype=W1.dtype)
    for r in range(n):
        hidden_row(x, r, W1, b1, a1, z, zc)
    return a1, z, zc


@jit
def output_forward(z, W2, b2):
    """Logits a2 = z @ W2 + b2, (N, C)."""
    n, h = z.shape
    c = W2.shape[1]
    a2 = np.empty((n, c), dtype=W2.dtype)
    for r in range(n):
        for k in range(c):
            a2[r, k] = b2[k]
        for j in range(h):
            zv = z[r, j]
            for k in range(c):
                a2[r, k] += zv * W2[j, k]
    return a2


@jit
def two_layer_predict(x, W1, b1, W2, b2):
    """Softmax class probabilities (N, C) of the two-layer net."""
    _, z, _ = hidden_forward(x, W1, b1)
    a2 = output_forward(z, W2, b2)
    softmax_rows(a2)
    return a2


@jit
def two_layer_loss(x, t, W1, b1, W2, b2, loss=CROSS_ENTROPY):
    """Exact mean loss (softmax cross-entropy, or sum of squares) of the net on (x, t), a scalar of the params dtype."""
    _, z, _ = hidden_forward(x, W1, b1)
    a2 = output_forward(z, W2, b2)
    if loss == SUM_SQUARED:
        return softmax_sum_squared(a2, t)
    return softmax_cross_entropy(a2, t)


@jit
def two_layer_gradient(x, t, W1, b1, W2, b2, loss=CROSS_ENTROPY):
    """Backprop gradients (dW1, db1, dW2, db2) of the mean loss, shapes of the params."""
    n, d = x.shape
    h = W1.shape[1]
    c = W2.shape[1]
    dt = W1.dtype
    inv_n = dt.type(1) / dt.type(n)
    _, z, zc = hidden_forward(x, W1, b1)
    a2 = output_forward(z, W2, b2)

    dW1 = np.zeros((d, h), dtype=dt)
    db1 = np.zeros(h, dtype=dt)
    dW2 = np.zeros((h, c), dtype=dt)
    db2 = np.zeros(c, dtype=dt)
    dy = np.empty(c, dtype=dt)
    da1 = np.empty(h, dtype=dt)
    p = np.empty(c, dtype=dt)
    res = np.empty(c, dtype=dt)
    for r in range(n):
        if loss == SUM_SQUARED:
            row_sum_squared_delta(a2, r, t[r], p, res, inv_n, dy)
        else:
            m, s = row_max_sumexp(a2, r)
            for k in range(c):
                dy[k] = np.exp(a2[r, k] - m) / s * inv_n
            dy[t[r]] -= inv_n
        for k in range(c):
            db2[k] += dy[k]
        for j in range(h):
            zv = z[r, j]
            acc = dt.type(0)
            for k in range(c):
                dW2[j, k] += zv * dy[k]
                acc += dy[k] * W2[j, k]
            da1[j] = acc * zv * zc[r, j]
            db1[j] += da1[j]
        for i in range(d):
            xv = x[r, i]
            if xv != 0:
                for j in range(h):
                    dW1[i, j] += xv * da1[j]
    return dW1, db1, dW2, db2
