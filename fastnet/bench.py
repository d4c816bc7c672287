"""Side-by-side timings of fastnet against the NumPy reference: the engine behind `fastnet bench`.

Every comparison is measured in one process, one after the other, with the same data: a warm-up
call first (it also triggers numba compilation, so compile time never lands in a timing), then the
median of several repetitions timed with `time.perf_counter`. Each implementation's timing starts
once the process's other threads are quiet: OpenBLAS keeps its threads spinning for 0.1-0.2 s
after a product, and on two cores that took a core from the kernel timed next. A repetition loops
the call enough times to last at least `min_time` seconds, so microsecond kernels are timed above
the clock's resolution.

The reference numerical gradient (the book's loop, about 10 s for 784-50-10) is timed on a subset of
the parameters and extrapolated: every perturbed parameter costs the reference the same two full
loss evaluations, so its time is (median time per perturbed entry) x number of parameters. The
subset's entries are timed ten at a time over several rounds, and the median of those samples is
used, so a burst of load from elsewhere on the machine spoils a few samples, not the estimate.
Parameter arrays no larger than the subset are timed whole. Each result says whether its reference
time was extrapolated and from how many parameters.

Kernel rows also time the kernel's JAX and PyTorch twins (`fastnet.twins`), right after the
reference and fastnet, on the same arrays; a library that does not import leaves its columns empty
and a note under the table says why. Kernels whose input is the batch x are timed on MNIST-like and
on dense inputs, since fastnet's kernels skip the zeros of the former.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union

import numpy as np

from fastnet._typing import DTypeLike, FloatArray, NDArray
from fastnet.twins import LIBRARIES as TWIN_LIBRARIES

#: A network's sizes: (D, H, C), or text "D-H-C".
NetSpec = Union[tuple[int, int, int], str, Sequence[int]]
#: Receives one progress message at a time.
Progress = Union[Callable[[str], None], None]

__all__ = [
    "Comparison",
    "BenchReport",
    "median_time",
    "mnist_like",
    "dense_inputs",
    "random_labels",
    "parse_net",
    "bench_kernels",
    "bench_numerical_gradient",
    "bench_numerical_gradient_loop",
    "bench_blas_after_parallel",
    "run",
    "DEFAULT_NET",
    "LARGE_NET",
    "KERNELS",
    "DATA_KERNELS",
    "DATA",
    "TARGETS",
]

DEFAULT_NET = (784, 50, 10)
LARGE_NET = (784, 100, 10)
LARGE_BATCH = 256
PARAM_NAMES = ("W1", "b1", "W2", "b2")

# fastnet's speed targets for the structure-aware numerical gradient, printed next to the
# measured numbers (never asserted).
TARGETS = {
    "mnist_like_speedup_min": 3000.0,
    "dense_speedup_min": 500.0,
    "numgrad_over_backprop_max": 6.0,
}

KERNELS = (
    "affine_forward",
    "affine_backward",
    "sigmoid",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_sum_squared",
    "softmax_sum_squared_grad",
    "two_layer_loss",
    "two_layer_gradient",
)

# The kernels whose input is the batch x: timed on each kind of data (fastnet skips x's zeros).
DATA_KERNELS = ("affine_forward", "affine_backward", "two_layer_loss", "two_layer_gradient")
# The kinds of input data: synthetic digits with MNIST's zeros, and uniform values without zeros.
DATA = ("mnist-like", "dense")

# Fraction of exact zeros in MNIST images (pixels that are pure background).
MNIST_ZERO_FRACTION = 0.8085


@dataclass
class Comparison:
    """One row of the table: a reference time beside fastnet's, in seconds per call.

    Parameters
    ----------
    kernel, size, dtype : str
        What was timed, at which size, in which dtype.
    reference_s, fastnet_s : float
        Seconds per call of the reference and of fastnet.
    reference_params, total_params : int, optional
        Parameters the reference perturbed, and those of the full gradient, when it was extrapolated.
    extra : dict
        Further measurements, merged into `to_dict`: e.g. ``data``, and ``jax_s`` and ``torch_s``,
        the seconds per call of the kernel's twins (None when not timed).

    Examples
    --------
    >>> row = Comparison("sigmoid", "(10,50)", "float64", 6e-6, 4e-6)
    >>> round(row.speedup, 2), row.reference_extrapolated
    (1.5, False)
    """

    kernel: str
    size: str
    dtype: str
    reference_s: float
    fastnet_s: float
    reference_params: int | None = None  # parameters the reference actually perturbed
    total_params: int | None = None  # parameters of the full gradient
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        """Reference time / fastnet time."""
        return self.reference_s / self.fastnet_s if self.fastnet_s > 0 else math.inf

    @property
    def reference_extrapolated(self) -> bool:
        """True when the reference time was extrapolated from a subset of the parameters."""
        return (self.reference_params is not None and self.total_params is not None
                and self.reference_params < self.total_params)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON, with the derived speedup and extrapolation flag.

        Returns
        -------
        dict

        Examples
        --------
        >>> Comparison("sigmoid", "(10,50)", "float64", 6e-6, 3e-6).to_dict()["speedup"]
        2.0
        >>> Comparison("sigmoid", "(10,50)", "float64", 6e-6, 3e-6, extra={"jax_s": 9e-6}).to_dict()["speedup_vs_jax"]
        3.0
        """
        d = asdict(self)
        extra = d.pop("extra")
        d["speedup"] = self.speedup
        d["reference_extrapolated"] = self.reference_extrapolated
        d.update(extra)
        for lib in TWIN_LIBRARIES:  # how many times faster fastnet is than each twin asked for
            if f"{lib}_s" in extra:
                twin_s = extra[f"{lib}_s"]
                d[f"speedup_vs_{lib}"] = (None if twin_s is None or not self.fastnet_s > 0
                                          else twin_s / self.fastnet_s)
        return d


