"""`History`: what a training run recorded (losses, accuracies, timings, settings), with JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from fastnet.io import atomic_write

FORMAT = "fastnet.history"
FORMAT_VERSION = 1

# Wall-clock measurements: they differ between otherwise identical runs.
TIMING_FIELDS = (
    "eval_seconds",
    "seconds_gradient",
    "seconds_update",
    "seconds_loss",
    "seconds_eval",
    "seconds_total",
)


@dataclass
class History:
    """Record of one training run.

    loss[i] is the mini-batch loss after the update of iteration i (the book's `train_loss_list`).
    Evaluation k happened after iteration eval_iters[k] and measured train_acc[k] / test_acc[k] on the
    full sets, eval_seconds[k] seconds after the loop started. The seconds_* fields split the loop's
    wall time: gradients, parameter updates, the per-iteration loss, evaluations, and the total
    (which also covers batch sampling and bookkeeping). `settings` holds the arguments of the run.

    Examples
    --------
    >>> h = History(loss=[2.3, 1.9], train_acc=[0.1, 0.6], test_acc=[0.1, 0.5], eval_iters=[0, 1],
    ...             eval_seconds=[0.01, 0.02], settings={"train_size": 100, "batch_size": 50})
    >>> h.iterations, h.epochs
    (2, [0.0, 0.5])
    >>> History.from_dict(h.to_dict()) == h
    True
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    eval_iters: list[int] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    seconds_gradient: float = 0.0
    seconds_update: float = 0.0
    seconds_loss: float = 0.0
    seconds_eval: float = 0.0
    seconds_total: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> Any:
        """The fastnet.training.TrainState that continues this run (set by `train`), or None.

        Not a dataclass field, so not part of to_dict() or of equality.
        """
        return self.__dict__.get("_state")

    @state.setter
    def state(self, value: Any) -> None:
        self.__dict__["_state"] = value

    @property
    def iterations(self) -> int:
        """Number of iterations run (len(loss))."""
        return len(self.loss)

    @property
    def epochs(self) -> list[float]:
        """Epoch of each evaluation as a float: samples drawn before it / train size (the book's x axis)."""
        n = self.settings.get("train_size")
        b = self.settings.get("batch_size")
        if not n or not b:
            return [float(k) for k in range(len(self.eval_iters))]
        return [i * b / n for i in self.eval_iters]

    def without_timing(self) -> dict[str, Any]:
        """to_dict() minus the wall-clock fields: equal for two runs with the same seed and settings.

        Returns
        -------
        dict
            `to_dict` without ``eval_seconds`` and the ``seconds_*`` fields.

        Examples
        --------
        >>> "seconds_total" in History().without_timing()
        False
        """
        d = self.to_dict()
        for k in TIMING_FIELDS:
            d.pop(k)
        return d

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field, tagged with the format name and version.

        Returns
        -------
        dict
            ``{"format": "fastnet.history", "version": 1, "loss": [...], ...}``.

        Examples
        --------
        >>> History(loss=[0.5]).to_dict()["loss"]
        [0.5]
        """
        d: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = dict(v) if isinstance(v, dict) else (list(v) if isinstance(v, list) else v)
        return d

    @classmethod
    def from_dict(cls, d: object) -> History:
        """Rebuild a History from to_dict()'s output, checking field types and list lengths.

        Parameters
        ----------
        d : dict
            What `to_dict` returned (or its JSON round trip).

        Returns
        -------
        History

        Raises
        ------
        TypeError
            d is not a dict.
        ValueError
            Another format or version, a missing field, a field of the wrong type, or lists of
            evaluations with different lengths.

        Examples
        --------
        >>> History.from_dict(History(loss=[1.0]).to_dict()).loss
        [1.0]
        """
        if not isinstance(d, dict):
            raise TypeError(f"history must be a dict, got {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise ValueError(f"not a fastnet history (format {d.get('format')!r})")
        if d.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(f"unsupported history version {d.get('version')!r} (expected {FORMAT_VERSION})")
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                raise ValueError(f"history is missing the field {f.name!r}")
            v = d[f.name]
            if f.name == "settings":
                if not isinstance(v, dict):
                    raise ValueError(f"history field 'settings' must be a dict, got {type(v).__name__}")
                kwargs[f.name] = dict(v)
            elif f.name.startswith("seconds_"):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"history field {f.name!r} must be a number, got {v!r}")
                kwargs[f.name] = float(v)
            else:
                if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                    raise ValueError(f"history field {f.name!r} must be a list of numbers")
                kwargs[f.name] = [int(x) for x in v] if f.name == "eval_iters" else [float(x) for x in v]
        n = len(kwargs["eval_iters"])
        for k in ("train_acc", "test_acc", "eval_seconds"):
            if len(kwargs[k]) != n:
                raise ValueError(f"history field {k!r} has {len(kwargs[k])} entries, eval_iters has {n}")
        return cls(**kwargs)

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write to_dict() as JSON to `path`, atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (replaced if it exists; never left half-written).

        Raises
        ------
        OSError
            The file cannot be written.

        Examples
        --------
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     History(loss=[1.0]).to_json(os.path.join(d, "history.json"))
        ...     History.from_json(os.path.join(d, "history.json")).loss
        [1.0]
        """
        text = json.dumps(self.to_dict(), indent=1)
        with atomic_write(path, "w") as f:
            f.write(text)
            f.write("\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> History:
        """Read a History written by to_json.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by `to_json`.

        Returns
        -------
        History

        Raises
        ------
        OSError
            The file cannot be read.
        ValueError
            Not valid JSON, or not a history (see `from_dict`).

        Examples
        --------
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "history.json")
        ...     History(loss=[2.0, 1.5]).to_json(path)
        ...     History.from_json(path).iterations
        2
        """
        with open(os.fspath(path), encoding="utf-8") as f:
            try:
                d = json.load(f)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{os.fspath(path)}: not valid JSON ({exc})") from None
        return cls.from_dict(d)

    def summary(self) -> str:
        """One line: final accuracies, iterations, wall time and the share spent in gradients.

        Returns
        -------
        str

        Examples
        --------
        >>> History(loss=[0.3], train_acc=[0.9], test_acc=[0.8], eval_iters=[0],
        ...         eval_seconds=[0.1], seconds_total=2.0, seconds_gradient=1.0).summary()
        'train acc 0.9000, test acc 0.8000 after 1 iterations; wall 2.00 s, gradients 1.00 s (50%)'
        """
        if self.train_acc:
            acc = f"train acc {self.train_acc[-1]:.4f}, test acc {self.test_acc[-1]:.4f}"
        else:
            acc = "no evaluation"
        share = self.seconds_gradient / self.seconds_total * 100 if self.seconds_total > 0 else math.nan
        return (
            f"{acc} after {self.iterations} iterations; wall {self.seconds_total:.2f} s, "
            f"gradients {self.seconds_gradient:.2f} s ({share:.0f}%)"
        )
