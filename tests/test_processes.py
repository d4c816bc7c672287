"""fastnet in forked children and from concurrent Python threads, after a parallel kernel ran.

Each scenario runs in its own interpreter: a threading layer that is unsafe for fork or for threads
aborts the whole process, which must fail the test instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kernels import _jit
from conftest import needs_jit

# fastnet installs the tbb wheel where one exists (Linux x86-64, Windows); elsewhere numba's default
# layer is used, and what these tests check is not promised.
needs_tbb = pytest.mark.skipif(_jit._tbb_library_path() is None,
                               reason="no TBB runtime (the tbb wheel) on this platform")

# Shared prelude: a parallel numerical gradient in the parent, the single-threaded reference, and a
# helper that checks a result against it bit for bit.
PRELUDE = textwrap.dedent("""
    import numpy as np
    import numba
    import fastnet

    rng = np.random.default_rng(0)
    x = rng.random((40, 30))
    t = rng.integers(0, 4, 40)
    net = fastnet.TwoLayerNet(30, 12, 4, seed=1)
    parallel = net.numerical_gradient(x, t, threads=numba.config.NUMBA_NUM_THREADS)
    single = net.numerical_gradient(x, t, threads=1)

    def same(g):
        return all(np.array_equal(g[k], single[k]) for k in single) and \\
            all(np.array_equal(parallel[k], single[k]) for k in single)

    def child_gradient(_=None):
        g = net.numerical_gradient(x, t)
        return all(np.array_equal(g[k], single[k]) for k in single)
""")


def _run(body: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    code = PRELUDE + textwrap.dedent(body)
    full_env = dict(os.environ)
    full_env.pop("NUMBA_THREADING_LAYER", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr[-3000:]}"
    assert "OK" in proc.stdout, proc.stdout


@needs_jit
@needs_tbb
def test_default_threading_layer_is_tbb():
    proc = _run("print('OK', numba.threading_layer())")
    _ok(proc)
    assert proc.stdout.split()[-1] == "tbb"


@needs_jit
@needs_tbb
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_os_fork_child_after_parallel_gradient():
    proc = _run("""
        import os
        pid = os.fork()
        if pid == 0:
            os._exit(0 if child_gradient() else 3)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status), f"child killed: {status}"
        assert os.WEXITSTATUS(status) == 0, f"child exit {os.WEXITSTATUS(status)}"
        print('OK')
    """)
    _ok(proc)


@needs_jit
@needs_tbb
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_multiprocessing_fork_pool_after_parallel_gradient():
    proc = _run("""
        import multiprocessing as mp
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map(child_gradient, range(4), chunksize=1)
        assert results == [True] * 4, results
        print('OK')
    """)
    _ok(proc)


@needs_jit
@needs_tbb
def test_four_concurrent_python_threads():
    proc = _run("""
        import threading
        results = [None] * 4
        barrier = threading.Barrier(4)

        def work(k):
            barrier.wait()
            ok = True
            for _ in range(3):
                ok = ok and same(net.numerical_gradient(x, t))
            results[k] = ok

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert results == [True] * 4, results
        print('OK')
    """)
    _ok(proc)


@needs_jit
def test_user_choice_of_threading_layer_wins():
    proc = _run("print('OK', numba.threading_layer())", env={"NUMBA_THREADING_LAYER": "workqueue"})
    _ok(proc)
    assert proc.stdout.split()[-1] == "workqueue"


@_jit.jit
def _threads_in_kernel():
    return _jit.num_threads()


def test_kernels_read_the_thread_count_and_stay_cacheable():
    """affine.serial runs a kernel's loops on the calling thread when numba has one thread: the
    count is read from inside the kernel, by a call numba can cache (numba.get_num_threads there
    cannot be)."""
    import warnings

    import numba

    from fastnet.threads import max_threads, num_threads

    with warnings.catch_warnings():
        warnings.simplefilter("error", numba.NumbaWarning)
        for threads in sorted({1, max_threads()}):
            with num_threads(threads):
                assert _threads_in_kernel() == threads == numba.get_num_threads()
    assert _jit.num_threads() == numba.get_num_threads()
