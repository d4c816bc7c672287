"""fastnet.io: atomic writes, and save/load of a net's parameters (round trip and rejection of bad files)."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# ---------------------------------------------------------------------------------------------
# files that declare more than they hold, and bombs


def test_load_rejects_an_empty_file(tmp_path):
    p = tmp_path / "empty.npz"
    p.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.npz: empty file"):
        io.load(p)


def _npz_with_headers(path, shapes, data_bytes=64):
    """A .npz whose members' .npy headers declare `shapes` (float64) but hold `data_bytes` bytes each."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, shape in shapes.items():
            with zf.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})
                f.write(b"\x00" * data_bytes)


def test_load_rejects_a_header_declaring_a_huge_array_without_allocating_it(tmp_path):
    p = tmp_path / "huge.npz"
    big = 2**20
    _npz_with_headers(p, {"W1": (big, big), "b1": (big,), "W2": (big, 3), "b2": (3,)})
    with pytest.raises(ValueError, match=r"array 'W1' declares shape \(1048576, 1048576\) of float64 "
                                         r"\(8796093022208 bytes\) but its zip entry holds 64 bytes"):
        io.load(p)


def test_load_refuses_object_arrays_without_unpickling(tmp_path):
    arrays = good_arrays()
    arrays["W1"] = np.array([[object()] * 4] * 6, dtype=object)
    p = tmp_path / "obj.npz"
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="'W1' holds Python objects"):
        io.load(p)


def test_load_reads_headers_before_data(tmp_path, monkeypatch):
    arrays = good_arrays()
    arrays["b1"] = np.zeros(7)
    p = tmp_path / "bad.npz"
    write_npz(p, **arrays)
    read = []
    real = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: read.append(1) or real(*a, **k))
    with pytest.raises(ValueError, match="'b1' must have shape"):
        io.load(p)
    assert read == []


def test_load_rejects_a_highly_compressed_member(tmp_path, monkeypatch):
    arrays = good_arrays()
    arrays["W1"] = np.zeros((6, 4))
    p = tmp_path / "z.npz"
    with open(p, "wb") as f:
        np.savez_compressed(f, **arrays)
    assert io.load(p).params["W1"].shape == (6, 4)  # below the slack: a normal file
    monkeypatch.setattr(io, "_NPZ_RATIO_SLACK", 0)
    monkeypatch.setattr(io, "MAX_NPZ_RATIO", 2)
    with pytest.raises(ValueError, match="'W1' would inflate from .* more than 2 times"):
        io.load(p)


def test_load_rejects_corrupt_member_data(tmp_path):
    p = tmp_path / "p.npz"
    io.save(make_net(), p)
    data = bytearray(p.read_bytes())
    at = data.index(b"W1.npy") + 6 + 128 + 10  # inside W1's data, past its .npy header
    data[at] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"array 'W1' .*corrupt.*CRC"):
        io.load(p)


# ---------------------------------------------------------------------------------------------
# save: the net's declared sizes, symbolic links, temporary files of killed writers


def test_save_refuses_params_that_disagree_with_the_net(tmp_path):
    net = fastnet.TwoLayerNet(20, 5, 3, seed=0)
    rng = np.random.default_rng(0)
    net.params["W1"] = rng.standard_normal((3, 5))  # a consistent 3-5-3 set, but the net is 20-5-3
    with pytest.raises(ValueError, match=r"params\['W1'\] has shape \(3, 5\), but the net is a 20-5-3 net"):
        io.save(net, tmp_path / "p.npz")
    net.params["W1"] = rng.standard_normal((20, 5)).astype(np.float32)
    with pytest.raises(TypeError, match=r"params\['W1'\] has dtype float32, but the net's dtype is float64"):
        io.save(net, tmp_path / "p.npz")
    assert os.listdir(tmp_path) == []


