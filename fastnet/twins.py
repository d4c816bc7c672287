"""JAX and PyTorch twins of fastnet's kernels: the same maths, written the way users of those libraries write it.

`fastnet bench` times them beside the NumPy reference (`fastnet.reference`) and fastnet's compiled
kernels, on the same arrays. Each twin computes what the kernel of the same name computes:

======================================  =============================================================
kernel                                  twin
======================================  =============================================================
``affine_forward(x, W, b)``             ``x @ W + b``
``affine_backward(x, W, dout)``         ``(dout @ W.T, x.T @ dout, dout.sum(axis=0))``
``sigmoid(a)``                          ``jax.nn.sigmoid(a)``, ``torch.sigmoid(a)``
``softmax_cross_entropy(a, t)``         mean over the batch of ``-log softmax(a)[i, t[i]]``
``softmax_cross_entropy_grad(a, t)``    its gradient w.r.t. the logits, by autodiff
``two_layer_loss(x, t, W1, b1, ...)``   the 784-50-10 net's exact mean cross-entropy
``two_layer_gradient(x, t, W1, ...)``   (dW1, db1, dW2, db2) of that loss, by autodiff
======================================  =============================================================

Labels ``t`` are integer class indices of shape (N,). The losses are exact (no ``delta`` inside the
log, unlike the book's ``cross_entropy_error``).

- **JAX**: every twin is a `jax.jit` function (gradients are ``jax.jit(jax.grad(loss,
  argnums=...))``); the arrays are moved to JAX once, when the twin is built, and the callable
  waits for its result (``block_until_ready``). Building a JAX twin turns on
  ``jax_enable_x64`` for the process, so float64 arrays stay float64; float32 arrays are passed
  explicitly as float32 and stay float32. JAX picks its own CPU threads.
- **PyTorch**: tensors share the NumPy arrays' memory (`torch.from_numpy`). Forward kernels run
  under `torch.no_grad`; gradients come from ``loss.backward()`` on leaf tensors created with
  ``requires_grad=True``, their ``.grad`` reset before each call. `torch_threads` holds
  PyTorch's thread count for a block (`fastnet bench` uses numba's count for both).

Neither library is a dependency of fastnet: each is imported on first use, never by
``import fastnet``. `available` says which of them import; `note` says why one does not.
``pip install "fastnet-dlfs[compare]"`` installs both.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "LIBRARIES",
    "KERNELS",
    "INSTALL_HINT",
    "TwinUnavailableError",
    "available",
    "note",
    "twin",
    "jax_twin",
    "torch_twin",
    "torch_threads",
    "to_numpy",
]

#: The libraries with twins, in the order `fastnet bench` shows them.
LIBRARIES = ("jax", "torch")
#: The kernels with twins, and the arrays each takes (those of the fastnet kernel of the same name).
KERNELS = {
    "affine_forward": ("x", "W", "b"),
    "affine_backward": ("x", "W", "dout"),
    "sigmoid": ("a",),
    "softmax_cross_entropy": ("a", "t"),
    "softmax_cross_entropy_grad": ("a", "t"),
    "two_layer_loss": ("x", "t", "W1", "b1", "W2", "b2"),
    "two_layer_gradient": ("x", "t", "W1", "b1", "W2", "b2"),
}
#: How to install both libraries.
INSTALL_HINT = 'pip install "fastnet-dlfs[compare]"'


class TwinUnavailableError(ImportError):
    """A twin was asked of a library that does not import; the message is `note`'s text.

    Parameters
    ----------
    *args : object
        The message, as for any exception.

    Examples
    --------
    >>> issubclass(TwinUnavailableError, ImportError)
    True
    """

    # ImportError's own constructor, spelled out: Python can state the signature of a class that
    # defines __init__, and documentation tools ask for it.
    def __init__(self, *args: object) -> None:
        super().__init__(*args)


def _check_library(library: object) -> str:
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {', '.join(LIBRARIES)}, got {library!r}")
    return str(library)


def _import(library: str) -> ModuleType:
    """The library's module, or TwinUnavailableError with the reason and the install hint."""
    try:
        return importlib.import_module(library)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name != library and not library.startswith(exc.name + "."):
            # the library is there but one of its own dependencies is not
            raise TwinUnavailableError(f"{library} failed to import ({exc}): {INSTALL_HINT}") from exc
        raise TwinUnavailableError(f"{library} not installed: {INSTALL_HINT}") from exc
    except Exception as exc:  # a broken installation: a missing shared library, a version clash
        raise TwinUnavailableError(
            f"{library} failed to import ({type(exc).__name__}: {exc}): {INSTALL_HINT}") from exc


def note(library: str) -> str | None:
    """Why `library`'s twins are unavailable (its import failed), or None when it imports.

    Parameters
    ----------
    library : {"jax", "torch"}
        The library.

    Returns
    -------
    str or None
        For example ``jax not installed: pip install "fastnet-dlfs[compare]"``.

    Raises
    ------
    ValueError
        An unknown library.

    Examples
    --------
    >>> note("jax") in (None, 'jax not installed: pip install "fastnet-dlfs[compare]"')
    True
    """
    try:
        _import(_check_library(library))
    except TwinUnavailableError as exc:
        return str(exc)
    return None


