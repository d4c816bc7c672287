"""Handwritten-digit data sets: MNIST (read from IDX files, downloaded when missing) and scikit-learn's 8x8 digits.

Every loader returns the book's structure ``((x_train, t_train), (x_test, t_test))``:

- ``normalize=True``: images as float32 in [0, 1]; ``False``: the raw uint8 pixel values.
- ``flatten=True``: images as ``(N, rows*cols)``; ``False``: ``(N, 1, rows, cols)``.
- ``one_hot_label=True``: labels as float32 ``(N, 10)`` one-hot rows; ``False``: uint8 class indices ``(N,)``.

Where MNIST is looked for, in order: the ``path`` argument (only there when given); otherwise the
directory in ``$FASTNET_DATA`` (when set) and then the per-user cache directory
(``$XDG_CACHE_HOME/fastnet/mnist``, or ``~/.cache/fastnet/mnist``). Each of the four standard files
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` may be stored uncompressed or gzip-compressed with a ``.gz`` suffix
(the uncompressed one is preferred when both exist).

Missing files are downloaded (when ``download=True``) into the first directory of that list,
trying each mirror in order: the ``mirrors`` argument, else the comma-separated URLs in
``$FASTNET_MNIST_MIRRORS``, else ``MNIST_MIRRORS``. The file fetched from a mirror is
``<mirror>/<name>.gz``. Mirrors may be ``http://``, ``https://`` or absolute ``file:`` URLs (a
local copy: ``file:///srv/mnist/``). Each mirror gets ``fastnet.download.DEADLINE_S`` seconds per
file and may send at most about the payload size in ``MNIST_SIZES``; any failure of one mirror
(HTTP or network error, stall, oversized or corrupt response, hash mismatch) moves on to the next,
and the error raised when all fail lists what each did.

Verification: each download must match the SHA-256 in ``MNIST_SHA256``, which is the digest of the
*decompressed IDX payload*, not of the ``.gz`` container. The same data re-compressed with other
gzip settings (or served uncompressed) yields different container bytes but the same payload, so
the payload digest is the one that identifies MNIST; it is checked after downloading and before the
file is renamed into place. Files that are already on disk are not hashed on each load, only
validated structurally (IDX magic, header sizes, image/label counts).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path

from typing import Any

import numpy as np

from fastnet._typing import NDArray
from fastnet.download import DownloadError, download as _download, mirror_urls
from fastnet.idx import read_mnist_images, read_mnist_labels

__all__ = [
    "DATASET_NAMES",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "MNIST_SIZES",
    "MNISTNotFoundError",
    "default_cache_dir",
    "load",
    "load_digits",
    "load_mnist",
    "load_mnist_test_split",
    "mnist_search_dirs",
]

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
MNIST_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of each file's decompressed IDX payload (the canonical .gz files decompress to these).
# Looked up at download time, so tests may substitute their own entries.
MNIST_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",  # 47,040,016 bytes
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",  # 60,008 bytes
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",  # 7,840,016 bytes
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",  # 10,008 bytes
}

# Size in bytes of each decompressed IDX payload: a download is read up to about this size and
# inflated no further. Looked up at download time, like MNIST_SHA256.
MNIST_SIZES = {
    TRAIN_IMAGES: 47_040_016,
    TRAIN_LABELS: 60_008,
    TEST_IMAGES: 7_840_016,
    TEST_LABELS: 10_008,
}

# Public copies of the original files (yann.lecun.com itself now refuses automated downloads):
# PyTorch's (torchvision) and the CVDF one that TensorFlow/Keras use.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

MIRRORS_ENV = "FASTNET_MNIST_MIRRORS"
DATA_ENV = "FASTNET_DATA"

DATASET_NAMES = ("digits", "mnist", "mnist-test")
NUM_CLASSES = 10

#: What every loader returns: ((x_train, t_train), (x_test, t_test)).
Split = tuple[tuple[NDArray[Any], NDArray[Any]], tuple[NDArray[Any], NDArray[Any]]]
#: A directory given as a string or a path object.
PathArg = str | os.PathLike[str]


class MNISTNotFoundError(FileNotFoundError):
    """MNIST files are missing and could not be downloaded; the message says which, where, and how to fix it.

    The message gives the advice of the Python API (``path=``, ``download=``, ``mirrors=``);
    `cli_message` words the same facts for the ``fastnet`` command (``--data DIR``,
    ``FASTNET_DATA``, ``FASTNET_MNIST_MIRRORS``).

    Parameters
    ----------
    missing : iterable of str
        Names of the files that were not found.
    searched : iterable of (Path, str)
        The directories looked in, each with where it came from.
    failure : object, optional
        Why the download failed (an exception or a message), if one was tried.
    download : bool, default True
        Whether downloading was allowed.

    Examples
    --------
    >>> from pathlib import Path
    >>> err = MNISTNotFoundError(["t10k-labels-idx1-ubyte"], [(Path("/data"), "path argument")],
    ...                          download=False)
    >>> print(str(err).splitlines()[0])
    MNIST files not found: t10k-labels-idx1-ubyte (each as NAME or NAME.gz).
    >>> "--data DIR" in err.cli_message()
    True
    """

    def __init__(self, missing: Iterable[str], searched: Iterable[tuple[Path, str]],
                 failure: object = None, download: bool = True) -> None:
        self.missing = list(missing)
        self.searched = list(searched)
        self.failure = failure
        self.download = download
        super().__init__(self._message(cli=False))

    def cli_message(self) -> str:
        """The same report, with the advice a ``fastnet`` command-line user can follow.

        Returns
        -------
        str
            Which files are missing, where they were looked for, why downloading failed, and
            how to provide them with ``--data DIR``, ``FASTNET_DATA`` or ``FASTNET_MNIST_MIRRORS``.

        Examples
        --------
        >>> from pathlib import Path
        >>> err = MNISTNotFoundError(["t10k-labels-idx1-ubyte"], [(Path("/data"), "$FASTNET_DATA")])
        >>> print(err.cli_message().splitlines()[-1])  # doctest: +ELLIPSIS
        To provide them: put the files in /data, or pass --data DIR ..., or set FASTNET_DATA to ...
        """
        return self._message(cli=True)

    def _message(self, cli: bool) -> str:
        lines = [
            "MNIST files not found: " + ", ".join(self.missing) + " (each as NAME or NAME.gz).",
            "Looked in:",
            *(f"  {d}  ({'--data' if cli and why == 'path argument' else why})" for d, why in self.searched),
        ]
        if not self.download:
            lines.append("A --data directory is only read, never downloaded into." if cli
                         else "Downloading was disabled (download=False).")
        elif self.failure is not None:
            lines.append("Download failed:")
            lines.extend("  " + line for line in str(self.failure).splitlines())
        target = self.searched[0][0]
        if cli:
            lines.append(
                f"To provide them: put the files in {target}, or pass --data DIR for a directory holding them, "
                f"or set {DATA_ENV} to such a directory; with network access, --data mnist or --data mnist-test "
                f"downloads them (set {MIRRORS_ENV}=URL1,URL2 to use other mirrors)."
            )
        else:
            lines.append(
                f"To provide them: put the files in {target}, or set {DATA_ENV} to a directory holding them, "
                f"or pass path=DIR; with network access, download=True fetches them from the mirrors "
                f"(set {MIRRORS_ENV}=URL1,URL2 or pass mirrors=[...] to use others)."
            )
        return "\n".join(lines)


def default_cache_dir() -> Path:
    """The per-user directory MNIST is cached in: $XDG_CACHE_HOME/fastnet/mnist or ~/.cache/fastnet/mnist.

    Returns
    -------
    pathlib.Path
        The directory (it may not exist yet).

    Examples
    --------
    >>> default_cache_dir().parts[-2:]
    ('fastnet', 'mnist')
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "fastnet" / "mnist"


