"""`fastnet train` end to end: the three output files, the printed table, input errors, the console script."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnet
from fastnet.cli import main
from fastnet.history import History
from fastnet.io import load

pytest.importorskip("sklearn", reason="the default digits data needs scikit-learn")
pytest.importorskip("matplotlib", reason="curves.png needs matplotlib")

ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_outputs(out, iters, sizes):
    assert sorted(os.listdir(out)) == ["curves.png", "history.json", "params.npz", "resume.json"]
    hist = History.from_json(out / "history.json")
    assert hist.iterations == iters
    assert hist.eval_iters[0] == 0 and hist.eval_iters[-1] == iters - 1
    assert hist.settings["sizes"] == list(sizes)
    net = load(out / "params.npz")
    assert isinstance(net, fastnet.TwoLayerNet)
    assert net.params["W1"].shape == sizes[:2]
    with open(out / "curves.png", "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    from matplotlib import image as mpimg

    assert mpimg.imread(out / "curves.png").ndim == 3
    return hist, net


def test_train_on_digits_writes_history_params_and_png(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--iters", "40", "--out", str(out), "--no-progress", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    hist, net = check_outputs(out, 40, (64, 50, 10))
    assert hist.settings["grad"] == "backprop" and hist.settings["lr"] == 0.1
    assert hist.settings["batch_size"] == 100 and hist.settings["seed"] == 0
    lines = captured.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["epoch", "iter", "train"])
    rows = [line.split() for line in lines[header + 1 :] if line[:1] == " " and len(line.split()) == 6]
    # 40 iterations at ~14.4 per epoch: evaluations at i = 0, 15, 29 and the last one, 39
    assert [int(r[1]) for r in rows] == hist.eval_iters == [0, 15, 29, 39]
    assert [float(r[3]) for r in rows] == [round(a, 4) for a in hist.test_acc]
    assert "final: train acc" in captured.out
    assert f"test acc {hist.test_acc[-1]:.4f}" in captured.out
    # The saved parameters are the trained ones: they reproduce the last recorded accuracy.
    from fastnet.datasets import load_digits

    (_, _), (xt, tt) = load_digits()
    assert float(net.accuracy(xt, tt)) == pytest.approx(hist.test_acc[-1])


def test_same_seed_same_history_through_the_cli(tmp_path, capsys):
    args = ["train", "--iters", "30", "--no-progress", "--threads", "1", "--seed", "7", "--batch-size", "50"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    ha = History.from_json(tmp_path / "a" / "history.json")
    hb = History.from_json(tmp_path / "b" / "history.json")
    assert ha.without_timing() == hb.without_timing()
    assert ha.settings["seed"] == 7 and ha.settings["batch_size"] == 50
    capsys.readouterr()


def test_numerical_float32_run(tmp_path, capsys):
    out = tmp_path / "num"
    rc = main(
        ["train", "--grad", "numerical", "--iters", "3", "--hidden", "6", "--batch-size", "20",
         "--dtype", "float32", "--h", "1e-2", "--out", str(out), "--no-progress"]
    )
    assert rc == 0, capsys.readouterr().err
    hist, net = check_outputs(out, 3, (64, 6, 10))
    assert hist.settings["grad"] == "numerical" and hist.settings["h"] == 0.01
    assert net.params["W1"].dtype == np.float32


def test_many_epochs_print_a_subset(tmp_path, capsys):
    # batch 500 of 1438: ~2.9 iterations per epoch, so 100 iterations make 35 evaluations
    rc = main(["train", "--iters", "100", "--batch-size", "500", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    hist = History.from_json(tmp_path / "history.json")
    assert len(hist.eval_iters) > 30
    assert "showing every 3rd and the last" in out
    rows = [line for line in out.splitlines() if line[:1] == " " and len(line.split()) == 6]
    assert len(rows) <= 16
    assert rows[-1].split()[1] == "99"


def test_split_seed_picks_another_digits_split(tmp_path, capsys):
    from fastnet.datasets import load_digits

    base = ["train", "--iters", "3", "--no-progress", "--threads", "1"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert "digits split 0 (1438 train / 359 test)" in capsys.readouterr().out
    assert main(base + ["--split-seed", "3", "--out", str(tmp_path / "b")]) == 0
    assert "digits split 3 (1438 train / 359 test)" in capsys.readouterr().out
    ha = History.from_json(tmp_path / "a" / "history.json")
    hb = History.from_json(tmp_path / "b" / "history.json")
    assert (ha.settings["data"], ha.settings["split_seed"]) == ("digits", 0)
    assert (hb.settings["data"], hb.settings["split_seed"]) == ("digits", 3)
    # Same init and batch indices, other images: the recorded accuracies are those of split 3.
    (_, _), (xt, tt) = load_digits(seed=3)
    assert float(load(tmp_path / "b" / "params.npz").accuracy(xt, tt)) == pytest.approx(hb.test_acc[-1])
    assert ha.loss != hb.loss


def test_split_seed_is_refused_for_other_data(tmp_path, capsys):
    rc = main(["train", "--data", "mnist-test", "--split-seed", "1", "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--split-seed applies only to --data digits" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--data", "/nonexistent/fastnet-data"], "--data"),
        (["--threads", "100000"], "thread"),
    ],
)
def test_input_errors_exit_2_with_a_message_not_a_traceback(tmp_path, capsys, argv, fragment):
    rc = main(["train", "--iters", "2", "--no-progress", "--out", str(tmp_path / "o")] + argv)
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("fastnet train: error:")
    assert fragment in captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "o" / "params.npz").exists()


@pytest.mark.parametrize(
    "argv",
    [["--iters", "0"], ["--batch-size", "-3"], ["--lr", "nan"], ["--lr", "0"], ["--h", "-1"],
     ["--grad", "adam"], ["--hidden", "x"], ["--dtype", "float16"], ["--seed", "-1"],
     ["--split-seed", "-2"]],
)
def test_bad_option_values_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["train"] + argv)
    assert exc.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_console_script_subprocess(tmp_path):
    exe = ROOT / ".venv" / "bin" / "fastnet"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fastnet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "sub"
    proc = subprocess.run(
        cmd + ["train", "--iters", "20", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "final: train acc" in proc.stdout
    # stderr is not a terminal here, so no progress bar is drawn
    assert "it/s" not in proc.stderr
    check_outputs(out, 20, (64, 50, 10))
    bad = subprocess.run(cmd + ["train", "--data", str(tmp_path / "missing")], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                    reason=f"real MNIST test file not found in {MNIST_DIR}")
def test_mnist_test_split_from_the_real_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTNET_DATA", str(MNIST_DIR))
    rc = main(["train", "--data", "mnist-test", "--iters", "5", "--out", str(tmp_path), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    hist, _ = check_outputs(tmp_path, 5, (784, 50, 10))
    assert hist.settings["train_size"] == 8000 and hist.settings["test_size"] == 2000
    assert json.loads((tmp_path / "history.json").read_text())["settings"]["grad"] == "backprop"


def test_bare_fastnet_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "train" in err and "a command is required" in err and "exit status" in err
