"""`fastnet.precompile` and `fastnet compile`: kernels compiled into numba's on-disk cache, and
loaded from it by later processes, on other shapes than the ones they were compiled on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastnet import precompile as pc
from fastnet.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, cache: Path, **env: str) -> dict:
    """Run code in a fresh interpreter with numba's cache in `cache`; returns the JSON it prints."""
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    environ.update(NUMBA_CACHE_DIR=str(cache), **env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


PRECOMPILE = """
import json
from fastnet.precompile import precompile
records = precompile({kernels!r}, {dtypes!r})
print(json.dumps([[r.kernel, r.dtype, r.source] for r in records]))
"""


def test_a_later_process_loads_what_precompile_compiled(tmp_path):
    kernels, dtypes = ["softmax", "sigmoid"], ["float32", "float64"]
    first = _python(PRECOMPILE.format(kernels=kernels, dtypes=dtypes), tmp_path)
    # in the order of KERNELS and DTYPES, whatever the order asked
    assert [r[:2] for r in first] == [["sigmoid", "float64"], ["softmax", "float64"],
                                      ["sigmoid", "float32"], ["softmax", "float32"]]
    assert {r[2] for r in first} == {"compiled"}
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))
    second = _python(PRECOMPILE.format(kernels=kernels, dtypes=dtypes), tmp_path)
    assert [r[:2] for r in second] == [r[:2] for r in first]
    assert {r[2] for r in second} == {"cache"}


def test_the_net_kernels_load_for_other_shapes_than_they_were_compiled_on(tmp_path):
    _python(PRECOMPILE.format(kernels=["scan_arguments", "two_layer_loss"], dtypes=["float64"]),
            tmp_path)
    counts = _python("""
        import json
        import numpy as np
        import fastnet
        import kernels
        rng = np.random.default_rng(0)
        x = np.where(rng.random((37, 30)) < 0.3, rng.random((37, 30)), 0.0)
        loss = fastnet.TwoLayerNet(30, 7, 4, seed=1).loss(x, rng.integers(0, 4, 37))
        stats = kernels.two_layer_loss.stats
        print(json.dumps([sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]))
    """, tmp_path)
    assert counts == [1, 0]


def test_without_the_jit_the_kernels_are_reported_interpreted(tmp_path):
    records = _python(PRECOMPILE.format(kernels=["sigmoid"], dtypes=["float32"]), tmp_path,
                      NUMBA_DISABLE_JIT="1")
    assert records == [["sigmoid", "float32", "interpreted"]]


def test_a_kernel_already_in_the_process_is_reported_loaded():
    pc.precompile(["softmax_cross_entropy"], ["float64"])
    (record,) = pc.precompile(["softmax_cross_entropy"], ["float64"])
    assert (record.kernel, record.dtype, record.source) == ("softmax_cross_entropy", "float64", "loaded")
    assert record.seconds >= 0


def test_every_kernel_has_a_call_for_each_dtype():
    for dtype in pc.DTYPES:
        assert set(pc._calls(dtype)) == set(pc.KERNELS)
    assert pc.KERNELS == pc.NET_KERNELS + pc.LAYER_KERNELS and len(set(pc.KERNELS)) == len(pc.KERNELS)


@pytest.mark.parametrize("kwargs, error, word", [
    ({"kernels": ["sigmoid", "nope"]}, ValueError, "kernels"),
    ({"kernels": []}, ValueError, "kernels"),
    ({"kernels": "sigmoid"}, TypeError, "kernels"),
    ({"dtypes": ["float16"]}, ValueError, "dtypes"),
    ({"dtypes": "float64"}, TypeError, "dtypes"),
])
def test_bad_selections_are_errors_naming_the_argument(kwargs, error, word):
    with pytest.raises(error, match=word):
        pc.precompile(**kwargs)


def test_the_table_lists_each_record_and_the_cache():
    records = [pc.CompiledKernel("sigmoid", "float64", 0.5, "compiled"),
               pc.CompiledKernel("softmax", "float32", 0.25, "cache")]
    lines = pc.format_records(records).splitlines()
    assert lines[2].split() == ["sigmoid", "float64", "0.50", "s", "compiled"]
    assert lines[3].split() == ["softmax", "float32", "0.25", "s", "cache"]
    assert lines[-1].startswith("2 kernel calls in 0.8 s, 1 compiled; numba's cache: ")
    assert pc.cache_location() in lines[-1]
    assert records[0].to_dict() == {"kernel": "sigmoid", "dtype": "float64", "seconds": 0.5,
                                    "source": "compiled"}


def test_the_command_prints_json_and_progress(capsys):
    assert main(["compile", "--kernels", "sigmoid_grad", "--dtypes", "float32", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["cache"] == pc.cache_location()
    assert [(r["kernel"], r["dtype"]) for r in report["kernels"]] == [("sigmoid_grad", "float32")]
    assert report["kernels"][0]["source"] in ("compiled", "cache", "loaded")
    assert captured.err == "fastnet compile: sigmoid_grad float32\n"


@pytest.mark.parametrize("argv", [["--kernels", "sigmoid,nope"], ["--dtypes", "float16"],
                                  ["--kernels", ","]])
def test_the_command_rejects_unknown_names(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compile", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "fastnet compile: error: argument" in err and "Traceback" not in err


def test_every_cacheable_kernel_of_the_package_is_precompiled():
    """A kernel added to `kernels` is added to the list `fastnet compile` goes through, or it
    would compile on its first call after all. Left out: the constants, and the loops that take
    the user's own function, which numba cannot cache."""
    import kernels

    user_function_loops = {"numerical_gradient_loop", "numerical_gradient_loop_serial",
                           "complex_step_loop", "complex_step_loop_serial"}
    cacheable = {name for name in kernels.__all__
                 if callable(getattr(kernels, name)) and name not in user_function_loops}
    assert cacheable == (set(pc.LAYER_KERNELS) | set(pc.NET_KERNELS)) - {"scan_arguments"}
