"""What every `fastnet` command shares: exit statuses, data errors worded for the command line,
the t10k-only note, the accepted --data values, and wording that describes fastnet itself."""

from __future__ import annotations

import gzip
import os
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastnet.commands.gradcheck as gradcheck_command
from fastnet.cli import EXIT_STATUS, main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--data", "synthetic", "--hidden", "3", "--batch", "4"]


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for line in ("0    success", "1    runtime failure", "2    usage error", "130  interrupted",
                 "143  terminated"):
        assert line in out
    assert "missing optional" in out and out.count("exit status") == 1
    assert EXIT_STATUS.splitlines()[0] in out


def test_subcommand_help_shows_the_same_convention(capsys):
    with pytest.raises(SystemExit):
        main(["steps", "--help"])
    assert "143  terminated" in capsys.readouterr().out


def test_bare_fastnet_is_a_usage_error(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: fastnet") and err.rstrip().endswith("fastnet: error: a command is required")


@pytest.mark.parametrize("argv", [
    ["train", "--iters", "2", "--no-progress"],
    ["gradcheck", "--data", "digits", "--hidden", "3", "--batch", "4"],
])
def test_missing_scikit_learn_is_a_usage_error(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if not installed
    rc = main(argv + (["--out", str(tmp_path / "o")] if argv[0] == "train" else []))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert 'pip install "fastnet-dlfs[train]"' in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_matplotlib_is_a_usage_error_for_steps(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    rc = main(["steps", *SMALL, "--num", "2", "--no-naive", "--methods", "central",
               "--plot", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("fastnet steps: error: plotting needs matplotlib")
    assert 'pip install "fastnet-dlfs[train]"' in err
    assert not (tmp_path / "s.png").exists()


def test_missing_matplotlib_is_a_usage_error_for_train(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    rc = main(["train", "--iters", "3", "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "curves.png needs matplotlib" in err and "fastnet-dlfs[train]" in err
    # Known before training: no run started, nothing written.
    assert not (tmp_path / "run").exists()


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(gradcheck_command, "run", interrupted)
    assert main(["gradcheck"]) == 130
    assert "fastnet gradcheck: interrupted" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name == "nt", reason="POSIX signals")
def test_sigterm_exits_143_and_restores_the_handler(monkeypatch, capsys):
    before = signal.getsignal(signal.SIGTERM)

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this at once
        return 0

    monkeypatch.setattr(gradcheck_command, "run", terminated)
    start = time.perf_counter()
    assert main(["gradcheck"]) == 143
    assert time.perf_counter() - start < 4
    assert "fastnet gradcheck: terminated" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_unusable_output_is_found_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc = main(["train", "--iters", "2", "--no-progress", "--out", str(blocker)])
    err = capsys.readouterr().err
    # known from the arguments alone, before any work: a usage error
    assert rc == 2 and err.startswith(f"fastnet train: error: --out {blocker} exists and is not a directory")


@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_missing_mnist_files_give_command_line_advice(command, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [command, "--data", str(empty)]
    if command == "train":
        argv += ["--iters", "2", "--no-progress", "--out", str(tmp_path / "o")]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "MNIST files not found" in err and f"{empty}  (--data)" in err
    assert "--data DIR" in err and "FASTNET_DATA" in err and "FASTNET_MNIST_MIRRORS" in err
    # Python-only advice would not help here.
    assert "path=" not in err and "download=" not in err and "mirrors=" not in err


def test_python_error_keeps_the_python_advice(tmp_path):
    from fastnet import datasets

    with pytest.raises(datasets.MNISTNotFoundError) as exc:
        datasets.load_mnist(path=tmp_path, download=False)
    text = str(exc.value)
    assert "path=DIR" in text and "download=True" in text and "mirrors=[...]" in text
    assert "--data" not in text


@pytest.mark.parametrize("command", ["gradcheck", "steps"])
def test_unknown_data_lists_every_accepted_value(command, capsys):
    assert main([command, "--data", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastnet {command}: error: --data must be one of digits, mnist, mnist-test, synthetic")
    assert "Traceback" not in err


def test_train_does_not_offer_synthetic(tmp_path, capsys):
    assert main(["train", "--data", "nosuch", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "digits, mnist, mnist-test or a directory" in err and "synthetic" not in err


def _write_idx(path, array):
    sizes = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 8, array.ndim]) + sizes + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def t10k_only_dir(tmp_path_factory):
    """A directory with only the two t10k files (10,000 small random images), like a partial download."""
    d = tmp_path_factory.mktemp("t10k-only")
    rng = np.random.default_rng(0)
    images = np.where(rng.random((10000, 28, 28)) < 0.2, rng.integers(1, 256, (10000, 28, 28)), 0)
    _write_idx(d / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", np.arange(10000) % 10)
    return d


def test_t10k_only_directory_says_which_split_it_uses(t10k_only_dir, capsys):
    assert main(["gradcheck", "--data", str(t10k_only_dir), "--hidden", "3", "--batch", "4"]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "t10k" in line]
    assert notes == [f"note: {t10k_only_dir} holds only the t10k files, so its first 8,000 images are used "
                     "for training and the last 2,000 for testing (as --data mnist-test does)"]


def test_full_mnist_directory_has_no_note(t10k_only_dir, tmp_path, capsys):
    from fastnet.commands.data import t10k_only_note

    assert t10k_only_note(str(t10k_only_dir)) is not None
    for name in os.listdir(t10k_only_dir):
        os.symlink(t10k_only_dir / name, tmp_path / name)
        os.symlink(t10k_only_dir / name, tmp_path / name.replace("t10k", "train"))
    assert t10k_only_note(str(tmp_path)) is None
    assert t10k_only_note("mnist-test") is None


# Built from pieces so that this file does not match the pattern it enforces.
TRACKER_WORDING = re.compile("iss" + r"ue\s*#?\s*\d", re.IGNORECASE)


def test_no_tracker_references_in_the_repository():
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "asv.conf.json", ROOT / "pyproject.toml"]
    for folder in ("fastnet", "kernels", "tests", "benchmarks", "docs", ".ci"):
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix not in (".png", ".pyc")]
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in files
                 for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                 if TRACKER_WORDING.search(line)]
    assert offenders == []


def test_bench_output_names_targets_not_the_tracker():
    from fastnet.bench import TARGETS, BenchReport, Comparison

    row = Comparison("numerical_gradient (mnist-like)", "784-50-10 b100", "float64", 10.0, 0.002,
                     reference_params=400, total_params=39760,
                     extra={"numgrad_over_backprop": 4.0, "backprop_s": 5e-4,
                            "numgrad_over_backprop_target_max": 6.0, "speedup_target_min": 3000.0})
    meta = {"numba_threads": 1, "threading_layer": "omp", "cpu_count": 1, "repeat": 3, "elapsed_s": 1.0}
    report = BenchReport([], [row], None, meta)
    text = report.format_table()
    assert "target <= 6x (met)" in text and "target >= 3,000x (met)" in text
    assert "issue" not in text.lower()
    assert all("issue" not in key.lower() for key in report.to_dict()["targets"])
    assert report.to_dict()["targets"] == TARGETS