def available() -> tuple[str, ...]:
    """The libraries of `LIBRARIES` that import here (each is imported, which takes a second or two).

    Never raises: a library missing or failing to import is left out (`note` says why).

    Returns
    -------
    tuple of str
        ``("jax", "torch")`` when both import.

    Examples
    --------
    >>> set(available()) <= {"jax", "torch"}
    True
    """
    return tuple(lib for lib in LIBRARIES if note(lib) is None)


def _check_arrays(kernel: object, arrays: tuple[object, ...]) -> list[np.ndarray[Any, Any]]:
    """The kernel's arrays, C-contiguous, labels as int64; ValueError/TypeError naming the problem."""
    if kernel not in KERNELS:
        raise ValueError(f"no twin of kernel {kernel!r}; twins exist for {', '.join(KERNELS)}")
    names = KERNELS[str(kernel)]
    if len(arrays) != len(names):
        raise TypeError(f"{kernel} takes {len(names)} arrays ({', '.join(names)}), got {len(arrays)}")
    out = []
    for name, a in zip(names, arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{kernel}: {name} must be a NumPy array, got {type(a).__name__}")
        if name == "t":
            if a.ndim != 1 or a.dtype.kind not in "iu":
                raise ValueError(f"{kernel}: t must be 1-D integer class indices, got {a.dtype} "
                                 f"with shape {a.shape}")
            a = a.astype(np.int64)
        elif a.dtype not in (np.float32, np.float64):
            raise ValueError(f"{kernel}: {name} must be float32 or float64, got {a.dtype}")
        out.append(np.ascontiguousarray(a))
    return out


@functools.lru_cache(maxsize=None)
def _jax_functions() -> dict[str, Any]:
    """The jitted twins, built once per process (jax_enable_x64 turned on first)."""
    jax = _import("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = importlib.import_module("jax.numpy")

    def affine_forward(x: Any, W: Any, b: Any) -> Any:
        return x @ W + b

    def affine_backward(x: Any, W: Any, dout: Any) -> Any:
        return dout @ W.T, x.T @ dout, jnp.sum(dout, axis=0)

    def sigmoid(a: Any) -> Any:
        return jax.nn.sigmoid(a)

    def cross_entropy(a: Any, t: Any) -> Any:
        logp = jax.nn.log_softmax(a, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))

    def loss(x: Any, t: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        z1 = jax.nn.sigmoid(x @ W1 + b1)
        return cross_entropy(z1 @ W2 + b2, t)

    return {
        "affine_forward": jax.jit(affine_forward),
        "affine_backward": jax.jit(affine_backward),
        "sigmoid": jax.jit(sigmoid),
        "softmax_cross_entropy": jax.jit(cross_entropy),
        "softmax_cross_entropy_grad": jax.jit(jax.grad(cross_entropy)),
        "two_layer_loss": jax.jit(loss),
        "two_layer_gradient": jax.jit(jax.grad(loss, argnums=(2, 3, 4, 5))),
    }


def jax_twin(kernel: str, *arrays: np.ndarray[Any, Any]) -> Callable[[], Any]:
    """A zero-argument callable computing `kernel` on `arrays` with a `jax.jit` function.

    The arrays are moved to JAX now, each in its own dtype; every call runs the jitted function
    and waits for its result (``jax.block_until_ready``). The first call compiles. Turns on
    ``jax_enable_x64`` for the process (see the module's notes).

    Parameters
    ----------
    kernel : str
        A name of `KERNELS`.
    arrays : ndarray
        The arrays the fastnet kernel of that name takes, as positional arguments in its order.

    Returns
    -------
    callable
        Returns JAX arrays: one, a scalar, or a tuple (see `to_numpy`).

    Raises
    ------
    TwinUnavailableError
        JAX does not import.
    ValueError, TypeError
        An unknown kernel, or arrays that do not fit it.

    Examples
    --------
    >>> from fastnet import reference
    >>> a = np.array([[0.0, 2.0]])
    >>> if "jax" in available():
    ...     result = to_numpy(jax_twin("sigmoid", a)())
    ... else:  # the same numbers, from the reference
    ...     result = reference.sigmoid(a)
    >>> result.round(4)
    array([[0.5   , 0.8808]])
    """
    checked = _check_arrays(kernel, arrays)
    fn = _jax_functions()[kernel]
    jax = _import("jax")
    jnp = importlib.import_module("jax.numpy")
    args = [jnp.asarray(a, dtype=a.dtype) for a in checked]

    def call() -> Any:
        return jax.block_until_ready(fn(*args))

    return call


def torch_twin(kernel: str, *arrays: np.ndarray[Any, Any]) -> Callable[[], Any]:
    """A zero-argument callable computing `kernel` on `arrays` with PyTorch.

    Tensors share the arrays' memory (`torch.from_numpy`). Forward kernels run under
    `torch.no_grad`; ``softmax_cross_entropy_grad`` and ``two_layer_gradient`` call
    ``loss.backward()`` on leaf tensors with ``requires_grad=True``, resetting their ``.grad``
    first, and return those gradients.

    Parameters
    ----------
    kernel : str
        A name of `KERNELS`.
    arrays : ndarray
        The arrays the fastnet kernel of that name takes, as positional arguments in its order.

    Returns
    -------
    callable
        Returns tensors: one, a scalar, or a tuple (see `to_numpy`).

    Raises
    ------
    TwinUnavailableError
        PyTorch does not import.
    ValueError, TypeError
        An unknown kernel, or arrays that do not fit it.

    Examples
    --------
    >>> from fastnet import reference
    >>> a, t = np.zeros((2, 2)), np.array([0, 1])
    >>> if "torch" in available():
    ...     loss = float(to_numpy(torch_twin("softmax_cross_entropy", a, t)()))
    ... else:  # the same number, from the reference
    ...     loss = float(reference.softmax_cross_entropy(a, t))
    >>> round(loss, 6)
    0.693147
    """
    checked = _check_arrays(kernel, arrays)
    torch = _import("torch")
    F = importlib.import_module("torch.nn.functional")
    tensors = [torch.from_numpy(a) for a in checked]
    call: Callable[[], Any]

    if kernel == "affine_forward":
        x, W, b = tensors

        def call() -> Any:
            with torch.no_grad():
                return x @ W + b
    elif kernel == "affine_backward":
        x, W, dout = tensors

        def call() -> Any:
            with torch.no_grad():
                return dout @ W.T, x.T @ dout, dout.sum(dim=0)
    elif kernel == "sigmoid":
        (a,) = tensors

        def call() -> Any:
            with torch.no_grad():
                return torch.sigmoid(a)
    elif kernel == "softmax_cross_entropy":
        a, t = tensors

        def call() -> Any:
            with torch.no_grad():
                return F.cross_entropy(a, t)
    elif kernel == "softmax_cross_entropy_grad":
        a_leaf, t = tensors[0].requires_grad_(True), tensors[1]

        def call() -> Any:
            a_leaf.grad = None
            F.cross_entropy(a_leaf, t).backward()
            return a_leaf.grad
    else:
        x, t = tensors[:2]
        params = tensors[2:]
        if kernel == "two_layer_gradient":
            for p in params:
                p.requires_grad_(True)

        def loss() -> Any:
            W1, b1, W2, b2 = params
            return F.cross_entropy(torch.sigmoid(x @ W1 + b1) @ W2 + b2, t)

        if kernel == "two_layer_loss":
            def call() -> Any:
                with torch.no_grad():
                    return loss()
        else:
            def call() -> Any:
                for p in params:
                    p.grad = None
                loss().backward()
                return tuple(p.grad for p in params)
    return call


def twin(library: str, kernel: str, *arrays: np.ndarray[Any, Any]) -> Callable[[], Any]:
    """`jax_twin` or `torch_twin` by name.

    Parameters
    ----------
    library : {"jax", "torch"}
        The library.
    kernel : str
        A name of `KERNELS`.
    arrays : ndarray
        The kernel's arrays, as positional arguments.

    Returns
    -------
    callable

    Raises
    ------
    TwinUnavailableError
        The library does not import.
    ValueError, TypeError
        An unknown library or kernel, or arrays that do not fit it.

    Examples
    --------
    >>> twin("numpy", "sigmoid", np.zeros(2))
    Traceback (most recent call last):
    ...
    ValueError: library must be one of jax, torch, got 'numpy'
    """
    if _check_library(library) == "jax":
        return jax_twin(kernel, *arrays)
    return torch_twin(kernel, *arrays)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Hold PyTorch's intra-op thread count at `n` for a block, then restore the previous count.

    Parameters
    ----------
    n : int or None
        Threads; None leaves the count alone.

    Yields
    ------
    None

    Raises
    ------
    TwinUnavailableError
        PyTorch does not import (only when n is not None).
    ValueError
        n < 1.

    Examples
    --------
    >>> with torch_threads(None):
    ...     pass
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1 or None, got {n!r}")
    torch = _import("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def to_numpy(result: Any) -> Any:
    """A twin's result as NumPy: arrays and tensors become ndarrays, tuples stay tuples.

    Parameters
    ----------
    result : array, tensor, or tuple of them
        What a twin's callable returned.

    Returns
    -------
    ndarray or tuple of ndarray

    Examples
    --------
    >>> to_numpy((np.ones(2), 3.0))
    (array([1., 1.]), array(3.))
    """
    if isinstance(result, tuple):
        return tuple(to_numpy(r) for r in result)
    if hasattr(result, "detach"):  # a torch tensor
        return result.detach().cpu().numpy()
    return np.asarray(result)
