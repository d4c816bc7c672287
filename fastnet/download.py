"""Verified, atomic downloads of IDX files from a list of mirrors.

A download streams into a temporary file in the target directory, is checked against the
expected SHA-256 of its *decompressed IDX payload*, and only then is renamed (os.replace) to its
final name. Anything that fails (HTTP error, refused connection, cut-off transfer, invalid gzip,
hash mismatch) removes the temporary file, so no partial or unverified file is ever left under
the final name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from fastnet.idx import GZIP_MAGIC

# Seconds a connection or a single read may stall before the mirror is given up.
TIMEOUT_S = 60
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


def payload_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of the file's IDX payload: its bytes after gzip decompression, or as-is if not gzip.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        64 hexadecimal digits.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It starts like gzip but the compressed stream is cut off.

    Examples
    --------
    >>> import gzip, hashlib, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "data.gz")
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(b"payload")
    >>> payload_sha256(path) == hashlib.sha256(b"payload").hexdigest()
    True
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
        f.seek(0)
        if not compressed:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
            return h.hexdigest()
        # zlib rather than the gzip module so that a truncated stream is detected reliably
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(d.decompress(chunk))
            while d.eof and d.unused_data:
                # concatenated gzip members (allowed by the format) continue the payload
                rest = d.unused_data
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                h.update(d.decompress(rest))
        h.update(d.flush())
        if not d.eof:
            raise ValueError("not a valid gzip file (compressed stream ends early)")
        return h.hexdigest()


def _fetch_to(url: str, f: BinaryIO, label: str) -> None:
    from tqdm.auto import tqdm  # core dependency; imported here so that reading files never needs it

    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        total = response.length
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=None, leave=False,
                  file=sys.stderr) as bar:
            received = 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:
            raise OSError(f"transfer cut off after {received} of {total} bytes")


def download(name: str, directory: str | os.PathLike[str], urls: Sequence[str], sha256: str) -> Path:
    """Download `name` from the first of `urls` that yields a payload with SHA-256 `sha256`; return its path.

    The file is stored as `directory/name.gz` when the mirror served gzip data and as
    `directory/name` otherwise. Raises DownloadError listing every URL tried and why it failed.

    Parameters
    ----------
    name : str
        The file's name (without ``.gz``).
    directory : str or os.PathLike
        Where to store it (created if needed).
    urls : sequence of str
        Where to fetch it from, tried in order (``http://``, ``https://`` or ``file:``).
    sha256 : str
        SHA-256 of the decompressed payload.

    Returns
    -------
    pathlib.Path
        The stored file.

    Raises
    ------
    DownloadError
        No URL delivered a file with that payload.
    ValueError
        A malformed digest or no URLs.

    Examples
    --------
    Every failed attempt is listed, and nothing is left in the directory:

    >>> import os, tempfile
    >>> target = tempfile.mkdtemp()
    >>> download("labels", target, ["http://127.0.0.1:9/labels.gz"], "0" * 64)
    Traceback (most recent call last):
    ...
    fastnet.download.DownloadError: could not download labels:
      http://127.0.0.1:9/labels.gz: cannot connect (...)
    >>> os.listdir(target)
    []
    """
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ValueError(f"sha256 must be a 64-character hex digest, got {sha256!r}")
    if not urls:
        raise ValueError("urls must list at least one URL")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    expected = sha256.lower()
    attempts: list[tuple[str, str]] = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                _fetch_to(url, f, name)
                f.flush()
                os.fsync(f.fileno())
            try:
                got = payload_sha256(tmp)
            except ValueError as exc:
                attempts.append((url, str(exc)))
                continue
            if got != expected:
                attempts.append(
                    (url, f"SHA-256 mismatch of the decompressed IDX payload: expected {expected}, got {got}")
                )
                continue
            with open(tmp, "rb") as f:
                compressed = f.read(2) == GZIP_MAGIC
            final = directory / (name + ".gz" if compressed else name)
            os.replace(tmp, final)
            return final
        except urllib.error.HTTPError as exc:
            attempts.append((url, f"HTTP {exc.code} {exc.reason}"))
        except urllib.error.URLError as exc:
            attempts.append((url, f"cannot connect ({exc.reason})"))
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # timeouts, resets, cut-off transfers (IncompleteRead), urllib's ValueError for an unusable URL
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
