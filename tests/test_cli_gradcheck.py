"""`fastnet gradcheck` and `fastnet steps` end to end, on small nets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastnet.cli import main

SMALL = ["--data", "synthetic", "--hidden", "6", "--batch", "12"]


def test_gradcheck_prints_a_row_per_parameter(capsys):
    assert main(["gradcheck", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "batch 12 of synthetic MNIST-like data" in out
    for name in ("W1", "b1", "W2", "b2"):
        assert any(line.startswith(name) for line in out.splitlines()), name


@pytest.mark.parametrize("method", ["central", "complex"])
def test_gradcheck_json_agrees_with_backprop(capsys, method):
    assert main(["gradcheck", *SMALL, "--method", method, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == method
    assert set(result["params"]) == {"W1", "b1", "W2", "b2"}
    for row in result["params"].values():
        # central at h = 1e-4 differs from backprop by its O(h^2) truncation; complex by rounding
        assert row["max_abs"] < (1e-9 if method == "central" else 1e-15)


def test_gradcheck_on_digits_after_training(capsys):
    pytest.importorskip("sklearn")
    assert main(["gradcheck", "--data", "digits", "--hidden", "8", "--batch", "20",
                 "--train-iters", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "20 training iterations" in result["description"]


def test_steps_table_json_and_plot(tmp_path, capsys):
    png = tmp_path / "steps.png"
    assert main(["steps", *SMALL, "--num", "4", "--h-min", "1e-8", "--h-max", "1e-1",
                 "--plot", str(png), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert np.allclose(result["hs"], np.logspace(-8, -1, 4))
    errors = result["errors"]
    assert {"central", "forward", "backward", "complex", "central (full loss)"} <= set(errors)
    # the truncation arm: central errors grow like h^2 between the two largest steps
    assert errors["central"][-1] > 100 * errors["central"][-2]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_steps_without_naive_curves(capsys):
    assert main(["steps", *SMALL, "--num", "3", "--no-naive", "--methods", "central,forward"]) == 0
    out = capsys.readouterr().out
    assert "full loss" not in out and "best h: central" in out


@pytest.mark.parametrize("argv", [
    ["steps", *SMALL, "--methods", "sideways"],
    ["steps", *SMALL, "--h-min", "1", "--h-max", "0.1"],
    ["gradcheck", "--data", "no-such-data-set"],
])
def test_bad_arguments_exit_2_with_a_message(argv, capsys):
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["gradcheck", "--h", "0"], ["steps", "--num", "0"],
                                  ["gradcheck", "--method", "sideways"]])
def test_argparse_rejects_bad_values(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
