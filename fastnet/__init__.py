"""fastnet: the two-layer network of Deep Learning from Scratch ch. 4, with fast numerical differentiation.

    import fastnet
    net = fastnet.TwoLayerNet(784, 50, 10, seed=0)
    grads = net.numerical_gradient(x, t)          # central differences, milliseconds
    print(fastnet.gradient_check(net, x, t))      # backprop vs numerical, per parameter
"""

from fastnet import datasets, reference
from fastnet._version import __version__
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
from fastnet.threads import num_threads, set_num_threads
from fastnet.training import train

__all__ = [
    "Derivative",
    "DerivativeCheck",
    "DifferenceWarning",
    "GradientCheck",
    "GradientCheckError",
    "History",
    "StepStudy",
    "TwoLayerNet",
    "__version__",
    "check_gradient",
    "check_jacobian",
    "datasets",
    "gradient",
    "gradient_check",
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
    "train",
]
