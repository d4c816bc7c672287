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
    """No mirror delivered a verified copy of a file; `attempts` holds (url, reason) pairs."""

    def __init__(self, name: str, attempts: Sequence[tuple[str, str]]):
        self.name = name
        self.attempts = list(attempts)
        lines = "\n".join(f"  {url}: {reason}" for url, reason in self.attempts)
        super().__init__(f"could not download {name}:\n{lines}")


def payload_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of the file's IDX payload: its bytes after gzip decompression, or as-is if not gzip."""
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
    """Join each mirror base URL with `filename` -> list of full URLs, in the mirrors' order."""
    return [urllib.parse.urljoin(m if m.endswith("/") else m + "/", filename) for m in mirrors]