def mnist_search_dirs(path: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
    """Directories searched for MNIST, in order, each with where it came from; downloads go to the first.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory given by the caller: then it is the only one searched.

    Returns
    -------
    list of (pathlib.Path, str)
        Each directory with its origin: ``"path argument"``, ``"$FASTNET_DATA"`` or
        ``"per-user cache"``.

    Examples
    --------
    >>> mnist_search_dirs("/data/mnist")
    [(PosixPath('/data/mnist'), 'path argument')]
    """
    if path is not None:
        return [(Path(path).expanduser(), "path argument")]
    dirs = []
    env = os.environ.get(DATA_ENV, "")
    if env:
        dirs.append((Path(env).expanduser(), f"${DATA_ENV}"))
    dirs.append((default_cache_dir(), "per-user cache"))
    return dirs


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_path(path: object) -> PathArg | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming a directory, got {type(path).__name__}")
    if os.fspath(path) == "":
        raise ValueError("path must name a directory, got an empty string")
    return path


def _resolve_mirrors(mirrors: Sequence[str] | None) -> list[str]:
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV, "")
        if env.strip():
            mirrors, source = [m.strip() for m in env.split(",") if m.strip()], f"${MIRRORS_ENV}"
        else:
            mirrors, source = list(MNIST_MIRRORS), "MNIST_MIRRORS"
    else:
        source = "mirrors"
        if isinstance(mirrors, (str, bytes)) or not isinstance(mirrors, Sequence):
            raise TypeError(f"mirrors must be a list of URL strings, got {type(mirrors).__name__}")
        mirrors = list(mirrors)
    if not mirrors:
        raise ValueError(f"{source} must list at least one mirror URL")
    for m in mirrors:
        if not isinstance(m, str) or not m.startswith(("http://", "https://", "file:")):
            raise ValueError(f"{source} entries must be http://, https:// or file: URLs, got {m!r}")
        if m.startswith("file:"):
            parts = urllib.parse.urlsplit(m)
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise ValueError(
                    f"{source} entries that are file: URLs must name an absolute directory on this machine "
                    f"(file:///path/to/mirror/), got {m!r}"
                )
    return mirrors


