"""Atomic file writes, and saving/loading a TwoLayerNet's parameters as a `.npz` file."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import socket
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fastnet._typing import NDArray

if TYPE_CHECKING:
    from fastnet.network import TwoLayerNet

PARAM_NAMES = ("W1", "b1", "W2", "b2")
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_UMASK_LOCK = threading.Lock()


# Temporary files are named ".<target>.<host>-<pid>-<random><suffix>": the host tag and the pid
# let a later writer tell a file left by a killed process (same host, pid gone) from one that a
# live writer, possibly on another machine sharing the directory, is still filling.
_HOST_TAG = hashlib.sha1(socket.gethostname().encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[:6]
# Files of the naming used before the pid was part of it are swept once they are this old.
LEGACY_STALE_S = 3600.0


def temp_prefix(target_name: str) -> str:
    """Prefix of this process's temporary files for `target_name` (pass to tempfile.mkstemp).

    The prefix names this host and process, so that `sweep_stale_temps` can later tell a file a
    killed writer left behind from one a live writer is still filling.

    Parameters
    ----------
    target_name : str
        The base name of the file the temporary one will replace.

    Returns
    -------
    str
        ``.<target_name>.<host>-<pid>-``: a hidden name, next to the target.

    Examples
    --------
    >>> import os
    >>> prefix = temp_prefix("params.npz")
    >>> prefix.startswith(".params.npz."), prefix.endswith(f"-{os.getpid()}-")
    (True, True)
    """
    return f".{target_name}.{_HOST_TAG}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        # PermissionError: the pid exists but belongs to another user; the others: not a pid we can ask
        # about, so assume it lives rather than delete something in use.
        return pid > 0
    return True


def sweep_stale_temps(directory: str | os.PathLike[str], target_name: str, suffix: str) -> list[str]:
    """Remove the temporary files for `target_name` in `directory` whose writer is gone; return their names.

    Only files of fastnet's own naming are considered: ``.<target_name>.<host>-<pid>-<8 chars><suffix>``
    written on this host by a process that no longer exists, and files of the older naming
    ``.<target_name>.<8 chars><suffix>`` untouched for ``LEGACY_STALE_S`` seconds. Files that vanish or
    cannot be removed meanwhile are skipped: sweeping is housekeeping and never makes a write fail.

    Parameters
    ----------
    directory : str or os.PathLike
        The directory the target file lives in.
    target_name : str
        The base name of the target file.
    suffix : str
        The suffix of the temporary files (``".tmp"``, ``".part"``).

    Returns
    -------
    list of str
        The names of the files removed.

    Examples
    --------
    A file of this process (which is alive) stays; one of the same naming whose process is gone is
    removed:

    >>> import os, subprocess, sys, tempfile
    >>> gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
    ...                       capture_output=True, text=True).stdout.strip()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     fd, live = tempfile.mkstemp(prefix=temp_prefix("a.txt"), suffix=".tmp", dir=d)
    ...     os.close(fd)
    ...     dead = os.path.basename(live).replace(f"-{os.getpid()}-", f"-{gone}-")
    ...     open(os.path.join(d, dead), "w").close()
    ...     removed = sweep_stale_temps(d, "a.txt", ".tmp")
    ...     removed == [dead], os.listdir(d) == [os.path.basename(live)]
    (True, True)
    """
    pattern = re.compile(
        re.escape(f".{target_name}.") + r"(?:([0-9a-f]{6})-(\d{1,10})-)?[a-z0-9_]{8}" + re.escape(suffix) + r"\Z"
    )
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    now = time.time()
    for entry in names:
        m = pattern.match(entry)
        if m is None:
            continue
        path = os.path.join(directory, entry)
        host, pid = m.group(1), m.group(2)
        if host is None:
            try:
                stale = now - os.lstat(path).st_mtime > LEGACY_STALE_S
            except OSError:
                continue
        else:
            stale = host == _HOST_TAG and not _pid_alive(int(pid))
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *,
                 encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to `path` for writing; on success flush, fsync and rename it to `path`.

    If the body raises, the temporary file is removed and `path` is left as it was (absent or the old
    file), so a reader never sees a half-written file under the final name. When `path` is a symbolic
    link, the file it points to is replaced (the link stays a link), as a plain ``open(path, "w")``
    would write through it. Temporary files that killed writers left for the same target are removed
    first (see `sweep_stale_temps`), so they do not pile up.

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
    if os.path.islink(path):
        # Replacing the link itself would silently detach whatever else points at its target.
        path = os.path.realpath(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    sweep_stale_temps(directory, base, ".tmp")
    # Same directory as the target so that os.replace is a rename within one filesystem.
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(base), suffix=".tmp", dir=directory)
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


def save(net: Any, path: str | os.PathLike[str]) -> None:
    """Write the net's parameters W1 (D,H), b1 (H,), W2 (H,C), b2 (C,), its sizes (D,H,C) and its loss
    to a `.npz` file, atomically.

    The file is written exactly at `path` (no `.npz` suffix is added). When `path` is a symbolic link,
    the file it points to is replaced and the link kept.

    Parameters
    ----------
    net : TwoLayerNet
        The net to save; its ``params`` must match its declared ``input_size``, ``hidden_size``,
        ``output_size`` and ``dtype``.
    path : str or os.PathLike
        Where to write.

    Raises
    ------
    TypeError
        `net` has no ``params`` dict, or a parameter's dtype is not the net's.
    ValueError
        A parameter is missing, has a shape other than the net's sizes imply, or holds NaN/inf.

    Examples
    --------
    >>> import fastnet, tempfile, os
    >>> net = fastnet.TwoLayerNet(4, 3, 2, seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     fastnet.save(net, os.path.join(d, "p.npz"))
    ...     fastnet.load(os.path.join(d, "p.npz")).params["W1"].shape
    (4, 3)
    """
    params = getattr(net, "params", None)
    if not isinstance(params, dict):
        raise TypeError(f"net must have a `params` dict, got {type(net).__name__}")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"net.params is missing {', '.join(missing)}")
    arrays = {k: np.asarray(params[k]) for k in PARAM_NAMES}
    _check_declared(net, arrays)
    sizes = _check_layout({k: a.shape for k, a in arrays.items()}, {k: a.dtype for k, a in arrays.items()},
                          "net.params")
    _check_finite(arrays, "net.params")
    with atomic_write(path, "wb") as f:
        # numpy's stubs type **kwds of savez as its keyword options; they are arrays to store here
        savez: Any = np.savez
        savez(f, sizes=np.array(sizes, dtype=np.int64),
              loss=np.array(getattr(net, "loss_name", "cross_entropy")), **arrays)


def _check_declared(net: Any, arrays: dict[str, NDArray[Any]]) -> None:
    """Refuse params that disagree with the sizes and dtype the net says it has."""
    declared: list[int] = []
    for attr in ("input_size", "hidden_size", "output_size"):
        v = getattr(net, attr, None)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            return  # not a net that declares its sizes: the arrays' own consistency is all there is
        declared.append(int(v))
    d, h, c = declared
    shapes = {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,)}
    for k in PARAM_NAMES:
        if arrays[k].shape != shapes[k]:
            raise ValueError(
                f"net.params[{k!r}] has shape {arrays[k].shape}, but the net is a {d}-{h}-{c} net, "
                f"whose {k} has shape {shapes[k]}"
            )
    dtype = getattr(net, "dtype", None)
    if isinstance(dtype, np.dtype):
        for k in PARAM_NAMES:
            if arrays[k].dtype != dtype:
                raise TypeError(f"net.params[{k!r}] has dtype {arrays[k].dtype}, but the net's dtype is {dtype}")


# A zip member that inflates to more than this many times its compressed size (plus
# _NPZ_RATIO_SLACK bytes) is refused before it is read: parameters are noise-like floats that
# hardly compress (fastnet writes them uncompressed), so such a ratio means a zip bomb.
MAX_NPZ_RATIO = 100
_NPZ_RATIO_SLACK = 1 << 20
_NPY_MAX_HEADER = 10000
_NPY_MAGIC = b"\x93NUMPY"
# NotImplementedError: zipfile's answer to a member whose header names a zip version or a
# compression method it does not know, as a damaged byte there does.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, SyntaxError, NotImplementedError)


def load(path: str | os.PathLike[str]) -> Any:
    """Read a `.npz` file written by `save` and return a `fastnet.TwoLayerNet` holding those parameters.

    The array headers (shape, dtype) are read and checked against each other and against the zip
    entries that hold them before any array data is read, so a file that declares huge or
    inconsistent arrays is refused without allocating them. Pickled (object) arrays are never loaded.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    TwoLayerNet
        A net of the file's sizes and dtype holding its parameters.

    Raises
    ------
    FileNotFoundError
        `path` does not exist.
    ValueError
        The file is empty, not a ``.npz`` archive, or an array is missing, mis-shaped, inconsistent
        with the others or with its zip entry, compressed beyond ``MAX_NPZ_RATIO``, not
        float32/float64, corrupt, or holds NaN/inf; the message names the file and the array.

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
        if os.path.getsize(path) == 0:
            raise ValueError(f"{path}: empty file, not a .npz parameter file")
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (OSError, zipfile.BadZipFile, NotImplementedError) as exc:
        with contextlib.suppress(OSError):
            with open(path, "rb") as f:
                if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                    raise ValueError(f"{path}: not a .npz parameter file (it holds a single array)") from None
        raise ValueError(f"{path}: not a readable .npz parameter file ({exc})") from None
    with zf:
        members = {}
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key not in members or info.filename.endswith(".npy"):
                members[key] = info
        missing = [k for k in PARAM_NAMES if k not in members]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)}")
        keys = [*PARAM_NAMES, "sizes"] if "sizes" in members else list(PARAM_NAMES)
        headers = {k: _npy_header(zf, members[k], path, k) for k in keys}
        shape_sizes = _check_layout({k: headers[k][0] for k in PARAM_NAMES},
                                    {k: headers[k][1] for k in PARAM_NAMES}, path)
        for k in keys:
            _check_ratio(members[k], path, k)
        if "sizes" in headers:
            shape, dtype = headers["sizes"]
            if shape != (3,) or dtype.kind not in "iu":
                raise ValueError(f"{path}: array 'sizes' must hold 3 integers (D, H, C), got shape {shape} "
                                 f"of {dtype}")
            sizes = _read_npy(zf, members["sizes"], path, "sizes")
            if tuple(int(s) for s in sizes) != shape_sizes:
                raise ValueError(
                    f"{path}: array 'sizes' is {sizes.tolist()!r} but the parameter shapes give {list(shape_sizes)}"
                )
        arrays = {k: _read_npy(zf, members[k], path, k) for k in PARAM_NAMES}
        # files written before the loss was recorded hold cross-entropy nets
        loss = "cross_entropy"
        if "loss" in members:
            shape, dtype = _npy_header(zf, members["loss"], path, "loss")
            if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * 64:
                raise ValueError(f"{path}: array 'loss' must be one short string, got shape {shape} of {dtype}")
            loss = str(_read_npy(zf, members["loss"], path, "loss"))
    _check_finite(arrays, path)

    from fastnet.network import LOSSES, TwoLayerNet

    if loss not in LOSSES:
        raise ValueError(f"{path}: array 'loss' must name one of {', '.join(LOSSES)}, got {loss!r}")
    d, h, c = shape_sizes
    net_class: Any = TwoLayerNet
    net = net_class(d, h, c, dtype=arrays["W1"].dtype, seed=0, loss=loss)
    for k in PARAM_NAMES:
        # In place, so the net keeps its own (contiguous, correctly typed) arrays.
        net.params[k][...] = arrays[k]
    return net


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                key: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """(shape, dtype) from the .npy header of one zip entry, checked against the entry's declared size."""
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_NPY_MAX_HEADER)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_NPY_MAX_HEADER)
            else:
                raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
            offset = f.tell()
    except _READ_ERRORS as exc:
        raise ValueError(f"{where}: array {key!r} is corrupt or has no readable .npy header ({exc})") from None
    shape = tuple(int(n) for n in shape)
    if dtype.hasobject:
        raise ValueError(f"{where}: array {key!r} holds Python objects ({dtype}); fastnet never unpickles")
    # Python integers: a header may declare sizes whose product overflows int64.
    nbytes = math.prod(shape) * dtype.itemsize
    held = info.file_size - offset
    if nbytes != held:
        raise ValueError(
            f"{where}: array {key!r} declares shape {shape} of {dtype} ({nbytes} bytes) but its zip entry "
            f"holds {held} bytes of data"
        )
    return shape, dtype


