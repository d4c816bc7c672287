"""A NumPy BLAS call alone vs right after fastnet's parallel numerical gradient.

Worker threads that keep spinning after a parallel region (numba's OpenMP pool, OpenBLAS's pool)
compete with the next BLAS call for the cores; on a 2-core machine that call was seen to run 20
times slower. fastnet chooses its mitigation (threading layer, wait policy); these benchmarks show
whether it holds: `track_blas_slowdown_after_numgrad` near 1 is good, and a regression in the
mitigation shows up as a jump.
"""

from __future__ import annotations

import time

from .common import cached, mnist_batch

REPEAT = 31


def _state():
    def build():
        import fastnet
        from fastnet import reference

        x, t = mnist_batch(100)
        fnet = fastnet.TwoLayerNet(784, 50, 10, seed=0)
        ref = reference.TwoLayerNet.from_params(fnet.params)
        fnet.numerical_gradient(x, t)  # compile outside any timing
        ref.predict(x)
        return fnet, ref, x, t
    return cached("blas", build)


def _blas_seconds_after(before, blas, repeat=REPEAT):
    """Median seconds of one blas() call made right after before()."""
    samples = []
    for _ in range(repeat):
        before()
        t0 = time.perf_counter()
        blas()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2]


class BlasAfterParallel:
    """Reference forward pass (two NumPy matmuls, 784-50-10 at batch 100) alone and after numgrad."""

    timeout = 300

    def setup(self):
        self.fnet, self.ref, self.x, self.t = _state()

    def _blas(self):
        return self.ref.predict(self.x)

    def _numgrad(self):
        return self.fnet.numerical_gradient(self.x, self.t)

    def time_blas_alone(self):
        """The BLAS call on its own (back to back)."""
        self._blas()

    def time_numgrad_then_blas(self):
        """fastnet's parallel numerical gradient followed at once by the BLAS call."""
        self._numgrad()
        self._blas()

    def time_numgrad(self):
        """fastnet's parallel numerical gradient alone (subtract from time_numgrad_then_blas)."""
        self._numgrad()

    def track_blas_alone_seconds(self):
        """One BLAS call right after another one."""
        return _blas_seconds_after(self._blas, self._blas)

    track_blas_alone_seconds.unit = "seconds"

    def track_blas_after_numgrad_seconds(self):
        """One BLAS call right after fastnet's parallel numerical gradient."""
        return _blas_seconds_after(self._numgrad, self._blas)

    track_blas_after_numgrad_seconds.unit = "seconds"

    def track_blas_slowdown_after_numgrad(self):
        """BLAS call time right after the parallel kernel / right after another BLAS call."""
        after = _blas_seconds_after(self._numgrad, self._blas)
        alone = _blas_seconds_after(self._blas, self._blas)
        return after / alone

    track_blas_slowdown_after_numgrad.unit = "ratio after-parallel/alone"
