"""Verified, bounded, atomic downloads of IDX files from a list of mirrors.

A download streams into a temporary file in the target directory, is checked against the
expected size and SHA-256 of its *decompressed IDX payload*, and only then is renamed
(os.replace) to its final name. Anything that fails on one mirror (HTTP error, refused
connection, stalled or cut-off transfer, a response larger than the file can be, an invalid or
corrupt gzip stream, a size or hash mismatch) removes the temporary file and moves on to the next
mirror, so no partial or unverified file is ever left under the final name; when every mirror
failed, `DownloadError` lists what each one did.

Bounds, all per file and per mirror:

- ``DEADLINE_S``: the whole transfer from one mirror must finish within this many seconds (a
  mirror that trickles bytes fails when it runs out), and no single connection attempt or read may
  stall longer than ``TIMEOUT_S``;
- at most ``size * (1 + SIZE_MARGIN) + SIZE_SLACK`` bytes are read from a mirror, where ``size``
  is the known payload size (a gzip container of the payload is never larger than that), and at
  most ``size + 1`` bytes are inflated when checking it.

Mirrors may be ``http://``, ``https://`` or ``file:`` URLs (a local copy, e.g. on a shared disk).
Temporary ``.<name>.*.part`` files that killed downloads left behind are removed when the same
file is next downloaded into that directory.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from fastnet.idx import GZIP_MAGIC
from fastnet.io import sweep_stale_temps, temp_prefix

# Seconds a connection attempt or a single read may stall before the mirror is given up.
TIMEOUT_S = 60.0
# Seconds one mirror gets to deliver a whole file.
DEADLINE_S = 900.0
# How much more than the payload size a mirror may send (gzip headers and incompressible data).
SIZE_MARGIN = 0.01
SIZE_SLACK = 256
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """No mirror delivered a verified copy of a file; `attempts` holds (url, reason) pairs.

    Parameters
    ----------
    name : str
        The file that could not be downloaded.
    attempts : sequence of (str, str)
        Each URL tried and why it failed.

    Examples
    --------
    >>> print(DownloadError("t10k-labels-idx1-ubyte", [("https://example.org/x.gz", "HTTP 404 Not Found")]))
    could not download t10k-labels-idx1-ubyte:
      https://example.org/x.gz: HTTP 404 Not Found
    """

    def __init__(self, name: str, attempts: Sequence[tuple[str, str]]):
        self.name = name
        self.attempts = list(attempts)
        lines = "\n".join(f"  {url}: {reason}" for url, reason in self.attempts)
        super().__init__(f"could not download {name}:\n{lines}")


class _MirrorFailure(Exception):
    """One mirror did not deliver; the message says what it did."""


def payload_sha256(path: str | os.PathLike[str], max_size: int | None = None) -> str:
    """SHA-256 hex digest of the file's IDX payload: its bytes after gzip decompression, or as-is if not gzip.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    max_size : int, optional
        Refuse a payload larger than this, after reading (inflating) at most ``max_size + 1`` bytes.

    Returns
    -------
    str
        The hex digest.

    Raises
    ------
    ValueError
        The gzip stream is invalid (bad header, data or CRC, cut off, trailing garbage) or the
        payload is larger than `max_size`.

    Examples
    --------
    A gzip file and its plain payload have the same digest:

    >>> import gzip, hashlib, os, tempfile
    >>> payload = bytes(range(16))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with open(os.path.join(d, "x"), "wb") as f:
    ...         _ = f.write(payload)
    ...     with gzip.open(os.path.join(d, "x.gz"), "wb") as f:
    ...         _ = f.write(payload)
    ...     digests = {payload_sha256(os.path.join(d, n)) for n in ("x", "x.gz")}
    >>> digests == {hashlib.sha256(payload).hexdigest()}
    True
    """
    return _payload_digest(path, max_size)[0]


def _payload_digest(path: str | os.PathLike[str], max_size: int | None) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        # GzipFile inflates chunk by chunk, follows concatenated members, and reports a cut-off
        # stream (EOFError), a bad CRC or trailing garbage (BadGzipFile) and bad data (zlib.error).
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
        try:
            while True:
                want = _CHUNK if max_size is None else min(_CHUNK, max_size + 1 - n)
                chunk = stream.read(want) if want > 0 else b""
                if not chunk:
                    break
                n += len(chunk)
                h.update(chunk)
                if max_size is not None and n > max_size:
                    what = "decompresses to" if compressed else "holds"
                    raise ValueError(f"payload too large: the file {what} more than the expected {max_size} bytes")
        except (OSError, EOFError, zlib.error) as exc:
            if not compressed:
                raise
            raise ValueError(f"not a valid gzip file ({type(exc).__name__}: {exc})") from None
        finally:
            if compressed:
                stream.close()
    return h.hexdigest(), n


def _file_url_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"file: URLs must name a file on this machine, got host {parts.netloc!r}")
    return urllib.request.url2pathname(urllib.parse.unquote(parts.path))


class _Watchdog:
    """Shuts down the sockets of one transfer when its deadline passes.

    Socket timeouts bound each read, not the whole transfer: a mirror that trickles a byte now and
    then (even in its status line or headers) would never time out. Shutting the socket down from a
    timer thread wakes up whatever read is blocked on it.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def watch(self, sock: Any) -> None:
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            self._shut(sock)

    def connection_class(self, http_class: Any) -> Callable[..., Any]:
        """Wrap an http.client connection class so that every socket it connects is watched."""
        def make(*args: Any, **kwargs: Any) -> Any:
            conn = http_class(*args, **kwargs)
            connect = conn.connect

            def watched_connect() -> None:
                connect()
                self.watch(conn.sock)

            conn.connect = watched_connect
            return conn
        return make

    def opener(self) -> urllib.request.OpenerDirector:
        watchdog = self

        class HTTPHandler(urllib.request.HTTPHandler):
            def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
                return super().do_open(watchdog.connection_class(http_class), req, **kwargs)

        class HTTPSHandler(urllib.request.HTTPSHandler):
            def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
                return super().do_open(watchdog.connection_class(http_class), req, **kwargs)

        return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _fetch_to(url: str, f: BinaryIO, label: str, max_bytes: int, deadline_s: float) -> int:
    """Copy `url` into `f`, reading at most `max_bytes` bytes within `deadline_s` seconds; return the count."""
    from tqdm.auto import tqdm  # core dependency; imported here so that reading files never needs it

    start = time.monotonic()
    received = 0

    def too_slow() -> _MirrorFailure:
        return _MirrorFailure(
            f"too slow: {received} bytes received in {time.monotonic() - start:.1f} s, "
            f"the deadline for one file is {deadline_s:g} s"
        )

    with _Watchdog(deadline_s) as watchdog:
        try:
            response: Any
            if urllib.parse.urlsplit(url).scheme == "file":
                response = open(_file_url_path(url), "rb")
                total = os.fstat(response.fileno()).st_size if os.path.isfile(response.name) else None
                read: Callable[[int], bytes] = response.read
            else:
                response = watchdog.opener().open(url, timeout=min(TIMEOUT_S, deadline_s))
                total = response.length
                read = getattr(response, "read1", response.read)
            with response:
                if total is not None and total > max_bytes:
                    raise _MirrorFailure(
                        f"the mirror announces {total} bytes, more than the {max_bytes} this file can take; "
                        f"not read"
                    )
                with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=None, leave=False,
                          file=sys.stderr) as bar:
                    while not watchdog.expired:
                        try:
                            chunk = read(min(_CHUNK, max_bytes + 1 - received))
                        except TimeoutError:
                            if watchdog.expired:
                                raise too_slow() from None
                            raise _MirrorFailure(
                                f"stalled: no data for {TIMEOUT_S:g} s after {received} bytes") from None
                        if not chunk:
                            break
                        f.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                        if received > max_bytes:
                            raise _MirrorFailure(
                                f"the mirror sent more than the {max_bytes} bytes this file can take; "
                                f"stopped reading"
                            )
        except _MirrorFailure:
            raise
        except Exception:
            # a read the watchdog cut short fails in whatever way the socket layer chooses
            if watchdog.expired:
                raise too_slow() from None
            raise
        if watchdog.expired:
            raise too_slow()
    if total is not None and received < total:
        raise _MirrorFailure(f"transfer cut off after {received} of {total} bytes")
    return received


