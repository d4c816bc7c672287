"""The kernels run as plain Python under NUMBA_DISABLE_JIT=1 (stumpy's habit, for coverage tools).

Each test starts a fresh interpreter, since numba reads the variable once at import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import fastnet

ROOT = Path(__file__).resolve().parent.parent

# Central, forward, complex and a large step on a tiny net: every branch of the numgrad kernels.
SCRIPT = """
import json, numpy as np, fastnet
rng = np.random.default_rng(0)
x = rng.random((7, 20)); x[x < 0.5] = 0; t = rng.integers(0, 3, 7)
net = fastnet.TwoLayerNet(20, 6, 3, seed=0, weight_init_std=0.5)
out = {}
for method, h in (("central", None), ("forward", None), ("complex", None), ("central", 0.5)):
    g = net.numerical_gradient(x, t, h=h, method=method)
    out[f"{method} {h}"] = {k: v.tolist() for k, v in g.items()}
out["loss"] = float(net.loss(x, t))
out["gradient"] = {k: v.tolist() for k, v in net.gradient(x, t).items()}
print(json.dumps(out))
"""


def _env():
    return {**os.environ, "NUMBA_DISABLE_JIT": "1"}


def test_kernel_suite_passes_without_jit():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_kernels.py", "tests/test_vexp.py",
                           "tests/test_simd.py", "tests/test_nonzeros.py"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_python_kernels_match_compiled_ones():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    python = json.loads(proc.stdout)
    compiled = json.loads(subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT,
                                         capture_output=True, text=True, timeout=600,
                                         check=True).stdout)
    assert python.keys() == compiled.keys()
    assert abs(python["loss"] - compiled["loss"]) <= 1e-14 * abs(compiled["loss"])
    for key in python:
        if key == "loss":
            continue
        for name in fastnet.network.PARAM_NAMES:
            a, b = np.array(python[key][name]), np.array(compiled[key][name])
            # the compiled code contracts a * b + c into FMAs: a few ulps of the largest entry
            assert np.abs(a - b).max() <= 1e-13 * np.abs(b).max(), (key, name)
