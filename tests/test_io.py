"""fastnet.io: atomic writes, and save/load of a net's parameters (round trip and rejection of bad files)."""

import os

import numpy as np
import pytest

import fastnet
from fastnet import io


def make_net(dtype=np.float64, sizes=(6, 4, 3), seed=0):
    net = fastnet.TwoLayerNet(*sizes, weight_init_std=0.3, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for k in ("b1", "b2"):  # non-zero biases, so the round trip checks them too
        net.params[k][...] = rng.standard_normal(net.params[k].shape)
    return net


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def good_arrays(dtype=np.float64):
    net = make_net(dtype)
    return {k: v.copy() for k, v in net.params.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_is_bit_identical(tmp_path, dtype):
    net = make_net(dtype)
    path = tmp_path / "params.npz"
    io.save(net, path)
    back = io.load(path)
    assert isinstance(back, fastnet.TwoLayerNet)
    for k in ("W1", "b1", "W2", "b2"):
        assert back.params[k].dtype == np.dtype(dtype)
        assert back.params[k].shape == net.params[k].shape
        assert np.array_equal(back.params[k], net.params[k])
    x = np.random.default_rng(0).uniform(size=(5, 6)).astype(dtype)
    assert np.array_equal(back.predict(x), net.predict(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.npz"]
    with np.load(path) as z:
        assert z["sizes"].tolist() == [6, 4, 3]


def test_save_writes_exactly_the_given_path(tmp_path):
    path = tmp_path / "model"
    io.save(make_net(), path)
    assert path.exists() and not (tmp_path / "model.npz").exists()
    io.load(path)


def test_save_overwrites_an_existing_file(tmp_path):
    path = tmp_path / "p.npz"
    io.save(make_net(seed=1), path)
    net2 = make_net(seed=2)
    io.save(net2, path)
    assert np.array_equal(io.load(path).params["W1"], net2.params["W1"])


def test_load_accepts_a_file_without_sizes(tmp_path):
    arrays = good_arrays()
    write_npz(tmp_path / "p.npz", **arrays)
    net = io.load(tmp_path / "p.npz")
    assert np.array_equal(net.params["W2"], arrays["W2"])


def _drop(a, k):
    a.pop(k)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda a: _drop(a, "W2"), "W2"),
        (lambda a: _drop(a, "b1"), "b1"),
        (lambda a: a.update(b1=np.zeros(5)), "b1"),
        (lambda a: a.update(W2=np.zeros((5, 3))), "W2"),
        (lambda a: a.update(b2=np.zeros((3, 1))), "b2"),
        (lambda a: a.update(W1=np.zeros(24)), "W1"),
        (lambda a: a.update(W1=a["W1"].astype(np.int64)), "W1"),
        (lambda a: a.update(b2=a["b2"].astype(np.float32)), "dtype"),
        (lambda a: a.update(W1=np.where(np.arange(24).reshape(6, 4) == 7, np.nan, a["W1"])), "W1"),
        (lambda a: a.update(b2=np.array([0.0, np.inf, 1.0])), "b2"),
        (lambda a: a.update(sizes=np.array([6, 5, 3])), "sizes"),
    ],
)
def test_load_rejects_bad_arrays_naming_them(tmp_path, edit, match):
    arrays = good_arrays()
    arrays["sizes"] = np.array([6, 4, 3])
    edit(arrays)
    path = tmp_path / "bad.npz"
    write_npz(path, **arrays)
    with pytest.raises(ValueError, match=match):
        io.load(path)


def test_load_rejects_files_that_are_not_npz(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz"):
        io.load(p)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        io.load(single)
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.npz")


def test_save_rejects_what_is_not_a_net(tmp_path):
    with pytest.raises(TypeError, match="net"):
        io.save(object(), tmp_path / "x.npz")
    net = make_net()
    net.params["W1"][0, 0] = np.nan
    with pytest.raises(ValueError, match="W1"):
        io.save(net, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_success_leaves_only_the_file(tmp_path):
    path = tmp_path / "out.txt"
    with io.atomic_write(path, "w") as f:
        f.write("hello")
        assert not path.exists()  # nothing under the final name until the write completes
    assert path.read_text() == "hello"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError):
        with io.atomic_write(path, "wb") as f:
            f.write(b"partial new cont")
            raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_failure_without_old_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_write(tmp_path / "new.bin") as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_atomic_write_rejects_read_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with io.atomic_write(tmp_path / "x", "r"):
            pass


def test_save_failing_midway_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "params.npz"
    old = make_net(seed=1)
    io.save(old, path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("no space left on device")

    monkeypatch.setattr(io.np, "savez", broken_savez)
    with pytest.raises(OSError, match="no space"):
        io.save(make_net(seed=2), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["params.npz"]
    monkeypatch.undo()
    assert np.array_equal(io.load(path).params["W1"], old.params["W1"])


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    path = tmp_path / "mode.txt"
    with io.atomic_write(path, "w") as f:
        f.write("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)
