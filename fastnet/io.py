"""Atomic file writes, and saving/loading a TwoLayerNet's parameters as a `.npz` file."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from fastnet._typing import NDArray

if TYPE_CHECKING:
    from fastnet.network import TwoLayerNet

PARAM_NAMES = ("W1", "b1", "W2", "b2")
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_UMASK_LOCK = threading.Lock()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *,
                 encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to `path` for writing; on success flush, fsync and rename it to `path`.

    If the body raises, the temporary file is removed and `path` is left as it was (absent or the old
    file), so a reader never sees a half-written file under the final name.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    mode : {"wb", "w", "wt"}
        Binary or text; text is UTF-8 unless `encoding` says otherwise.
    encoding : str, optional
        Text encoding.

    Yields
    ------
    file object
        The open temporary file.

    Raises
    ------
    ValueError
        Any other mode.
    OSError
        The directory cannot be written.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_write(os.path.join(d, "a.txt"), "w") as f:
    ...         _ = f.write("done")
    ...     os.listdir(d)
    ['a.txt']
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"mode must be 'w', 'wt' or 'wb', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    # Same directory as the target so that os.replace is a rename within one filesystem.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _current_umask() -> int:
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; not possible on every platform, and not needed for atomicity.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(net: TwoLayerNet, path: str | os.PathLike[str]) -> None:
    """Write the net's parameters W1 (D,H), b1 (H,), W2 (H,C), b2 (C,) and its sizes (D,H,C) to a `.npz` file, atomically.

    The file is written exactly at `path` (no `.npz` suffix is added).

    Parameters
    ----------
    net : TwoLayerNet
        The network (any object with a ``params`` dict of the four arrays).
    path : str or os.PathLike
        The file to write; replaced if it exists, never left half-written.

    Raises
    ------
    TypeError
        net has no ``params`` dict.
    ValueError
        A parameter is missing, mis-shaped, of another dtype, or holds NaN/inf.
    OSError
        The file cannot be written.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastnet import TwoLayerNet
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(net, os.path.join(d, "net.npz"))
    ...     sorted(os.listdir(d))
    ['net.npz']
    """
    params = getattr(net, "params", None)
    if not isinstance(params, dict):
        raise TypeError(f"net must have a `params` dict, got {type(net).__name__}")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"net.params is missing {', '.join(missing)}")
    arrays = {k: np.asarray(params[k]) for k in PARAM_NAMES}
    sizes = _check_params(arrays, "net.params")
    with atomic_write(path, "wb") as f:
        np.savez(f, sizes=np.array(sizes, dtype=np.int64), **arrays)  # type: ignore[arg-type]


def load(path: str | os.PathLike[str]) -> TwoLayerNet:
    """Read a `.npz` file written by `save` and return a `fastnet.TwoLayerNet` holding those parameters.

    Raises ValueError naming the array when one is missing, mis-shaped, inconsistent with the others,
    not float32/float64, or holds NaN/inf.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by `save`.

    Returns
    -------
    TwoLayerNet
        A net of the file's sizes and dtype holding its parameters.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a parameter file, or a bad array (named in the message).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastnet import TwoLayerNet
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(net, os.path.join(d, "net.npz"))
    ...     again = load(os.path.join(d, "net.npz"))
    >>> again, bool(np.array_equal(again.params["W1"], net.params["W1"]))
    (TwoLayerNet(4, 3, 2, dtype=float64), True)
    """
    path = os.fspath(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable .npz parameter file ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a .npz parameter file (it holds a single array)")
    with npz:
        missing = [k for k in PARAM_NAMES if k not in npz.files]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)}")
        try:
            arrays = {k: npz[k] for k in PARAM_NAMES}
            sizes = npz["sizes"] if "sizes" in npz.files else None
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: corrupt array data ({exc})") from None
    shape_sizes = _check_params(arrays, path)
    if sizes is not None:
        if sizes.shape != (3,) or sizes.dtype.kind not in "iu" or tuple(int(s) for s in sizes) != shape_sizes:
            raise ValueError(
                f"{path}: array 'sizes' is {sizes.tolist()!r} but the parameter shapes give {list(shape_sizes)}"
            )

    from fastnet.network import TwoLayerNet

    d, h, c = shape_sizes
    net = TwoLayerNet(d, h, c, dtype=arrays["W1"].dtype, seed=0)
    for k in PARAM_NAMES:
        # In place, so the net keeps its own (contiguous, correctly typed) arrays.
        net.params[k][...] = arrays[k]
    return net


def _check_params(arrays: dict[str, NDArray[Any]], where: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Check the four parameter arrays for dtype, shape consistency and finiteness; return (D, H, C)."""
    for k in PARAM_NAMES:
        a = arrays[k]
        if a.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"{where}: array {k!r} must be float32 or float64, got {a.dtype}")
    dtypes = {arrays[k].dtype for k in PARAM_NAMES}
    if len(dtypes) != 1:
        raise ValueError(
            f"{where}: arrays must share one dtype, got "
            + ", ".join(f"{k}={arrays[k].dtype}" for k in PARAM_NAMES)
        )
    W1, b1, W2, b2 = (arrays[k] for k in PARAM_NAMES)
    if W1.ndim != 2 or 0 in W1.shape:
        raise ValueError(f"{where}: array 'W1' must have shape (D, H) with D, H >= 1, got {W1.shape}")
    d, h = W1.shape
    if b1.shape != (h,):
        raise ValueError(f"{where}: array 'b1' must have shape ({h},) to match W1 {W1.shape}, got {b1.shape}")
    if W2.ndim != 2 or W2.shape[0] != h or W2.shape[1] == 0:
        raise ValueError(f"{where}: array 'W2' must have shape ({h}, C) to match W1 {W1.shape}, got {W2.shape}")
    c = W2.shape[1]
    if b2.shape != (c,):
        raise ValueError(f"{where}: array 'b2' must have shape ({c},) to match W2 {W2.shape}, got {b2.shape}")
    for k in PARAM_NAMES:
        if not np.isfinite(arrays[k]).all():
            raise ValueError(f"{where}: array {k!r} holds NaN or infinite values")
    return int(d), int(h), int(c)