def test_save_over_a_symlink_writes_through_to_its_target(tmp_path):
    target_dir = tmp_path / "store"
    target_dir.mkdir()
    target = target_dir / "real.npz"
    io.save(make_net(seed=1), target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    net2 = make_net(seed=2)
    io.save(net2, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert np.array_equal(io.load(target).params["W1"], net2.params["W1"])
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "store"] and os.listdir(target_dir) == ["real.npz"]
    dangling = tmp_path / "next.npz"
    dangling.symlink_to(target_dir / "new.npz")
    with io.atomic_write(dangling, "w") as f:
        f.write("through")
    assert dangling.is_symlink() and (target_dir / "new.npz").read_text() == "through"


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_write_sweeps_only_stale_temporaries_of_its_target(tmp_path):
    host = io.temp_prefix("x").split(".")[-1].split("-")[0]
    dead = tmp_path / f".out.bin.{host}-{_dead_pid()}-abcdefgh.tmp"
    legacy_old = tmp_path / ".out.bin.q1w2e3r4.tmp"
    legacy_new = tmp_path / ".out.bin.t5y6u7i8.tmp"
    live = tmp_path / f"{io.temp_prefix('out.bin')}zzzzzzzz.tmp"
    other_host = tmp_path / f".out.bin.abcdef-{_dead_pid()}-abcdefgh.tmp"
    other_target = tmp_path / f".other.bin.{host}-{_dead_pid()}-abcdefgh.tmp"
    for p in (dead, legacy_old, legacy_new, live, other_host, other_target):
        p.write_bytes(b"x")
    old = os.path.getmtime(legacy_old) - 2 * io.LEGACY_STALE_S
    os.utime(legacy_old, (old, old))
    with io.atomic_write(tmp_path / "out.bin") as f:
        f.write(b"new")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["out.bin", legacy_new.name, live.name, other_host.name, other_target.name])


_KILLED_SAVES = r"""
import os, signal, sys, time
import numpy as np
from fastnet import io
from fastnet.network import TwoLayerNet

path = sys.argv[1]
net = TwoLayerNet(30, 20, 10, seed=0)
def temps():
    return sorted(n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp"))
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        def stuck_savez(f, **arrays):
            f.write(b"PK\x03\x04 half a zip" * 1000)
            f.flush()
            time.sleep(60)
        io.np.savez = stuck_savez
        io.save(net, path)
        os._exit(0)
    deadline = time.monotonic() + 20
    while not temps() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print(len(temps()), flush=True)
io.save(net, path)
print(len(temps()), os.path.exists(path), flush=True)
"""


def test_temporaries_of_killed_saves_do_not_pile_up(tmp_path):
    path = tmp_path / "params.npz"
    out = subprocess.run([sys.executable, "-c", _KILLED_SAVES, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    # each killed save leaves its own temporary file; the next save removes the earlier ones
    assert out.stdout.split() == ["1", "1", "1", "0", "True"]
    assert os.listdir(tmp_path) == ["params.npz"]
    assert io.load(path).params["W1"].shape == (30, 20)


@pytest.mark.parametrize("field, value", [
    (6, 109),  # the zip version needed to extract: 10.9, which zipfile refuses
    (10, 99),  # the compression method: one zipfile does not know
])
def test_zip_headers_zipfile_cannot_handle_give_a_value_error(tmp_path, field, value):
    """zipfile raises NotImplementedError for these fields of a central directory entry; load
    names the file in a ValueError."""
    path = tmp_path / "p.npz"
    io.save(make_net(sizes=(5, 3, 2)), path)
    blob = bytearray(path.read_bytes())
    at = blob.find(b"PK\x01\x02") + field
    blob[at:at + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="p.npz"):
        io.load(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_parameter_files_give_the_net_or_one_value_error(tmp_path, data):
    path = tmp_path / "p.npz"
    if not path.exists():
        io.save(make_net(sizes=(5, 3, 2)), path)
    blob = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        if data.draw(st.booleans(), label="cut"):
            del blob[at:]
            if not blob:
                break
        else:
            blob[at] ^= data.draw(st.integers(1, 255), label="xor")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(blob))
    try:
        net = io.load(damaged)
    except ValueError as exc:
        assert str(damaged) in str(exc)
        return
    # accepted: then numpy reads the same arrays from it (the damage hit nothing that matters)
    with np.load(damaged, allow_pickle=False) as z:
        for k in ("W1", "b1", "W2", "b2"):
            assert np.array_equal(net.params[k], z[k])