@dataclass
class BenchReport:
    """Everything one `fastnet bench` run measured, printable as a table or as JSON.

    Parameters
    ----------
    kernels, numerical_gradient : list of Comparison
        The rows of the table.
    blas_after_parallel : dict or None
        The BLAS-after-parallel measurement (see `bench_blas_after_parallel`).
    meta : dict
        Threads, BLAS, CPUs, repetitions, elapsed seconds; ``twins``: for each twin library timed,
        its ``version`` and, when it did not import, a ``note`` saying why.

    Examples
    --------
    >>> meta = {"numba_threads": 2, "threading_layer": "omp", "cpu_count": 2, "repeat": 3, "elapsed_s": 1.0}
    >>> report = BenchReport([Comparison("sigmoid", "(10,50)", "float64", 6e-6, 3e-6)], [], None, meta)
    >>> print(report.format_table().splitlines()[2])
    sigmoid  (10,50)  float64    6 us     3 us     2.0x
    """

    kernels: list[Comparison]
    numerical_gradient: list[Comparison]
    blas_after_parallel: dict[str, Any] | None
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable form (what `fastnet bench --json` prints).

        Returns
        -------
        dict
            ``meta``, ``targets``, ``kernels``, ``numerical_gradient``, ``blas_after_parallel``.

        Examples
        --------
        >>> sorted(BenchReport([], [], None, {}).to_dict())
        ['blas_after_parallel', 'kernels', 'meta', 'numerical_gradient', 'targets']
        """
        return {
            "meta": self.meta,
            "targets": dict(TARGETS),
            "kernels": [c.to_dict() for c in self.kernels],
            "numerical_gradient": [c.to_dict() for c in self.numerical_gradient],
            "blas_after_parallel": self.blas_after_parallel,
        }

    def format_table(self) -> str:
        """The human-readable table: kernel, size, dtype, reference, fastnet, speedup, then notes.

        When twins were timed (``meta["twins"]``), one column per library with its time, then one
        per library with fastnet's speedup over it ("vs jax": jax's time / fastnet's); "-" where
        the library did not import or the kernel has no twin.

        Returns
        -------
        str

        Examples
        --------
        See `BenchReport`.

        >>> meta = {"numba_threads": 1, "threading_layer": "omp", "cpu_count": 1, "repeat": 3, "elapsed_s": 2.0}
        >>> BenchReport([], [], None, meta).format_table().splitlines()[0].split()
        ['kernel', 'size', 'dtype', 'reference', 'fastnet', 'speedup']
        >>> row = Comparison("sigmoid", "(10,50)", "float64", 6e-6, 3e-6, extra={"jax_s": 9e-6, "torch_s": None})
        >>> meta["twins"] = {"jax": {"version": "0.4.30", "note": None},
        ...                  "torch": {"version": None, "note": "torch not installed"}}
        >>> for line in BenchReport([row], [], None, meta).format_table().splitlines()[:3]:
        ...     print(line)
        kernel   size     dtype    reference  fastnet  speedup   jax  torch  vs jax  vs torch
        -------  -------  -------  ---------  -------  -------  ----  -----  ------  --------
        sigmoid  (10,50)  float64       6 us     3 us     2.0x  9 us      -    3.0x         -
        """
        rows = self.kernels + self.numerical_gradient
        libs = list(self.meta.get("twins") or {})
        header = ("kernel", "size", "dtype", "reference", "fastnet", "speedup",
                  *libs, *(f"vs {lib}" for lib in libs))
        body = []
        for c in rows:
            ref = format_seconds(c.reference_s) + (" *" if c.reference_extrapolated else "")
            twin_s = [c.extra.get(f"{lib}_s") for lib in libs]
            body.append((c.kernel, c.size, c.dtype, ref, format_seconds(c.fastnet_s),
                         f"{c.speedup:,.1f}x",
                         *("-" if s is None else format_seconds(s) for s in twin_s),
                         *("-" if s is None or not c.fastnet_s > 0 else f"{s / c.fastnet_s:,.1f}x"
                           for s in twin_s)))
        widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
        right = (False, False, False) + (True,) * (len(header) - 3)

        def line(r: Sequence[object]) -> str:
            return "  ".join(str(v).rjust(w) if ra else str(v).ljust(w)
                             for v, w, ra in zip(r, widths, right)).rstrip()

        out = [line(header), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in body]
        notes = []
        for c in rows:
            if c.reference_extrapolated:
                notes.append(f"* {c.kernel} {c.size} {c.dtype}: reference time extrapolated from "
                             f"{c.reference_params:,} of {c.total_params:,} parameters "
                             f"(per-parameter time x {c.total_params:,}).")
        for c in self.numerical_gradient:
            label = f"{c.kernel} {c.size} {c.dtype}"
            ratio = c.extra.get("numgrad_over_backprop")
            if ratio is not None:
                note = (f"numerical gradient / backprop, {label}: {ratio:.2f}x "
                        f"(backprop {format_seconds(c.extra['backprop_s'])})")
                bound = c.extra.get("numgrad_over_backprop_target_max")
                if bound is not None:
                    note += (f"; target <= {bound:g}x "
                             f"({'met' if ratio <= bound else 'NOT met'})")
                notes.append(note)
            target = c.extra.get("speedup_target_min")
            if target is not None:
                notes.append(f"speedup, {label}: target >= {target:,.0f}x "
                             f"({'met' if c.speedup >= target else 'NOT met'})")
        for c in self.numerical_gradient:
            if c.extra.get("loss", "cross_entropy") == "cross_entropy":
                continue
            twin = next((o for o in self.numerical_gradient
                         if o.extra.get("loss", "cross_entropy") == "cross_entropy"
                         and o.size == c.size and o.dtype == c.dtype
                         and o.extra.get("data") == c.extra.get("data")), None)
            if twin is not None:
                notes.append(f"numerical gradient {c.size} {c.dtype} {c.extra.get('data')}, "
                             f"{c.extra['loss']} / cross_entropy: {c.fastnet_s / twin.fastnet_s:.2f}x "
                             f"({format_seconds(c.fastnet_s)} / {format_seconds(twin.fastnet_s)})")
        if self.blas_after_parallel:
            b = self.blas_after_parallel
            notes.append(f"NumPy BLAS call ({b['call']}): alone {format_seconds(b['alone_s'])}, "
                         f"right after fastnet's parallel numerical gradient "
                         f"{format_seconds(b['after_parallel_s'])} ({b['slowdown']:.2f}x)")
        twin_notes = []
        for lib, info in (self.meta.get("twins") or {}).items():
            if info.get("note"):
                notes.append(str(info["note"]))
            else:
                how = {"jax": "jax.jit, x64 on, XLA's own CPU threads",
                       "torch": f"{info.get('threads', '?')} threads"}.get(lib, "")
                twin_notes.append(f"{lib} {info.get('version')} ({how})")
        if twin_notes:
            notes.append(f"twins (fastnet.twins): {', '.join(twin_notes)}; vs X = X's time / fastnet's "
                         f"time; - where a kernel has no twin.")
        m = self.meta
        blas = m.get("blas")
        blas_text = ""
        if isinstance(blas, list) and blas:
            parts = []
            for b in blas:
                if b.get("user_api") != "blas":
                    continue
                n = b.get("num_threads")
                owner = f" ({b['package']})" if b.get("package") else ""
                parts.append(f"{b.get('internal_api')}{owner} {n} thread{'' if n == 1 else 's'}")
            blas_text = ", BLAS " + ", ".join(parts) if parts else ""
        usable = m.get("cpus_usable")
        pinned = f" ({usable} usable by this process)" if usable and usable != m["cpu_count"] else ""
        notes.append(f"numba threads {m['numba_threads']} ({m['threading_layer']}){blas_text}, "
                     f"{m['cpu_count']} CPUs{pinned}; medians of {m['repeat']} repetitions after "
                     f"warm-up, time.perf_counter; {m['elapsed_s']:.1f} s in all.")
        return "\n".join(out + [""] + notes)


def format_seconds(s: float) -> str:
    """A duration with a readable unit (ns, us, ms, s).

    Parameters
    ----------
    s : float
        Seconds.

    Returns
    -------
    str

    Examples
    --------
    >>> format_seconds(0.00123), format_seconds(2.5e-8), format_seconds(3.0)
    ('1.23 ms', '25 ns', '3 s')
    """
    if not math.isfinite(s):
        return str(s)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def median_time(fn: Callable[[], object], *, repeat: int = 5, min_time: float = 0.01, warmup: int = 1) -> float:
    """Median seconds per call of `fn()` over `repeat` repetitions, after `warmup` untimed calls.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    repeat : int, default 5
        Repetitions; the median is returned.
    min_time : float, default 0.01
        Seconds a repetition lasts at least (short calls are looped).
    warmup : int, default 1
        Untimed calls first.

    Returns
    -------
    float
        Seconds per call.

    Raises
    ------
    TypeError, ValueError
        fn not callable, or a bad count.

    Examples
    --------
    >>> median_time(lambda: sum(range(100)), repeat=3, min_time=0.001) < 0.01
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    repeat = _check_positive_int("repeat", repeat)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    if not isinstance(min_time, (int, float)) or not min_time >= 0:
        raise ValueError(f"min_time must be a number >= 0, got {min_time!r}")
    for _ in range(warmup):
        fn()
    # Calibrate how many calls one repetition needs to last min_time; a first run that is already
    # long enough counts as a sample.
    number = 1
    samples: list[float] = []
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or number >= 1 << 24:
            if number == 1:
                samples.append(dt)
            break
        number = max(2 * number, int(number * 1.2 * min_time / max(dt, 1e-9)))
    while len(samples) < repeat:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)


