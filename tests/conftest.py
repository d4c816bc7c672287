"""Shared fixtures: MNIST-like and dense batches, seeded nets, the real MNIST rows, small helpers.

Session-scoped arrays are shared by many tests, so tests that hand them to fastnet check afterwards
that they are unchanged (they are not made read-only: numba compiles a separate, slow-to-build
specialisation for read-only arrays, which only the tests about read-only input should pay for).
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest

import fastnet

# NUMBA_DISABLE_JIT=1 runs the kernels as plain Python (for coverage; see tests/test_nojit.py).
# Tests that inspect numba's compiled objects, or rely on compiled arithmetic raising no NumPy
# floating-point errors, only make sense with the JIT on.
needs_jit = pytest.mark.skipif(numba.config.DISABLE_JIT,
                               reason="inspects numba's compiled code (NUMBA_DISABLE_JIT=1)")

# Without the JIT a prange is a plain range: the thread count changes nothing, so tests that run a
# kernel once per thread count run it once (the plain-Python run is slow enough).
THREAD_COUNTS = (1,) if numba.config.DISABLE_JIT else (1, 2)
needs_threads = pytest.mark.skipif(numba.config.DISABLE_JIT,
                                   reason="no threads without the JIT (NUMBA_DISABLE_JIT=1)")

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_MNIST_PATH = REPO_ROOT.parent / "shared" / "data" / "mnist"

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def mnist_like(rng, n, d=784, dtype=np.float64):
    """(n, d) values in [0, 1] shaped like normalised MNIST rows: about 81% exact zeros.

    For d = 784 the non-zeros lie in the central 20x20 box of the 28x28 image (as the digits do),
    so the 384 border columns are zero in every row; values are k/255 with many exact 1.0.
    """
    x = np.zeros((n, d))
    if d == 784:
        box = np.zeros((28, 28), dtype=bool)
        box[4:24, 4:24] = True
        where = np.flatnonzero(box.ravel())
        p = 0.19 * 784 / where.size
    else:
        where = np.arange(d)
        p = 0.19
    mask = rng.random((n, where.size)) < p
    vals = rng.integers(1, 256, size=(n, where.size)) / 255.0
    vals[rng.random(vals.shape) < 0.3] = 1.0
    x[:, where] = np.where(mask, vals, 0.0)
    return x.astype(dtype)


def dense(rng, n, d, dtype=np.float64):
    """(n, d) standard normal values: no zeros, both signs."""
    return rng.standard_normal((n, d)).astype(dtype)


def labels(rng, n, c):
    """(n,) int64 class indices, every class present when n >= c."""
    t = rng.integers(0, c, size=n)
    if n >= c:
        t[:c] = np.arange(c)
        rng.shuffle(t)
    return t.astype(np.int64)


def one_hot(t, c):
    """(n, c) float64 one-hot rows for indices t."""
    out = np.zeros((t.size, c))
    out[np.arange(t.size), t] = 1.0
    return out


def snapshot(arrays):
    """Copies (and raw bytes, and types) of a dict of arrays, to check later that nothing was written."""
    return {k: (np.array(v, copy=True), np.asarray(v).tobytes(), type(v)) for k, v in arrays.items()}


def assert_unchanged(arrays, snap):
    """Every array equals its snapshot bit for bit (NaN, -0.0 and all), and has the same type."""
    assert set(arrays) == set(snap)
    for k, (copy, raw, kind) in snap.items():
        arr = arrays[k]
        assert type(arr) is kind, k
        arr = np.asarray(arr)
        assert arr.dtype == copy.dtype and arr.shape == copy.shape, k
        assert np.array_equal(arr, copy, equal_nan=True), f"{k} changed"
        assert arr.tobytes() == raw, f"{k} changed bit pattern"


def max_rel(got, want):
    """max |got - want| / max |want| (max norm), in float64; 0 when both are all zero."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.max(np.abs(got - want)) if got.size else 0.0
    scale = np.max(np.abs(want)) if want.size else 0.0
    if scale == 0:
        return float(err) if err else 0.0
    return float(err / scale)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def mnist_batch():
    """x (100, 784) float64 MNIST-like (about 81% zeros), t (100,) labels in [0, 10)."""
    r = np.random.default_rng(1)
    x = mnist_like(r, 100)
    t = labels(r, 100, 10)
    return x, t


@pytest.fixture(scope="session")
def dense_batch():
    """x (100, 784) float64 dense standard normal, t (100,) labels in [0, 10)."""
    r = np.random.default_rng(2)
    x = dense(r, 100, 784)
    t = labels(r, 100, 10)
    return x, t


@pytest.fixture
def net784():
    """A fresh float64 TwoLayerNet(784, 50, 10) with a fixed seed."""
    return fastnet.TwoLayerNet(784, 50, 10, seed=7)


@pytest.fixture
def small_net():
    """A fresh float64 TwoLayerNet(20, 8, 3) with a fixed seed, and a batch of 7 for it."""
    r = np.random.default_rng(3)
    net = fastnet.TwoLayerNet(20, 8, 3, weight_init_std=0.5, seed=11)
    x = mnist_like(r, 7, 20)
    x[:, 0] = 0.0  # one input nobody sees: its W1 row has gradient exactly 0
    t = labels(r, 7, 3)
    return net, x, t


@pytest.fixture(scope="session")
def real_mnist():
    """The first 100 rows of the real MNIST t10k files: x (100, 784) float in [0, 1], t (100,)."""
    images = REAL_MNIST_PATH / "t10k-images-idx3-ubyte.gz"
    labels_file = REAL_MNIST_PATH / "t10k-labels-idx1-ubyte.gz"
    if not (images.is_file() and labels_file.is_file()):
        pytest.skip(f"real MNIST t10k files not found in {REAL_MNIST_PATH} "
                    "(../shared/data/mnist relative to the repository root)")
    from fastnet.datasets import load_mnist_test_split

    (x, t), _ = load_mnist_test_split(n_train=100, path=REAL_MNIST_PATH, download=False)
    x = np.ascontiguousarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.int64)
    return x, t
