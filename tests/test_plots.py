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


def _captured_figure(monkeypatch, draw):
    import fastnet.plots as plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    draw()
    (fig,) = figures
    fig.draw_without_rendering()
    return fig


@pytest.mark.parametrize("evals", [3, 40])
def test_learning_curve_legend_does_not_cover_the_curves(monkeypatch, evals):
    h = sample_history()
    h.eval_iters, h.train_acc = h.eval_iters[:evals], h.train_acc[:evals]
    h.test_acc, h.eval_seconds = h.test_acc[:evals], h.eval_seconds[:evals]
    fig = _captured_figure(monkeypatch, lambda: plot_history(h, "unused.png"))
    ax_acc = fig.axes[1]
    legend = ax_acc.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["train acc", "test acc"]
    box, axes_box = legend.get_window_extent(), ax_acc.get_window_extent()
    # Beside the axes, not over them: no curve can lie under it, whatever the run's length.
    assert box.x0 >= axes_box.x1
    assert box.x1 <= fig.bbox.x1 + 1  # and still inside the image


def test_step_plot_draws_coinciding_curves_distinguishably(monkeypatch):
    hs = np.logspace(-8, -1, 8)
    same = hs * 1e-3
    errors = {"central": hs ** 2, "forward": same, "backward": same.copy(), "complex": hs ** 2,
              "central (full loss)": 1e-12 / hs + hs ** 2}
    fig = _captured_figure(monkeypatch, lambda: plot_step_study(hs, errors, "unused.png"))
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == set(errors)

    def style(line):
        return (line.get_linestyle(), line.get_marker(), line.get_markersize(),
                str(line.get_markerfacecolor()))

    for a, b in (("forward", "backward"), ("central", "complex")):
        sa, sb = style(lines[a]), style(lines[b])
        assert sa[0] != sb[0] and sa[1] != sb[1], (a, b)
        # On top of each other, one of the pair is hollow or larger, so both stay visible.
        assert sa[2] != sb[2] or "none" in (sa[3], sb[3])
    assert len({style(line) for line in lines.values()}) == len(lines)
