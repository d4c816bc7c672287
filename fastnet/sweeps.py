"""Many trials of `train`, `gradient_check` or `step_study` over a grid or a random search, on Dask.

A sweep is a list of trials, each a dict of settings (learning rate, hidden units, seed, ...). The
trials run as tasks on a `dask.distributed` cluster: by default a `LocalCluster` of worker
processes on this machine, one numba thread each; or any existing cluster, given its scheduler
address or a `Client`. Workers load the data themselves from its name (`digits` with its split
seed, `mnist`, `mnist-test` or a directory), so no array travels with a task.

Nothing is lost: every finished trial is written at once, atomically, as one JSON file in
`OUT/trials/` (a trial interrupted half-way leaves nothing). A sweep started again on the same
directory with `resume=True` runs only the trials that have no file yet. A trial that raises is
recorded with status "failed" and its error; a trial whose worker process dies is retried by Dask
(`retries` times) and then recorded as failed.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import math
import numbers
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastnet.io import atomic_write

__all__ = ["KINDS", "SETTINGS", "SweepInterrupted", "SweepResult", "parse_grid", "parse_random",
           "run_trial", "sweep", "trials_from"]

KINDS = ("train", "gradcheck", "steps")

# name -> (type, default, allowed values or None). Defaults are the book's (and `fastnet train`'s).
SETTINGS: dict[str, tuple[type, Any, tuple[Any, ...] | None]] = {
    "data": (str, "digits", None),
    "split_seed": (int, 0, None),
    "seed": (int, 0, None),
    "iters": (int, 10000, None),
    "batch_size": (int, 100, None),
    "lr": (float, 0.1, None),
    "hidden": (int, 50, None),
    "grad": (str, "backprop", ("backprop", "numerical")),
    "h": (float, 1e-4, None),
    "weight_init_std": (float, 0.01, None),
    "weight_decay": (float, 0.0, None),
    "dtype": (str, "float64", ("float32", "float64")),
    "loss": (str, "cross_entropy", ("cross_entropy", "sum_squared")),
    "method": (str, "central", ("central", "forward", "backward", "complex")),
    "train_iters": (int, 0, None),
}
# What each kind of trial reads; the others are refused, so a typo cannot silently do nothing.
USES = {
    "train": ("data", "split_seed", "seed", "iters", "batch_size", "lr", "hidden", "grad", "h",
              "weight_init_std", "weight_decay", "dtype", "loss"),
    "gradcheck": ("data", "split_seed", "seed", "batch_size", "hidden", "h", "weight_init_std",
                  "dtype", "loss", "method", "train_iters"),
    "steps": ("data", "split_seed", "seed", "batch_size", "hidden", "weight_init_std", "dtype",
              "loss", "train_iters"),
}
# The settings that replicate a trial rather than change it: summaries average over them.
REPLICATES = ("seed",)
# Each kind's headline number and whether larger is better.
METRICS = {"train": ("test_acc", True), "gradcheck": ("max_abs_err", False),
           "steps": ("best_central_err", False)}


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was interrupted (Ctrl-C or SIGTERM); finished trials are saved, `resume` continues.

    A KeyboardInterrupt, so that code which stops on Ctrl-C still stops; it adds what a caller
    needs to say how far the sweep got and where to resume it.

    Parameters
    ----------
    done : int
        Trials finished (and saved) so far, including those of earlier runs.
    total : int
        Trials in the sweep.
    out : str
        The results directory, to resume in.

    Examples
    --------
    >>> exc = SweepInterrupted(3, 10, "runs/sweep")
    >>> print(exc)
    interrupted after 3 of 10 trials
    >>> isinstance(exc, KeyboardInterrupt), exc.out
    (True, 'runs/sweep')
    """

    def __init__(self, done: int, total: int, out: str):
        super().__init__(f"interrupted after {done} of {total} trials")
        self.done, self.total, self.out = done, total, out


# -- settings and specs --------------------------------------------------------------------------

def _name(text: str) -> str:
    name = text.strip().replace("-", "_")
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {text!r}; settings are {', '.join(SETTINGS)}")
    return name


def _convert(name: str, value: Any) -> Any:
    """value checked and converted to the setting's type."""
    kind, _, allowed = SETTINGS[name]
    if kind is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError(f"{name} must be an integer, got {value!r}")
        value = int(value)
        low = 0 if name in ("seed", "split_seed", "train_iters") else 1
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
        return value
    if kind is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a number, got {value!r}")
        value = float(value)
        low_ok = value >= 0 if name in ("weight_decay", "weight_init_std") else value > 0
        if not math.isfinite(value) or not low_ok:
            bound = ">= 0" if name in ("weight_decay", "weight_init_std") else "> 0"
            raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _values(name: str, text: str) -> list[Any]:
    """'a,b,c' or 'lo..hi' (integers, both ends included) -> converted values."""
    text = text.strip()
    if ".." in text and SETTINGS[name][0] is int:
        lo_text, hi_text = text.split("..", 1)
        lo, hi = _convert(name, lo_text), _convert(name, hi_text)
        if hi < lo:
            raise ValueError(f"{name}={text}: the range is empty ({lo} > {hi})")
        return list(range(lo, hi + 1))
    parts = [p for p in text.split(",")]
    if not text or any(not p.strip() for p in parts):
        raise ValueError(f"{name}={text!r}: expected comma-separated values like 0.01,0.1 or a range 0..4")
    return [_convert(name, p.strip()) for p in parts]


