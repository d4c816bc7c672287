"""The JAX and PyTorch twins (`fastnet.twins`) compute what `fastnet.reference` computes, and
`fastnet bench` copes without them.

Each twin is compared with the book's formula on float32 and float64 arrays of a few shapes,
odd ones included; without jax or torch those tests skip. The rest run everywhere: a library
whose import fails (simulated with ``sys.modules[name] = None``) is reported, never raised.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fastnet import bench, reference, twins

# (batch N, inputs D, hidden H, classes C): the book's net, a single row, odd sizes.
SHAPES = [(10, 784, 50, 10), (1, 7, 3, 2), (13, 5, 11, 7)]
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
ATOL = {np.float64: 1e-13, np.float32: 1e-6}


def _arrays(shape, dtype, seed=0):
    n, d, h, c = shape
    rng = np.random.default_rng(seed)
    return {
        "x": bench._inputs("mnist-like", n, d, dtype, seed),
        "t": rng.integers(0, c, size=n).astype(np.int64),
        "W1": (0.1 * rng.standard_normal((d, h))).astype(dtype),
        "b1": (0.1 * rng.standard_normal(h)).astype(dtype),
        "W2": (0.5 * rng.standard_normal((h, c))).astype(dtype),
        "b2": (0.1 * rng.standard_normal(c)).astype(dtype),
        "a1": rng.standard_normal((n, h)).astype(dtype),
        "a2": (3 * rng.standard_normal((n, c))).astype(dtype),
        "dout": rng.standard_normal((n, h)).astype(dtype),
    }


def _cases(A):
    """(kernel, arrays, expected) for every kernel with a twin, expected from the reference."""
    x, t, a1, a2, dout = A["x"], A["t"], A["a1"], A["a2"], A["dout"]
    params = {k: A[k] for k in ("W1", "b1", "W2", "b2")}
    net = reference.TwoLayerNet.from_params(params, delta=0.0)  # the exact loss, like the kernels
    grads = net.gradient(x, t)
    net_args = (x, t, A["W1"], A["b1"], A["W2"], A["b2"])
    return [
        ("affine_forward", (x, A["W1"], A["b1"]), reference.affine_forward(x, A["W1"], A["b1"])),
        ("affine_backward", (x, A["W1"], dout), reference.affine_backward(x, A["W1"], dout)),
        ("sigmoid", (a1,), reference.sigmoid(a1)),
        ("softmax_cross_entropy", (a2, t), reference.softmax_cross_entropy(a2, t)),
        ("softmax_cross_entropy_grad", (a2, t), reference.softmax_cross_entropy_grad(a2, t)),
        ("two_layer_loss", net_args, net.loss(x, t)),
        ("two_layer_gradient", net_args, tuple(grads[k] for k in ("W1", "b1", "W2", "b2"))),
    ]


def _assert_matches(got, expected, dtype):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            _assert_matches(g, e, dtype)
        return
    got = np.asarray(got)
    assert got.dtype == dtype, f"{got.dtype} result for {np.dtype(dtype)} inputs"
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got, np.asarray(expected, dtype=np.float64), rtol=RTOL[dtype],
                               atol=ATOL[dtype])


@pytest.mark.parametrize("library", twins.LIBRARIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_twins_match_the_reference(library, dtype, shape):
    pytest.importorskip(library)
    A = _arrays(shape, dtype)
    before = {k: v.copy() for k, v in A.items()}
    cases = _cases(A)
    assert {name for name, _, _ in cases} == set(twins.KERNELS)
    for kernel, arrays, expected in cases:
        call = twins.twin(library, kernel, *arrays)
        for _ in range(2):  # the second call too: gradients are reset, not accumulated
            _assert_matches(twins.to_numpy(call()), expected, dtype)
    for k in A:  # tensors share the arrays' memory: nothing wrote to them
        np.testing.assert_array_equal(A[k], before[k])


def test_jax_twins_keep_float32_after_x64_is_on():
    jax = pytest.importorskip("jax")
    twins.jax_twin("sigmoid", np.zeros(3))  # turns on x64
    assert jax.config.jax_enable_x64
    A = _arrays((4, 6, 5, 3), np.float32)
    W1, b1 = A["W1"], A["b1"]
    out = twins.to_numpy(twins.jax_twin("affine_forward", A["x"], W1, b1)())
    assert out.dtype == np.float32
    grads = twins.to_numpy(twins.jax_twin("two_layer_gradient", A["x"], A["t"], W1, b1, A["W2"],
                                          A["b2"])())
    assert [g.dtype for g in grads] == [np.float32] * 4


def test_torch_threads_are_set_and_restored():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with twins.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n must be"):
        with twins.torch_threads(0):
            pass


def test_twin_arguments_are_checked():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="library must be one of jax, torch"):
        twins.twin("numpy", "sigmoid", x)
    with pytest.raises(ValueError, match="no twin of kernel 'softmax_sum_squared'"):
        twins._check_arrays("softmax_sum_squared", (x, np.zeros(2, dtype=np.int64)))
    with pytest.raises(TypeError, match="affine_forward takes 3 arrays"):
        twins._check_arrays("affine_forward", (x,))
    with pytest.raises(ValueError, match="t must be 1-D integer class indices"):
        twins._check_arrays("softmax_cross_entropy", (x, np.zeros(2)))
    with pytest.raises(ValueError, match="a must be float32 or float64"):
        twins._check_arrays("sigmoid", (np.zeros(2, dtype=np.int32),))
    with pytest.raises(TypeError, match="a must be a NumPy array"):
        twins._check_arrays("sigmoid", ([1.0],))


def _hide(monkeypatch, library):
    """Make `import library` fail as if it were not installed."""
    for name in list(sys.modules):
        if name == library or name.startswith(library + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, library, None)


@pytest.mark.parametrize("library", twins.LIBRARIES)
def test_a_missing_library_is_reported_not_raised(monkeypatch, library):
    _hide(monkeypatch, library)
    assert library not in twins.available()
    text = twins.note(library)
    assert text == f'{library} not installed: pip install "fastnet-dlfs[compare]"'
    with pytest.raises(twins.TwinUnavailableError, match="not installed"):
        twins.torch_twin("sigmoid", np.zeros(2)) if library == "torch" else \
            twins._import("jax")


def test_a_broken_library_is_reported_with_the_reason(monkeypatch):
    import importlib

    real = importlib.import_module

    def broken(name, *args, **kwargs):
        if name == "torch":
            raise OSError("libtorch_cpu.so: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(twins.importlib, "import_module", broken)
    text = twins.note("torch")
    assert text.startswith("torch failed to import (OSError: libtorch_cpu.so")
    assert text.endswith('pip install "fastnet-dlfs[compare]"')


def test_bench_kernels_time_the_twins_beside_fastnet():
    available = twins.available()
    rows = bench.bench_kernels((3,), ("float64",), kernels=("sigmoid", "softmax_sum_squared",
                                                             "two_layer_gradient"),
                               net="20-8-10", repeat=1, min_time=0, twins=twins.LIBRARIES)
    assert [r.kernel for r in rows] == ["sigmoid", "softmax_sum_squared",
                                        "two_layer_gradient (mnist-like)",
                                        "two_layer_gradient (dense)"]
    for r in rows:
        for lib in twins.LIBRARIES:
            value = r.extra[f"{lib}_s"]
            if lib in available and r.kernel != "softmax_sum_squared":
                assert value > 0
                assert r.to_dict()[f"speedup_vs_{lib}"] == pytest.approx(value / r.fastnet_s)
            else:  # not installed, or no twin of a sum-of-squares kernel
                assert value is None and r.to_dict()[f"speedup_vs_{lib}"] is None


@pytest.mark.parametrize("library", twins.LIBRARIES)
def test_bench_without_a_library_skips_its_twins_and_says_why(monkeypatch, library):
    _hide(monkeypatch, library)
    report = bench.run(quick=True, batch_sizes=[2], dtypes=["float64"], net="20-4-10", batch=4,
                       subset=2, repeat=1)
    assert all(r.extra[f"{library}_s"] is None for r in report.kernels)
    assert report.meta["twins"][library]["note"] == twins.note(library)
    table = report.format_table()
    assert f'{library} not installed: pip install "fastnet-dlfs[compare]"' in table
    assert table.splitlines()[0].split()[3:] == ["reference", "fastnet", "speedup", "jax", "torch",
                                                 "vs", "jax", "vs", "torch"]
    other = next(lib for lib in twins.LIBRARIES if lib != library)
    if other in twins.available():
        assert any(r.extra[f"{other}_s"] for r in report.kernels)


def test_bench_without_twins_has_no_twin_columns():
    report = bench.run(quick=True, batch_sizes=[2], dtypes=["float64"], net="20-4-10", batch=4,
                       subset=2, repeat=1, twins=False)
    assert report.meta["twins"] == {}
    assert all("jax_s" not in r.extra for r in report.kernels)
    header = report.format_table().splitlines()[0].split()
    assert header == ["kernel", "size", "dtype", "reference", "fastnet", "speedup"]


def test_import_fastnet_imports_neither_library():
    code = ("import sys, fastnet, fastnet.bench, fastnet.twins; "
            "print(sorted(m for m in ('jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
