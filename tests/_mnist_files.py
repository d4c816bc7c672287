"""Helpers for tests that need MNIST-format files: write tiny IDX files and whole MNIST directories."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

REAL_MNIST_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"

# IDX type code of each dtype the format supports
_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array: np.ndarray, shape: tuple[int, ...] | None = None) -> bytes:
    """IDX encoding of `array`; `shape` overrides the sizes written in the header (to make bad files)."""
    array = np.asarray(array)
    shape = array.shape if shape is None else shape
    header = bytes([0, 0, _TYPE_CODES[array.dtype], len(shape)])
    header += b"".join(int(s).to_bytes(4, "big") for s in shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_bytes(path: Path, data: bytes, gz: bool = False) -> Path:
    """Write `data` to `path` (gzip-compressed, with `.gz` appended, when gz) and return the path written."""
    path = Path(path)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def fake_digits(n: int, seed: int = 0, rows: int = 28, cols: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (n, rows, cols) and uint8 labels (n,) in 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_mnist_dir(directory: Path, n_train: int = 20, n_test: int = 10, gz: bool = True,
                    train: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny MNIST directory (t10k files, plus train files when `train`); return the arrays written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    x_train, t_train = fake_digits(n_train, seed)
    x_test, t_test = fake_digits(n_test, seed + 1)
    arrays = {
        "t10k-images-idx3-ubyte": x_test,
        "t10k-labels-idx1-ubyte": t_test,
    }
    if train:
        arrays["train-images-idx3-ubyte"] = x_train
        arrays["train-labels-idx1-ubyte"] = t_train
    for name, array in arrays.items():
        write_bytes(directory / name, idx_bytes(array), gz=gz)
    return arrays