# The pen-stroke model of `mnist_like`, fitted to the real MNIST test set (see its docstring).
_STROKE_SEGMENTS = 12
_STROKE_STEP = (2.5, 4.0)  # pixels, before size normalisation
_STROKE_TURN = 0.8  # standard deviation of the turn between segments, radians
_DIGIT_HEIGHT, _DIGIT_WIDTH = 17.0, 14.0  # pixels between the outermost stroke centres
_PEN_RADIUS = (1.1, 1.8)  # full ink within radius - _PEN_CORE, none beyond radius + _PEN_SOFT
_PEN_CORE, _PEN_SOFT = 0.45, 1.1
_PEN_RAGGED = 1.75  # the edge moves in or out by up to half this, pixel by pixel
_STROKE_CHUNK = 2048  # rows drawn at a time: bounds the (rows, 784) temporaries


def _stroke_paths(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, segments + 1, 2) stroke vertices (row, column), size-normalised and centred."""
    heading = rng.uniform(0.0, 2.0 * np.pi, size=n)[:, None] + np.cumsum(
        rng.normal(0.0, _STROKE_TURN, size=(n, _STROKE_SEGMENTS)), axis=1)
    steps = rng.uniform(*_STROKE_STEP, size=(n, _STROKE_SEGMENTS))[..., None]
    path = np.zeros((n, _STROKE_SEGMENTS + 1, 2))
    path[:, 1:] = np.cumsum(steps * np.stack([np.sin(heading), np.cos(heading)], axis=-1), axis=1)
    # MNIST's digits are scaled to fit their box keeping the aspect ratio, then centred: here the
    # stroke is scaled to _DIGIT_HEIGHT tall (narrower if it would be wider than _DIGIT_WIDTH) and
    # its box centred on the canvas.
    lo, hi = path.min(axis=1), path.max(axis=1)
    extent = np.maximum(hi - lo, 1e-9)
    scale = np.minimum(_DIGIT_HEIGHT / extent[:, 0], _DIGIT_WIDTH / extent[:, 1])
    return (path - ((lo + hi) / 2)[:, None]) * scale[:, None, None] + 13.5  # type: ignore[no-any-return]


def _draw_strokes(path: np.ndarray, radius: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 784) ink in k/255 of the polylines `path` (n, m, 2) drawn with pens of `radius` (n,)."""
    row, col = np.divmod(np.arange(784.0), 28.0)  # pixel centres
    dist2 = np.full((path.shape[0], 784), np.inf)  # squared distance to the nearest segment
    for k in range(path.shape[1] - 1):
        y0, x0 = path[:, k, 0, None], path[:, k, 1, None]
        dy, dx = path[:, k + 1, 0, None] - y0, path[:, k + 1, 1, None] - x0
        py, px = row - y0, col - x0
        along = np.clip((py * dy + px * dx) / np.maximum(dy * dy + dx * dx, 1e-12), 0.0, 1.0)
        py -= along * dy
        px -= along * dx
        np.minimum(dist2, py * py + px * px, out=dist2)
    # A ragged edge, as on scanned pen strokes: without it an inked pixel's right-hand neighbour
    # was inked 87% of the time, against MNIST's 83%.
    edge = radius[:, None] + _PEN_SOFT + _PEN_RAGGED * (rng.random(dist2.shape) - 0.5)
    ink = np.clip((edge - np.sqrt(dist2)) / (_PEN_SOFT + _PEN_CORE), 0.0, 1.0)
    return np.round(ink * 255.0) / 255.0  # type: ignore[no-any-return]


