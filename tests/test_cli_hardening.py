"""The command line under misuse and interruption: one-line errors, nothing half-written, Ctrl-C keeps the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fastnet.cli import main
from fastnet.history import History

pytest.importorskip("sklearn", reason="the default digits data needs scikit-learn")
pytest.importorskip("matplotlib", reason="curves.png needs matplotlib")

ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = ["curves.png", "history.json", "params.npz", "resume.json"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# About a second of numerical-gradient training on the digits: long enough to interrupt.
LONG_RUN = ["train", "--grad", "numerical", "--hidden", "10", "--batch-size", "20", "--iters", "2000",
            "--no-progress", "--threads", "1"]


def _fastnet(*argv: str) -> list[str]:
    return [sys.executable, "-m", "fastnet", *argv]


def _interrupt(argv: list[str], sig: int, cwd: Path) -> subprocess.CompletedProcess:
    """Run fastnet, send `sig` once the table header shows that training started, wait for it."""
    proc = subprocess.Popen(_fastnet(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.split()[:2] == ["epoch", "iter"]:
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines) + out, err)


def _params(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in ("W1", "b1", "W2", "b2")}


def _check_run_dir(out: Path) -> History:
    assert sorted(os.listdir(out)) == RUN_FILES
    hist = History.from_json(out / "history.json")
    assert hist.iterations == len(hist.loss) >= 1
    assert hist.eval_iters[-1] == hist.iterations - 1  # the stopping point is evaluated
    with open(out / "curves.png", "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    return hist


@pytest.mark.slow
def test_sigint_keeps_the_run_and_resume_finishes_it_bit_for_bit(tmp_path, capsys, monkeypatch):
    proc = _interrupt([*LONG_RUN, "--out", "stopped"], signal.SIGINT, tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "SystemError" not in proc.stderr
    message = proc.stderr.strip().splitlines()
    assert len(message) == 1 and "fastnet train --resume stopped" in message[0], proc.stderr
    hist = _check_run_dir(tmp_path / "stopped")
    assert hist.iterations < 2000
    state = json.loads((tmp_path / "stopped" / "resume.json").read_text())
    assert state["complete"] is False and state["next_iteration"] == hist.iterations

    # The rest needs no signals: in this process, which saves two interpreter start-ups.
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "stopped", "--no-progress"]) == 0
    assert f"resuming stopped at iteration {hist.iterations}" in capsys.readouterr().out
    assert main([*LONG_RUN, "--out", "full"]) == 0
    capsys.readouterr()

    a, b = _params(tmp_path / "stopped" / "params.npz"), _params(tmp_path / "full" / "params.npz")
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    ha = History.from_json(tmp_path / "stopped" / "history.json")
    hb = History.from_json(tmp_path / "full" / "history.json")
    # The thread count is the invocation's, not the run's (results do not depend on it).
    assert ha.settings.pop("threads") is None and hb.settings.pop("threads") == 1
    assert ha.without_timing() == hb.without_timing()

    assert main(["train", "--resume", "stopped"]) == 2
    assert "that run is complete" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_exits_143_with_the_run_written(tmp_path):
    proc = _interrupt([*LONG_RUN, "--out", "run"], signal.SIGTERM, tmp_path)
    assert proc.returncode == 143, proc.stderr
    assert "SIGTERM after iteration" in proc.stderr and "Traceback" not in proc.stderr
    _check_run_dir(tmp_path / "run")


@pytest.mark.slow
def test_a_billion_iterations_start_printing_at_once(tmp_path):
    t0 = time.monotonic()
    proc = _interrupt(["train", "--iters", "1000000000", "--no-progress", "--out", "big"],
                      signal.SIGINT, tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert "1000000000 iterations" in proc.stdout
    assert time.monotonic() - t0 < 60
    _check_run_dir(tmp_path / "big")


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastnet ") and "error:" in lines[0], captured.err
    assert "Traceback" not in captured.err
    assert "epoch" not in captured.out and "fastnet train:" not in captured.out  # no run header
    return lines[0]


@pytest.mark.parametrize("argv, words", [
    (["gradcheck", "--threads", "1000"], "--threads must be between 1 and"),
    (["bench", "--threads", "1000"], "--threads must be between 1 and"),
    (["steps", "--data", "synthetic", "--plot", "missing_dir/x.png"], "does not exist"),
    (["steps", "--data", "synthetic", "--h-min", "1e-320", "--h-max", "1e-320"], "usable range"),
    (["gradcheck", "--data", "synthetic", "--dtype", "float32", "--h", "1e-50"], "usable range"),
    (["train", "--hidden", "100000000"], "needs"),
    (["train", "--batch-size", "100000000"], "--batch-size 100000000 needs"),
    (["train", "--threads", "1000"], "--threads must be between 1 and"),
    (["train", "--grad", "numerical", "--h", "1e-320"], "--h=1e-320 is outside the usable range"),
])
def test_user_errors_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "train":
        argv = [*argv, "--out", "out/run"]
    assert words in _one_line_error(capsys, argv)
    assert os.listdir(tmp_path) == []


def test_existing_run_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--iters", "3", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    before = (out / "params.npz").read_bytes()
    error = _one_line_error(capsys, [*args, "--seed", "5"])
    assert "already holds a run" in error and "--force" in error
    assert (out / "params.npz").read_bytes() == before
    assert main([*args, "--seed", "5", "--force"]) == 0
    assert (out / "params.npz").read_bytes() != before
    assert History.from_json(out / "history.json").settings["seed"] == 5
    capsys.readouterr()


def test_unwritable_out_is_detected_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    error = _one_line_error(capsys, ["train", "--iters", "3", "--out", str(blocker / "run")])
    assert "--out" in error
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_resume_refuses_other_options(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--iters", "3", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    state = json.loads((out / "resume.json").read_text())
    state["complete"] = False
    (out / "resume.json").write_text(json.dumps(state))
    error = _one_line_error(capsys, ["train", "--resume", str(out), "--lr", "0.5"])
    assert "--lr 0.5 differs from the resumed run's 0.1" in error
    error = _one_line_error(capsys, ["train", "--resume", str(tmp_path / "nothing")])
    assert "no resume.json" in error