def _find(name: str, dirs: list[tuple[Path, str]]) -> Path | None:
    for d, _ in dirs:
        for candidate in (d / name, d / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _locate(names: Sequence[str], path: PathArg | None, download: bool,
            mirrors: Sequence[str] | None) -> dict[str, Path]:
    """Find each of `names` in the search directories, downloading the missing ones when allowed."""
    dirs = mnist_search_dirs(path)
    found = {name: _find(name, dirs) for name in names}
    failure: DownloadError | str | None = None
    missing = [name for name in names if found[name] is None]
    if missing and download and mirrors is not None:
        target = dirs[0][0]
        for name in missing:
            try:
                found[name] = _download(name, target, mirror_urls(mirrors, name + ".gz"), MNIST_SHA256[name],
                                        MNIST_SIZES[name])
            except DownloadError as exc:
                # stop at the first file no mirror could deliver: the rest would fail the same way
                failure = exc
                break
            except OSError as exc:
                # e.g. the target directory cannot be created or written
                failure = f"cannot write to {target}: {exc}"
                break
    still = [name for name in names if found[name] is None]
    if still:
        raise MNISTNotFoundError(still, dirs, failure, download)
    return {name: p for name, p in found.items() if p is not None}


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_mnist_images(images_path)
    labels = read_mnist_labels(labels_path, NUM_CLASSES)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    return images, labels


def _format(images: np.ndarray, labels: np.ndarray, normalize: bool, flatten: bool, one_hot_label: bool,
            max_value: float) -> tuple[NDArray[Any], NDArray[Any]]:
    """Images (N, rows, cols) and uint8 labels (N,) -> (x, t) in the layout the flags ask for."""
    n = images.shape[0]
    if normalize:
        x: NDArray[Any] = images.astype(np.float32)
        x /= np.float32(max_value)
    else:
        x = np.ascontiguousarray(images, dtype=np.uint8)
    x = x.reshape(n, -1) if flatten else x.reshape(n, 1, *images.shape[1:])
    if one_hot_label:
        t: NDArray[Any] = np.zeros((n, NUM_CLASSES), dtype=np.float32)
        t[np.arange(n), labels] = 1.0
    else:
        t = np.ascontiguousarray(labels, dtype=np.uint8)
    return x, t


def _check_common(normalize: object, flatten: object, one_hot_label: object, path: object,
                  download: object) -> tuple[bool, bool, bool, PathArg | None, bool]:
    return (
        _check_flag(normalize, "normalize"),
        _check_flag(flatten, "flatten"),
        _check_flag(one_hot_label, "one_hot_label"),
        _check_path(path),
        _check_flag(download, "download"),
    )


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *,
               path: PathArg | None = None, download: bool = True, mirrors: Sequence[str] | None = None) -> Split:
    """Load MNIST -> ((x_train (60000, 784), t_train (60000,)), (x_test (10000, 784), t_test (10000,))).

    The book's ``load_mnist``; shapes and dtypes follow the flags (see the module docstring, which
    also describes where the files are looked for, how they are downloaded and verified).
    Raises MNISTNotFoundError (a FileNotFoundError) when files are missing and cannot be
    downloaded, and ValueError naming the file when one is malformed.

    Parameters
    ----------
    normalize : bool, default True
        float32 pixels in [0, 1] instead of uint8 0..255.
    flatten : bool, default True
        Rows of 784 pixels instead of (N, 1, 28, 28).
    one_hot_label : bool, default False
        float32 one-hot rows (N, 10) instead of uint8 class indices.
    path : str or os.PathLike, optional
        The only directory to look in (and download into); default: ``$FASTNET_DATA``, then the
        per-user cache.
    download : bool, default True
        Download missing files from the mirrors.
    mirrors : sequence of str, optional
        Base URLs to download from; default ``$FASTNET_MNIST_MIRRORS`` or `MNIST_MIRRORS`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))
        60,000 training and 10,000 test images with their labels.

    Raises
    ------
    MNISTNotFoundError
        Files are missing and could not be downloaded.
    TypeError, ValueError
        A bad argument, or a malformed file (named in the message).

    Examples
    --------
    A directory with tiny stand-ins for the four files (6 training and 4 test images):

    >>> import os, shutil, tempfile
    >>> import numpy as np
    >>> def write_idx(path, array):  # magic 0x0000 08 NN, NN big-endian sizes, then the bytes
    ...     sizes = b"".join(n.to_bytes(4, "big") for n in array.shape)
    ...     with open(path, "wb") as f:
    ...         f.write(bytes([0, 0, 8, array.ndim]) + sizes + array.astype(np.uint8).tobytes())
    >>> d = tempfile.mkdtemp()
    >>> for prefix, n in (("train", 6), ("t10k", 4)):
    ...     write_idx(os.path.join(d, prefix + "-images-idx3-ubyte"), np.full((n, 28, 28), 255))
    ...     write_idx(os.path.join(d, prefix + "-labels-idx1-ubyte"), np.arange(n))
    >>> (x, t), (x_test, t_test) = load_mnist(path=d, download=False)
    >>> x.shape, x.dtype, float(x.max()), t.tolist(), x_test.shape
    ((6, 784), dtype('float32'), 1.0, [0, 1, 2, 3, 4, 5], (4, 784))
    >>> shutil.rmtree(d)
    """
    normalize, flatten, one_hot_label, path, download = _check_common(
        normalize, flatten, one_hot_label, path, download
    )
    mirrors = _resolve_mirrors(mirrors) if download else None
    files = _locate(MNIST_FILES, path, download, mirrors)
    train = _read_pair(files[TRAIN_IMAGES], files[TRAIN_LABELS])
    test = _read_pair(files[TEST_IMAGES], files[TEST_LABELS])
    return (
        _format(*train, normalize, flatten, one_hot_label, 255.0),
        _format(*test, normalize, flatten, one_hot_label, 255.0),
    )