def mnist_like(n: int, *, seed: int = 0, dtype: DTypeLike = np.float64) -> FloatArray:
    """(n, 784) synthetic digits in [0, 1]: one pen stroke each, drawn on a 28x28 canvas like MNIST's.

    Each image is a random walk of 12 segments (2.5-4 pixels long, turning by a normal angle of
    standard deviation 0.8 rad), scaled as MNIST scales its digits (17 pixels tall, at most 14
    wide, its box centred) and drawn with a round pen of radius 1.1-1.8 pixels whose soft, ragged
    edge gives the grey values k/255 of scanned, anti-aliased digits.

    Where fastnet's kernels depend on the input, this matches the real MNIST test set: the share
    of exact zeros (81%), where the ink falls (per-pixel ink rates correlate 0.92 with MNIST's; the
    border stays blank), the near-saturated share of the ink (39%), and how often the right-hand
    neighbour of an inked pixel is inked too (0.83, as in MNIST). The last one matters: the
    structure-aware kernels go over neighbouring inputs in pairs, and a model that inked each pixel
    independently (neighbours 0.55) made that work about a third larger than real digits do.

    Parameters
    ----------
    n : int
        Rows.
    seed : int, default 0
        Seed of the draws.
    dtype : float32 or float64
        Float type.

    Returns
    -------
    ndarray, shape (n, 784)

    Examples
    --------
    >>> x = mnist_like(50)
    >>> x.shape, bool(0.7 < (x == 0).mean() < 0.9)
    ((50, 784), True)
    >>> img = x.reshape(-1, 28, 28) != 0  # ink comes in strokes: an inked pixel's neighbour mostly is
    >>> bool((img[:, :, 1:] & img[:, :, :-1]).sum() / img[:, :, :-1].sum() > 0.75)
    True
    """
    n = _check_positive_int("n", n)
    rng = np.random.default_rng(seed)
    path = _stroke_paths(n, rng)
    radius = rng.uniform(*_PEN_RADIUS, size=n)
    out = np.empty((n, 784), dtype=dtype)
    for r0 in range(0, n, _STROKE_CHUNK):
        r1 = min(r0 + _STROKE_CHUNK, n)
        out[r0:r1] = _draw_strokes(path[r0:r1], radius[r0:r1], rng)
    return out


def dense_inputs(n: int, d: int, *, seed: int = 0, dtype: DTypeLike = np.float64) -> FloatArray:
    """(n, d) uniform random inputs in (0, 1): no zeros for the structure-aware kernel to skip.

    Parameters
    ----------
    n, d : int
        Rows and columns.
    seed : int, default 0
        Seed of the draws.
    dtype : float32 or float64
        Float type.

    Returns
    -------
    ndarray, shape (n, d)

    Examples
    --------
    >>> x = dense_inputs(3, 4)
    >>> x.shape, bool((x > 0).all())
    ((3, 4), True)
    """
    n = _check_positive_int("n", n)
    d = _check_positive_int("d", d)
    rng = np.random.default_rng(seed)
    return (1.0 - rng.random((n, d))).astype(dtype)


def random_labels(n: int, n_classes: int, *, seed: int = 0) -> NDArray[np.int64]:
    """(n,) int64 class indices uniform in [0, n_classes).

    Parameters
    ----------
    n : int
        Labels.
    n_classes : int
        Classes.
    seed : int, default 0
        Seed of the draws.

    Returns
    -------
    ndarray of int64, shape (n,)

    Examples
    --------
    >>> t = random_labels(100, 10)
    >>> t.dtype, int(t.min()) >= 0, int(t.max()) < 10
    (dtype('int64'), True, True)
    """
    n = _check_positive_int("n", n)
    n_classes = _check_positive_int("n_classes", n_classes)
    return np.random.default_rng(seed + 1).integers(0, n_classes, size=n).astype(np.int64)


def parse_net(spec: object) -> tuple[int, int, int]:
    """(input, hidden, output) sizes from 'D-H-C' text or a 3-tuple of positive ints.

    Parameters
    ----------
    spec : str or sequence of int
        ``"784-50-10"`` or ``(784, 50, 10)``.

    Returns
    -------
    (int, int, int)

    Raises
    ------
    ValueError
        Not three positive sizes with at least 2 classes.

    Examples
    --------
    >>> parse_net("784-50-10"), parse_net((20, 8, 10))
    ((784, 50, 10), (20, 8, 10))
    """
    if isinstance(spec, str):
        parts = spec.replace("x", "-").split("-")
        try:
            sizes = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"net must look like 784-50-10 (input-hidden-output), got {spec!r}")
    else:
        sizes = tuple(spec)  # type: ignore[arg-type]  # not iterable: TypeError, as before
    if len(sizes) != 3 or any(isinstance(s, bool) or int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"net must be three positive sizes input-hidden-output, got {spec!r}")
    if sizes[2] < 2:
        raise ValueError(f"net needs at least 2 output classes, got {spec!r}")
    return int(sizes[0]), int(sizes[1]), int(sizes[2])


def _inputs(kind: str, n: int, d: int, dtype: DTypeLike, seed: int = 0) -> FloatArray:
    if kind == "mnist-like":
        if d != 784:
            # Same ink rate, no spatial layout: a flat random mask for non-28x28 inputs.
            rng = np.random.default_rng(seed)
            x = np.where(rng.random((n, d)) < 1 - MNIST_ZERO_FRACTION,
                         rng.integers(1, 256, size=(n, d)) / 255.0, 0.0)
            return x.astype(dtype)
        return mnist_like(n, seed=seed, dtype=dtype)
    if kind == "dense":
        return dense_inputs(n, d, seed=seed, dtype=dtype)
    raise ValueError(f"data must be 'mnist-like' or 'dense', got {kind!r}")


def _net_label(net: tuple[int, int, int], batch: int) -> str:
    return f"{'-'.join(map(str, net))} b{batch}"


def _kernel_cases(name: str, batch: int, dtype: DTypeLike, net: tuple[int, int, int], seed: int = 0,
                  data: str = "mnist-like") -> tuple[str, Callable[[], object], Callable[[], object],
                                                     tuple[NDArray[Any], ...]]:
    """(size label, fastnet callable, reference callable, the fastnet kernel's arrays) for one
    kernel at one size; x is `data` ("mnist-like" or "dense")."""
    import kernels
    from fastnet import reference

    d, h, c = net
    rng = np.random.default_rng(seed)
    x = _inputs(data, batch, d, dtype, seed)
    t = random_labels(batch, c, seed=seed)
    W1 = (0.01 * rng.standard_normal((d, h))).astype(dtype)
    b1 = (0.01 * rng.standard_normal(h)).astype(dtype)
    W2 = (0.01 * rng.standard_normal((h, c))).astype(dtype)
    b2 = (0.01 * rng.standard_normal(c)).astype(dtype)
    a1 = rng.standard_normal((batch, h)).astype(dtype)
    a2 = rng.standard_normal((batch, c)).astype(dtype)
    dout = rng.standard_normal((batch, h)).astype(dtype)
    if name == "affine_forward":
        return (f"({batch},{d})@({d},{h})",
                lambda: kernels.affine_forward(x, W1, b1),
                lambda: reference.affine_forward(x, W1, b1), (x, W1, b1))
    if name == "affine_backward":
        return (f"({batch},{d})@({d},{h})",
                lambda: kernels.affine_backward(x, W1, dout),
                lambda: reference.affine_backward(x, W1, dout), (x, W1, dout))
    if name == "sigmoid":
        return (f"({batch},{h})", lambda: kernels.sigmoid(a1), lambda: reference.sigmoid(a1),
                (a1,))
    if name == "softmax_cross_entropy":
        return (f"({batch},{c})",
                lambda: kernels.softmax_cross_entropy(a2, t),
                lambda: reference.softmax_cross_entropy(a2, t), (a2, t))
    if name == "softmax_cross_entropy_grad":
        return (f"({batch},{c})",
                lambda: kernels.softmax_cross_entropy_grad(a2, t),
                lambda: reference.softmax_cross_entropy_grad(a2, t), (a2, t))
    if name == "softmax_sum_squared":
        return (f"({batch},{c})",
                lambda: kernels.softmax_sum_squared(a2, t),
                lambda: reference.softmax_sum_squared(a2, t), (a2, t))
    if name == "softmax_sum_squared_grad":
        return (f"({batch},{c})",
                lambda: kernels.softmax_sum_squared_grad(a2, t),
                lambda: reference.softmax_sum_squared_grad(a2, t), (a2, t))
    ref_net = reference.TwoLayerNet.from_params({"W1": W1, "b1": b1, "W2": W2, "b2": b2})
    if name == "two_layer_loss":
        return (_net_label(net, batch),
                lambda: kernels.two_layer_loss(x, t, W1, b1, W2, b2),
                lambda: ref_net.loss(x, t), (x, t, W1, b1, W2, b2))
    if name == "two_layer_gradient":
        return (_net_label(net, batch),
                lambda: kernels.two_layer_gradient(x, t, W1, b1, W2, b2),
                lambda: ref_net.gradient(x, t), (x, t, W1, b1, W2, b2))
    raise ValueError(f"unknown kernel {name!r}; expected one of {', '.join(KERNELS)}")


