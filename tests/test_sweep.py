"""fastnet.sweep and `fastnet sweep`: specs, Dask clusters on 127.0.0.1, resume, failures, results."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="fastnet sweep needs the sweep extra (Dask)")

import fastnet  # noqa: E402
from fastnet import sweeps as sw  # noqa: E402
from fastnet.io import load  # noqa: E402

# Small trials on the bundled digits: fast, and every split/seed gives its own result.
SMALL = {"iters": 120, "hidden": 10}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- specs ---------------------------------------------------------------------------------------

def test_grid_and_random_specs():
    assert sw.parse_grid(["lr=0.01,0.1", "seed=0..4", "grad=numerical"]) == {
        "lr": [0.01, 0.1], "seed": [0, 1, 2, 3, 4], "grad": ["numerical"]}
    assert sw.parse_grid({"batch-size": "10,20", "split_seed": [1, 2]}) == {
        "batch_size": [10, 20], "split_seed": [1, 2]}
    r = sw.parse_random(["lr=log:1e-6:1e-2", "weight_decay=log:1e-8:1e-4", "hidden=int:10:100",
                         "dtype=choice:float32,float64"])
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert 1e-6 <= r["lr"].draw(rng) <= 1e-2
        assert 1e-8 <= r["weight_decay"].draw(rng) <= 1e-4
        assert 10 <= r["hidden"].draw(rng) <= 100
        assert r["dtype"].draw(rng) in ("float32", "float64")
    lrs = np.log10([r["lr"].draw(rng) for _ in range(2000)])
    assert abs(lrs.mean() + 4) < 0.1  # log-uniform: the mean exponent is the middle of -6..-2


@pytest.mark.parametrize("grid,word", [
    (["lr"], "NAME=VALUES"), (["learning_rate=0.1"], "unknown setting"), (["lr=0,0.1"], "lr"),
    (["seed=4..1"], "empty"), (["seed=-1"], "seed"), (["hidden=ten"], "integer"), (["lr="], "lr"),
    (["grad=adam"], "grad"), (["lr=0.1", "lr=0.2"], "twice"), (["lr=nan"], "lr"),
])
def test_bad_grid_specs_are_named(grid, word):
    with pytest.raises(ValueError, match=word):
        sw.parse_grid(grid)


@pytest.mark.parametrize("spec,word", [
    ("lr=log:0:1", "LOW > 0"), ("lr=log:1", "LOW:HIGH"), ("lr=normal:0:1", "expected log"),
    ("lr=uniform:2:1", "LOW <= HIGH"), ("hidden=uniform:1:5", "int: or choice"),
    ("lr=int:1:3", "integer setting"), ("lr=log:a:b", "numbers"),
])
def test_bad_random_specs_are_named(spec, word):
    with pytest.raises(ValueError, match=word):
        sw.parse_random([spec])


def test_trials_combine_draws_with_grid_points_and_check_the_kind():
    trials = sw.trials_from("train", grid=sw.parse_grid(["seed=0..2"]),
                            random=sw.parse_random(["lr=log:1e-3:1"]), trials=4, fixed={"iters": 50})
    assert len(trials) == 12
    assert {t["seed"] for t in trials} == {0, 1, 2} and {t["iters"] for t in trials} == {50}
    assert len({sw.trial_id("train", t) for t in trials}) == 12
    assert trials[0]["hidden"] == 50 and trials[0]["lr"] != 0.1  # defaults, and the drawn lr
    again = sw.trials_from("train", grid=sw.parse_grid(["seed=0..2"]),
                           random=sw.parse_random(["lr=log:1e-3:1"]), trials=4, fixed={"iters": 50})
    assert again == trials  # the draws are seeded
    with pytest.raises(ValueError, match="does not use method"):
        sw.trials_from("train", grid={"method": ["central"]})
    with pytest.raises(ValueError, match="does not use lr"):
        sw.trials_from("gradcheck", grid={"lr": [0.1]})
    with pytest.raises(ValueError, match="trials"):
        sw.trials_from("train", random=sw.parse_random(["lr=log:1e-3:1"]))
    with pytest.raises(ValueError, match="more than once"):
        sw.trials_from("train", grid={"lr": [0.1]}, fixed={"lr": 0.2})
    with pytest.raises(ValueError, match="kind"):
        sw.trials_from("predict", grid={"lr": [0.1]})


def test_a_trial_that_raises_is_recorded_as_failed():
    rec = sw.run_trial("train", {**sw.trials_from("train", grid={"seed": [0]})[0], "data": "no-such-data"})
    assert rec["status"] == "failed" and "no-such-data" in rec["error"]
    assert rec["traceback"]


# -- on a local cluster --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    """A LocalCluster on 127.0.0.1: two worker processes, one thread each."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           host="127.0.0.1")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _serial_train(settings):
    """The same trial run as a user would, one after another: fastnet.train on a fresh net."""
    (xtr, ttr), (xte, tte) = fastnet.datasets.load_digits(seed=settings["split_seed"])
    net = fastnet.TwoLayerNet(64, settings["hidden"], 10, settings["weight_init_std"], seed=settings["seed"])
    h = fastnet.train(net, ((xtr, ttr), (xte, tte)), iters=settings["iters"], lr=settings["lr"],
                      batch_size=settings["batch_size"], seed=settings["seed"])
    return net, h


