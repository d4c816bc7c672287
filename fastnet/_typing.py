"""Type aliases shared by fastnet's annotations."""

from __future__ import annotations

from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

#: A float32 or float64 array.
FloatArray = NDArray[np.floating[Any]]
#: Parameter or gradient arrays by name: W1, b1, W2, b2.
Params = dict[str, FloatArray]
#: What `numpy.random.default_rng` accepts as a seed.
Seed = Union[int, np.integer[Any], np.random.Generator, None]

__all__ = ["ArrayLike", "DTypeLike", "FloatArray", "NDArray", "Params", "Seed"]