def bench_kernels(batch_sizes: Iterable[int] = (1, 10, 100, 1000), dtypes: Iterable[DTypeLike] = ("float64", "float32"),
                  *, kernels: Iterable[str] = KERNELS, net: NetSpec = DEFAULT_NET, repeat: int = 5,
                  min_time: float = 0.01, data: Iterable[str] = DATA, twins: Iterable[str] = (),
                  progress: Progress = None) -> list[Comparison]:
    """Each compiled kernel beside its NumPy reference twin, for every batch size and dtype.

    The kernels of `DATA_KERNELS` (those whose input is the batch x) are timed once per kind of
    `data`, the kind named in the row's kernel, e.g. ``two_layer_gradient (dense)``. Each library of
    `twins` ("jax", "torch") adds its twin's seconds per call to every row's ``extra``
    (``jax_s``, ``torch_s``), timed right after fastnet on the same arrays; None where the library
    does not import or the kernel has no twin (the sum-of-squares kernels). PyTorch runs with as
    many threads as numba.

    Parameters
    ----------
    batch_sizes : iterable of int
        Batch sizes.
    dtypes : iterable of dtype-like
        float32 and/or float64.
    kernels : iterable of str
        Names from `KERNELS`.
    net : str or sequence of int
        The network's sizes.
    repeat : int, default 5
        Repetitions per timing.
    min_time : float, default 0.01
        Seconds a repetition lasts at least.
    data : iterable of {"mnist-like", "dense"}
        The inputs x of the kernels of `DATA_KERNELS`.
    twins : iterable of {"jax", "torch"}
        Libraries whose twins to time too (`fastnet.twins`); default none.
    progress : callable, optional
        Receives a message per kernel.

    Returns
    -------
    list of Comparison
        One per kernel, kind of data, dtype and batch size.

    Raises
    ------
    ValueError
        An unknown kernel, kind of data or library, or a bad size.

    Examples
    --------
    >>> rows = bench_kernels((2,), ("float64",), kernels=("sigmoid",), net="20-8-10", repeat=1, min_time=0)
    >>> [(r.kernel, r.size, r.dtype) for r in rows]
    [('sigmoid', '(2,8)', 'float64')]
    >>> rows = bench_kernels((2,), ("float64",), kernels=("two_layer_loss",), net="20-8-10", repeat=1,
    ...                      min_time=0)
    >>> [(r.kernel, r.extra["data"]) for r in rows]
    [('two_layer_loss (mnist-like)', 'mnist-like'), ('two_layer_loss (dense)', 'dense')]
    """
    import numba

    from fastnet import twins as twin_lib

    net = parse_net(net)
    batch_sizes = [_check_positive_int("batch size", b) for b in batch_sizes]
    dtypes = [_dtype_name(dt) for dt in dtypes]
    kernels = tuple(kernels)
    for k in kernels:
        if k not in KERNELS:
            raise ValueError(f"unknown kernel {k!r}; expected one of {', '.join(KERNELS)}")
    data = tuple(data)
    if not data or any(kind not in DATA for kind in data):
        raise ValueError(f"data must be a non-empty selection of {', '.join(DATA)}, got {data!r}")
    twins = tuple(twins)
    for lib in twins:
        if lib not in TWIN_LIBRARIES:
            raise ValueError(f"unknown twin library {lib!r}; expected one of {', '.join(TWIN_LIBRARIES)}")
    usable = [lib for lib in twins if twin_lib.note(lib) is None]
    rows = []
    for name in kernels:
        for kind in data if name in DATA_KERNELS else (None,):
            label = name if kind is None else f"{name} ({kind})"
            if progress:
                progress(f"kernel {label}")
            for dtype in dtypes:
                for batch in batch_sizes:
                    size, fast, ref, arrays = _kernel_cases(name, batch, np.dtype(dtype), net,
                                                            data=kind or "mnist-like")
                    # Each implementation timed once the threads of the one before are quiet.
                    _settle()
                    ref_s = median_time(ref, repeat=repeat, min_time=min_time)
                    _settle()
                    fast_s = median_time(fast, repeat=repeat, min_time=min_time)
                    extra: dict[str, Any] = {} if kind is None else {"data": kind}
                    for lib in twins:
                        extra[f"{lib}_s"] = None
                        if lib not in usable or name not in twin_lib.KERNELS:
                            continue
                        call = twin_lib.twin(lib, name, *arrays)
                        _settle()
                        with twin_lib.torch_threads(numba.get_num_threads() if lib == "torch" else None):
                            extra[f"{lib}_s"] = median_time(call, repeat=repeat, min_time=min_time)
                    rows.append(Comparison(label, size, str(dtype), ref_s, fast_s, extra=extra))
    return rows


def _dtype_name(dt: DTypeLike) -> str:
    try:
        dt = np.dtype(dt)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dt!r}")
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return str(dt.name)


def _other_threads_cpu() -> float:
    """CPU seconds used so far by this process's threads other than the calling one."""
    return time.process_time() - time.thread_time()