def test_results_equal_serial_training_bit_for_bit(client, tmp_path):
    result = sw.sweep("train", grid=["split_seed=0..1", "seed=0..1"], fixed=SMALL, out=tmp_path / "s",
                      scheduler=client)
    assert result.total == 4 and result.ran == 4 and not result.failed()
    workers = {r["worker"] for r in result.records}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers)
    for r in result.records:
        net, h = _serial_train(r["settings"])
        assert r["test_acc"] == h.test_acc[-1] and r["train_acc"] == h.train_acc[-1]
        assert r["test_acc_curve"] == h.test_acc
        assert r["params_sha256"] == sw._params_digest(net)
    # the per-split table averages over the seeds
    rows = result.summary()
    assert [row["split_seed"] for row in rows] == [0, 1] and all(row["n"] == 2 for row in rows)
    accs = [r["test_acc"] for r in result.records if r["settings"]["split_seed"] == 0]
    assert rows[0]["mean"] == pytest.approx(np.mean(accs))
    assert "split_seed" in result.table() and "all" in result.table()
    # the store: one complete record per trial, and the exports
    files = sorted((tmp_path / "s" / "trials").iterdir())
    assert len(files) == 4 and all(json.loads(f.read_text())["status"] == "ok" for f in files)
    lines = (tmp_path / "s" / "results.csv").read_text().splitlines()
    assert len(lines) == 5 and "test_acc" in lines[0]
    assert json.loads((tmp_path / "s" / "results.json").read_text())["summary"] == json.loads(
        json.dumps(rows))
    assert not list((tmp_path / "s").glob(".*.tmp"))


def test_failed_trials_do_not_stop_the_sweep(client, tmp_path):
    result = sw.sweep("train", grid={"data": ["digits", "no-such-data"]}, fixed=SMALL, out=tmp_path,
                      scheduler=client)
    assert [r["status"] for r in result.records] == ["ok", "failed"]
    assert "no-such-data" in result.records[1]["error"]
    assert "1 trial(s) failed" in result.table()


def test_gradcheck_and_steps_trials(client, tmp_path):
    g = sw.sweep("gradcheck", grid={"method": ["central", "complex"]}, fixed={"hidden": 8, "batch_size": 20},
                 out=tmp_path / "g", scheduler=client)
    assert [r["status"] for r in g.records] == ["ok", "ok"]
    assert all(r["max_abs_err"] < 1e-8 for r in g.records)
    s = sw.sweep("steps", grid={"seed": [0]}, fixed={"hidden": 8, "batch_size": 20}, out=tmp_path / "s",
                 scheduler=client)
    assert s.records[0]["best_central_err"] < 1e-9 and len(s.records[0]["hs"]) > 5


def test_a_killed_worker_has_its_trial_retried(client, tmp_path):
    """SIGKILL the worker process that runs a trial: Dask starts it again, the sweep completes."""
    seen = []
    done = threading.Event()

    def killer():
        while not done.is_set():
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                seen.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        result = sw.sweep("train", grid={"seed": [0, 1, 2]}, fixed={"iters": 3000, "hidden": 10},
                          out=tmp_path, scheduler=client)
    finally:
        done.set()
        thread.join()
    assert seen, "no worker was busy long enough to be killed"
    assert result.total == 3 and [r["status"] for r in result.records] == ["ok"] * 3
    assert all(r["pid"] not in seen for r in result.records)  # none came from the killed process
    client.wait_for_workers(2, timeout=60)


def test_a_random_search_writes_the_figure(client, tmp_path):
    pytest.importorskip("matplotlib")
    from fastnet.plots import plot_sweep

    result = sw.sweep("train", random=["lr=log:1e-2:1", "weight_decay=log:1e-8:1e-4"], trials=6,
                      fixed=SMALL, out=tmp_path, scheduler=client)
    assert result.random_axes == ["lr", "weight_decay"] and len(result.records) == 6
    plot_sweep(result, tmp_path / "search.png")
    assert (tmp_path / "search.png").read_bytes().startswith(PNG_MAGIC)


