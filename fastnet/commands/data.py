"""What the subcommands' --data accepts, and how loading problems are worded for a command-line user."""

from __future__ import annotations

import os
from pathlib import Path

from fastnet import datasets

#: Numbers of the split `datasets.load` uses for a directory that holds only the t10k files.
T10K_SPLIT = (8000, 2000)


def check_data_name(data: str, extra: tuple[str, ...] = ()) -> str | None:
    """None when `data` names a data set (or one of `extra`) or an existing directory, else the error text.

    Parameters
    ----------
    data : str
        The --data value.
    extra : tuple of str
        Names the command accepts besides the data sets (e.g. ``("synthetic",)``).

    Returns
    -------
    str or None

    Examples
    --------
    >>> check_data_name("digits") is None
    True
    >>> print(check_data_name("nosuch", extra=("synthetic",)))
    --data must be one of digits, mnist, mnist-test, synthetic or a directory ...; 'nosuch' is neither
    """
    names = (*datasets.DATASET_NAMES, *extra)
    if data in names or Path(data).expanduser().is_dir():
        return None
    return (f"--data must be one of {', '.join(names)} or a directory holding the MNIST IDX files; "
            f"{data!r} is neither")


def t10k_only_note(data: str) -> str | None:
    """The one-line note for a --data directory that holds only the t10k files, else None.

    Parameters
    ----------
    data : str
        The --data value.

    Returns
    -------
    str or None

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    ...     open(os.path.join(d, name), "wb").close()
    >>> t10k_only_note(d).endswith("(as --data mnist-test does)")
    True
    >>> t10k_only_note("mnist") is None
    True
    """
    if data in datasets.DATASET_NAMES:
        return None
    directory = Path(data).expanduser()
    if not directory.is_dir():
        return None

    def has(name: str) -> bool:
        return (directory / name).is_file() or (directory / (name + ".gz")).is_file()

    test = has(datasets.TEST_IMAGES) and has(datasets.TEST_LABELS)
    train = has(datasets.TRAIN_IMAGES) and has(datasets.TRAIN_LABELS)
    if not test or train:
        return None
    n_train, n_test = T10K_SPLIT
    return (f"note: {os.fspath(data)} holds only the t10k files, so its first {n_train:,} images are "
            f"used for training and the last {n_test:,} for testing (as --data mnist-test does)")


def load_error_text(exc: BaseException) -> str:
    """The message of a loading error, with command-line advice when MNIST files are missing.

    Parameters
    ----------
    exc : BaseException
        What loading raised.

    Returns
    -------
    str

    Examples
    --------
    >>> load_error_text(ValueError("bad file"))
    'bad file'
    """
    if isinstance(exc, datasets.MNISTNotFoundError):
        return exc.cli_message()
    return str(exc)
