"""Tests of the benchmark tooling: `fastnet.bench`, `fastnet bench`, and the asv suite's discovery.

Nothing here asserts a speed: the tests check structure, bookkeeping (which parameters were timed,
what was extrapolated) and argument validation, on tiny sizes.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fastnet import bench
from fastnet.cli import main

ROOT = Path(__file__).resolve().parent.parent

# A tiny net with MNIST's 10 classes (the compiled kernels are shared with the rest of the suite).
TINY = ["--net", "20-8-10", "--batch", "8", "--sizes", "2", "--dtypes", "float64",
        "--subset", "5", "--repeat", "1"]
TINY_PARAMS = 20 * 8 + 8 + 8 * 10 + 10
TINY_TIMED = 5 + 5 + 5 + 5  # 5 spread entries of each array (b2 has 10 entries, so also 5)


def test_median_time_calls_warmup_then_repetitions():
    calls = []
    s = bench.median_time(lambda: calls.append(1), repeat=4, min_time=0.0, warmup=2)
    assert s >= 0 and math.isfinite(s)
    assert len(calls) >= 2 + 4


def test_median_time_loops_short_calls_up_to_min_time():
    calls = []
    bench.median_time(lambda: calls.append(1), repeat=1, min_time=0.002, warmup=0)
    assert len(calls) > 10  # a no-op lasts far less than 2 ms: one repetition loops it


@pytest.mark.parametrize("kwargs, exc", [
    ({"repeat": 0}, ValueError),
    ({"repeat": 1.5}, TypeError),
    ({"warmup": -1}, ValueError),
    ({"min_time": -1.0}, ValueError),
])
def test_median_time_rejects_bad_arguments(kwargs, exc):
    calls = []
    with pytest.raises(exc):
        bench.median_time(lambda: calls.append(1), **kwargs)
    assert calls == []  # rejected before any call


def test_median_time_rejects_non_callable():
    with pytest.raises(TypeError, match="fn must be callable"):
        bench.median_time(42)


@contextlib.contextmanager
def _spinning(seconds):
    """Another thread of this process busy for `seconds`, as a BLAS worker left spinning is."""
    stop = time.perf_counter() + seconds

    def spin():
        while time.perf_counter() < stop:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        yield
    finally:
        worker.join()


def test_settle_waits_while_another_thread_runs():
    # A library's worker left spinning after its last call (OpenBLAS's, for 0.1-0.2 s) would take a
    # core from the next timing: the bench waits until the process's other threads are quiet.
    with _spinning(0.3):
        assert bench._settle(timeout=5.0) >= 0.2


def test_settle_returns_when_nothing_runs_and_gives_up_at_its_timeout():
    assert bench._settle(timeout=1.0) < 1.5
    with _spinning(1.0):
        assert bench._settle(timeout=0.1) < 0.5  # a thread that keeps running does not hang it


def test_mnist_like_has_mnist_statistics():
    x = bench.mnist_like(2000, seed=3)
    assert x.shape == (2000, 784) and x.dtype == np.float64
    assert 0.79 <= np.mean(x == 0) <= 0.83
    assert x.min() == 0.0 and x.max() <= 1.0
    nz = x[x != 0]
    assert np.allclose(nz * 255, np.round(nz * 255))  # k/255 like MNIST bytes
    img = x.reshape(-1, 28, 28)
    # ink concentrates mid-image: the border is almost blank, the centre often inked
    assert np.mean(img[:, 0, :] != 0) < 0.02
    assert np.mean(img[:, 12:16, 12:16] != 0) > 0.4
    np.testing.assert_array_equal(x, bench.mnist_like(2000, seed=3))
    assert bench.mnist_like(3, dtype=np.float32).dtype == np.float32


def _neighbour_inked(x):
    """How often the right-hand neighbour of an inked pixel is inked too."""
    img = x.reshape(-1, 28, 28) != 0
    return (img[:, :, 1:] & img[:, :, :-1]).sum() / img[:, :, :-1].sum()


def _pair_unions(nz):
    """Non-zeros of rows 2k and 2k+1 together, and of columns 2k and 2k+1 together, per non-zero:
    the work of the kernels that go over neighbouring rows or inputs in pairs."""
    return ((nz[0::2] | nz[1::2]).sum() / nz.sum(), (nz[:, 0::2] | nz[:, 1::2]).sum() / nz.sum())


def test_mnist_like_ink_comes_in_strokes():
    x = bench.mnist_like(1000, seed=2)
    assert 0.78 <= _neighbour_inked(x) <= 0.88  # MNIST: 0.83; pixels inked independently: 0.55
    assert np.mean(x[x != 0] >= 250 / 255) == pytest.approx(0.39, abs=0.04)  # near-saturated ink


def test_mnist_like_rows_do_not_depend_on_how_many_are_drawn_at_once(monkeypatch):
    x = bench.mnist_like(7, seed=5)
    monkeypatch.setattr(bench, "_STROKE_CHUNK", 3)
    np.testing.assert_array_equal(bench.mnist_like(7, seed=5), x)


def test_asv_synthetic_digits_are_the_bench_model():
    """asv keeps its own copy of the model (every commit it measures must get the same data)."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.common import synthetic_mnist
    finally:
        sys.path.remove(str(ROOT))
    for n, seed in ((1, 0), (9, 4), (2500, 0)):
        np.testing.assert_array_equal(synthetic_mnist(n, seed), bench.mnist_like(n, seed=seed))