def load_mnist_test_split(n_train: int = 8000, normalize: bool = True, flatten: bool = True,
                          one_hot_label: bool = False, *, path: PathArg | None = None, download: bool = True,
                          mirrors: Sequence[str] | None = None) -> Split:
    """Split the 10,000-image MNIST test set -> ((x (n_train, 784), t), (x (10000 - n_train, 784), t)).

    The first ``n_train`` images of the t10k files form the training set and the rest the test set,
    for machines that have only the test files; the training files are neither read nor downloaded.
    Files are found (and, if missing, downloaded) as for ``load_mnist``. Note that the t10k file
    puts its 5,000 "easier" images (Census Bureau writers) first, so a test part drawn from the end
    comes from the harder half (high-school writers).

    Parameters
    ----------
    n_train : int, default 8000
        Images of the t10k file used for training; the rest are the test set.
    normalize, flatten, one_hot_label, path, download, mirrors
        As for `load_mnist`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))
        ``n_train`` and ``10000 - n_train`` images with their labels.

    Raises
    ------
    MNISTNotFoundError
        The t10k files are missing and could not be downloaded.
    TypeError, ValueError
        A bad argument (n_train not below the number of images), or a malformed file.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> import numpy as np
    >>> def write_idx(path, array):  # magic 0x0000 08 NN, NN big-endian sizes, then the bytes
    ...     sizes = b"".join(n.to_bytes(4, "big") for n in array.shape)
    ...     with open(path, "wb") as f:
    ...         f.write(bytes([0, 0, 8, array.ndim]) + sizes + array.astype(np.uint8).tobytes())
    >>> d = tempfile.mkdtemp()
    >>> for prefix, n in (("train", 6), ("t10k", 4)):
    ...     write_idx(os.path.join(d, prefix + "-images-idx3-ubyte"), np.full((n, 28, 28), 255))
    ...     write_idx(os.path.join(d, prefix + "-labels-idx1-ubyte"), np.arange(n))
    >>> (x, t), (x_test, t_test) = load_mnist_test_split(3, path=d, download=False)
    >>> t.tolist(), t_test.tolist()
    ([0, 1, 2], [3])
    >>> shutil.rmtree(d)
    """
    if isinstance(n_train, (bool, np.bool_)) or not isinstance(n_train, (int, np.integer)):
        raise TypeError(f"n_train must be an int, got {type(n_train).__name__}")
    if n_train < 1:
        raise ValueError(f"n_train must be at least 1, got {n_train}")
    normalize, flatten, one_hot_label, path, download = _check_common(
        normalize, flatten, one_hot_label, path, download
    )
    mirrors = _resolve_mirrors(mirrors) if download else None
    files = _locate((TEST_IMAGES, TEST_LABELS), path, download, mirrors)
    images, labels = _read_pair(files[TEST_IMAGES], files[TEST_LABELS])
    n = images.shape[0]
    if n_train >= n:
        raise ValueError(f"n_train must be less than the {n} images in {files[TEST_IMAGES]}, got {n_train}")
    k = int(n_train)
    return (
        _format(images[:k], labels[:k], normalize, flatten, one_hot_label, 255.0),
        _format(images[k:], labels[k:], normalize, flatten, one_hot_label, 255.0),
    )