def _settle(*, window: float = 0.02, timeout: float = 1.0) -> float:
    """Wait until no other thread of this process is running: worker threads that a library left
    spinning after its last call (OpenBLAS's, after NumPy's products, for 0.1-0.2 s here; numba's,
    JAX's and PyTorch's, briefly) take a core from whatever is timed next. On two cores they made
    fastnet's two-thread kernels as slow as one thread (affine_forward, 1000 dense float64 rows:
    1.6-1.8 ms right after the reference's BLAS calls, 0.85-1.1 ms alone). Quiet means the other
    threads used under a tenth of one core over `window` seconds; gives up after `timeout`
    seconds (a thread that never stops). Returns the seconds waited."""
    start = time.perf_counter()
    while True:
        before = _other_threads_cpu()
        time.sleep(window)
        if _other_threads_cpu() - before < 0.1 * window or time.perf_counter() - start >= timeout:
            return time.perf_counter() - start


def _subset_indices(size: int, subset: int) -> NDArray[np.intp]:
    """Flat indices spread evenly over an array of `size` entries (all of them if size <= subset)."""
    if size <= subset:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, subset).round().astype(np.intp))


def reference_per_parameter_seconds(f: Callable[[FloatArray], object], p: FloatArray, idx: NDArray[Any], *,
                                    h: float = 1e-4, repeat: int = 3, chunk: int = 10) -> float:
    """Median seconds the book's loop spends per perturbed entry of `p`, over chunks of `idx`.

    The entries are timed `chunk` at a time, `repeat` rounds over all chunks, so a burst of load
    from elsewhere on the machine spoils a few samples rather than the whole estimate.

    Parameters
    ----------
    f : callable
        The loss, called with `p` perturbed in place.
    p : ndarray
        The parameter array.
    idx : array_like of int
        Flat indices of the entries to time.
    h : float, default 1e-4
        The step.
    repeat : int, default 3
        Rounds over all chunks.
    chunk : int, default 10
        Entries per timing sample.

    Returns
    -------
    float
        Median seconds per entry.

    Examples
    --------
    >>> w = np.zeros(20)
    >>> reference_per_parameter_seconds(lambda v: float(np.sum(w ** 2)), w, np.arange(5), repeat=1) > 0
    True
    """
    from fastnet import reference

    repeat = _check_positive_int("repeat", repeat)
    chunk = _check_positive_int("chunk", chunk)
    idx = np.asarray(idx)
    chunks = [idx[i:i + chunk] for i in range(0, idx.size, chunk)]
    samples = []
    for _ in range(repeat):
        for c in chunks:
            t0 = time.perf_counter()
            reference.numerical_gradient(f, p, h=h, indices=c)
            samples.append((time.perf_counter() - t0) / c.size)
    return statistics.median(samples)


def reference_numerical_gradient_time(ref_net: Any, x: FloatArray, t: NDArray[Any], *, subset: int = 200,
                                      h: float = 1e-4, repeat: int = 3) -> tuple[float, int, int]:
    """(extrapolated seconds, parameters timed, total parameters) of the book's full numerical gradient.

    Each parameter array is timed on `subset` entries spread over it (whole when smaller); its time
    is the median per-entry time times its size.

    Parameters
    ----------
    ref_net : fastnet.reference.TwoLayerNet
        The book's network.
    x, t : ndarray
        The batch.
    subset : int, default 200
        Entries timed per parameter array.
    h : float, default 1e-4
        The step.
    repeat : int, default 3
        Rounds.

    Returns
    -------
    (float, int, int)

    Examples
    --------
    >>> from fastnet import reference
    >>> net = reference.TwoLayerNet(4, 3, 2, seed=0)
    >>> seconds, timed, total = reference_numerical_gradient_time(net, np.ones((2, 4)), np.array([0, 1]),
    ...                                                           subset=2, repeat=1)
    >>> timed, total
    (8, 23)
    """
    subset = _check_positive_int("subset", subset)
    total_s, timed, total = 0.0, 0, 0

    def loss_W(W: FloatArray) -> object:
        return ref_net.loss(x, t)

    for key in PARAM_NAMES:
        p = ref_net.params[key]
        idx = _subset_indices(p.size, subset)
        total_s += reference_per_parameter_seconds(loss_W, p, idx, h=h, repeat=repeat) * p.size
        timed += idx.size
        total += p.size
    return total_s, timed, total


def bench_numerical_gradient(net: NetSpec = DEFAULT_NET, batch: int = 100, *, data: str = "mnist-like",
                             dtype: DTypeLike = "float64", subset: int = 200, repeat: int = 5, h: float = 1e-4,
                             seed: int = 0, loss: str = "cross_entropy") -> Comparison:
    """Full numerical gradient: fastnet's structure-aware kernel beside the book's loop, plus backprop.

    The reference time is extrapolated from `subset` entries per parameter array (see module doc).
    The row's extra fields hold fastnet's backprop time and numerical-gradient / backprop ratio.
    `loss` is the net's loss ("cross_entropy" or "sum_squared"), for both sides.

    Parameters
    ----------
    net : str or sequence of int
        The network's sizes.
    batch : int, default 100
        The batch.
    data : {"mnist-like", "dense"}
        The inputs.
    dtype : float32 or float64
        Float type.
    subset : int, default 200
        Entries per parameter array the reference is timed on.
    repeat : int, default 5
        Repetitions per timing.
    h : float, default 1e-4
        The step.
    seed : int, default 0
        Seed of the data and the net.
    loss : {"cross_entropy", "sum_squared"}
        The net's loss, on both sides.

    Returns
    -------
    Comparison
        With backprop's time and the ratio in ``extra``.

    Examples
    --------
    >>> row = bench_numerical_gradient("20-4-10", 4, subset=2, repeat=1)
    >>> row.reference_extrapolated, row.total_params
    (True, 134)
    """
    import fastnet
    from fastnet import reference

    net = parse_net(net)
    batch = _check_positive_int("batch", batch)
    dtype = _dtype_name(dtype)
    x = _inputs(data, batch, net[0], np.dtype(dtype), seed)
    t = random_labels(batch, net[2], seed=seed)
    fnet = fastnet.TwoLayerNet(*net, seed=seed, dtype=np.dtype(dtype), loss=loss)
    ref_net = reference.TwoLayerNet.from_params(fnet.params, loss=loss)
    _settle()
    ref_s, timed, total = reference_numerical_gradient_time(ref_net, x, t, subset=subset, h=h,
                                                           repeat=repeat)
    _settle()
    fast_s = median_time(lambda: fnet.numerical_gradient(x, t, h=h), repeat=repeat, min_time=0.02)
    _settle()
    backprop_s = median_time(lambda: fnet.gradient(x, t), repeat=repeat, min_time=0.02)
    extra = {
        "net": "-".join(map(str, net)),
        "batch": batch,
        "data": data,
        "zero_fraction": float(np.mean(x == 0)),
        "backprop_s": backprop_s,
        "numgrad_over_backprop": fast_s / backprop_s,
        "loss": loss,
    }
    if dtype == "float64" and net == DEFAULT_NET and batch == 100 and loss == "cross_entropy":
        # the targets: MNIST-like >= 3000x the reference and <= 6x backprop; dense >= 500x
        if data == "mnist-like":
            extra["speedup_target_min"] = TARGETS["mnist_like_speedup_min"]
            extra["numgrad_over_backprop_target_max"] = TARGETS["numgrad_over_backprop_max"]
        else:
            extra["speedup_target_min"] = TARGETS["dense_speedup_min"]
    label = data if loss == "cross_entropy" else f"{data}, {loss}"
    return Comparison(f"numerical_gradient ({label})", _net_label(net, batch), dtype, ref_s, fast_s,
                      reference_params=timed, total_params=total, extra=extra)


