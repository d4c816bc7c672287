"""Data builders shared by the benchmark modules.

Self-contained on purpose (NumPy only, nothing from `fastnet` but the public API): asv runs these
benchmarks against older commits too, where helper modules of the package may not exist yet.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

# The real MNIST test images, used for the MNIST-like batches when present beside the checkout.
MNIST_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
MNIST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"

# Fraction of exact zeros in MNIST images.
MNIST_ZERO_FRACTION = 0.8085

_cache: dict = {}


def cached(key, build):
    """build() once per process and key: asv re-runs setup() between samples, data stays put."""
    if key not in _cache:
        _cache[key] = build()
    return _cache[key]


def _read_mnist(n):
    with gzip.open(MNIST_IMAGES, "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(MNIST_LABELS, "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return images[:n] / 255.0, labels[:n]


def synthetic_mnist(n, seed=0):
    """(n, 784) synthetic digits in [0, 1] with about 81% exact zeros, ink concentrated mid-image.

    Same model as `fastnet bench` uses: pixels inked independently with a flat-topped, centred
    probability profile (mean ink rate MNIST's), values k/255, about 40% near-saturated.
    """
    r = np.arange(28)
    blob = (np.exp(-((r - 14.5) / 8.5) ** 4)[:, None] * np.exp(-((r - 14.0) / 6.5) ** 4)[None, :])
    lo, hi = 0.0, 10.0
    for _ in range(60):
        scale = (lo + hi) / 2
        if np.minimum(scale * blob, 0.72).mean() < 1 - MNIST_ZERO_FRACTION:
            lo = scale
        else:
            hi = scale
    p = np.minimum(scale * blob, 0.72).reshape(-1)
    rng = np.random.default_rng(seed)
    inked = rng.random((n, 784)) < p
    k = np.where(rng.random((n, 784)) < 0.4, rng.integers(250, 256, size=(n, 784)),
                 rng.integers(1, 250, size=(n, 784)))
    return np.where(inked, k / 255.0, 0.0)


def labels(n, n_classes=10, seed=0):
    """(n,) int64 class indices."""
    return np.random.default_rng(seed + 1).integers(0, n_classes, size=n).astype(np.int64)


def mnist_batch(n, dtype="float64", seed=0):
    """(x (n, 784), t (n,)): the first n real MNIST test images when the file is there, else synthetic."""
    def build():
        if MNIST_IMAGES.exists() and MNIST_LABELS.exists() and n <= 10000:
            x, t = _read_mnist(n)
        else:
            x, t = synthetic_mnist(n, seed), labels(n, 10, seed)
        return np.ascontiguousarray(x, dtype=dtype), t
    return cached(("mnist", n, dtype, seed), build)


def dense_batch(n, d=784, n_classes=10, dtype="float64", seed=0):
    """(x (n, d) uniform in (0, 1], t (n,)): no zeros to skip."""
    def build():
        rng = np.random.default_rng(seed)
        return (1.0 - rng.random((n, d))).astype(dtype), labels(n, n_classes, seed)
    return cached(("dense", n, d, n_classes, dtype, seed), build)


def batch(kind, n, dtype="float64"):
    """mnist_batch or dense_batch by name ("mnist" or "dense")."""
    if kind == "mnist":
        return mnist_batch(n, dtype)
    if kind == "dense":
        return dense_batch(n, dtype=dtype)
    raise ValueError(f"unknown data kind {kind!r}")


def params(sizes, dtype="float64", seed=0):
    """dict W1 b1 W2 b2 for a D-H-C net: weights 0.01 * N(0, 1), biases small and nonzero."""
    def build():
        d, h, c = sizes
        rng = np.random.default_rng(seed)
        return {
            "W1": (0.01 * rng.standard_normal((d, h))).astype(dtype),
            "b1": (0.01 * rng.standard_normal(h)).astype(dtype),
            "W2": (0.01 * rng.standard_normal((h, c))).astype(dtype),
            "b2": (0.01 * rng.standard_normal(c)).astype(dtype),
        }
    return cached(("params", tuple(sizes), dtype, seed), build)


def spread_indices(size, k):
    """k flat indices spread evenly over an array of `size` entries (all when size <= k)."""
    if size <= k:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, k).round().astype(np.intp))


def median_seconds(fn, repeat):
    """Median perf_counter seconds of `repeat` calls of fn() (for track_ benchmarks)."""
    import statistics
    import time

    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def kernel_arrays(batch, dtype, sizes=(784, 50, 10)):
    """What the kernel benchmarks feed the kernels and their twins: (x, t, params, a1, a2, dout).

    x, t an MNIST batch; params of the net `sizes`; a1 (batch, H) pre-activations, a2 (batch, C)
    logits and dout (batch, H) upstream gradients, standard normal, seeded by the batch size.
    """
    _, h, c = sizes
    rng = np.random.default_rng(batch)
    x, t = mnist_batch(batch, dtype)
    p = params(sizes, dtype)
    a1 = rng.standard_normal((batch, h)).astype(dtype)
    a2 = rng.standard_normal((batch, c)).astype(dtype)
    dout = rng.standard_normal((batch, h)).astype(dtype)
    return x, t, p, a1, a2, dout
