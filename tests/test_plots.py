"""fastnet.plots: the learning-curve and step-study figures are valid PNGs, written atomically."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib import image as mpimg  # noqa: E402

from fastnet.history import History  # noqa: E402
from fastnet.plots import plot_history, plot_step_study  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return img


def sample_history():
    rng = np.random.default_rng(0)
    loss = list(np.exp(-np.arange(200) / 50) * 2.3 + 0.05 * rng.random(200))
    evals = list(range(0, 200, 20)) + [199]
    acc = [min(1.0, 0.1 + 0.09 * k) for k in range(len(evals))]
    return History(
        loss=[float(v) for v in loss],
        train_acc=acc,
        test_acc=[a * 0.97 for a in acc],
        eval_iters=evals,
        eval_seconds=[0.01 * i for i in evals],
        settings={"grad": "numerical", "sizes": [64, 50, 10], "batch_size": 10, "lr": 0.1, "train_size": 200},
    )


def test_plot_history_writes_a_png(tmp_path):
    path = tmp_path / "curves.png"
    plot_history(sample_history(), path)
    img = read_png(path)
    assert img.shape[1] > img.shape[0]  # two panels side by side
    assert os.listdir(tmp_path) == ["curves.png"]


def test_plot_history_accepts_the_dict_form_and_nan_losses(tmp_path):
    h = sample_history()
    h.loss[5] = float("nan")
    plot_history(h.to_dict(), tmp_path / "c.png")
    read_png(tmp_path / "c.png")
    with pytest.raises(TypeError, match="history"):
        plot_history([1, 2, 3], tmp_path / "d.png")


def test_plot_step_study_skips_non_positive_errors(tmp_path):
    hs = np.logspace(-10, -1, 10)
    errors = {
        "central": hs**2 + 1e-12 / hs,
        "forward": hs + 1e-12 / hs,
        "complex": np.where(hs > 1e-6, hs**2, 0.0),  # exact zeros at small h cannot go on a log axis
        "broken": np.full(10, -1.0),
    }
    path = tmp_path / "steps.png"
    plot_step_study(hs, errors, path, title="W1 errors")
    read_png(path)
    plot_step_study(hs, {"zero": np.zeros(10)}, tmp_path / "empty.png")
    read_png(tmp_path / "empty.png")


def test_plot_step_study_validates(tmp_path):
    hs = np.logspace(-8, -2, 4)
    with pytest.raises(ValueError, match="errors"):
        plot_step_study(hs, {"central": np.ones(3)}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="hs"):
        plot_step_study(np.array([1e-3, -1e-3]), {"c": np.ones(2)}, tmp_path / "x.png")
    with pytest.raises(TypeError, match="errors"):
        plot_step_study(hs, [1, 2, 3, 4], tmp_path / "x.png")
    assert os.listdir(tmp_path) == []


def test_importing_fastnet_does_not_import_matplotlib():
    code = "import sys, fastnet, fastnet.training, fastnet.plots; print('matplotlib' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"