def _split_item(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ValueError(f"expected NAME=VALUES, got {item!r} (for example lr=0.01,0.1 or seed=0..4)")
    name, text = item.split("=", 1)
    return _name(name), text


def parse_grid(items: Iterable[str] | Mapping[str, Any]) -> dict[str, list[Any]]:
    """Grid axes from 'name=v1,v2' / 'name=lo..hi' strings (or a mapping name -> list, range string or value).

    Values are converted to each setting's type and checked here, so that a typo fails before
    any trial runs. Dashes in names are read as underscores (``split-seed`` is ``split_seed``).

    Parameters
    ----------
    items : iterable of str or mapping
        ``["lr=0.01,0.1", "seed=0..4"]`` (a range of integers includes both ends), or a mapping
        such as ``{"lr": [0.01, 0.1], "seed": "0..4"}`` as read from a config file.

    Returns
    -------
    dict of str to list
        Each setting's values, in the order given.

    Raises
    ------
    ValueError
        An unknown setting, a setting given twice, or a value the setting cannot take.

    Examples
    --------
    >>> parse_grid(["lr=0.01,0.1", "seed=0..2"])
    {'lr': [0.01, 0.1], 'seed': [0, 1, 2]}
    >>> parse_grid({"hidden": [10, 50], "split-seed": "0..1"})
    {'hidden': [10, 50], 'split_seed': [0, 1]}
    >>> parse_grid(["lr=0.1,-1"])
    Traceback (most recent call last):
    ...
    ValueError: lr must be finite and > 0, got -1.0
    """
    grid: dict[str, list[Any]] = {}
    if isinstance(items, Mapping):
        for key, value in items.items():
            name = _name(str(key))
            if isinstance(value, str):
                grid[name] = _values(name, value)
            elif isinstance(value, (list, tuple)):
                if not value:
                    raise ValueError(f"grid {name}: no values")
                grid[name] = [_convert(name, v) for v in value]
            else:
                grid[name] = [_convert(name, value)]
        return grid
    for item in items:
        name, text = _split_item(item)
        if name in grid:
            raise ValueError(f"grid setting {name} given twice")
        grid[name] = _values(name, text)
    return grid


@dataclass(frozen=True)
class Distribution:
    """One random-search axis: log-uniform, uniform, integer or a choice."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "log":
            return _convert(self.name, float(10 ** rng.uniform(math.log10(self.low), math.log10(self.high))))
        if self.kind == "uniform":
            return _convert(self.name, float(rng.uniform(self.low, self.high)))
        if self.kind == "int":
            return _convert(self.name, int(rng.integers(int(self.low), int(self.high) + 1)))
        return self.choices[int(rng.integers(len(self.choices)))]


def _distribution(name: str, text: str) -> Distribution:
    kind, _, rest = text.strip().partition(":")
    if kind == "choice":
        return Distribution(name, "choice", choices=tuple(_values(name, rest)))
    if kind not in ("log", "uniform", "int"):
        raise ValueError(f"{name}={text!r}: expected log:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH "
                         "or choice:A,B,...")
    bounds = rest.split(":")
    if len(bounds) != 2:
        raise ValueError(f"{name}={text!r}: expected {kind}:LOW:HIGH")
    try:
        low, high = float(bounds[0]), float(bounds[1])
    except ValueError:
        raise ValueError(f"{name}={text!r}: LOW and HIGH must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise ValueError(f"{name}={text!r}: need finite LOW <= HIGH")
    if kind == "log" and low <= 0:
        raise ValueError(f"{name}={text!r}: a log-uniform range needs LOW > 0")
    if kind == "int" and (SETTINGS[name][0] is not int or not (low.is_integer() and high.is_integer())):
        raise ValueError(f"{name}={text!r}: int ranges need an integer setting and integer bounds")
    if kind != "int" and SETTINGS[name][0] is not float:
        raise ValueError(f"{name}={text!r}: {kind} ranges need a real-valued setting; use int: or choice:")
    _convert(name, low if kind != "log" else low)  # the range must hold valid values
    _convert(name, high)
    return Distribution(name, kind, low, high)


def parse_random(items: Iterable[str] | Mapping[str, str]) -> dict[str, Distribution]:
    """Random-search axes from 'name=log:1e-6:1e-2' style strings (or a mapping name -> such text).

    Parameters
    ----------
    items : iterable of str or mapping
        ``NAME=log:LOW:HIGH`` (log-uniform, LOW > 0), ``uniform:LOW:HIGH``, ``int:LOW:HIGH``
        (both ends included) or ``choice:A,B,...``; or a mapping of names to that text.

    Returns
    -------
    dict of str to Distribution
        One distribution per setting; `trials_from` draws from them.

    Raises
    ------
    ValueError
        An unknown setting, a setting given twice, malformed text, or a range holding values the
        setting cannot take.

    Examples
    --------
    >>> axes = parse_random(["lr=log:1e-6:1e-2", "hidden=int:10:100"])
    >>> axes["lr"].kind, axes["lr"].low, axes["lr"].high, axes["hidden"].kind
    ('log', 1e-06, 0.01, 'int')
    >>> parse_random({"dtype": "choice:float32,float64"})["dtype"].choices
    ('float32', 'float64')
    """
    pairs = items.items() if isinstance(items, Mapping) else (_split_item(i) for i in items)
    out: dict[str, Distribution] = {}
    for key, text in pairs:
        name = _name(str(key))
        if name in out:
            raise ValueError(f"random setting {name} given twice")
        if isinstance(text, Distribution) and text.name == name:
            out[name] = text
            continue
        if not isinstance(text, str):
            raise ValueError(f"random {name}: expected text like log:1e-6:1e-2, got {text!r}")
        out[name] = _distribution(name, text)
    return out


def trial_id(kind: str, settings: Mapping[str, Any]) -> str:
    """A short stable name for a trial: the same kind and settings always give the same id."""
    text = json.dumps({"kind": kind, "settings": dict(sorted(settings.items()))}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trials_from(kind: str = "train", grid: Mapping[str, Sequence[Any]] | None = None,
                random: Mapping[str, Distribution] | None = None, trials: int | None = None,
                fixed: Mapping[str, Any] | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The full settings of every trial: fixed settings, then each random draw times each grid point.

    Settings a kind does not use are refused, so that a typo cannot silently do nothing; the
    others take their defaults (`SETTINGS`). Trials that come out identical (a random choice
    drawn twice) are kept once.

    Parameters
    ----------
    kind : {"train", "gradcheck", "steps"}
        What each trial runs.
    grid : mapping, optional
        Grid axes, as `parse_grid` returns them.
    random : mapping, optional
        Random-search axes, as `parse_random` returns them.
    trials : int, optional
        Number of random draws; required with `random`, refused without it.
    fixed : mapping, optional
        Settings shared by every trial (values may be text, as on the command line).
    seed : int, default 0
        Seed of the random draws: the same seed gives the same trials.

    Returns
    -------
    list of dict
        Every trial's complete settings.

    Raises
    ------
    ValueError
        An unknown kind or setting, a setting the kind does not use, a setting given more than
        once, or `trials` missing or given without `random`.

    Examples
    --------
    >>> todo = trials_from("train", grid={"lr": [0.01, 0.1]}, fixed={"iters": "2000"})
    >>> [(t["lr"], t["iters"], t["hidden"]) for t in todo]
    [(0.01, 2000, 50), (0.1, 2000, 50)]
    >>> len(trials_from("train", grid=parse_grid(["seed=0..1"]),
    ...                 random=parse_random(["lr=log:1e-4:1e-1"]), trials=3))
    6
    >>> trials_from("steps", grid={"lr": [0.1]})
    Traceback (most recent call last):
    ...
    ValueError: a steps trial does not use lr; it uses data, ...
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    grid = dict(grid or {})
    random = dict(random or {})
    fixed = {_name(k): _convert(_name(k), v) for k, v in (fixed or {}).items()}
    if random and (trials is None or trials < 1):
        raise ValueError("a random search needs trials >= 1")
    if trials is not None and not random:
        raise ValueError("trials applies to a random search (give random settings too)")
    both = set(grid) & set(random) | set(fixed) & (set(grid) | set(random))
    if both:
        raise ValueError(f"setting(s) {', '.join(sorted(both))} given more than once")
    for name in [*grid, *random, *fixed]:
        if name not in USES[kind]:
            raise ValueError(f"a {kind} trial does not use {name}; it uses {', '.join(USES[kind])}")
    rng = np.random.default_rng(seed)
    draws = [{n: d.draw(rng) for n, d in random.items()} for _ in range(trials or 1)] if random else [{}]
    points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] if grid else [{}]
    base = {n: SETTINGS[n][1] for n in USES[kind]}
    out = []
    seen = set()
    for d in draws:
        for p in points:
            settings = {**base, **fixed, **d, **p}
            key = trial_id(kind, settings)
            if key not in seen:  # a random draw may repeat a choice
                seen.add(key)
                out.append(settings)
    return out


# -- one trial (runs on a worker) ------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _dataset(data: str, split_seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The data set a trial names, loaded once per worker process."""
    from fastnet import datasets

    if data == "digits":
        return datasets.load_digits(seed=split_seed)
    if split_seed != 0:
        raise ValueError(f"split_seed applies to data=digits only, not to data={data!r}")
    return datasets.load(data, download=False)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"local pid {os.getpid()}"


def _params_digest(net: Any) -> str:
    h = hashlib.sha256()
    for k in ("W1", "b1", "W2", "b2"):
        h.update(np.ascontiguousarray(net.params[k]).tobytes())
    return h.hexdigest()


def _net(s: Mapping[str, Any], x: np.ndarray, classes: int) -> Any:
    from fastnet.network import TwoLayerNet

    return TwoLayerNet(x.shape[1], s["hidden"], classes, s["weight_init_std"], dtype=s["dtype"],
                       seed=s["seed"], loss=s["loss"])


def _pretrained_batch(s: Mapping[str, Any]) -> tuple[Any, np.ndarray, np.ndarray]:
    """The net and batch a gradcheck/steps trial differentiates (after train_iters backprop steps)."""
    (x, t), _ = _dataset(s["data"], s["split_seed"])
    net = _net(s, x, int(np.max(t)) + 1 if t.ndim == 1 else t.shape[1])
    rng = np.random.default_rng(s["seed"])
    for _ in range(s["train_iters"]):
        idx = rng.integers(0, x.shape[0], s["batch_size"])
        for key, g in net.gradient(x[idx], t[idx]).items():
            net.params[key] -= net.dtype.type(0.1) * g
    idx = rng.choice(x.shape[0], size=min(s["batch_size"], x.shape[0]), replace=False)
    return net, x[idx], t[idx]


def run_trial(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Run one trial here and return its record; an exception of the trial becomes status "failed".

    numba runs one thread per trial: the parallelism of a sweep is its trials. This is the task a
    sweep sends to its Dask workers; it also runs without Dask, in this process.

    Parameters
    ----------
    kind : {"train", "gradcheck", "steps"}
        What the trial runs.
    settings : mapping
        The trial's complete settings, one entry of `trials_from`'s list.

    Returns
    -------
    dict
        The record: ``id``, ``kind``, ``settings``, ``status`` ("ok" or "failed"), ``error``
        (with ``traceback`` when failed), ``worker``, ``pid``, ``seconds``, and the kind's results:
        accuracies and curves for "train", ``max_abs_err`` and ``max_rel_err`` for "gradcheck",
        the errors per step for "steps".

    Examples
    --------
    A gradient check of a small net on one batch of the digits:

    >>> settings = trials_from("gradcheck", grid={"hidden": [3]}, fixed={"batch_size": 5})[0]
    >>> record = run_trial("gradcheck", settings)
    >>> record["status"], record["max_abs_err"] < 1e-6
    ('ok', True)

    A trial that fails is recorded, not raised:

    >>> record = run_trial("gradcheck", {**settings, "data": "nowhere"})
    >>> record["status"]
    'failed'
    >>> print(record["error"])
    ValueError: name must be one of digits, mnist, mnist-test or a directory holding MNIST IDX files; ...
    """
    s = dict(settings)
    record: dict[str, Any] = {"id": trial_id(kind, s), "kind": kind, "settings": s, "status": "ok",
                              "error": None, "worker": _worker_name(), "pid": os.getpid()}
    start = time.perf_counter()
    try:
        if kind == "train":
            record.update(_run_train(s))
        elif kind == "gradcheck":
            record.update(_run_gradcheck(s))
        elif kind == "steps":
            record.update(_run_steps(s))
        else:
            raise ValueError(f"unknown kind {kind!r}")
    except Exception as exc:  # noqa: BLE001 - a failed trial is recorded, the sweep goes on
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=8)
    record["seconds"] = time.perf_counter() - start
    return record


def _run_train(s: Mapping[str, Any]) -> dict[str, Any]:
    from fastnet.training import train

    (x_train, t_train), (x_test, t_test) = _dataset(s["data"], s["split_seed"])
    classes = int(max(np.max(t_train), np.max(t_test))) + 1 if np.ndim(t_train) == 1 else t_train.shape[1]
    net = _net(s, x_train, classes)
    history = train(net, ((x_train, t_train), (x_test, t_test)), iters=s["iters"],
                    batch_size=s["batch_size"], lr=s["lr"], grad=s["grad"], h=s["h"], seed=s["seed"],
                    threads=1, weight_decay=s["weight_decay"])
    loss = history.loss
    return {
        "train_acc": history.train_acc[-1],
        "test_acc": history.test_acc[-1],
        "final_loss": float(np.mean(loss[-max(1, len(loss) // 100):])),
        "epochs": [float(e) for e in history.epochs],
        "train_acc_curve": list(history.train_acc),
        "test_acc_curve": list(history.test_acc),
        "seconds_train": history.seconds_total,
        "params_sha256": _params_digest(net),
    }


def _run_gradcheck(s: Mapping[str, Any]) -> dict[str, Any]:
    from fastnet.gradcheck import gradient_check

    net, x, t = _pretrained_batch(s)
    check = gradient_check(net, x, t, h=s["h"], method=s["method"], threads=1)
    return {"max_abs_err": float(check.max_abs), "max_rel_err": float(check.max_rel),
            "params": check.as_dict()}


def _run_steps(s: Mapping[str, Any]) -> dict[str, Any]:
    from fastnet.gradcheck import step_study

    net, x, t = _pretrained_batch(s)
    study = step_study(net, x, t, naive=False, threads=1)
    errors = {m: [float(e) for e in v] for m, v in study.errors.items()}
    return {"hs": [float(h) for h in study.hs], "errors": errors,
            "best_central_err": float(np.nanmin(errors["central"])) if "central" in errors else math.nan}


# -- the store -------------------------------------------------------------------------------------

def _read_store(out: Path) -> dict[str, dict[str, Any]]:
    """Finished trials by id. Unreadable files (not written by a sweep) are skipped, never trusted."""
    records: dict[str, dict[str, Any]] = {}
    folder = out / "trials"
    if not folder.is_dir():
        return records
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("id") == path.stem:
            records[path.stem] = rec
    return records


def _write_json(path: Path, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=True)
        f.write("\n")


# -- results ---------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """Every trial's record, with a summary per setting and the best trials.

    Attributes
    ----------
    kind : str
        "train", "gradcheck" or "steps".
    records : list of dict
        One per trial, in the sweep's order (only finished ones).
    swept : list of str
        The settings that vary between trials.
    out : str
        The results directory.
    random_axes : list of str
        The settings drawn at random (empty for a grid).
    ran, skipped : int
        Trials run by this call, and trials found finished in the store (resume).
    total : int
        Trials in the sweep.
    seconds : float
        Wall-clock time of this call's trials.
    group_by : list of str
        The swept settings other than the replicates (the seed): `summary` has one row per
        combination of their values.

    Examples
    --------
    `sweep` returns one; here one is built by hand from four records, one of them failed:

    >>> result = SweepResult("train", [
    ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
    ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
    ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
    ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
    ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
    >>> print(result.table())
      lr  n  mean test_acc     std     min     max
    0.01  2         0.8200  0.0283  0.8000  0.8400
     0.1  1         0.9300  0.0000  0.9300  0.9300
     all  3         0.8567  0.0666  0.8000  0.9300
    1 trial(s) failed; their errors are in the results
    """

    kind: str
    records: list[dict[str, Any]]
    swept: list[str]
    out: str
    random_axes: list[str] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    total: int = 0
    seconds: float = 0.0
    group_by: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        """The name of the kind's headline number: test_acc, max_abs_err or best_central_err."""
        return METRICS[self.kind][0]

    def ok(self) -> list[dict[str, Any]]:
        """Records of the trials that finished without error.

        Returns
        -------
        list of dict
            The records with status "ok", in the sweep's order.

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> [r["id"] for r in result.ok()]
        ['a', 'b', 'c']
        """
        return [r for r in self.records if r["status"] == "ok"]

    def failed(self) -> list[dict[str, Any]]:
        """Records of the trials that raised, or whose worker died too often.

        Returns
        -------
        list of dict
            The records whose status is not "ok"; each has its ``error``.

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> [(r["id"], r["error"]) for r in result.failed()]
        [('d', 'ValueError: ...')]
        """
        return [r for r in self.records if r["status"] != "ok"]

    def best(self, k: int = 1) -> list[dict[str, Any]]:
        """The k best finished trials by the kind's metric (test accuracy for training).

        Trials whose metric is missing or not finite are left out.

        Parameters
        ----------
        k : int, default 1
            How many trials.

        Returns
        -------
        list of dict
            Up to `k` records, best first: largest accuracy, or smallest error for gradient
            checks and step studies.

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> [(r["id"], r["test_acc"]) for r in result.best(2)]
        [('c', 0.93), ('b', 0.84)]
        """
        larger = METRICS[self.kind][1]
        ok = [r for r in self.ok() if math.isfinite(r.get(self.metric, math.nan))]
        return sorted(ok, key=lambda r: -r[self.metric] if larger else r[self.metric])[:k]

    def summary(self) -> list[dict[str, Any]]:
        """One row per setting (the swept values except the replicates): n, mean, std, min, max of the metric.

        Returns
        -------
        list of dict
            One row per combination of the `group_by` values of the finished trials, sorted by
            those values; ``std`` is the sample standard deviation (0 for a single trial).

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> [(row["lr"], row["n"], round(row["mean"], 4)) for row in result.summary()]
        [(0.01, 2, 0.82), (0.1, 1, 0.93)]
        """
        groups: dict[tuple[Any, ...], list[float]] = {}
        for r in self.ok():
            key = tuple(r["settings"][g] for g in self.group_by)
            groups.setdefault(key, []).append(float(r[self.metric]))
        rows = []
        for key in sorted(groups, key=lambda k: tuple(str(v) if isinstance(v, str) else v for v in k)):
            vals = groups[key]
            rows.append({**dict(zip(self.group_by, key)), "n": len(vals), "mean": statistics.fmean(vals),
                         "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                         "min": min(vals), "max": max(vals)})
        return rows

    def table(self, top: int | None = None) -> str:
        """The summary as text, with an 'all' line over every finished trial.

        Parameters
        ----------
        top : int, optional
            Show only the `top` settings with the best mean (a random search has one setting per
            trial; `summary` and summary.csv keep them all).

        Returns
        -------
        str
            A right-aligned table, one line per `summary` row, and a last line counting the
            failed trials, if any.

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> print(result.table())
          lr  n  mean test_acc     std     min     max
        0.01  2         0.8200  0.0283  0.8000  0.8400
         0.1  1         0.9300  0.0000  0.9300  0.9300
         all  3         0.8567  0.0666  0.8000  0.9300
        1 trial(s) failed; their errors are in the results
        """
        rows = self.summary()
        name = self.metric
        shown = len(rows)
        if top is not None and top < len(rows):
            larger = METRICS[self.kind][1]
            rows = sorted(rows, key=lambda row: -row["mean"] if larger else row["mean"])[:top]
            shown = top
        cols = [*self.group_by, "n", f"mean {name}", "std", "min", "max"]
        body = [[_fmt(row[g]) for g in self.group_by]
                + [str(row["n"]), f"{row['mean']:.4f}", f"{row['std']:.4f}", f"{row['min']:.4f}",
                   f"{row['max']:.4f}"] for row in rows]
        vals = [float(r[name]) for r in self.ok()]
        if len(rows) > 1 and vals:
            body.append(["all"] + [""] * (len(self.group_by) - 1)
                        + [str(len(vals)), f"{statistics.fmean(vals):.4f}",
                           f"{statistics.stdev(vals) if len(vals) > 1 else 0.0:.4f}",
                           f"{min(vals):.4f}", f"{max(vals):.4f}"])
        if not self.group_by:
            cols = cols[len(self.group_by):]
        widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths)) for b in body]
        if shown < len(self.summary()):
            lines.append(f"(the best {shown} of {len(self.summary())} settings; all are in summary.csv)")
        if self.failed():
            lines.append(f"{len(self.failed())} trial(s) failed; their errors are in the results")
        return "\n".join(lines)

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per trial: id, status, settings, metrics, timing, worker.

        Curves and per-parameter results are left out: they do not fit in a table (`to_dict`
        keeps them).

        Returns
        -------
        list of dict
            One row per record, failed trials included (with their ``error``).

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> result.rows()[0]
        {'id': 'a', 'status': 'ok', 'lr': 0.01, 'seed': 0, 'test_acc': 0.8}
        """
        out = []
        for r in self.records:
            row = {"id": r["id"], "status": r["status"], **r["settings"]}
            for k in ("train_acc", "test_acc", "final_loss", "max_abs_err", "max_rel_err",
                      "best_central_err", "seconds", "worker", "params_sha256", "error"):
                if k in r:
                    row[k] = r[k]
            out.append(row)
        return out

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """The per-trial rows as CSV, written atomically.

        The columns are the union of the rows' keys, in order of first appearance, so failed
        trials and trials of different kinds of results share one file.

        Parameters
        ----------
        path : str or os.PathLike
            The CSV file to write.

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     result.to_csv(os.path.join(d, "results.csv"))
        ...     with open(os.path.join(d, "results.csv")) as f:
        ...         print(f.read().splitlines()[:2])
        ['id,status,lr,seed,test_acc,error', 'a,ok,0.01,0,0.8,']
        """
        rows = self.rows()
        names: list[str] = []
        for row in rows:
            names += [k for k in row if k not in names]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
        with atomic_write(path, "w") as f:
            f.write(buf.getvalue())

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data, for JSON: kind, swept settings, metric, summary, every record.

        Returns
        -------
        dict
            With keys ``kind``, ``swept``, ``group_by``, ``metric``, ``summary`` and ``trials``.

        Examples
        --------
        >>> result = SweepResult("train", [
        ...     {"id": "a", "status": "ok", "settings": {"lr": 0.01, "seed": 0}, "test_acc": 0.80},
        ...     {"id": "b", "status": "ok", "settings": {"lr": 0.01, "seed": 1}, "test_acc": 0.84},
        ...     {"id": "c", "status": "ok", "settings": {"lr": 0.1, "seed": 0}, "test_acc": 0.93},
        ...     {"id": "d", "status": "failed", "settings": {"lr": 0.1, "seed": 1}, "error": "ValueError: ..."},
        ... ], swept=["lr", "seed"], out="runs/sweep", group_by=["lr"])
        >>> d = result.to_dict()
        >>> d["metric"], len(d["summary"]), len(d["trials"])
        ('test_acc', 2, 4)
        """
        return {"kind": self.kind, "swept": self.swept, "group_by": self.group_by,
                "metric": self.metric, "summary": self.summary(), "trials": self.records}


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# -- running a sweep -------------------------------------------------------------------------------

def _client(scheduler: Any, workers: int | None, dashboard: bool, retries: int) -> tuple[Any, Any]:
    """(client, cluster to close or None)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError('fastnet sweep runs on Dask, which is not installed; install it with: '
                          'pip install "fastnet-dlfs[sweep]"') from exc
    if scheduler is not None and not isinstance(scheduler, str):
        if not isinstance(scheduler, Client):
            raise TypeError(f"scheduler must be None, an address like tcp://HOST:PORT or a "
                            f"distributed.Client, got {type(scheduler).__name__}")
        return scheduler, None
    if isinstance(scheduler, str):
        return Client(scheduler, timeout="20s"), None
    import logging

    n = workers or os.cpu_count() or 1
    # a worker that dies takes its trial with it: the scheduler of this cluster reschedules it up
    # to `retries` times (scoped to this cluster, so the caller's Dask configuration is untouched)
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":8787" if dashboard else None,
                               silence_logs=logging.ERROR, host="127.0.0.1")
    return Client(cluster), cluster


def sweep(kind: str = "train", *, grid: Mapping[str, Any] | Iterable[str] | None = None,
          random: Mapping[str, Any] | Iterable[str] | None = None, trials: int | None = None,
          fixed: Mapping[str, Any] | None = None, out: str | os.PathLike[str] = "runs/sweep",
          resume: bool = False, force: bool = False, scheduler: Any = None, workers: int | None = None,
          retries: int = 2, seed: int = 0, dashboard: bool = False, progress: bool = False,
          on_record: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run a grid or random search of `kind` trials on Dask, saving each finished trial at once.

    Parameters
    ----------
    kind : {"train", "gradcheck", "steps"}
        What each trial runs: `fastnet.train` on a fresh net (final accuracies and per-epoch
        curves), `gradient_check` or `step_study`.
    grid : mapping or list of str, optional
        Axes of a grid: ``{"lr": [0.01, 0.1], "seed": "0..4"}`` or ``["lr=0.01,0.1", "seed=0..4"]``.
    random : mapping or list of str, optional
        Axes of a random search: ``{"lr": "log:1e-6:1e-2"}``; also ``uniform:LO:HI``,
        ``int:LO:HI`` and ``choice:A,B``. Each of the `trials` draws is combined with every grid point.
    trials : int, optional
        Number of random draws.
    fixed : mapping, optional
        Settings shared by every trial (for example ``{"iters": 2000}``); the rest take
        `fastnet train`'s defaults, the book's.
    out : path
        Results directory: ``sweep.json`` (the trials), ``trials/ID.json`` (one per finished
        trial), ``results.csv``, ``results.json``, ``summary.csv``.
    resume : bool
        Continue the sweep in `out`, running only trials without a record. Without it, a
        directory that already holds trials is refused unless `force`.
    force : bool
        Start afresh in an `out` that holds results of another sweep: its trial records are
        deleted first.
    scheduler : None, str or distributed.Client
        None starts a LocalCluster (one worker process per core, one thread each, dashboard off
        unless `dashboard`); an address like ``tcp://127.0.0.1:8786`` or a Client uses that cluster.
    workers : int, optional
        Worker processes of the LocalCluster (default: the number of cores).
    retries : int
        How many times a trial whose worker died is started again (LocalCluster only; an
        existing cluster keeps its own ``distributed.scheduler.allowed-failures``).
    seed : int
        Seed of the random search's draws.
    dashboard : bool
        Serve Dask's dashboard on port 8787 (LocalCluster only).
    progress : bool
        Show a progress bar over trials with the best result so far.
    on_record : callable, optional
        Called with each finished trial's record, after it is saved.

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError, TypeError
        Bad specs or settings (named), before any trial runs.
    SweepInterrupted
        On Ctrl-C: the finished trials are saved; run again with ``resume=True``.

    Examples
    --------
    A sweep over a grid of learning rates and seeds looks like this (it starts a local Dask
    cluster, so it is not run here)::

        result = sweep("train", grid={"lr": [0.01, 0.1], "seed": "0..4"}, fixed={"iters": 2000},
                       out="runs/lr")
        print(result.table())

    Bad specs fail at once, before a cluster starts or a file is written:

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sweep("train", out=os.path.join(d, "sweep"))
    Traceback (most recent call last):
    ...
    ValueError: give grid and/or random settings to sweep over
    >>> sweep("train", grid=["lr=0.01,0.1"], workers=0)
    Traceback (most recent call last):
    ...
    ValueError: workers must be an integer >= 1, got 0
    """
    if grid is not None:
        grid = parse_grid(grid)
    if random is not None:
        random = parse_random(random)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    out_path = Path(out)
    spec_path = out_path / "sweep.json"
    if resume and spec_path.is_file():
        stored = json.loads(spec_path.read_text())
        if grid is None and random is None and fixed is None:
            kind = stored["kind"]
            todo = stored["trials"]
        else:
            todo = trials_from(kind, grid, random, trials, fixed, seed)
            if [trial_id(kind, t) for t in todo] != [trial_id(stored["kind"], t) for t in stored["trials"]]:
                raise ValueError(f"{out}: resume with different settings than the sweep stored there "
                                 "(leave the settings out to continue the stored sweep)")
        swept = stored.get("swept", [])
        random_axes = stored.get("random", [])
    else:
        if resume and not (grid or random):
            raise ValueError(f"{out}: no sweep to resume (no sweep.json); give grid or random settings")
        if not (grid or random):
            raise ValueError("give grid and/or random settings to sweep over")
        todo = trials_from(kind, grid, random, trials, fixed, seed)
        swept = [*(random or {}), *(grid or {})]
        random_axes = list(random or {})
        if out_path.exists() and any(out_path.iterdir()) and not resume:
            if not force:
                raise ValueError(f"{out} already holds results: resume the sweep there (resume=True, "
                                 "--resume) or start afresh with force=True (--force)")
            import shutil

            shutil.rmtree(out_path / "trials", ignore_errors=True)
        out_path.mkdir(parents=True, exist_ok=True)
        _write_json(spec_path, {"kind": kind, "swept": swept, "random": random_axes, "seed": seed,
                                "trials": todo})
    (out_path / "trials").mkdir(parents=True, exist_ok=True)
    group_by = [g for g in swept if g not in REPLICATES]

    done = _read_store(out_path)
    ids = [trial_id(kind, t) for t in todo]
    pending = [(i, t) for i, t in zip(ids, todo) if i not in done]
    result = SweepResult(kind, [], swept, os.fspath(out_path), random_axes, total=len(todo),
                         skipped=len(todo) - len(pending), group_by=group_by)
    start = time.perf_counter()
    if pending:
        _run(kind, pending, out_path, done, result, scheduler, workers, dashboard, retries, progress,
             on_record)
    result.records = [done[i] for i in ids if i in done]
    result.seconds = time.perf_counter() - start
    _export(result, out_path)
    return result


def _run(kind: str, pending: list[tuple[str, dict[str, Any]]], out_path: Path, done: dict[str, dict[str, Any]],
         result: SweepResult, scheduler: Any, workers: int | None, dashboard: bool, retries: int,
         progress: bool, on_record: Callable[[dict[str, Any]], None] | None) -> None:
    from distributed import as_completed

    client, cluster = _client(scheduler, workers, dashboard, retries)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(pending), desc=f"sweep ({kind})", unit="trial", file=sys.stderr,
                   dynamic_ncols=True)
    larger = METRICS[kind][1]
    metric = METRICS[kind][0]
    best = None
    futures = {}
    try:
        for tid, settings in pending:
            fut = client.submit(run_trial, kind, settings, key=f"fastnet-trial-{tid}-{os.urandom(4).hex()}",
                                pure=False)
            futures[fut] = (tid, settings)
        for fut in as_completed(list(futures)):
            tid, settings = futures[fut]
            try:
                record = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker died too often, or the cluster failed
                record = {"id": tid, "kind": kind, "settings": settings, "status": "failed",
                          "error": f"{type(exc).__name__}: {exc}", "worker": None}
            _write_json(out_path / "trials" / f"{tid}.json", record)
            done[tid] = record
            result.ran += 1
            if on_record is not None:
                on_record(record)
            if record["status"] == "ok":
                v = record.get(metric)
                if v is not None and (best is None or (v > best if larger else v < best)):
                    best = v
            if bar is not None:
                if best is not None:
                    bar.set_postfix_str(f"best {metric} {best:.4g}", refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        for fut in futures:
            fut.cancel()
        raise SweepInterrupted(len(done), result.total, os.fspath(out_path)) from None
    finally:
        if bar is not None:
            bar.close()
        if cluster is not None:
            client.close()
            cluster.close()
        elif not (scheduler is not None and not isinstance(scheduler, str)):
            client.close()


def _export(result: SweepResult, out_path: Path) -> None:
    result.to_csv(out_path / "results.csv")
    _write_json(out_path / "results.json", result.to_dict())
    rows = result.summary()
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with atomic_write(out_path / "summary.csv", "w") as f:
        f.write(buf.getvalue())
