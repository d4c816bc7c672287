"""One pass over a call's arrays that finds what would make a fused kernel's result wrong.

The Python layer validates arguments before every call; for the common case (arrays already of
the right dtype, shape and layout) this single compiled pass replaces several NumPy reductions,
so a batch-1 call costs a few microseconds more than the kernel, not tens.
"""

from __future__ import annotations

from kernels._jit import jit


@jit
def count_nonfinite(a):
    """Number of NaN or inf entries of a C-contiguous array (v - v is 0 exactly for finite v)."""
    flat = a.reshape(a.size)
    zero = flat.dtype.type(0)
    bad = 0
    for k in range(flat.size):
        v = flat[k]
        bad += (v - v) != zero
    return bad


@jit
def scan_arguments(x, t, n_classes, W1, b1, W2, b2):
    """Bit mask of problems: 1 x non-finite, 2 a label outside [0, n_classes), 4/8/16/32 W1/b1/W2/b2 non-finite."""
    mask = 0
    if count_nonfinite(x):
        mask |= 1
    for k in range(t.size):
        if t[k] < 0 or t[k] >= n_classes:
            mask |= 2
            break
    if count_nonfinite(W1):
        mask |= 4
    if count_nonfinite(b1):
        mask |= 8
    if count_nonfinite(W2):
        mask |= 16
    if count_nonfinite(b2):
        mask |= 32
    return mask
