"""Compile fastnet's kernels into numba's on-disk cache before their first use.

A kernel's first call in a new environment compiles it: import plus the first backprop takes
about 20 s on the 2-core VM of the README, the first numerical gradient about as long again,
float32 as much once more. Every later process loads the machine code from numba's cache in a
fraction of a second. `precompile` makes those first calls now, on a few rows of data, with the
argument types `fastnet` passes: run it where the cache will be used (a container image's build,
a cluster's shared `NUMBA_CACHE_DIR` before the workers start, a CI cache step), and the first
real call loads instead of compiling.

numba's cache is specific to the CPU it was compiled on and to the numba version, and lives in
``$NUMBA_CACHE_DIR`` when that is set, else beside the package (or in a user-wide directory where
the package's is not writable). The kernels that take a user's function (`fastnet.gradient`,
`fastnet.hessian` and friends) compile for that function and are not cached.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# The kernels precompile compiles, in the order it compiles them: the argument check every
# TwoLayerNet call runs, the net's kernels, then the single-layer kernels of `kernels`.
NET_KERNELS = (
    "scan_arguments",
    "two_layer_predict",
    "two_layer_loss",
    "two_layer_gradient",
    "two_layer_numerical_gradient",
    "two_layer_complex_step",
)
LAYER_KERNELS = (
    "affine_forward",
    "affine_backward",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_sum_squared",
    "softmax_sum_squared_grad",
)
KERNELS = NET_KERNELS + LAYER_KERNELS
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class CompiledKernel:
    """What `precompile` did for one kernel and dtype.

    Attributes
    ----------
    kernel : str
        The kernel's name in `kernels` (``scan_arguments`` is `kernels.scan.scan_arguments`).
    dtype : str
        ``"float64"`` or ``"float32"``.
    seconds : float
        Wall time of the call, compiling or loading included.
    source : str
        ``"compiled"`` (the kernel or a helper it calls was compiled now, and written to the
        cache), ``"cache"`` (all loaded from the cache), ``"loaded"`` (already in this process),
        or ``"interpreted"`` where ``NUMBA_DISABLE_JIT=1`` runs the kernels as Python.

    Examples
    --------
    >>> CompiledKernel("sigmoid", "float64", 0.8, "compiled").to_dict()["source"]
    'compiled'
    """

    kernel: str
    dtype: str
    seconds: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (for JSON).

        Returns
        -------
        dict
            kernel, dtype, seconds and source.

        Examples
        --------
        >>> CompiledKernel("sigmoid", "float64", 0.8, "cache").to_dict()["seconds"]
        0.8
        """
        return asdict(self)


def _names(values: Iterable[str] | str | None, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    if values is None:
        return allowed
    if isinstance(values, str):
        raise TypeError(f"{what} must be a sequence of names, not a str; got {values!r}")
    names = tuple(values)
    bad = [v for v in names if not isinstance(v, str) or v not in allowed]
    if bad or not names:
        raise ValueError(f"{what} must be a non-empty selection of {', '.join(allowed)}; got {names!r}")
    return tuple(v for v in allowed if v in names)  # compile in the order of `allowed`, once each


def _calls(dtype: str) -> dict[str, Callable[[], object]]:
    """kernel name -> a call of it with the argument types fastnet passes."""
    import kernels
    from fastnet.network import PARAM_NAMES, TwoLayerNet
    from kernels.scan import scan_arguments

    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    d, h, c, n = 12, 5, 3, 9
    x = rng.random((n, d)).astype(dt)
    x[x < 0.5] = 0  # zeros and non-zeros, as the kernels meet them
    t = np.arange(n, dtype=np.int64) % c
    net = TwoLayerNet(d, h, c, dtype=dt, seed=0)
    W1, b1, W2, b2 = (net.params[k] for k in PARAM_NAMES)
    a1 = rng.standard_normal((n, h)).astype(dt)
    a2 = rng.standard_normal((n, c)).astype(dt)
    dout = rng.standard_normal((n, h)).astype(dt)
    return {
        "scan_arguments": lambda: scan_arguments(x, t, c, W1, b1, W2, b2),
        "two_layer_predict": lambda: net.predict(x),
        "two_layer_loss": lambda: net.loss(x, t),
        "two_layer_gradient": lambda: net.gradient(x, t),
        "two_layer_numerical_gradient": lambda: net.numerical_gradient(x, t),
        "two_layer_complex_step": lambda: net.numerical_gradient(x, t, method="complex"),
        "affine_forward": lambda: kernels.affine_forward(x, W1, b1),
        "affine_backward": lambda: kernels.affine_backward(x, W1, dout),
        "sigmoid": lambda: kernels.sigmoid(a1),
        "sigmoid_grad": lambda: kernels.sigmoid_grad(a1),
        "softmax": lambda: kernels.softmax(a2),
        "softmax_cross_entropy": lambda: kernels.softmax_cross_entropy(a2, t),
        "softmax_cross_entropy_grad": lambda: kernels.softmax_cross_entropy_grad(a2, t),
        "softmax_sum_squared": lambda: kernels.softmax_sum_squared(a2, t),
        "softmax_sum_squared_grad": lambda: kernels.softmax_sum_squared_grad(a2, t),
    }


def _counts() -> tuple[int, int] | None:
    """(cache hits, cache misses) so far, summed over every numba dispatcher of the `kernels`
    modules: a kernel's first call loads or compiles its callees and the helpers its Python
    driver calls (the numerical gradient's), each a dispatcher of its own. None where
    NUMBA_DISABLE_JIT=1 leaves plain functions."""
    hits = misses = 0
    found = False
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "kernels" or name.startswith("kernels.")):
            continue
        for value in list(vars(module).values()):
            stats = getattr(value, "stats", None)
            if stats is None or not hasattr(stats, "cache_hits"):
                continue
            found = True
            hits += sum(stats.cache_hits.values())
            misses += sum(stats.cache_misses.values())
    return (hits, misses) if found else None