def load_digits(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *,
                test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Load scikit-learn's 8x8 digits -> ((x_train (1438, 64), t_train), (x_test (359, 64), t_test)) by default.

    The 1,797 images (pixel values 0..16; divided by 16 when ``normalize``) are split per class:
    each class puts ``round(test_fraction * its size)`` images (at least 1, at most all but 1),
    chosen by a permutation from ``numpy.random.default_rng(seed)``, into the test set; each part
    is then shuffled with the same generator. The split depends only on ``test_fraction`` and
    ``seed``. With the defaults: 1,438 training and 359 test images. Needs scikit-learn (the
    ``train`` extra), no network.

    Parameters
    ----------
    normalize : bool, default True
        float32 pixels in [0, 1] instead of uint8 0..16.
    flatten : bool, default True
        Rows of 64 pixels instead of (N, 1, 8, 8).
    one_hot_label : bool, default False
        float32 one-hot rows (N, 10) instead of uint8 class indices.
    test_fraction : float, default 0.2
        Share of each class put in the test set, strictly between 0 and 1.
    seed : int, default 0
        Seed of the split.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))

    Raises
    ------
    ImportError
        scikit-learn is not installed.
    TypeError, ValueError
        A bad argument.

    Examples
    --------
    >>> (x, t), (x_test, t_test) = load_digits()
    >>> x.shape, x_test.shape, x.dtype
    ((1438, 64), (359, 64), dtype('float32'))
    """
    normalize = _check_flag(normalize, "normalize")
    flatten = _check_flag(flatten, "flatten")
    one_hot_label = _check_flag(one_hot_label, "one_hot_label")
    if isinstance(test_fraction, (bool, np.bool_)) or not isinstance(test_fraction, (int, float, np.number)):
        raise TypeError(f"test_fraction must be a number, got {type(test_fraction).__name__}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:
        raise ImportError(
            'load_digits needs scikit-learn: pip install "fastnet-dlfs[train]" (or pip install scikit-learn)'
        ) from exc

    bunch = _sk_load_digits()
    images = bunch.images.astype(np.uint8)  # (1797, 8, 8), integer values 0..16
    labels = bunch.target.astype(np.uint8)
    rng = np.random.default_rng(seed)
    train_idx: Any = []
    test_idx: Any = []
    for c in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = min(max(int(round(float(test_fraction) * members.size)), 1), members.size - 1)
        test_idx.append(members[:k])
        train_idx.append(members[k:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return (
        _format(images[train_idx], labels[train_idx], normalize, flatten, one_hot_label, 16.0),
        _format(images[test_idx], labels[test_idx], normalize, flatten, one_hot_label, 16.0),
    )


def load(name: PathArg, path: PathArg | None = None, *, normalize: bool = True, flatten: bool = True,
         one_hot_label: bool = False, download: bool = True) -> Split:
    """Load a data set by name, for the command line -> ((x_train, t_train), (x_test, t_test)).

    ``name`` is one of:

    - ``"digits"``: ``load_digits()`` (default split; ``path`` must be None);
    - ``"mnist"``: ``load_mnist(path=path)``;
    - ``"mnist-test"``: ``load_mnist_test_split(path=path)`` (8,000 / 2,000);
    - a directory holding MNIST IDX files: ``load_mnist`` on it when it has all four files, else
      ``load_mnist_test_split`` when it has the two t10k files (never downloads into it).

    A directory literally named like one of the names must be given as e.g. ``./digits``.

    Parameters
    ----------
    name : str or os.PathLike
        ``"digits"``, ``"mnist"``, ``"mnist-test"`` or a directory.
    path : str or os.PathLike, optional
        Directory of the MNIST files for ``"mnist"`` and ``"mnist-test"``.
    normalize, flatten, one_hot_label, download
        As for `load_mnist`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))

    Raises
    ------
    MNISTNotFoundError
        MNIST files are missing and could not be downloaded.
    ImportError
        ``"digits"`` without scikit-learn.
    TypeError, ValueError
        Not a data set name nor a directory, or another bad argument.

    Examples
    --------
    >>> (x, t), (x_test, t_test) = load("digits")
    >>> x.shape
    (1438, 64)
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a str or os.PathLike, got {type(name).__name__}")
    opts: dict[str, Any] = {"normalize": normalize, "flatten": flatten, "one_hot_label": one_hot_label}
    if isinstance(name, str) and name in DATASET_NAMES:
        if name == "digits":
            if path is not None:
                raise ValueError("path applies only to the MNIST data sets, not to 'digits'")
            return load_digits(**opts)
        loader = load_mnist if name == "mnist" else load_mnist_test_split
        return loader(path=path, download=download, **opts)
    if path is not None:
        raise ValueError(f"path is only used with 'mnist' or 'mnist-test', not with name={os.fspath(name)!r}")
    directory = Path(name).expanduser()
    if not directory.is_dir():
        raise ValueError(
            f"name must be one of {', '.join(DATASET_NAMES)} or a directory holding MNIST IDX files; "
            f"{os.fspath(name)!r} is neither"
        )
    dirs = [(directory, "name argument")]
    have_train = all(_find(f, dirs) is not None for f in (TRAIN_IMAGES, TRAIN_LABELS))
    have_test = all(_find(f, dirs) is not None for f in (TEST_IMAGES, TEST_LABELS))
    if have_test and not have_train:
        return load_mnist_test_split(path=directory, download=False, **opts)
    return load_mnist(path=directory, download=False, **opts)