def test_resume_runs_only_the_missing_trials(client, tmp_path):
    first = sw.sweep("train", grid={"seed": [0, 1, 2, 3]}, fixed=SMALL, out=tmp_path, scheduler=client)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "trials").iterdir()}
    # two trials lost, as if the sweep had been killed before they finished
    for p in sorted((tmp_path / "trials").iterdir())[:2]:
        p.unlink()
    again = sw.sweep("train", out=tmp_path, resume=True, scheduler=client)
    assert again.ran == 2 and again.skipped == 2 and again.total == 4
    assert [r["test_acc"] for r in again.records] == [r["test_acc"] for r in first.records]
    kept = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "trials").iterdir()}
    assert sum(kept[n] == stamps[n] for n in kept) == 2  # the finished ones were not run again
    with pytest.raises(ValueError, match="already holds results"):
        sw.sweep("train", grid={"seed": [0]}, fixed=SMALL, out=tmp_path, scheduler=client)
    with pytest.raises(ValueError, match="different settings"):
        sw.sweep("train", grid={"seed": [7]}, fixed=SMALL, out=tmp_path, resume=True, scheduler=client)


# -- the command line ------------------------------------------------------------------------------

def _fastnet(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "fastnet", *args], capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.mark.parametrize("args,word", [
    (("--grid", "lr=abc"), "lr"), (("--grid", "seed=3..1"), "empty"), (("--random", "lr=log:0:1", "--trials", "3"), "LOW"),
    (("--random", "lr=log:1e-3:1"), "trials"), (("--grid", "nope=1"), "unknown setting"), ((), "grid"),
    (("--grid", "lr=0.1", "--fixed", "iters"), "NAME=VALUE"), (("--config", "missing.toml"), "missing.toml"),
])
def test_bad_specs_on_the_command_line(args, word, tmp_path):
    proc = _fastnet("sweep", *args, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert word in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_config_file_and_table(tmp_path):
    (tmp_path / "s.toml").write_text('kind = "train"\n[fixed]\niters = 80\nhidden = 8\n'
                                     '[grid]\nsplit_seed = "0..1"\nseed = [0, 1]\n')
    proc = _fastnet("sweep", "--config", "s.toml", "--out", "o", "--workers", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "4 trials: 4 run now" in proc.stdout
    assert "split_seed" in proc.stdout and "best: test_acc" in proc.stdout
    assert (tmp_path / "o" / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    again = _fastnet("sweep", "--config", "s.toml", "--out", "o", cwd=tmp_path)
    assert again.returncode == 2 and "--resume" in again.stderr


def test_killed_sweep_resumes_without_repeating_a_trial(tmp_path):
    """SIGKILL the whole `fastnet sweep` midway; --resume completes it, every record intact."""
    out = tmp_path / "o"
    args = ["sweep", "--grid", "seed=0..11", "--fixed", "iters=1500", "hidden=10", "--out", str(out),
            "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "fastnet", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            n = len(list((out / "trials").glob("*.json"))) if (out / "trials").is_dir() else 0
            if n >= 4 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {p.name: p.read_bytes() for p in (out / "trials").glob("*.json")}
    assert 4 <= len(before) < 12
    for data in before.values():
        assert json.loads(data)["status"] == "ok"  # every record complete
    done = _fastnet("sweep", "--resume", "--out", str(out), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert f"12 trials: {12 - len(before)} run now, {len(before)} already done" in done.stdout
    after = {p.name: p.read_bytes() for p in (out / "trials").glob("*.json")}
    assert len(after) == 12 and all(after[n] == before[n] for n in before)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_cluster_started_by_hand_gives_the_same_results(tmp_path):
    """`dask scheduler` and `dask worker` on 127.0.0.1, then `fastnet sweep --scheduler`."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    sched = subprocess.Popen([*dask_cli, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                               "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        grid = ["--grid", "split_seed=0..1", "seed=0..1", "--fixed", "iters=120", "hidden=10"]
        remote = _fastnet("sweep", *grid, "--out", str(tmp_path / "remote"), "--scheduler", address)
        assert remote.returncode == 0, remote.stderr
        local = _fastnet("sweep", *grid, "--out", str(tmp_path / "local"), "--workers", "2")
        assert local.returncode == 0, local.stderr
    finally:
        for p in (worker, sched):
            os.killpg(p.pid, signal.SIGTERM)
        for p in (worker, sched):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    results = {}
    for side in ("remote", "local"):
        data = json.loads((tmp_path / side / "results.json").read_text())
        results[side] = {t["id"]: (t["test_acc"], t["params_sha256"]) for t in data["trials"]}
        assert len(results[side]) == 4
    assert results["remote"] == results["local"]
    # and a trained net's parameters are those of `fastnet train` with the same seeds
    one = next(iter(json.loads((tmp_path / "local" / "results.json").read_text())["trials"]))
    s = one["settings"]
    run = _fastnet("train", "--iters", "120", "--hidden", "10", "--seed", str(s["seed"]), "--split-seed",
                   str(s["split_seed"]), "--out", str(tmp_path / "t"), "--no-progress")
    assert run.returncode == 0, run.stderr
    assert sw._params_digest(load(tmp_path / "t" / "params.npz")) == one["params_sha256"]
