"""tapegrad: a tape-based reverse-mode autodiff engine over NumPy with hand-written VJPs.

The public API is what this module exports. It is layered (see the README, "How it works"):
`tapegrad.kernels` (numba kernels on arrays) <- `tapegrad.engine` (Tensor, tape, primitives,
gradcheck) <- the library (`nn`, `optim`, `train`, `data`, `augment`, `io`) <-
`tapegrad.course` (the assignment's metrics, figures and report).
"""

from types import ModuleType as _ModuleType

from tapegrad import autograd, data, nn, optim, train  # tg.train.fit; `train` stays out of *
from tapegrad.data import CIFAR10_CLASSES, load_cifar10, load_mnist
from tapegrad.engine.factories import *  # noqa: F403  (zeros, ones, arange, randn, ...)
from tapegrad.engine.gradcheck import GradcheckError, gradcheck
from tapegrad.engine.ops import *  # noqa: F403  (every primitive, by name)
from tapegrad.engine.primitive import primitive
from tapegrad.engine.rng import manual_seed
from tapegrad.engine.tape import enable_grad, is_grad_enabled, no_grad
from tapegrad.engine.tensor import Tensor, as_tensor, tensor
from tapegrad.io import CorruptedFileError, load, save
from tapegrad.kernels.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

#: Callable as tg.max(...), but kept out of `from tapegrad import *`: they would shadow builtins.
_SHADOWS_BUILTIN = ("abs", "all", "any", "max", "min", "pow", "round", "sum")
#: The modules a user reaches as tg.autograd, tg.data, ...; other submodules stay out of *.
_PUBLIC_MODULES = ("autograd", "data", "nn", "optim")

__all__ = sorted(
    name
    for name, value in globals().items()
    if not name.startswith("_")
    and name not in _SHADOWS_BUILTIN
    and (not isinstance(value, _ModuleType) or name in _PUBLIC_MODULES)
)