@functools.lru_cache(maxsize=None)
def _w2_loss_jit() -> Any:
    """An @njit scalar loss of W2 alone (other parameters as extra arguments), compiled on first use.

    One dispatcher per process, so repeated benchmarks reuse its compiled specialisations.
    """
    import numba
    import kernels

    @numba.njit
    def w2_loss(W2: Any, x: Any, t: Any, W1: Any, b1: Any, b2: Any) -> Any:
        return kernels.two_layer_loss(x, t, W1, b1, W2, b2)

    return w2_loss


def bench_numerical_gradient_loop(net: NetSpec = DEFAULT_NET, batch: int = 100, *, dtype: DTypeLike = "float64",
                                  repeat: int = 5, reference_repeat: int | None = None, h: float = 1e-4,
                                  seed: int = 0) -> Comparison:
    """Generic compiled loop `fastnet.numerical_gradient(njit_f, W2, args=...)` beside the book's loop on W2.

    The reference perturbs every entry of W2 (`reference_repeat` rounds, default `repeat`); its
    time is the median per-entry time (chunks of 25) times W2's size.

    Parameters
    ----------
    net : str or sequence of int
        The network's sizes.
    batch : int, default 100
        The batch.
    dtype : float32 or float64
        Float type.
    repeat : int, default 5
        Repetitions of fastnet's timing.
    reference_repeat : int, optional
        Rounds of the reference (default: `repeat`).
    h : float, default 1e-4
        The step.
    seed : int, default 0
        Seed of the data and the net.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> row = bench_numerical_gradient_loop("20-4-10", 4, repeat=1)
    >>> row.kernel, row.total_params
    ('numerical_gradient loop (W2)', 40)
    """
    import fastnet
    from fastnet import reference

    net = parse_net(net)
    batch = _check_positive_int("batch", batch)
    dtype = np.dtype(_dtype_name(dtype))
    x = _inputs("mnist-like", batch, net[0], dtype, seed)
    t = random_labels(batch, net[2], seed=seed)
    fnet = fastnet.TwoLayerNet(*net, seed=seed, dtype=dtype)
    W1, b1, W2, b2 = (np.ascontiguousarray(fnet.params[k]) for k in PARAM_NAMES)
    ref_net = reference.TwoLayerNet.from_params(fnet.params, delta=0.0)
    f = _w2_loss_jit()
    args = (x, t, W1, b1, b2)
    W2_ref = ref_net.params["W2"]

    def loss_W(W: FloatArray) -> object:
        return ref_net.loss(x, t)

    _settle()
    rounds = repeat if reference_repeat is None else reference_repeat
    ref_s = reference_per_parameter_seconds(loss_W, W2_ref, np.arange(W2_ref.size), h=h,
                                            repeat=rounds, chunk=25) * W2_ref.size
    _settle()
    fast_s = median_time(lambda: fastnet.numerical_gradient(f, W2, h=h, args=args),
                         repeat=repeat, min_time=0.02)
    return Comparison("numerical_gradient loop (W2)", _net_label(net, batch), dtype.name, ref_s,
                      fast_s, reference_params=W2.size, total_params=W2.size,
                      extra={"net": "-".join(map(str, net)), "batch": batch, "data": "mnist-like",
                             "parameter": "W2"})


def bench_blas_after_parallel(net: NetSpec = DEFAULT_NET, batch: int = 100, *, repeat: int = 21,
                              seed: int = 0) -> dict[str, Any]:
    """Seconds of one NumPy BLAS call (the reference forward pass) alone and right after fastnet's
    parallel numerical gradient: spinning OpenMP/BLAS threads show up as a slowdown > 1.

    Parameters
    ----------
    net : str or sequence of int
        The network's sizes.
    batch : int, default 100
        The batch.
    repeat : int, default 21
        Samples of each side.
    seed : int, default 0
        Seed of the data and the net.

    Returns
    -------
    dict
        ``call``, ``repeat``, ``alone_s``, ``after_parallel_s`` and ``slowdown``.

    Examples
    --------
    >>> sorted(bench_blas_after_parallel("20-4-10", 4, repeat=1))
    ['after_parallel_s', 'alone_s', 'call', 'repeat', 'slowdown']
    """
    import fastnet
    from fastnet import reference

    net = parse_net(net)
    repeat = _check_positive_int("repeat", repeat)
    x = _inputs("mnist-like", batch, net[0], np.float64, seed)
    t = random_labels(batch, net[2], seed=seed)
    fnet = fastnet.TwoLayerNet(*net, seed=seed)
    ref_net = reference.TwoLayerNet.from_params(fnet.params)

    def blas() -> object:
        return ref_net.predict(x)

    def one_call_after(before: Callable[[], object]) -> float:
        before()
        t0 = time.perf_counter()
        blas()
        return time.perf_counter() - t0

    def numgrad() -> None:
        fnet.numerical_gradient(x, t)

    numgrad()
    blas()
    _settle()
    alone = statistics.median(one_call_after(blas) for _ in range(repeat))
    after = statistics.median(one_call_after(numgrad) for _ in range(repeat))
    return {
        "call": f"reference predict {_net_label(net, batch)}",
        "alone_s": alone,
        "after_parallel_s": after,
        "slowdown": after / alone,
        "repeat": repeat,
    }


def _usable_cpus() -> int | None:
    """The CPUs this process may run on (`taskset` and cgroups' cpusets narrow them), where the
    platform says; None elsewhere."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _threading_layer() -> str:
    import numba

    try:
        return str(numba.threading_layer())  # type: ignore[attr-defined]
    except ValueError:  # no parallel kernel has run yet
        return "not initialised"


def _blas_info() -> list[dict[str, Any]] | dict[str, Any]:
    """NumPy's BLAS libraries and their thread counts (threadpoolctl when installed, else the env)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        return {k: os.environ.get(k) for k in keys}
    info = []
    for d in threadpool_info():
        path = str(d.get("filepath", ""))
        owner = next((name for name in ("numpy", "scipy") if f"{name}.libs" in path
                      or f"{name}/" in path), None)
        info.append({"user_api": d.get("user_api"), "internal_api": d.get("internal_api"),
                     "num_threads": d.get("num_threads"), "version": d.get("version"),
                     "package": owner})
    return info


