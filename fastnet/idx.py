"""Reading IDX files (the MNIST file format), gzip-compressed or not, with strict validation.

IDX layout (big-endian): two zero bytes, a type code, the number of dimensions n, then n
uint32 sizes, then the items in C order. Every malformed file raises a ValueError that names it.
"""

from __future__ import annotations

import gzip
import os
import zlib

from typing import Any

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype
IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The magic numbers of the MNIST files: unsigned bytes, 3 dimensions (images) or 1 (labels).
MNIST_IMAGES_MAGIC = 0x00000803
MNIST_LABELS_MAGIC = 0x00000801


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the contents of `path`, decompressed when it is a gzip file (detected by its magic bytes).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    bytes

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It starts like gzip but is not valid gzip data.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> path = os.path.join(d, "labels.gz")
    >>> with gzip.open(path, "wb") as f:  # an IDX file: 0, 0, type 08 (ubyte), 1 dimension of size 3
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_bytes(path)[:4] == bytes([0, 0, 8, 1])
    True
    """
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        # BadGzipFile is an OSError; a cut-off stream raises EOFError.
        raise ValueError(f"{os.fspath(path)}: not a valid gzip file ({exc})") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse an uncompressed IDX payload into a native-endian array of the shape its header declares.

    Parameters
    ----------
    data : bytes
        The payload: header, then the items.
    name : str, default "<bytes>"
        Where the data came from, for error messages.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        A bad magic number, a truncated header or data, or trailing bytes.

    Examples
    --------
    >>> parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]))
    array([[1, 2],
           [3, 4]], dtype=uint8)
    """
    if len(data) < 4:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes; need at least 4)")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or type_code not in IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{name}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTNN with a type code TT "
            f"in {{08, 09, 0B, 0C, 0D, 0E}} and NN >= 1 dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{name}: truncated IDX header ({len(data)} bytes; {ndim} dimensions need {header})"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise ValueError(
            f"{name}: truncated data: header declares shape {shape} ({expected} bytes of data) "
            f"but the file holds {got} bytes after the header"
        )
    if got > expected:
        raise ValueError(
            f"{name}: {got - expected} unexpected trailing bytes after the {expected} bytes of data "
            f"declared by the header (shape {shape})"
        )
    # copy so callers get a writable array that does not pin the file's bytes
    return np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(
        shape
    ).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip or uncompressed) into an array of the shape its header declares.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    ndarray

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        The file is malformed (the message names it).

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> path = os.path.join(d, "labels.gz")
    >>> with gzip.open(path, "wb") as f:  # an IDX file: 0, 0, type 08 (ubyte), 1 dimension of size 3
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    return parse_idx(read_bytes(path), os.fspath(path))


def _read_mnist(path: str | os.PathLike[str], magic: int, what: str) -> np.ndarray:
    name = os.fspath(path)
    data = read_bytes(path)
    got = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if got != magic:
        shown = "none (file shorter than 4 bytes)" if got is None else f"0x{got:08X}"
        raise ValueError(f"{name}: bad magic number {shown}; an MNIST {what} file starts with 0x{magic:08X}")
    return parse_idx(data, name)


def read_mnist_images(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an MNIST images file (magic 0x00000803) -> uint8 array (N, rows, cols).

    Parameters
    ----------
    path : str or os.PathLike
        ``train-images-idx3-ubyte`` or ``t10k-images-idx3-ubyte``, optionally gzip-compressed.

    Returns
    -------
    ndarray of uint8, shape (N, rows, cols)

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        Not an MNIST images file, or malformed.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "images")
    >>> with open(path, "wb") as f:  # one 2x2 image
    ...     _ = f.write(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 128, 0]))
    >>> read_mnist_images(path).shape
    (1, 2, 2)
    """
    return _read_mnist(path, MNIST_IMAGES_MAGIC, "images")


def read_mnist_labels(path: str | os.PathLike[str], num_classes: int = 10) -> np.ndarray:
    """Read an MNIST labels file (magic 0x00000801) -> uint8 array (N,) with values in [0, num_classes).

    Parameters
    ----------
    path : str or os.PathLike
        ``train-labels-idx1-ubyte`` or ``t10k-labels-idx1-ubyte``, optionally gzip-compressed.
    num_classes : int, default 10
        Labels must be below this.

    Returns
    -------
    ndarray of uint8, shape (N,)

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        Not an MNIST labels file, malformed, or a label out of range.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> path = os.path.join(d, "labels.gz")
    >>> with gzip.open(path, "wb") as f:  # an IDX file: 0, 0, type 08 (ubyte), 1 dimension of size 3
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_mnist_labels(path).tolist()
    [7, 2, 1]
    """
    labels = _read_mnist(path, MNIST_LABELS_MAGIC, "labels")
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise ValueError(
            f"{os.fspath(path)}: label {int(labels[bad])} at index {bad} is outside 0..{num_classes - 1}"
        )
    return labels
