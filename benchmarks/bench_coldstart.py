"""Cold start: `import fastnet` and the first numerical gradient or backprop in a fresh interpreter.

Each sample is a new Python process (asv's timeraw_). fastnet's kernels are compiled with numba's
on-disk cache, so the first call either compiles (cold cache: NUMBA_CACHE_DIR pointing to a fresh,
empty directory) or loads machine code (warm cache: a directory filled by an untimed run in setup).
The timed statement includes `import fastnet` (and so numpy and numba), building a 784-50-10 net
and its first numerical gradient (or backprop) on a batch of 100 MNIST-like inputs.
`FirstKernelCall` times each public kernel's first call alone, after `import kernels`: what that
kernel costs to compile, including the helpers it compiles first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

FIRST_GRADIENT = """
import numpy as np
import fastnet
rng = np.random.default_rng(0)
x = np.where(rng.random((100, 784)) < 0.19, rng.random((100, 784)), 0.0)
t = rng.integers(0, 10, size=100)
fastnet.TwoLayerNet(784, 50, 10, seed=0).numerical_gradient(x, t)
"""


FIRST_BACKPROP = FIRST_GRADIENT.replace(".numerical_gradient(x, t)", ".gradient(x, t)")

# One statement per kernel, run after `import kernels` and building the data (untimed setup).
KERNEL_SETUP = """
import numpy as np
import kernels
rng = np.random.default_rng(0)
x = np.where(rng.random((100, 784)) < 0.19, rng.random((100, 784)), 0.0)
t = rng.integers(0, 10, size=100)
W1, b1 = 0.01 * rng.standard_normal((784, 50)), np.zeros(50)
W2, b2 = 0.01 * rng.standard_normal((50, 10)), np.zeros(10)
a = rng.standard_normal((100, 10))
"""
KERNEL_CALLS = {
    "affine_forward": "kernels.affine_forward(x, W1, b1)",
    "affine_backward": "kernels.affine_backward(x, W1, np.ones((100, 50)))",
    "sigmoid": "kernels.sigmoid(W1)",
    "softmax_cross_entropy": "kernels.softmax_cross_entropy(a, t)",
    "two_layer_loss": "kernels.two_layer_loss(x, t, W1, b1, W2, b2)",
    "two_layer_gradient": "kernels.two_layer_gradient(x, t, W1, b1, W2, b2)",
    "two_layer_numerical_gradient": ("kernels.two_layer_numerical_gradient(x, t, W1, b1, W2, b2, "
                                     "np.float64(1e-4), kernels.CENTRAL)"),
}


def _cache_dir_setup(path_expr):
    """timeit setup code pointing numba's cache at `path_expr` before anything imports numba."""
    return f"import os, tempfile\nos.environ['NUMBA_CACHE_DIR'] = {path_expr}\n"


class _FreshInterpreter:
    # One sample is one process; a warm-up sample would be a whole extra (cold) compilation.
    number = 1
    warmup_time = 0.0
    repeat = (1, 5, 120.0)
    timeout = 900

    def setup(self):
        self.root = tempfile.mkdtemp(prefix="fastnet-asv-numba-")

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)


class ImportFastnet(_FreshInterpreter):
    """`import fastnet` alone (numpy, numba and the kernel modules)."""

    def timeraw_import(self):
        return "import fastnet", _cache_dir_setup(repr(self.root))


class _ColdCache(_FreshInterpreter):
    """`statement` in a fresh interpreter with an empty numba cache: includes compilation."""

    statement = ""

    def _timed(self):
        return self.statement, _cache_dir_setup(f"tempfile.mkdtemp(dir={self.root!r})")


class _WarmCache(_FreshInterpreter):
    """`statement` in a fresh interpreter with numba's cache filled by an earlier process."""

    statement = ""

    def setup(self):
        super().setup()
        code = _cache_dir_setup(repr(self.root)) + self.statement
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))

    def _timed(self):
        return self.statement, _cache_dir_setup(repr(self.root))


class FirstNumericalGradientColdCache(_ColdCache):
    """import + first numerical gradient with an empty numba cache: includes compilation."""

    statement = FIRST_GRADIENT

    def timeraw_first_numgrad(self):
        return self._timed()


class FirstNumericalGradientWarmCache(_WarmCache):
    """import + first numerical gradient with numba's cache filled by an earlier process."""

    statement = FIRST_GRADIENT

    def timeraw_first_numgrad(self):
        return self._timed()


class FirstBackpropColdCache(_ColdCache):
    """import + first backprop (TwoLayerNet.gradient) with an empty numba cache."""

    statement = FIRST_BACKPROP

    def timeraw_first_backprop(self):
        return self._timed()


class FirstBackpropWarmCache(_WarmCache):
    """import + first backprop with numba's cache filled by an earlier process."""

    statement = FIRST_BACKPROP

    def timeraw_first_backprop(self):
        return self._timed()


class FirstKernelCall(_FreshInterpreter):
    """One kernel's first call after `import kernels`, empty numba cache: its compile time."""

    params = list(KERNEL_CALLS)
    param_names = ["kernel"]
    repeat = (1, 3, 120.0)

    def setup(self, kernel):
        super().setup()

    def teardown(self, kernel):
        super().teardown()

    def timeraw_first_call(self, kernel):
        return KERNEL_CALLS[kernel], (_cache_dir_setup(f"tempfile.mkdtemp(dir={self.root!r})")
                                      + KERNEL_SETUP)