def test_mnist_like_matches_real_mnist_ink_profile():
    mnist = ROOT.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not mnist.exists():
        pytest.skip(f"real MNIST test images not found at {mnist}")
    import gzip

    real = np.frombuffer(gzip.open(mnist).read(), dtype=np.uint8, offset=16).reshape(-1, 784)
    fake = bench.mnist_like(10000, seed=1)
    assert abs(np.mean(fake == 0) - np.mean(real == 0)) < 0.005
    p_real, p_fake = np.mean(real != 0, axis=0), np.mean(fake != 0, axis=0)
    assert np.corrcoef(p_real, p_fake)[0, 1] > 0.9  # same spatial layout of ink
    assert np.abs(p_real - p_fake).mean() < 0.08
    blank = p_real < 0.001  # pixels MNIST (almost) never inks stay (almost) blank
    assert blank.sum() > 100 and p_fake[blank].max() < 0.02
    assert abs(_neighbour_inked(fake) - _neighbour_inked(real)) < 0.02
    # the pairs' unions decide the structure-aware kernels' work: within 2% of MNIST's
    for u_fake, u_real in zip(_pair_unions(fake[:1000] != 0), _pair_unions(real[:1000] != 0)):
        assert u_fake == pytest.approx(u_real, rel=0.02)


def test_data_builders_validate():
    with pytest.raises(ValueError, match="n must be >= 1"):
        bench.mnist_like(0)
    with pytest.raises(TypeError, match="n must be an int"):
        bench.dense_inputs(2.0, 3)
    with pytest.raises(ValueError, match="n_classes"):
        bench.random_labels(5, 0)
    x = bench.dense_inputs(50, 7)
    assert x.shape == (50, 7) and np.all(x > 0) and np.all(x <= 1)
    t = bench.random_labels(100, 10)
    assert t.dtype == np.int64 and t.min() >= 0 and t.max() < 10


@pytest.mark.parametrize("spec", ["784-50", "a-b-c", "784-0-10", "784-50-1", (1, 2)])
def test_parse_net_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="net"):
        bench.parse_net(spec)


def test_parse_net_accepts_text_and_tuples():
    assert bench.parse_net("784-50-10") == (784, 50, 10)
    assert bench.parse_net((20, 8, 10)) == (20, 8, 10)


def test_reference_time_is_extrapolated_per_array():
    from fastnet import reference

    net = reference.TwoLayerNet(20, 8, 3, seed=0)
    x = bench.mnist_like(4)[:, :20]
    t = bench.random_labels(4, 3)
    seconds, timed, total = bench.reference_numerical_gradient_time(net, x, t, subset=6,
                                                                    repeat=1)
    # W1 (160) and b1 (8) and W2 (24): 6 spread entries each; b2 (3): whole
    assert (timed, total) == (6 + 6 + 6 + 3, 160 + 8 + 24 + 3)
    assert seconds > 0
    before = {k: v.copy() for k, v in net.params.items()}
    bench.reference_numerical_gradient_time(net, x, t, subset=2, repeat=1)
    for k in before:  # the reference loop restored every entry it perturbed
        np.testing.assert_array_equal(net.params[k], before[k])


def test_reference_per_parameter_time_covers_every_entry_in_chunks():
    p = np.arange(12.0).reshape(3, 4)
    before = p.copy()
    seen = []

    def f(W):
        seen.append(W.copy())
        return float(W.sum())

    s = bench.reference_per_parameter_seconds(f, p, np.array([0, 5, 6, 7, 11]), repeat=2, chunk=2)
    assert s > 0
    assert len(seen) == 2 * 5 * 2  # two evaluations per entry, every entry, each round
    perturbed = {int(np.flatnonzero(W != before)[0]) for W in seen}
    assert perturbed == {0, 5, 6, 7, 11}
    np.testing.assert_array_equal(p, before)
    with pytest.raises(ValueError, match="chunk"):
        bench.reference_per_parameter_seconds(f, p, [0], chunk=0)