def max_transfer(size: int, margin: float | None = None) -> int:
    """The most bytes read from a mirror for a file whose payload is `size` bytes.

    A gzip container of a payload is never much larger than the payload, so a mirror that sends
    more is broken or hostile and is cut off there.

    Parameters
    ----------
    size : int
        The payload's size in bytes.
    margin : float, optional
        Fraction of `size` allowed beyond it (default ``SIZE_MARGIN``); ``SIZE_SLACK`` bytes are
        always allowed on top, for gzip headers.

    Returns
    -------
    int
        The limit in bytes.

    Examples
    --------
    >>> max_transfer(7840016)
    7918673
    >>> max_transfer(1000, margin=0.0)
    1256
    """
    margin = SIZE_MARGIN if margin is None else margin
    return size + math.ceil(size * margin) + SIZE_SLACK


def download(name: str, directory: str | os.PathLike[str], urls: Sequence[str], sha256: str, size: int, *,
             deadline_s: float | None = None, size_margin: float | None = None) -> Path:
    """Download `name` from the first of `urls` that yields a payload of `size` bytes with SHA-256 `sha256`.

    The file is stored as `directory/name.gz` when the mirror served gzip data and as
    `directory/name` otherwise.

    Parameters
    ----------
    name : str
        The file's name (without ``.gz``).
    directory : str or os.PathLike
        Where to store it; created if missing.
    urls : sequence of str
        ``http://``, ``https://`` or ``file:`` URLs, tried in order.
    sha256 : str
        Hex SHA-256 of the decompressed payload.
    size : int
        Size in bytes of the decompressed payload.
    deadline_s : float, optional
        Seconds each mirror gets for the whole file (default ``DEADLINE_S``).
    size_margin : float, optional
        Fraction of `size` a mirror may send beyond it (default ``SIZE_MARGIN``).

    Returns
    -------
    pathlib.Path
        The path of the verified file.

    Raises
    ------
    DownloadError
        No mirror delivered; the message lists every URL tried and why it failed.
    ValueError, TypeError
        Bad arguments.
    OSError
        `directory` cannot be created or written.

    Examples
    --------
    A ``file:`` mirror, here a gzip file in a temporary directory; the first mirror does not exist:

    >>> import gzip, hashlib, os, tempfile
    >>> from pathlib import Path
    >>> payload = b"not really an IDX file"
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with gzip.open(os.path.join(d, "x.gz"), "wb") as f:
    ...         _ = f.write(payload)
    ...     urls = [Path(d, "missing.gz").as_uri(), Path(d, "x.gz").as_uri()]
    ...     path = download("x", os.path.join(d, "cache"), urls, hashlib.sha256(payload).hexdigest(),
    ...                     len(payload))
    ...     path.name, os.listdir(path.parent)
    ('x.gz', ['x.gz'])

    When no mirror delivers, the error says what each one did:

    >>> with tempfile.TemporaryDirectory() as d:
    ...     download("x", d, [Path(d, "missing.gz").as_uri()], "0" * 64, 10)
    Traceback (most recent call last):
    ...
    fastnet.download.DownloadError: could not download x:
      file:///.../missing.gz: FileNotFoundError: ...
    """
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ValueError(f"sha256 must be a 64-character hex digest, got {sha256!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be a non-negative int (the payload's size in bytes), got {size!r}")
    deadline_s = DEADLINE_S if deadline_s is None else deadline_s
    if not isinstance(deadline_s, (int, float)) or not 0 < deadline_s < math.inf:
        raise ValueError(f"deadline_s must be a positive number of seconds, got {deadline_s!r}")
    size_margin = SIZE_MARGIN if size_margin is None else size_margin
    if not isinstance(size_margin, (int, float)) or not 0 <= size_margin < math.inf:
        raise ValueError(f"size_margin must be a non-negative fraction, got {size_margin!r}")
    if isinstance(urls, (str, bytes)) or not urls:
        raise ValueError("urls must list at least one URL")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(directory, name, ".part")
    expected = sha256.lower()
    limit = max_transfer(size, size_margin)
    attempts: list[tuple[str, str]] = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(name), suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                _fetch_to(url, f, name, limit, float(deadline_s))
                f.flush()
                os.fsync(f.fileno())
            got, n = _payload_digest(tmp, size)
            if n != size:
                raise _MirrorFailure(f"payload is {n} bytes, expected {size}")
            if got != expected:
                raise _MirrorFailure(
                    f"SHA-256 mismatch of the decompressed IDX payload: expected {expected}, got {got}"
                )
            with open(tmp, "rb") as f:
                compressed = f.read(2) == GZIP_MAGIC
            final = directory / (name + ".gz" if compressed else name)
            os.replace(tmp, final)
            return final
        except _MirrorFailure as exc:
            attempts.append((url, str(exc)))
        except urllib.error.HTTPError as exc:
            attempts.append((url, f"HTTP {exc.code} {exc.reason}"))
        except urllib.error.URLError as exc:
            attempts.append((url, f"cannot connect ({exc.reason})"))
        except ValueError as exc:
            # an invalid gzip stream, a payload larger than the file can be, an unusable URL
            attempts.append((url, str(exc)))
        except Exception as exc:  # noqa: BLE001 - any other failure of this mirror moves on to the next
            # timeouts, resets, cut-off transfers (IncompleteRead), protocol errors, missing local files
            attempts.append((url, f"{type(exc).__name__}: {exc}"))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(name, attempts)


def mirror_urls(mirrors: Sequence[str], filename: str) -> list[str]:
    """Join each mirror base URL with `filename` -> list of full URLs, in the mirrors' order.

    Parameters
    ----------
    mirrors : sequence of str
        Base URLs, with or without a trailing slash.
    filename : str
        The file's name.

    Returns
    -------
    list of str

    Examples
    --------
    >>> mirror_urls(["https://a.example/mnist", "https://b.example/data/"], "x.gz")
    ['https://a.example/mnist/x.gz', 'https://b.example/data/x.gz']
    """
    return [urllib.parse.urljoin(m if m.endswith("/") else m + "/", filename) for m in mirrors]
