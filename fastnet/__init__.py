"""fastnet: the two-layer network of Deep Learning from Scratch ch. 4, with fast numerical differentiation.

Installed as the distribution ``fastnet-dlfs`` (``pip install fastnet-dlfs``); imported as ``fastnet``.

>>> import numpy as np
>>> import fastnet
>>> net = fastnet.TwoLayerNet(64, 50, 10, seed=0)
>>> x, t = np.random.default_rng(0).random((100, 64)), np.arange(100) % 10
>>> grads = net.numerical_gradient(x, t)          # central differences, milliseconds
>>> fastnet.gradient_check(net, x, t).max_rel < 1e-5  # backprop vs numerical, per parameter
True
"""

from fastnet import datasets, reference
from fastnet._version import __version__
from fastnet.descent import Descent, DivergenceWarning, gradient_descent
from fastnet.gradcheck import GradientCheck, StepStudy, gradient_check, relative_error, step_study
from fastnet.checks import DerivativeCheck, GradientCheckError, check_gradient, check_jacobian
from fastnet.derivative import numerical_diff
from fastnet.differences import Derivative, DifferenceWarning
from fastnet.gradient import gradient, numerical_gradient
from fastnet.hessian import hessian
from fastnet.history import History
from fastnet.io import load, save
from fastnet.jacobian import jacobian
from fastnet.network import TwoLayerNet
from fastnet.sweeps import SweepResult, sweep
from fastnet.threads import num_threads, set_num_threads
from fastnet.training import train

__all__ = [
    "Descent",
    "DivergenceWarning",
    "Derivative",
    "DerivativeCheck",
    "DifferenceWarning",
    "GradientCheck",
    "GradientCheckError",
    "History",
    "StepStudy",
    "SweepResult",
    "TwoLayerNet",
    "__version__",
    "check_gradient",
    "check_jacobian",
    "datasets",
    "gradient",
    "gradient_check",
    "gradient_descent",
    "hessian",
    "jacobian",
    "load",
    "num_threads",
    "numerical_diff",
    "numerical_gradient",
    "reference",
    "relative_error",
    "save",
    "set_num_threads",
    "step_study",
    "sweep",
    "train",
]
