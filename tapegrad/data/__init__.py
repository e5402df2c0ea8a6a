"""Data: the MNIST and CIFAR-10 files (found, downloaded, verified, never unpickled), and
PyTorch's Dataset / DataLoader / transforms on top of them."""

from tapegrad.data import transforms
from tapegrad.data.dataset import *  # noqa: F403
from tapegrad.data.dataset import __all__ as _dataset_all
from tapegrad.data.datasets import *  # noqa: F403
from tapegrad.data.datasets import __all__ as _datasets_all
from tapegrad.data.files import *  # noqa: F403
from tapegrad.data.files import __all__ as _files_all
from tapegrad.data.loader import *  # noqa: F403
from tapegrad.data.loader import __all__ as _loader_all

__all__ = [*_files_all, *_dataset_all, *_datasets_all, *_loader_all, "transforms"]
