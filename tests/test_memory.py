"""kernels._memory: glibc keeps freed memory for the next kernel call, so that repeated calls do
not fault on fresh pages; nothing changes where the user tunes malloc or turns it off."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import _memory

ROOT = Path(__file__).resolve().parents[1]


def _glibc():
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


needs_glibc = pytest.mark.skipif(not _glibc(), reason="mallopt thresholds are glibc's")

FAULTS = """
import resource
import numpy as np
import kernels
from kernels.affine import affine_backward
rng = np.random.default_rng(0)
x = rng.random((100, 784)); W = rng.random((784, 50)); g = rng.random((100, 50))
for _ in range(3):
    affine_backward(x, W, g)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    dx, dW, db = affine_backward(x, W, g)
    del dx, dW, db
print(kernels._memory.MALLOC_TUNED, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _run(env_extra):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("MALLOC_") or k in ("GLIBC_TUNABLES", "FASTNET_MALLOC_TUNING"))}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", FAULTS], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout.split()
    return out[0] == "True", float(out[1])


@needs_glibc
def test_repeated_calls_reuse_memory_instead_of_faulting_on_new_pages():
    tuned, faults = _run({})
    assert tuned
    # dx, dW and W^T alone are about 300 pages a call when they come fresh from the OS
    assert faults < 10


@needs_glibc
@pytest.mark.parametrize("env", [{"FASTNET_MALLOC_TUNING": "0"}, {"MALLOC_ARENA_MAX": "2"},
                                 {"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])
def test_malloc_is_left_alone_when_turned_off_or_tuned_by_the_user(env):
    assert _memory.tune_malloc(env) is False
    tuned, _ = _run(env)
    assert not tuned


def test_it_reports_what_it_did_in_this_process():
    assert _memory.MALLOC_TUNED is _memory.tune_malloc(os.environ)
