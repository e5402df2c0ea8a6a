"""Data: the MNIST and CIFAR-10 files (found, downloaded, verified, never unpickled)."""

from tapegrad.data.files import *  # noqa: F403
from tapegrad.data.files import __all__  # noqa: F401