def run(*, quick: bool = False, threads: int | None = None, batch_sizes: Sequence[int] | None = None,
        dtypes: Sequence[str] | None = None, net: NetSpec | None = None, batch: int | None = None,
        subset: int | None = None, repeat: int | None = None, data: Sequence[str] | None = None,
        twins: bool = True, progress: Progress = None) -> BenchReport:
    """Time every kernel and the numerical gradients against the reference; returns a BenchReport.

    quick: fewer sizes, repetitions and reference parameters (under a minute here). `net`/`batch`
    set the network and batch of the numerical-gradient rows (default 784-50-10, batch 100); the
    full run adds 784-100-10 at batch 256 when the default net is used. The kernel rows also time
    the JAX and PyTorch twins of the kernels (`fastnet.twins`) unless `twins` is False; a library
    that does not import is noted in ``meta["twins"]`` and under the table, and its times are None.

    Parameters
    ----------
    quick : bool, default False
        The short run.
    threads : int, optional
        numba threads for fastnet's kernels (restored afterwards).
    batch_sizes : sequence of int, optional
        Batch sizes of the kernel rows.
    dtypes : sequence of str, optional
        float32 and/or float64.
    net : str or sequence of int, optional
        The network of every row.
    batch : int, optional
        The batch of the numerical-gradient rows.
    subset : int, optional
        Entries per parameter array the reference numerical gradient is timed on.
    repeat : int, optional
        Repetitions per timing.
    data : sequence of {"mnist-like", "dense"}, optional
        Inputs of the kernel rows that take the batch x (`DATA_KERNELS`); default both.
    twins : bool, default True
        Time the JAX and PyTorch twins of the kernels too.
    progress : callable, optional
        Receives a message per step.

    Returns
    -------
    BenchReport

    Raises
    ------
    TypeError, ValueError
        A bad argument.

    Examples
    --------
    >>> report = run(quick=True, batch_sizes=[2], dtypes=["float64"], net="20-4-10", batch=4, subset=2,
    ...              repeat=1, twins=False)
    >>> len(report.kernels), [row.kernel for row in report.numerical_gradient][:1]
    (13, ['numerical_gradient (mnist-like)'])
    """
    import numba

    import fastnet
    from fastnet._version import __version__

    if threads is not None:
        threads = _check_positive_int("threads", threads)
    default_net = net is None
    net = parse_net(DEFAULT_NET if net is None else net)
    batch = _check_positive_int("batch", 100 if batch is None else batch)
    if batch_sizes is None:
        batch_sizes = (10, 1000) if quick else (1, 10, 100, 1000)
    batch_sizes = tuple(_check_positive_int("batch size", b) for b in batch_sizes)
    if not batch_sizes:
        raise ValueError("batch_sizes must not be empty")
    if dtypes is None:
        dtypes = ("float64", "float32")
    dtypes = tuple(_dtype_name(dt) for dt in dtypes)
    if not dtypes:
        raise ValueError("dtypes must not be empty")
    subset = _check_positive_int("subset", (100 if quick else 400) if subset is None else subset)
    repeat = _check_positive_int("repeat", (3 if quick else 7) if repeat is None else repeat)
    data = DATA if data is None else tuple(data)
    if not data or any(kind not in DATA for kind in data):
        raise ValueError(f"data must be a non-empty selection of {', '.join(DATA)}, got {data!r}")
    say = progress or (lambda msg: None)

    start = time.perf_counter()
    with fastnet.num_threads(threads):
        twin_meta = _twin_meta(numba.get_num_threads(), say) if twins else {}
        kernel_rows = bench_kernels(batch_sizes, dtypes, net=net, repeat=repeat,
                                    min_time=0.005 if quick else 0.02, data=data,
                                    twins=tuple(twin_meta), progress=say)
        say(f"numerical gradient {_net_label(net, batch)} (mnist-like, dense)")
        ng_rows = [bench_numerical_gradient(net, batch, data="mnist-like", subset=subset,
                                            repeat=repeat),
                   bench_numerical_gradient(net, batch, data="mnist-like", subset=subset,
                                            repeat=repeat, loss="sum_squared"),
                   bench_numerical_gradient(net, batch, data="dense", subset=subset,
                                            repeat=repeat)]
        if "float32" in dtypes and not quick:  # quick skips its compilation (about 15 s here)
            ng_rows.append(bench_numerical_gradient(net, batch, data="mnist-like", dtype="float32",
                                                    subset=subset, repeat=repeat))
        if default_net and not quick:
            say(f"numerical gradient {_net_label(LARGE_NET, LARGE_BATCH)}")
            ng_rows.append(bench_numerical_gradient(LARGE_NET, LARGE_BATCH, data="mnist-like",
                                                    subset=subset, repeat=repeat))
        say("generic compiled loop on W2")
        ng_rows.append(bench_numerical_gradient_loop(net, batch, repeat=repeat,
                                                     reference_repeat=1 if quick else None))
        say("NumPy BLAS call after the parallel kernel")
        blas = bench_blas_after_parallel(net, batch, repeat=11 if quick else 31)
        meta = {
            "fastnet_version": __version__,
            "numpy_version": np.__version__,
            "numba_version": numba.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "cpus_usable": _usable_cpus(),
            "numba_threads": numba.get_num_threads(),
            "threading_layer": _threading_layer(),
            "blas": _blas_info(),
            "quick": bool(quick),
            "repeat": repeat,
            "subset": subset,
            "data": list(data),
            "twins": twin_meta,
            "timer": "time.perf_counter; median of repetitions after a warm-up call",
        }
    meta["elapsed_s"] = time.perf_counter() - start
    return BenchReport(kernel_rows, ng_rows, blas, meta)


def _twin_meta(threads: int, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """For each twin library: its version, or a note saying why it did not import."""
    import importlib

    from fastnet import twins as twin_lib

    meta: dict[str, dict[str, Any]] = {}
    for lib in TWIN_LIBRARIES:
        say(f"importing {lib} for its twins")
        note = twin_lib.note(lib)
        info: dict[str, Any] = {"version": None, "note": note}
        if note is None:
            info["version"] = str(getattr(importlib.import_module(lib), "__version__", "?"))
            if lib == "torch":
                info["threads"] = threads
        meta[lib] = info
    return meta


def _stderr_progress(msg: str) -> None:
    print(f"fastnet bench: {msg}", file=sys.stderr, flush=True)
