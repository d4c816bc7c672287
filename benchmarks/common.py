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
    """(n, 784) synthetic digits in [0, 1]: one pen stroke each, about 81% exact zeros.

    The model of `fastnet bench` (fastnet.bench.mnist_like), restated here so that every commit
    asv measures gets the same data: a 12-segment random walk, scaled to 17 pixels tall (at most
    14 wide) and centred, drawn with a pen of radius 1.1-1.8 pixels with a soft, ragged edge;
    values k/255. Real digits' statistics: zeros, ink layout, neighbouring pixels inked together.
    """
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, 2.0 * np.pi, size=n)[:, None]
    heading = start + np.cumsum(rng.normal(0.0, 0.8, size=(n, 12)), axis=1)
    step = rng.uniform(2.5, 4.0, size=(n, 12))
    pts = np.zeros((n, 13, 2))
    pts[:, 1:, 0] = np.cumsum(step * np.sin(heading), axis=1)
    pts[:, 1:, 1] = np.cumsum(step * np.cos(heading), axis=1)
    lo, hi = pts.min(axis=1), pts.max(axis=1)
    size = np.maximum(hi - lo, 1e-9)
    zoom = np.minimum(17.0 / size[:, 0], 14.0 / size[:, 1])[:, None, None]
    pts = (pts - (lo + hi)[:, None] / 2) * zoom + 13.5
    pen = rng.uniform(1.1, 1.8, size=n)
    out = np.empty((n, 784))
    pix_r, pix_c = np.divmod(np.arange(784.0), 28.0)
    for a in range(0, n, 2048):
        b = min(a + 2048, n)
        near = np.full((b - a, 784), np.inf)
        for k in range(12):
            (r0, c0), (r1, c1) = pts[a:b, k].T[:, :, None], pts[a:b, k + 1].T[:, :, None]
            u = ((pix_r - r0) * (r1 - r0) + (pix_c - c0) * (c1 - c0)) / np.maximum(
                (r1 - r0) ** 2 + (c1 - c0) ** 2, 1e-12)
            u = np.clip(u, 0.0, 1.0)
            near = np.minimum(near, (pix_r - r0 - u * (r1 - r0)) ** 2 + (pix_c - c0 - u * (c1 - c0)) ** 2)
        edge = pen[a:b, None] + 1.1 + 1.75 * (rng.random((b - a, 784)) - 0.5)
        out[a:b] = np.round(np.clip((edge - np.sqrt(near)) / 1.55, 0.0, 1.0) * 255.0) / 255.0
    return out


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