def test_comparison_speedup_and_extrapolation_flag():
    c = bench.Comparison("k", "s", "float64", reference_s=2.0, fastnet_s=0.5,
                         reference_params=10, total_params=100)
    assert c.speedup == 4.0 and c.reference_extrapolated
    d = c.to_dict()
    assert d["speedup"] == 4.0 and d["reference_extrapolated"] is True
    whole = bench.Comparison("k", "s", "float64", 1.0, 1.0, reference_params=5, total_params=5)
    assert not whole.reference_extrapolated
    assert not bench.Comparison("k", "s", "float64", 1.0, 1.0).reference_extrapolated


def test_run_rejects_bad_arguments_before_timing():
    with pytest.raises(ValueError, match="threads"):
        bench.run(threads=0)
    with pytest.raises(ValueError, match="dtype"):
        bench.run(dtypes=("float16",))
    with pytest.raises(ValueError, match="net"):
        bench.run(net="3-4")


@pytest.fixture(scope="module")
def tiny_json():
    """`fastnet bench --quick --json` on a tiny net, parsed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "--quick", "--json", *TINY]) == 0
    return json.loads(out.getvalue())


def test_bench_json_structure(tiny_json):
    data = tiny_json
    assert data["meta"]["quick"] is True
    assert data["meta"]["numba_threads"] >= 1
    assert data["meta"]["cpus_usable"] == bench._usable_cpus()
    assert data["meta"]["data"] == ["mnist-like", "dense"]
    kernels = {row["kernel"] for row in data["kernels"]}
    expected = {k for k in bench.KERNELS if k not in bench.DATA_KERNELS}
    expected |= {f"{k} ({kind})" for k in bench.DATA_KERNELS for kind in bench.DATA}
    assert kernels == expected
    for row in data["kernels"]:
        assert row["dtype"] == "float64"
        assert row["reference_s"] > 0 and row["fastnet_s"] > 0
        assert row["speedup"] == pytest.approx(row["reference_s"] / row["fastnet_s"])
        assert row["reference_extrapolated"] is False
        if row["kernel"].split()[0] in bench.DATA_KERNELS:
            assert row["kernel"].endswith(f"({row['data']})")


def test_bench_json_has_the_twins(tiny_json):
    from fastnet import twins

    meta = tiny_json["meta"]["twins"]
    assert list(meta) == list(twins.LIBRARIES)
    for lib, info in meta.items():
        installed = info["note"] is None
        assert (info["version"] is not None) == installed
        for row in tiny_json["kernels"]:
            has_twin = row["kernel"].split()[0] in twins.KERNELS
            if installed and has_twin:
                assert row[f"{lib}_s"] > 0
                assert row[f"speedup_vs_{lib}"] == pytest.approx(row[f"{lib}_s"] / row["fastnet_s"])
            else:
                assert row[f"{lib}_s"] is None and row[f"speedup_vs_{lib}"] is None
    for row in tiny_json["numerical_gradient"]:
        assert "jax_s" not in row and "torch_s" not in row


def test_bench_json_numerical_gradient_rows(tiny_json):
    rows = tiny_json["numerical_gradient"]
    by_data = {r["data"]: r for r in rows if r["kernel"].startswith("numerical_gradient (")
               and r["loss"] == "cross_entropy"}
    assert set(by_data) == {"mnist-like", "dense"}
    (squares,) = [r for r in rows if r["kernel"].startswith("numerical_gradient (") and r["loss"] == "sum_squared"]
    assert squares["kernel"] == "numerical_gradient (mnist-like, sum_squared)"
    assert squares["data"] == "mnist-like" and squares["reference_params"] == TINY_TIMED
    assert squares["speedup"] == pytest.approx(squares["reference_s"] / squares["fastnet_s"])
    for data, row in by_data.items():
        assert row["net"] == "20-8-10" and row["batch"] == 8
        assert row["reference_extrapolated"] is True
        assert row["reference_params"] == TINY_TIMED
        assert row["total_params"] == TINY_PARAMS
        assert row["speedup"] == pytest.approx(row["reference_s"] / row["fastnet_s"])
        assert row["numgrad_over_backprop"] == pytest.approx(row["fastnet_s"] / row["backprop_s"])
    assert by_data["dense"]["zero_fraction"] == 0.0
    assert by_data["mnist-like"]["zero_fraction"] > 0.5
    loop = [r for r in rows if r["kernel"].startswith("numerical_gradient loop")]
    assert len(loop) == 1
    assert loop[0]["reference_extrapolated"] is False and loop[0]["total_params"] == 8 * 10
    blas = tiny_json["blas_after_parallel"]
    assert blas["alone_s"] > 0 and blas["after_parallel_s"] > 0
    assert blas["slowdown"] == pytest.approx(blas["after_parallel_s"] / blas["alone_s"])


def _canned_report():
    return bench.BenchReport(
        kernels=[bench.Comparison("sigmoid", "(10,50)", "float64", 2e-6, 1e-6)],
        numerical_gradient=[bench.Comparison(
            "numerical_gradient (mnist-like)", "784-50-10 b100", "float64", 9.5, 0.0015,
            reference_params=460, total_params=39760,
            extra={"backprop_s": 0.0003, "numgrad_over_backprop": 5.0,
                   "speedup_target_min": 3000.0, "numgrad_over_backprop_target_max": 6.0})],
        blas_after_parallel={"call": "reference predict", "alone_s": 1e-4,
                             "after_parallel_s": 2e-4, "slowdown": 2.0, "repeat": 3},
        meta={"numba_threads": 2, "threading_layer": "omp", "cpu_count": 2, "repeat": 3,
              "elapsed_s": 1.0,
              "blas": [{"user_api": "blas", "internal_api": "openblas", "num_threads": 1,
                        "package": "numpy"},
                       {"user_api": "openmp", "internal_api": "openmp", "num_threads": 2}]})


def test_bench_notes_say_when_the_process_may_use_fewer_cpus_than_the_machine_has():
    report = _canned_report()
    assert "2 CPUs;" in report.format_table()  # no cpus_usable (an older report): as before
    report.meta["cpus_usable"] = 2
    assert "2 CPUs;" in report.format_table()
    report.meta["cpus_usable"] = 1  # taskset -c 0
    assert "2 CPUs (1 usable by this process);" in report.format_table()


def test_usable_cpus_are_the_affinity_mask():
    if not hasattr(os, "sched_getaffinity"):
        assert bench._usable_cpus() is None
    else:
        assert bench._usable_cpus() == len(os.sched_getaffinity(0))


def test_bench_table_states_extrapolation():
    text = _canned_report().format_table()
    lines = text.splitlines()
    assert lines[0].split() == ["kernel", "size", "dtype", "reference", "fastnet", "speedup"]
    assert "9.5 s *" in text
    assert "reference time extrapolated from 460 of 39,760 parameters" in text
    assert "6,333.3x" in text
    assert "numerical gradient / backprop, numerical_gradient (mnist-like) 784-50-10 b100 " \
           "float64: 5.00x (backprop 300 us); target <= 6x (met)" in text
    assert "target >= 3,000x (met)" in text
    assert "2.00x" in text
    assert "numba threads 2 (omp), BLAS openblas (numpy) 1 thread, 2 CPUs" in text


def test_bench_cli_prints_table_and_passes_options(monkeypatch, capsys):
    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        return _canned_report()

    monkeypatch.setattr(bench, "run", fake_run)
    assert main(["bench", "--quick", "--threads", "1", "--sizes", "1,10", "--net", "30-5-10"]) == 0
    out = capsys.readouterr().out
    assert out == _canned_report().format_table() + "\n"
    assert seen["quick"] is True and seen["threads"] == 1
    assert seen["batch_sizes"] == (1, 10) and seen["net"] == (30, 5, 10)
    assert seen["dtypes"] is None and seen["subset"] is None
    assert seen["twins"] is True
    assert main(["bench", "--no-twins"]) == 0
    assert seen["twins"] is False


@pytest.mark.parametrize("argv", [
    ["--threads", "0"], ["--net", "784-50"], ["--dtypes", "float16"], ["--sizes", "0,1"],
    ["--repeat", "x"],
])
def test_bench_cli_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err  # names the bad option


@pytest.mark.skipif(shutil.which("git") is None, reason="asv needs git")
def test_asv_check_discovers_every_benchmark():
    """`asv check --python=same` imports the suite and validates every benchmark's attributes."""
    pytest.importorskip("asv")
    proc = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                    reason="the asv smoke script needs git and bash")
def test_asv_smoke_runs_a_few_benchmarks():
    """.ci/asv_smoke.sh: asv check, then a quick dry run of one benchmark of each kind; fails on any error."""
    pytest.importorskip("asv")
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "asv_smoke.sh"), sys.executable], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]


def test_bench_table_compares_the_sum_of_squares_with_the_cross_entropy():
    rows = [bench.Comparison(f"numerical_gradient (mnist-like{suffix})", "784-50-10 b100", "float64", 30.0, t,
                             reference_params=460, total_params=39760,
                             extra={"data": "mnist-like", "loss": loss, "backprop_s": 1e-3,
                                    "numgrad_over_backprop": t / 1e-3})
            for suffix, loss, t in (("", "cross_entropy", 0.002), (", sum_squared", "sum_squared", 0.003))]
    report = bench.BenchReport(kernels=[], numerical_gradient=rows, blas_after_parallel=None,
                               meta={"numba_threads": 2, "threading_layer": "omp", "cpu_count": 2,
                                     "repeat": 3, "elapsed_s": 1.0})
    assert ("numerical gradient 784-50-10 b100 float64 mnist-like, sum_squared / cross_entropy: 1.50x "
            "(3 ms / 2 ms)") in report.format_table()