def _check_ratio(info: zipfile.ZipInfo, where: str, key: str) -> None:
    if info.compress_type != zipfile.ZIP_STORED and \
            info.file_size > MAX_NPZ_RATIO * info.compress_size + _NPZ_RATIO_SLACK:
        raise ValueError(
            f"{where}: array {key!r} would inflate from {info.compress_size} to {info.file_size} bytes, "
            f"more than {MAX_NPZ_RATIO} times; refusing what looks like a zip bomb"
        )


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, key: str) -> NDArray[Any]:
    try:
        with zf.open(info) as f:
            return np.asarray(np.lib.format.read_array(f, allow_pickle=False, max_header_size=_NPY_MAX_HEADER))
    except _READ_ERRORS as exc:
        raise ValueError(f"{where}: corrupt data in array {key!r} ({exc})") from None


def _check_layout(shapes: dict[str, tuple[int, ...]], dtypes: dict[str, np.dtype[Any]],
                  where: str) -> tuple[int, int, int]:
    """Check the four parameters' dtypes and shapes for consistency; return (D, H, C)."""
    for k in PARAM_NAMES:
        if dtypes[k] not in _FLOAT_DTYPES:
            raise ValueError(f"{where}: array {k!r} must be float32 or float64, got {dtypes[k]}")
    if len(set(dtypes.values())) != 1:
        raise ValueError(
            f"{where}: arrays must share one dtype, got "
            + ", ".join(f"{k}={dtypes[k]}" for k in PARAM_NAMES)
        )
    W1, b1, W2, b2 = (tuple(shapes[k]) for k in PARAM_NAMES)
    if len(W1) != 2 or 0 in W1:
        raise ValueError(f"{where}: array 'W1' must have shape (D, H) with D, H >= 1, got {W1}")
    d, h = W1
    if b1 != (h,):
        raise ValueError(f"{where}: array 'b1' must have shape ({h},) to match W1 {W1}, got {b1}")
    if len(W2) != 2 or W2[0] != h or W2[1] == 0:
        raise ValueError(f"{where}: array 'W2' must have shape ({h}, C) to match W1 {W1}, got {W2}")
    c = W2[1]
    if b2 != (c,):
        raise ValueError(f"{where}: array 'b2' must have shape ({c},) to match W2 {W2}, got {b2}")
    return int(d), int(h), int(c)


def _check_finite(arrays: dict[str, NDArray[Any]], where: str) -> None:
    for k in PARAM_NAMES:
        if not np.isfinite(arrays[k]).all():
            raise ValueError(f"{where}: array {k!r} holds NaN or infinite values")