def precompile(kernels: Iterable[str] | None = None, dtypes: Iterable[str] | None = None, *,
               progress: Callable[[str], None] | None = None) -> list[CompiledKernel]:
    """Compile fastnet's kernels into numba's on-disk cache now, so that first calls load them.

    Each kernel is called once on a few rows of data with the argument types `fastnet` passes
    (through `TwoLayerNet` for the net's kernels), which compiles it and writes it to numba's
    cache, or loads it where the cache already holds it. Later processes that use the same cache
    (``$NUMBA_CACHE_DIR``, or the one beside the package) load the machine code instead of
    compiling. The numerical gradient's default path is compiled; a call whose step needs the
    kernel's large-step path compiles that path when it first runs.

    Parameters
    ----------
    kernels : sequence of str, optional
        Names from `KERNELS` (default: all of them). They run in the order of `KERNELS`.
    dtypes : sequence of str, optional
        ``"float64"``, ``"float32"`` or both (the default).
    progress : callable, optional
        Called with a line of text before each kernel (e.g. ``print``).

    Returns
    -------
    list of CompiledKernel
        One per kernel and dtype: the seconds the call took and whether it compiled or loaded.

    Raises
    ------
    ValueError
        An unknown kernel or dtype, or an empty selection.
    TypeError
        `kernels` or `dtypes` given as a single string.

    Examples
    --------
    >>> [r.kernel for r in precompile(["sigmoid"], ["float64"])]
    ['sigmoid']
    >>> precompile(["sigmoid"], ["float64"])[0].source  # already in this process now
    'loaded'
    """
    names = _names(kernels, KERNELS, "kernels")
    kinds = _names(dtypes, DTYPES, "dtypes")
    records = []
    for dtype in kinds:
        calls = _calls(dtype)
        for name in names:
            call = calls[name]
            if progress is not None:
                progress(f"fastnet compile: {name} {dtype}")
            before = _counts()
            start = time.perf_counter()
            call()
            seconds = time.perf_counter() - start
            after = _counts()
            if before is None or after is None:
                source = "interpreted"
            elif after[1] > before[1]:
                source = "compiled"
            elif after[0] > before[0]:
                source = "cache"
            else:
                source = "loaded"
            records.append(CompiledKernel(name, dtype, seconds, source))
    return records


def cache_location() -> str:
    """Where numba keeps the kernels' cache: ``$NUMBA_CACHE_DIR``, or the directory numba chose
    for `kernels` (beside the package, or a user-wide one).

    Returns
    -------
    str
        The directory, or a note where ``NUMBA_DISABLE_JIT=1`` compiles nothing.

    Examples
    --------
    >>> isinstance(cache_location(), str)
    True
    """
    import kernels

    stats = getattr(kernels.sigmoid, "stats", None)
    if stats is None:
        return "(none: NUMBA_DISABLE_JIT=1)"
    return str(stats.cache_path)


def format_records(records: list[CompiledKernel]) -> str:
    """A table of `precompile`'s records with the total time and the cache's location.

    Parameters
    ----------
    records : list of CompiledKernel
        What `precompile` returned.

    Returns
    -------
    str
        One line per record, then a line with the count, total seconds and the cache.

    Examples
    --------
    >>> print(format_records([CompiledKernel("sigmoid", "float64", 0.8, "compiled")]).splitlines()[2])
    sigmoid                       float64     0.80 s  compiled
    """
    lines = [f"{'kernel':<30}{'dtype':<10}{'time':>7}  source", "-" * 57]
    for r in records:
        lines.append(f"{r.kernel:<30}{r.dtype:<10}{r.seconds:>6.2f} s  {r.source}")
    total = sum(r.seconds for r in records)
    compiled = sum(r.source == "compiled" for r in records)
    lines.append(f"{len(records)} kernel calls in {total:.1f} s, {compiled} compiled; "
                 f"numba's cache: {cache_location()}")
    return "\n".join(lines)
