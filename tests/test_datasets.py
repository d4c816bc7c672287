"""Tests of fastnet.datasets, fastnet.idx and fastnet.download on files and an HTTP server the tests create."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _mnist_files import REAL_MNIST_DIR, fake_digits, idx_bytes, write_bytes, write_mnist_dir
from fastnet import datasets as D
from fastnet import download as dl
from fastnet.idx import parse_idx, read_idx, read_mnist_images, read_mnist_labels

TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"

needs_real = pytest.mark.skipif(
    not (REAL_MNIST_DIR / f"{TEST_IMAGES}.gz").is_file() or not (REAL_MNIST_DIR / f"{TEST_LABELS}.gz").is_file(),
    reason=f"real MNIST t10k files not present in {REAL_MNIST_DIR}",
)


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 whose port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Keep every test away from the real cache, $FASTNET_DATA and the public mirrors."""
    monkeypatch.delenv("FASTNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("FASTNET_MNIST_MIRRORS", closed_port_url())


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        route = self.server.routes.get(self.path)
        self.server.requests.append(self.path)
        if route is None:
            self.send_error(404)
            return
        if callable(route):
            route(self)
            return
        body, declared = route if isinstance(route, tuple) else (route, len(route))
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server: set `server.routes[path] = bytes` (or (bytes, declared length), or a function
    of the request handler that answers it); `server.url`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.requests = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve_t10k(server, prefix: str, monkeypatch, n: int = 12, gz: bool = True, seed: int = 3):
    """Serve synthetic t10k files under `prefix` and make their payload hashes the expected ones."""
    images, labels = fake_digits(n, seed)
    for name, array in ((TEST_IMAGES, images), (TEST_LABELS, labels)):
        payload = idx_bytes(array)
        server.routes[f"{prefix}{name}.gz"] = gzip.compress(payload) if gz else payload
        monkeypatch.setitem(D.MNIST_SHA256, name, sha(payload))
        monkeypatch.setitem(D.MNIST_SIZES, name, len(payload))
    return images, labels


# ---------------------------------------------------------------------------------------------
# reading IDX files


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_round_trip_raw_values(tmp_path, gz):
    arrays = write_mnist_dir(tmp_path, n_train=7, n_test=5, gz=gz)
    (x, t), (xt, tt) = D.load_mnist(normalize=False, flatten=False, path=tmp_path, download=False)
    assert x.dtype == np.uint8 and t.dtype == np.uint8
    assert x.shape == (7, 1, 28, 28) and t.shape == (7,)
    assert xt.shape == (5, 1, 28, 28) and tt.shape == (5,)
    np.testing.assert_array_equal(x[:, 0], arrays[TRAIN_IMAGES])
    np.testing.assert_array_equal(t, arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(xt[:, 0], arrays[TEST_IMAGES])
    np.testing.assert_array_equal(tt, arrays[TEST_LABELS])
    x[0, 0, 0, 0] = 1  # writable, not a view of a read-only buffer


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_normalize_flatten_one_hot(tmp_path, gz):
    arrays = write_mnist_dir(tmp_path, n_train=6, n_test=4, gz=gz)
    (x, t), (xt, tt) = D.load_mnist(normalize=True, flatten=True, one_hot_label=True, path=tmp_path)
    assert x.dtype == np.float32 and x.shape == (6, 784) and xt.shape == (4, 784)
    expected = arrays[TRAIN_IMAGES].reshape(6, 784).astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(x, expected)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert t.shape == (6, 10) and tt.shape == (4, 10) and t.dtype == np.float32
    np.testing.assert_array_equal(t.sum(axis=1), 1.0)
    np.testing.assert_array_equal(t.argmax(axis=1), arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(tt.argmax(axis=1), arrays[TEST_LABELS])


def test_load_mnist_defaults_match_the_book(tmp_path):
    arrays = write_mnist_dir(tmp_path, n_train=3, n_test=2)
    (x, t), _ = D.load_mnist(path=tmp_path)
    assert x.shape == (3, 784) and x.dtype == np.float32
    assert t.shape == (3,) and t.dtype == np.uint8
    np.testing.assert_array_equal(t, arrays[TRAIN_LABELS])


def test_uncompressed_file_preferred_over_gz(tmp_path):
    arrays = write_mnist_dir(tmp_path, n_train=3, n_test=2, gz=True)
    other, _ = fake_digits(2, seed=99)
    write_bytes(tmp_path / TEST_IMAGES, idx_bytes(other), gz=False)
    _, (xt, _) = D.load_mnist(normalize=False, flatten=False, path=tmp_path, download=False)
    np.testing.assert_array_equal(xt[:, 0], other)
    assert not np.array_equal(other, arrays[TEST_IMAGES])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_all_types(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_bytes(tmp_path / "a.idx", idx_bytes(array), gz=dtype is np.int16)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)


# ---------------------------------------------------------------------------------------------
# malformed files


def _bad_dir(tmp_path, name, data, gz=False):
    write_mnist_dir(tmp_path, n_train=4, n_test=4, gz=False)
    (tmp_path / name).unlink()
    return write_bytes(tmp_path / name, data, gz=gz)


@pytest.mark.parametrize("gz", [False, True])
def test_bad_magic_names_file(tmp_path, gz):
    images, _ = fake_digits(4)
    data = bytearray(idx_bytes(images))
    data[3] = 1  # 1 dimension: the magic of a labels file, not an images file
    path = _bad_dir(tmp_path, TRAIN_IMAGES, bytes(data), gz)
    with pytest.raises(ValueError, match="bad magic") as err:
        D.load_mnist(path=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_not_idx_at_all(tmp_path):
    path = _bad_dir(tmp_path, TEST_LABELS, b"<html>not found</html>")
    with pytest.raises(ValueError, match="bad magic") as err:
        D.load_mnist_test_split(n_train=2, path=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, 0x07, 1]) + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="bad IDX magic") as err:
        read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data_names_file(tmp_path, gz):
    images, _ = fake_digits(4)
    path = _bad_dir(tmp_path, TEST_IMAGES, idx_bytes(images)[:-100], gz)
    with pytest.raises(ValueError, match="truncated data") as err:
        D.load_mnist_test_split(n_train=2, path=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_truncated_header(tmp_path):
    path = _bad_dir(tmp_path, TEST_IMAGES, idx_bytes(fake_digits(4)[0])[:10])
    with pytest.raises(ValueError, match="truncated IDX header") as err:
        D.load_mnist_test_split(n_train=2, path=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_header_count_larger_than_data(tmp_path):
    _, labels = fake_digits(4)
    path = _bad_dir(tmp_path, TEST_LABELS, idx_bytes(labels, shape=(9,)))
    with pytest.raises(ValueError, match=r"shape \(9,\)") as err:
        D.load_mnist_test_split(n_train=2, path=tmp_path, download=False)
    assert str(path) in str(err.value) and "4 bytes after the header" in str(err.value)


def test_trailing_bytes(tmp_path):
    _, labels = fake_digits(4)
    path = _bad_dir(tmp_path, TEST_LABELS, idx_bytes(labels) + b"\x00\x00")
    with pytest.raises(ValueError, match="2 unexpected trailing bytes") as err:
        D.load_mnist_test_split(n_train=2, path=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_image_label_count_mismatch(tmp_path):
    _, labels = fake_digits(3)
    path = _bad_dir(tmp_path, TRAIN_LABELS, idx_bytes(labels))
    with pytest.raises(ValueError, match="holds 4 images but .* holds 3 labels") as err:
        D.load_mnist(path=tmp_path, download=False)
    assert str(path) in str(err.value) and str(tmp_path / TRAIN_IMAGES) in str(err.value)


def test_label_out_of_range(tmp_path):
    path = _bad_dir(tmp_path, TEST_LABELS, idx_bytes(np.array([1, 2, 10, 3], dtype=np.uint8)))
    with pytest.raises(ValueError, match="label 10 at index 2") as err:
        D.load_mnist_test_split(n_train=2, path=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(fake_digits(4)[0]))
    path = _bad_dir(tmp_path, TEST_IMAGES, b"")
    path.unlink()
    path = tmp_path / f"{TEST_IMAGES}.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a valid gzip file") as err:
        D.load_mnist_test_split(n_train=2, path=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_parse_idx_empty():
    with pytest.raises(ValueError, match="truncated IDX header"):
        parse_idx(b"", "empty")


# ---------------------------------------------------------------------------------------------
# the real MNIST test files


@needs_real
def test_real_t10k_files():
    (x1, _), (x, _) = D.load_mnist_test_split(n_train=1, path=REAL_MNIST_DIR, download=False)
    x_all = np.concatenate([x1, x])
    (x8, t8), (x2, t2) = D.load_mnist_test_split(path=REAL_MNIST_DIR, download=False)
    labels = np.concatenate([t8, t2])
    assert x_all.shape == (10000, 784) and x_all.dtype == np.float32
    np.testing.assert_array_equal(labels[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert abs(float(np.mean(x_all == 0)) - 0.807) < 0.001
    assert 0.0 <= x_all.min() and x_all.max() == 1.0
    assert x8.shape == (8000, 784) and t8.shape == (8000,)
    assert x2.shape == (2000, 784) and t2.shape == (2000,)
    np.testing.assert_array_equal(x8, x_all[:8000])


@needs_real
def test_real_t10k_payloads_match_published_hashes():
    for name in (TEST_IMAGES, TEST_LABELS):
        assert dl.payload_sha256(REAL_MNIST_DIR / f"{name}.gz") == D.MNIST_SHA256[name]


@needs_real
def test_real_t10k_download_verifies_with_published_hashes(tmp_path, server):
    for name in (TEST_IMAGES, TEST_LABELS):
        server.routes[f"/m/{name}.gz"] = (REAL_MNIST_DIR / f"{name}.gz").read_bytes()
    dest = tmp_path / "dest"
    (x, t), (xt, tt) = D.load_mnist_test_split(path=dest, mirrors=[server.url + "/m/"], one_hot_label=True)
    assert x.shape == (8000, 784) and xt.shape == (2000, 784) and t.shape == (8000, 10)
    assert sorted(os.listdir(dest)) == [f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]


# ---------------------------------------------------------------------------------------------
# where files are looked for


def test_fastnet_data_env(tmp_path, monkeypatch):
    arrays = write_mnist_dir(tmp_path / "data", n_train=3, n_test=2)
    monkeypatch.setenv("FASTNET_DATA", str(tmp_path / "data"))
    (_, t), _ = D.load_mnist(download=False)
    np.testing.assert_array_equal(t, arrays[TRAIN_LABELS])


def test_cache_dir(tmp_path):
    cache = tmp_path / "xdg-cache" / "fastnet" / "mnist"
    assert D.default_cache_dir() == cache
    arrays = write_mnist_dir(cache, n_test=5, train=False)
    (_, t), (_, tt) = D.load_mnist_test_split(n_train=3, download=False)
    np.testing.assert_array_equal(np.concatenate([t, tt]), arrays[TEST_LABELS])


def test_cache_dir_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert D.default_cache_dir() == tmp_path / ".cache" / "fastnet" / "mnist"


def test_path_argument_takes_precedence(tmp_path, monkeypatch):
    first = write_mnist_dir(tmp_path / "a", n_test=4, train=False, seed=1)
    write_mnist_dir(tmp_path / "b", n_test=4, train=False, seed=2)
    monkeypatch.setenv("FASTNET_DATA", str(tmp_path / "b"))
    (_, t), (_, tt) = D.load_mnist_test_split(n_train=2, path=tmp_path / "a", download=False)
    np.testing.assert_array_equal(np.concatenate([t, tt]), first[TEST_LABELS])


def test_missing_files_error_says_what_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNET_DATA", str(tmp_path / "data"))
    write_mnist_dir(tmp_path / "data", train=False)
    with pytest.raises(D.MNISTNotFoundError) as err:
        D.load_mnist(download=False)
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert TRAIN_IMAGES in msg and TRAIN_LABELS in msg and TEST_IMAGES not in msg.split("\n")[0]
    assert str(tmp_path / "data") in msg and str(D.default_cache_dir()) in msg
    assert "FASTNET_DATA" in msg and "path=" in msg and "download=False" in msg
    assert err.value.missing == [TRAIN_IMAGES, TRAIN_LABELS]


# ---------------------------------------------------------------------------------------------
# downloads from a local server


def test_download_places_verified_file(tmp_path, server, monkeypatch):
    images, labels = serve_t10k(server, "/m/", monkeypatch)
    dest = tmp_path / "dest"
    (x, t), (xt, tt) = D.load_mnist_test_split(n_train=8, normalize=False, path=dest,
                                               mirrors=[server.url + "/m/"])
    np.testing.assert_array_equal(np.concatenate([x, xt]).reshape(12, 28, 28), images)
    np.testing.assert_array_equal(np.concatenate([t, tt]), labels)
    assert sorted(os.listdir(dest)) == [f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]
    # a second load uses the files on disk and asks the server for nothing
    server.requests.clear()
    D.load_mnist_test_split(n_train=8, path=dest, mirrors=[server.url + "/m/"])
    assert server.requests == []


def test_download_only_missing_files_into_cache(tmp_path, server, monkeypatch):
    images, labels = serve_t10k(server, "/m/", monkeypatch)
    cache = D.default_cache_dir()
    write_bytes(cache / TEST_LABELS, idx_bytes(labels), gz=False)
    monkeypatch.setenv("FASTNET_MNIST_MIRRORS", f"{server.url}/m/")
    (_, t), (_, tt) = D.load_mnist_test_split(n_train=8)
    np.testing.assert_array_equal(np.concatenate([t, tt]), labels)
    assert server.requests == [f"/m/{TEST_IMAGES}.gz"]
    assert sorted(os.listdir(cache)) == sorted([TEST_LABELS, f"{TEST_IMAGES}.gz"])


def test_uncompressed_download_is_stored_uncompressed(tmp_path, server, monkeypatch):
    images, _ = serve_t10k(server, "/m/", monkeypatch, gz=False)
    dest = tmp_path / "dest"
    _, (xt, _) = D.load_mnist_test_split(n_train=8, normalize=False, flatten=False, path=dest,
                                         mirrors=[server.url + "/m"])
    np.testing.assert_array_equal(xt[:, 0], images[8:])
    assert sorted(os.listdir(dest)) == [TEST_IMAGES, TEST_LABELS]


def test_corrupted_download_rejected_and_nothing_left(tmp_path, server, monkeypatch):
    images, _ = serve_t10k(server, "/m/", monkeypatch)
    wrong = images.copy()
    wrong[0, 0, 0] ^= 1  # one bit off: still a well-formed IDX file
    server.routes[f"/m/{TEST_IMAGES}.gz"] = gzip.compress(idx_bytes(wrong))
    dest = tmp_path / "dest"
    with pytest.raises(D.MNISTNotFoundError) as err:
        D.load_mnist_test_split(n_train=8, path=dest, mirrors=[server.url + "/m/"])
    msg = str(err.value)
    expected, got = D.MNIST_SHA256[TEST_IMAGES], sha(idx_bytes(wrong))
    assert "SHA-256 mismatch" in msg and f"expected {expected}, got {got}" in msg
    assert f"{server.url}/m/{TEST_IMAGES}.gz" in msg
    assert os.listdir(dest) == []


def test_download_function_rejects_corrupt_and_cut_off(tmp_path, server):
    payload = idx_bytes(fake_digits(5)[0])
    good = gzip.compress(payload)
    server.routes["/bad.gz"] = gzip.compress(payload[:-1] + b"\x01")
    server.routes["/halfgz.gz"] = good[: len(good) // 2]
    server.routes["/cut.gz"] = (good[:100], len(good))
    server.routes["/good.gz"] = good
    urls = [server.url + p for p in ("/missing.gz", "/bad.gz", "/halfgz.gz", "/cut.gz")]
    with pytest.raises(dl.DownloadError) as err:
        dl.download("thing", tmp_path, urls, sha(payload), len(payload))
    reasons = dict(err.value.attempts)
    assert "404" in reasons[urls[0]]
    assert reasons[urls[1]].startswith("SHA-256 mismatch") and sha(payload) in reasons[urls[1]]
    assert "not a valid gzip file" in reasons[urls[2]]
    assert "IncompleteRead" in reasons[urls[3]] or "cut off" in reasons[urls[3]]
    assert os.listdir(tmp_path) == []
    final = dl.download("thing", tmp_path, urls + [server.url + "/good.gz"], sha(payload), len(payload))
    assert final == tmp_path / "thing.gz" and final.read_bytes() == good
    assert os.listdir(tmp_path) == ["thing.gz"]


def test_first_mirror_404_falls_through_to_second(tmp_path, server, monkeypatch):
    _, labels = serve_t10k(server, "/second/", monkeypatch)
    dest = tmp_path / "dest"
    (_, t), (_, tt) = D.load_mnist_test_split(n_train=8, path=dest,
                                              mirrors=[server.url + "/first/", server.url + "/second/"])
    np.testing.assert_array_equal(np.concatenate([t, tt]), labels)
    assert server.requests == [f"/first/{TEST_IMAGES}.gz", f"/second/{TEST_IMAGES}.gz",
                               f"/first/{TEST_LABELS}.gz", f"/second/{TEST_LABELS}.gz"]


def test_mirrors_from_environment(tmp_path, server, monkeypatch):
    serve_t10k(server, "/e/", monkeypatch)
    monkeypatch.setenv("FASTNET_MNIST_MIRRORS", f" {server.url}/nothing/ , {server.url}/e/ ")
    D.load_mnist_test_split(n_train=8, path=tmp_path / "dest")
    assert f"/e/{TEST_LABELS}.gz" in server.requests


def test_offline_gives_missing_files_error(tmp_path):
    url = closed_port_url()
    dest = tmp_path / "dest"
    with pytest.raises(D.MNISTNotFoundError) as err:
        D.load_mnist(path=dest, mirrors=[url])
    msg = str(err.value)
    for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS):
        assert name in msg
    assert str(dest) in msg and "cannot connect" in msg and url in msg
    assert "FASTNET_DATA" in msg and "path=" in msg
    assert os.listdir(dest) == []


def test_default_mirrors_are_https():
    assert D.MNIST_MIRRORS and all(m.startswith("https://") for m in D.MNIST_MIRRORS)
    assert set(D.MNIST_SHA256) == set(D.MNIST_FILES)


# ---------------------------------------------------------------------------------------------
# scikit-learn digits


def test_load_digits_shapes_range_and_determinism():
    pytest.importorskip("sklearn")
    (x, t), (xt, tt) = D.load_digits()
    assert x.shape == (1438, 64) and xt.shape == (359, 64)
    assert x.dtype == np.float32 and t.dtype == np.uint8
    assert x.min() == 0.0 and x.max() == 1.0 and xt.min() >= 0.0 and xt.max() <= 1.0
    assert set(np.unique(t)) == set(range(10)) and set(np.unique(tt)) == set(range(10))
    (x2, t2), (xt2, tt2) = D.load_digits()
    for a, b in ((x, x2), (t, t2), (xt, xt2), (tt, tt2)):
        np.testing.assert_array_equal(a, b)
    (x3, _), _ = D.load_digits(seed=1)
    assert not np.array_equal(x, x3)


def test_load_digits_is_a_stratified_partition_of_sklearn_digits():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    bunch = sklearn_datasets.load_digits()
    (x, t), (xt, tt) = D.load_digits(normalize=False, test_fraction=0.25, seed=5)
    assert x.dtype == np.uint8 and x.max() == 16
    together = np.concatenate([x, xt]).astype(np.float64)
    key = lambda rows: sorted(map(bytes, rows.astype(np.uint8)))  # noqa: E731
    assert key(together) == key(bunch.data)
    counts = np.bincount(bunch.target, minlength=10)
    np.testing.assert_array_equal(np.bincount(tt, minlength=10), np.round(counts * 0.25).astype(int))
    np.testing.assert_array_equal(np.bincount(t, minlength=10) + np.bincount(tt, minlength=10), counts)


def test_load_digits_layout_options():
    pytest.importorskip("sklearn")
    (x, t), _ = D.load_digits(flatten=False, one_hot_label=True)
    assert x.shape == (1438, 1, 8, 8) and t.shape == (1438, 10)
    np.testing.assert_array_equal(t.sum(axis=1), 1.0)
    (xf, tf), _ = D.load_digits()
    np.testing.assert_array_equal(x.reshape(1438, 64), xf)
    np.testing.assert_array_equal(t.argmax(axis=1), tf)


# ---------------------------------------------------------------------------------------------
# the dispatcher and argument checks


def test_load_by_name_and_directory(tmp_path):
    full = write_mnist_dir(tmp_path / "full", n_train=5, n_test=3)
    (_, t), (_, tt) = D.load(str(tmp_path / "full"))
    np.testing.assert_array_equal(t, full[TRAIN_LABELS])
    np.testing.assert_array_equal(tt, full[TEST_LABELS])
    (_, t), _ = D.load("mnist", path=tmp_path / "full")
    np.testing.assert_array_equal(t, full[TRAIN_LABELS])
    with pytest.raises(ValueError, match="n_train must be less than the 3 images"):
        D.load("mnist-test", path=tmp_path / "full")


@needs_real
def test_load_directory_with_only_t10k_files():
    (x, _), (xt, _) = D.load(REAL_MNIST_DIR)
    assert x.shape == (8000, 784) and xt.shape == (2000, 784)
    (x, _), _ = D.load("mnist-test", path=REAL_MNIST_DIR)
    assert x.shape == (8000, 784)


def test_load_digits_by_name():
    pytest.importorskip("sklearn")
    (x, _), (xt, _) = D.load("digits")
    assert x.shape == (1438, 64) and xt.shape == (359, 64)


@pytest.mark.parametrize("call, exc, match", [
    (lambda p: D.load("nope-not-a-dataset"), ValueError, "name must be one of"),
    (lambda p: D.load(3), TypeError, "name must be"),
    (lambda p: D.load("digits", path=p), ValueError, "path applies only"),
    (lambda p: D.load(p, path=p), ValueError, "path is only used"),
    (lambda p: D.load_mnist_test_split(n_train=0, path=p), ValueError, "n_train must be at least 1"),
    (lambda p: D.load_mnist_test_split(n_train=2.5, path=p), TypeError, "n_train must be an int"),
    (lambda p: D.load_mnist_test_split(n_train=True, path=p), TypeError, "n_train must be an int"),
    (lambda p: D.load_digits(test_fraction=0), ValueError, "test_fraction"),
    (lambda p: D.load_digits(test_fraction=1.0), ValueError, "test_fraction"),
    (lambda p: D.load_digits(test_fraction="0.2"), TypeError, "test_fraction"),
    (lambda p: D.load_digits(seed=-1), ValueError, "seed"),
    (lambda p: D.load_digits(normalize=1), TypeError, "normalize"),
    (lambda p: D.load_mnist(flatten=None, path=p), TypeError, "flatten"),
    (lambda p: D.load_mnist(one_hot_label="yes", path=p), TypeError, "one_hot_label"),
    (lambda p: D.load_mnist(download="no", path=p), TypeError, "download"),
    (lambda p: D.load_mnist(path=""), ValueError, "path"),
    (lambda p: D.load_mnist(path=5), TypeError, "path"),
    (lambda p: D.load_mnist(path=p, mirrors="http://127.0.0.1:1/"), TypeError, "mirrors"),
    (lambda p: D.load_mnist(path=p, mirrors=[]), ValueError, "mirrors"),
    (lambda p: D.load_mnist(path=p, mirrors=["ftp://127.0.0.1/"]), ValueError, "mirrors"),
])
def test_bad_arguments(tmp_path, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tmp_path / "nothing-here")
    assert not (tmp_path / "nothing-here").exists()


def test_bad_mirror_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNET_MNIST_MIRRORS", "not-a-url")
    with pytest.raises(ValueError, match="FASTNET_MNIST_MIRRORS"):
        D.load_mnist(path=tmp_path)


# ---------------------------------------------------------------------------------------------
# hostile mirrors: every failure moves on, bounded time and size, nothing left behind


def _corruptions(good: bytes, payload: bytes) -> dict[str, bytes]:
    """Ways a mirror can serve a broken copy of `payload` (whose good gzip is `good`)."""
    bad_crc = bytearray(good)
    bad_crc[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    bad_data = bytearray(good)
    bad_data[10:18] = b"\xff" * 8  # the first deflate block header
    return {
        "badcrc": bytes(bad_crc),
        "baddata": bytes(bad_data),
        "trailing": good + b"trailing garbage",
        "halfgz": good[: len(good) // 2],
        "wronghash": gzip.compress(payload[:-1] + bytes([payload[-1] ^ 1])),
        "toolong": gzip.compress(payload + b"\x00" * 7),
    }


def test_corrupt_mirrors_then_good_one_succeeds_from_the_good_one(tmp_path, server, monkeypatch):
    images, labels = serve_t10k(server, "/good/", monkeypatch)
    prefixes = []
    for name in (TEST_IMAGES, TEST_LABELS):
        good = server.routes[f"/good/{name}.gz"]
        payload = gzip.decompress(good)
        for kind, body in _corruptions(good, payload).items():
            server.routes[f"/{kind}/{name}.gz"] = body
            if f"/{kind}/" not in prefixes:
                prefixes.append(f"/{kind}/")
    dest = tmp_path / "dest"
    mirrors = [server.url + p for p in prefixes] + [server.url + "/good/"]
    (x, t), (xt, tt) = D.load_mnist_test_split(n_train=8, normalize=False, path=dest, mirrors=mirrors)
    np.testing.assert_array_equal(np.concatenate([x, xt]).reshape(12, 28, 28), images)
    np.testing.assert_array_equal(np.concatenate([t, tt]), labels)
    assert sorted(os.listdir(dest)) == [f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]
    assert server.requests[: len(mirrors)] == [f"{m[len(server.url):]}{TEST_IMAGES}.gz" for m in mirrors]


def test_all_mirrors_corrupt_error_lists_what_each_did(tmp_path, server, monkeypatch):
    serve_t10k(server, "/good/", monkeypatch)
    good = server.routes[f"/good/{TEST_IMAGES}.gz"]
    kinds = _corruptions(good, gzip.decompress(good))
    for kind, body in kinds.items():
        server.routes[f"/{kind}/{TEST_IMAGES}.gz"] = body
    urls = [f"{server.url}/{kind}/" for kind in kinds] + [closed_port_url(), f"{server.url}/missing/"]
    dest = tmp_path / "dest"
    with pytest.raises(D.MNISTNotFoundError) as err:
        D.load_mnist_test_split(n_train=8, path=dest, mirrors=urls)
    reasons = dict(err.value.failure.attempts)
    assert list(reasons) == [u + f"{TEST_IMAGES}.gz" for u in urls]
    why = list(reasons.values())
    assert "CRC check failed" in why[0] and "not a valid gzip file" in why[0]
    assert "not a valid gzip file" in why[1] and "invalid block type" in why[1]
    assert "not a valid gzip file" in why[2] and "Not a gzipped file" in why[2]
    assert "not a valid gzip file" in why[3] and "ended before" in why[3]
    assert why[4].startswith("SHA-256 mismatch")
    assert "more than the expected 9424 bytes" in why[5]
    assert "cannot connect" in why[6] and why[7] == "HTTP 404 Not Found"
    msg = str(err.value)
    for url in reasons:
        assert url in msg
    assert os.listdir(dest) == []


def _trickle(handler, body: bytes, pause: float = 0.05) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    try:
        for i in range(len(body)):
            handler.wfile.write(body[i:i + 1])
            handler.wfile.flush()
            time.sleep(pause)
    except OSError:  # the client gave up: what the test wants
        pass


def _endless(handler, announce: int | None = None) -> None:
    handler.send_response(200)
    if announce is not None:
        handler.send_header("Content-Length", str(announce))
    handler.end_headers()
    block = os.urandom(1 << 16)
    try:
        for _ in range(2000):  # 128 MiB at most, should the client never stop
            handler.wfile.write(block)
    except OSError:
        pass


def test_trickling_mirror_fails_within_the_deadline_then_next_mirror(tmp_path, server, monkeypatch):
    serve_t10k(server, "/good/", monkeypatch)
    for name in (TEST_IMAGES, TEST_LABELS):
        body = server.routes[f"/good/{name}.gz"]
        server.routes[f"/slow/{name}.gz"] = lambda h, body=body: _trickle(h, body)
    monkeypatch.setattr(dl, "DEADLINE_S", 0.5)
    dest = tmp_path / "dest"
    start = time.monotonic()
    with pytest.raises(D.MNISTNotFoundError) as err:
        D.load_mnist_test_split(n_train=8, path=dest, mirrors=[server.url + "/slow/"])
    elapsed = time.monotonic() - start
    assert elapsed < 0.5 + 1.0, elapsed
    (reason,) = dict(err.value.failure.attempts).values()
    assert "too slow" in reason and "deadline for one file is 0.5 s" in reason
    assert os.listdir(dest) == []
    D.load_mnist_test_split(n_train=8, path=dest, mirrors=[server.url + "/slow/", server.url + "/good/"])
    assert sorted(os.listdir(dest)) == [f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]


@pytest.mark.parametrize("announce", [None, 1 << 40])
def test_endless_mirror_stops_within_ten_percent(tmp_path, server, monkeypatch, announce):
    serve_t10k(server, "/good/", monkeypatch)
    size = D.MNIST_SIZES[TEST_IMAGES]
    server.routes[f"/endless/{TEST_IMAGES}.gz"] = lambda h: _endless(h, announce)
    written = []
    real_fetch = dl._fetch_to

    def spy(url, f, *args):
        try:
            return real_fetch(url, f, *args)
        finally:
            written.append(f.tell())

    monkeypatch.setattr(dl, "_fetch_to", spy)
    dest = tmp_path / "dest"
    D.load_mnist_test_split(n_train=8, path=dest, mirrors=[server.url + "/endless/", server.url + "/good/"])
    assert written[0] <= 1.1 * size
    assert sorted(os.listdir(dest)) == [f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]
    with pytest.raises(dl.DownloadError) as err:
        dl.download(TEST_IMAGES, tmp_path / "d2", [server.url + f"/endless/{TEST_IMAGES}.gz"],
                    D.MNIST_SHA256[TEST_IMAGES], size)
    (reason,) = dict(err.value.attempts).values()
    limit = dl.max_transfer(size)
    assert limit <= 1.1 * size
    if announce is None:
        assert f"sent more than the {limit} bytes" in reason and written[-1] == limit + 1
    else:
        assert f"announces {announce} bytes" in reason and written[-1] == 0
    assert os.listdir(tmp_path / "d2") == []


def test_size_margin_and_deadline_are_keyword_arguments(tmp_path, server):
    payload = idx_bytes(fake_digits(5)[0])
    server.routes["/x.gz"] = lambda h: _endless(h)
    with pytest.raises(dl.DownloadError, match=f"more than the {len(payload) + 256} bytes"):
        dl.download("x", tmp_path, [server.url + "/x.gz"], sha(payload), len(payload), size_margin=0)
    server.routes["/slow.gz"] = lambda h: _trickle(h, gzip.compress(payload), pause=0.02)
    start = time.monotonic()
    with pytest.raises(dl.DownloadError, match="deadline for one file is 0.3 s"):
        dl.download("x", tmp_path, [server.url + "/slow.gz"], sha(payload), len(payload), deadline_s=0.3)
    assert time.monotonic() - start < 1.3
    for bad in (dict(deadline_s=0), dict(deadline_s=float("inf")), dict(size_margin=-0.1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            dl.download("x", tmp_path, [server.url + "/x.gz"], sha(payload), len(payload), **bad)
    with pytest.raises(ValueError, match="size"):
        dl.download("x", tmp_path, [server.url + "/x.gz"], sha(payload), -1)
    assert os.listdir(tmp_path) == []


def _trickle_headers(handler, pause: float = 0.05) -> None:
    status = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Filler: " + b"x" * 200 + b"\r\n\r\n"
    try:
        for i in range(len(status)):
            handler.wfile.write(status[i:i + 1])
            handler.wfile.flush()
            time.sleep(pause)
    except OSError:
        pass


def test_mirror_trickling_its_headers_fails_within_the_deadline(tmp_path, server):
    payload = idx_bytes(fake_digits(5)[0])
    server.routes["/h.gz"] = _trickle_headers
    start = time.monotonic()
    with pytest.raises(dl.DownloadError) as err:
        dl.download("x", tmp_path, [server.url + "/h.gz"], sha(payload), len(payload), deadline_s=0.4)
    assert time.monotonic() - start < 1.4
    (reason,) = dict(err.value.attempts).values()
    assert "too slow" in reason and "0.4 s" in reason
    assert os.listdir(tmp_path) == []


def test_file_mirror_is_a_local_copy(tmp_path, server, monkeypatch):
    images, labels = serve_t10k(server, "/unused/", monkeypatch)
    local = tmp_path / "local mirror"  # a space, to check the URL is decoded
    local.mkdir()
    for name in (TEST_IMAGES, TEST_LABELS):
        (local / f"{name}.gz").write_bytes(server.routes[f"/unused/{name}.gz"])
    dest = tmp_path / "dest"
    url = local.as_uri()
    (x, t), (xt, tt) = D.load_mnist_test_split(n_train=8, normalize=False, path=dest,
                                               mirrors=[url, server.url + "/unused/"])
    np.testing.assert_array_equal(np.concatenate([x, xt]).reshape(12, 28, 28), images)
    np.testing.assert_array_equal(np.concatenate([t, tt]), labels)
    assert server.requests == []
    assert sorted(os.listdir(dest)) == [f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]


def test_file_mirror_missing_or_corrupt_moves_on(tmp_path, server, monkeypatch):
    serve_t10k(server, "/good/", monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / f"{TEST_IMAGES}.gz").write_bytes(server.routes[f"/good/{TEST_IMAGES}.gz"][:-3])
    dest = tmp_path / "dest"
    D.load_mnist_test_split(n_train=8, path=dest,
                            mirrors=[empty.as_uri() + "/", corrupt.as_uri(), server.url + "/good/"])
    assert server.requests == [f"/good/{TEST_IMAGES}.gz", f"/good/{TEST_LABELS}.gz"]
    with pytest.raises(dl.DownloadError) as err:
        dl.download(TEST_IMAGES, dest / "again", [f"{empty.as_uri()}/{TEST_IMAGES}.gz",
                                                  f"{corrupt.as_uri()}/{TEST_IMAGES}.gz"],
                    D.MNIST_SHA256[TEST_IMAGES], D.MNIST_SIZES[TEST_IMAGES])
    first, second = dict(err.value.attempts).values()
    assert first.startswith("FileNotFoundError") and "not a valid gzip file" in second
    assert os.listdir(dest / "again") == []


def test_endless_file_mirror_stops(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(dl.DownloadError, match=r"sent more than the 1256 bytes"):
        dl.download("zeros", tmp_path, ["file:///dev/zero"], "0" * 64, 1000, size_margin=0)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mirror", ["file:relative/dir/", "file://otherhost/srv/mnist/"])
def test_unusable_file_mirrors_are_refused_up_front(tmp_path, mirror):
    with pytest.raises(ValueError, match="absolute directory on this machine"):
        D.load_mnist(path=tmp_path / "d", mirrors=[mirror])
    assert not (tmp_path / "d").exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_part_files_of_killed_downloads_are_removed(tmp_path, server, monkeypatch):
    from fastnet.io import temp_prefix

    serve_t10k(server, "/m/", monkeypatch)
    dest = tmp_path / "dest"
    dest.mkdir()
    mine = temp_prefix(TEST_IMAGES)  # ".<name>.<host>-<pid>-"
    host = mine.split(".")[-1].split("-")[0]
    dead = dest / f".{TEST_IMAGES}.{host}-{_dead_pid()}-abcd_123.part"
    legacy_old = dest / f".{TEST_IMAGES}.k2j4_x9q.part"
    legacy_new = dest / f".{TEST_IMAGES}.m3n5p7r9.part"
    live = dest / f"{mine}zzzzzzzz.part"  # this process: still writing, as far as anyone can tell
    other_host = dest / f".{TEST_IMAGES}.000000-{_dead_pid()}-abcdefgh.part"
    unrelated = dest / f".{TEST_LABELS}.{host}-{_dead_pid()}-abcdefgh.part"
    for p in (dead, legacy_old, legacy_new, live, other_host, unrelated):
        p.write_bytes(b"half a download")
    old = time.time() - 2 * 3600
    os.utime(legacy_old, (old, old))
    dl.download(TEST_IMAGES, dest, [f"{server.url}/m/{TEST_IMAGES}.gz"], D.MNIST_SHA256[TEST_IMAGES],
                D.MNIST_SIZES[TEST_IMAGES])
    left = set(os.listdir(dest))
    assert f"{TEST_IMAGES}.gz" in left
    assert dead.name not in left and legacy_old.name not in left
    assert {legacy_new.name, live.name, other_host.name, unrelated.name} <= left


# ---------------------------------------------------------------------------------------------
# headers that declare more than a file holds


def test_idx_header_of_huge_dimensions_reports_the_exact_size(tmp_path):
    header = bytes([0, 0, 8, 3]) + (2**32 - 1).to_bytes(4, "big") * 3
    declared = (2**32 - 1) ** 3
    for gz in (False, True):
        path = write_bytes(tmp_path / f"huge{gz}", header + b"\x00" * 100, gz=gz)
        with pytest.raises(ValueError, match=f"{declared} bytes of data") as err:
            read_mnist_images(path)
        assert str(path) in str(err.value) and "4294967295, 4294967295, 4294967295" in str(err.value)
    with pytest.raises(ValueError, match=f"{declared} bytes of data"):
        parse_idx(header + b"\x00" * 100, "huge")


def test_gzip_with_trailing_data_beyond_the_header_is_refused(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = write_bytes(tmp_path / "l", idx_bytes(labels) + b"\x00" * (1 << 20), gz=True)
    with pytest.raises(ValueError, match="at least 65536 unexpected trailing bytes"):
        read_idx(path)
    path = write_bytes(tmp_path / "m", idx_bytes(labels) + b"\x01\x02", gz=True)
    with pytest.raises(ValueError, match="2 unexpected trailing bytes"):
        read_idx(path)


_BOMB_CHECK = r"""
import json, resource, sys, tracemalloc
from fastnet.idx import read_mnist_images, read_mnist_labels
from fastnet.io import load
results = {}
for label, fn, path in [("gz-bad-magic", read_mnist_images, sys.argv[1]),
                        ("gz-trailing", read_mnist_labels, sys.argv[2]),
                        ("npz-consistent", load, sys.argv[3]),
                        ("npz-inconsistent", load, sys.argv[4])]:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        fn(path)
        error = None
    except Exception as exc:
        error = [type(exc).__name__, str(exc)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    results[label] = {"error": error, "traced_peak": peak, "rss_growth": grown}
print(json.dumps(results))
"""


def _gzip_bomb(path, head: bytes, inflated: int) -> None:
    """A gzip file of a few MB whose payload is `head` then zeros, `inflated` bytes in all."""
    block = 1 << 26
    member = gzip.compress(b"\x00" * block, compresslevel=9)
    first = gzip.compress(head + b"\x00" * (block - len(head)), compresslevel=9)
    with open(path, "wb") as f:
        f.write(first)
        for _ in range(inflated // block - 1):
            f.write(member)


def _npz_bomb(path, rows: int, cols: int, b1: int) -> None:
    """A .npz whose W1 is `rows` x `cols` float64 zeros, deflated to a small fraction of that."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("W1.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f8", "fortran_order": False, "shape": (rows, cols)})
            zeros = b"\x00" * (1 << 22)
            left = rows * cols * 8
            while left:
                f.write(zeros[: min(left, len(zeros))])
                left -= min(left, len(zeros))
        for name, array in (("b1", np.zeros(b1)), ("W2", np.zeros((cols, 10))), ("b2", np.zeros(10))):
            with zf.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, array)


def test_gzip_and_npz_bombs_are_refused_with_little_memory(tmp_path):
    paths = [tmp_path / "images.gz", tmp_path / "labels.gz", tmp_path / "bomb.npz", tmp_path / "bomb2.npz"]
    # 2 GiB inflated, wrong magic: refused after the first 4 bytes
    _gzip_bomb(paths[0], b"\xde\xad\xbe\xef", 1 << 31)
    # a valid 10-label header, then 1 GiB of data the header does not declare
    _gzip_bomb(paths[1], bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big"), 1 << 30)
    _npz_bomb(paths[2], 60000, 500, 500)  # 240 MB, consistent shapes: refused by its compression ratio
    _npz_bomb(paths[3], 60000, 500, 7)  # b1 does not match W1: refused by the headers alone
    assert max(p.stat().st_size for p in paths) < 4_000_000
    out = subprocess.run([sys.executable, "-c", _BOMB_CHECK, *map(str, paths)], capture_output=True,
                         text=True, timeout=120, check=True)
    results = json.loads(out.stdout)
    assert "bad magic number 0xDEADBEEF" in results["gz-bad-magic"]["error"][1]
    assert "at least 65536 unexpected trailing bytes" in results["gz-trailing"]["error"][1]
    assert "zip bomb" in results["npz-consistent"]["error"][1]
    assert "'b1' must have shape (500,)" in results["npz-inconsistent"]["error"][1]
    for label, r in results.items():
        assert r["error"][0] == "ValueError", (label, r)
        assert r["traced_peak"] < 100e6 and r["rss_growth"] < 100e6, (label, r)


_FUZZ_LABELS = np.arange(40, dtype=np.uint8) % 10


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), gz=st.booleans())
def test_damaged_idx_files_give_the_data_or_one_value_error(tmp_path, data, gz):
    raw = idx_bytes(_FUZZ_LABELS)
    blob = bytearray(gzip.compress(raw) if gz else raw)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        kind = data.draw(st.sampled_from(["flip", "cut", "append"]), label="kind")
        if kind == "flip":
            blob[at] ^= data.draw(st.integers(1, 255), label="xor")
        elif kind == "cut":
            del blob[at:]
            if not blob:
                break
        else:
            blob += data.draw(st.binary(min_size=1, max_size=8), label="extra")
    path = tmp_path / "fuzz"
    path.write_bytes(bytes(blob))
    want = _labels_oracle(bytes(blob))
    if want is None:
        with pytest.raises(ValueError) as err:
            read_mnist_labels(path)
        assert str(path) in str(err.value)
    else:
        np.testing.assert_array_equal(read_mnist_labels(path), want)


def _labels_oracle(blob: bytes):
    """What reading `blob` as an MNIST labels file should give, decoded all in memory; None if invalid."""
    try:
        payload = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        labels = parse_idx(payload)
    except Exception:
        return None
    if payload[:4] != bytes([0, 0, 8, 1]) or (labels.size and labels.max() >= 10):
        return None
    return labels
