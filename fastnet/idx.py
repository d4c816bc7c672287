"""Reading IDX files (the MNIST file format), gzip-compressed or not, with strict validation.

IDX layout (big-endian): two zero bytes, a type code, the number of dimensions n, then n
uint32 sizes, then the items in C order. Every malformed file raises a ValueError that names it.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from typing import Any, BinaryIO

from typing import Any

import numpy as np
from numpy.typing import NDArray

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


# Deflate expands data at most about 1032 times; a header that declares more data than its gzip
# file could inflate to is refused before anything is inflated.
MAX_GZIP_RATIO = 1100
_CHUNK = 1 << 20
# How far past the declared data a gzip stream is inflated to count trailing bytes.
_TRAILING_PROBE = 1 << 16
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


def read_bytes(path: str | os.PathLike[str], max_size: int | None = None) -> bytes:
    """Return the contents of `path`, decompressed when it is a gzip file (detected by its magic bytes).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    max_size : int, optional
        The most bytes the (decompressed) contents may hold; at most ``max_size + 1`` are read
        or inflated to find out.

    Returns
    -------
    bytes

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It starts like gzip but is not valid gzip data, or it holds more than `max_size` bytes.

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
    name = os.fspath(path)
    with open(path, "rb") as raw:
        if raw.read(2) != GZIP_MAGIC:
            raw.seek(0)
            data = raw.read() if max_size is None else raw.read(max_size + 1)
            compressed = False
        else:
            raw.seek(0)
            compressed = True
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                    data = gz.read() if max_size is None else gz.read(max_size + 1)
            except _GZIP_ERRORS as exc:
                # BadGzipFile is an OSError; a cut-off stream raises EOFError.
                raise ValueError(f"{name}: not a valid gzip file ({exc})") from None
    if max_size is not None and len(data) > max_size:
        what = "decompresses to" if compressed else "holds"
        raise ValueError(f"{name}: {what} more than {max_size} bytes")
    return data


def _header_shape(head: bytes, name: str) -> tuple[int, int, np.dtype[Any]]:
    """(type code, number of dimensions, dtype) from the first 4 bytes of an IDX payload."""
    if len(head) < 4:
        raise ValueError(f"{name}: truncated IDX header ({len(head)} bytes; need at least 4)")
    magic = int.from_bytes(head[:4], "big")
    type_code, ndim = head[2], head[3]
    if head[:2] != b"\x00\x00" or type_code not in IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{name}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTNN with a type code TT "
            f"in {{08, 09, 0B, 0C, 0D, 0E}} and NN >= 1 dimensions)"
        )
    return type_code, ndim, IDX_TYPES[type_code]


def _declared(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    # Python integers: (2**32 - 1)**3 items overflow int64.
    return math.prod(shape) * dtype.itemsize


def _truncated(name: str, shape: tuple[int, ...], expected: int, got: int) -> ValueError:
    return ValueError(
        f"{name}: truncated data: header declares shape {shape} ({expected} bytes of data) "
        f"but the file holds {got} bytes after the header"
    )


def _trailing(name: str, shape: tuple[int, ...], expected: int, extra: int, at_least: bool = False) -> ValueError:
    count = f"at least {extra}" if at_least else f"{extra}"
    return ValueError(
        f"{name}: {count} unexpected trailing bytes after the {expected} bytes of data "
        f"declared by the header (shape {shape})"
    )


def parse_idx(data: bytes, name: str = "<bytes>") -> NDArray[Any]:
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
    _, ndim, dtype = _header_shape(data[:4], name)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{name}: truncated IDX header ({len(data)} bytes; {ndim} dimensions need {header})"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = _declared(shape, dtype)
    got = len(data) - header
    if got < expected:
        raise _truncated(name, shape, expected, got)
    if got > expected:
        raise _trailing(name, shape, expected, got - expected)
    # copy so callers get a writable array that does not pin the file's bytes
    return np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(
        shape
    ).astype(dtype.newbyteorder("="))


def _read_exact(stream: BinaryIO, n: int) -> bytearray:
    """Up to `n` bytes from `stream` (fewer only at its end), read in bounded chunks."""
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def _read_idx_file(path: str | os.PathLike[str], magic: int | None = None, what: str = "") -> NDArray[Any]:
    """Read an IDX file, checking its header before reading (or inflating) any of its data.

    At most the data the header declares (plus a small probe for trailing bytes) is read, and a
    header that declares more than the file can hold is refused before any data is read, so a
    small file cannot make this allocate much more memory than its contents justify.
    """
    name = os.fspath(path)
    with open(path, "rb") as raw:
        stored = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
        try:
            head = stream.read(4)
            if magic is not None:
                got = int.from_bytes(head, "big") if len(head) == 4 else None
                if got != magic:
                    shown = "none (file shorter than 4 bytes)" if got is None else f"0x{got:08X}"
                    raise ValueError(
                        f"{name}: bad magic number {shown}; an MNIST {what} file starts with 0x{magic:08X}"
                    )
            _, ndim, dtype = _header_shape(head, name)
            dims = stream.read(4 * ndim)
            header = 4 + 4 * ndim
            if len(dims) < 4 * ndim:
                raise ValueError(
                    f"{name}: truncated IDX header ({4 + len(dims)} bytes; {ndim} dimensions need {header})"
                )
            shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
            expected = _declared(shape, dtype)
            if not compressed:
                held = stored - header
                if held < expected:
                    raise _truncated(name, shape, expected, held)
                if held > expected:
                    raise _trailing(name, shape, expected, held - expected)
            elif expected > MAX_GZIP_RATIO * stored:
                raise ValueError(
                    f"{name}: truncated data: header declares shape {shape} ({expected} bytes of data) "
                    f"but a gzip file of {stored} bytes cannot inflate to that many"
                )
            data = _read_exact(stream, expected)
            if len(data) < expected:
                raise _truncated(name, shape, expected, len(data))
            if compressed:
                # Reading past the data also reaches the gzip trailer, so a bad CRC shows up here.
                extra = _read_exact(stream, _TRAILING_PROBE)
                if extra:
                    raise _trailing(name, shape, expected, len(extra), at_least=len(extra) == _TRAILING_PROBE)
        except _GZIP_ERRORS as exc:
            if not compressed:
                raise
            raise ValueError(f"{name}: not a valid gzip file ({exc})") from None
        finally:
            if compressed:
                stream.close()
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    # A bytearray buffer is already writable and private; only multi-byte types need a byte swap.
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> NDArray[Any]:
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
    return _read_idx_file(path)


def _read_mnist(path: str | os.PathLike[str], magic: int, what: str) -> NDArray[Any]:
    return _read_idx_file(path, magic, what)


def read_mnist_images(path: str | os.PathLike[str]) -> NDArray[Any]:
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


def read_mnist_labels(path: str | os.PathLike[str], num_classes: int = 10) -> NDArray[Any]:
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
