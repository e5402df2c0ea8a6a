"""MNIST and CIFAR10 as torchvision's dataset classes, on top of `load_mnist` / `load_cifar10`.

The files are found, downloaded and verified exactly as those functions do (root argument,
then $TAPEGRAD_DATA, then the user cache). There are no PIL images: without a transform an
item is what torchvision's ToTensor gives, a float32 C x H x W Tensor in [0, 1], with an int
label. A transform receives the uint8 C x H x W array (so `Compose([ToTensor(), Normalize(...)])`
works as in torchvision).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from tapegrad.data.dataset import Dataset, _check_index
from tapegrad.data.files import CIFAR10_CLASSES, load_cifar10, load_mnist
from tapegrad.data.transforms import ToTensor, works_on_batches

__all__ = ["CIFAR10", "MNIST", "ImageDataset"]

_TO_TENSOR = ToTensor()


class ImageDataset(Dataset):
    """Images (uint8, N x C x H x W) and int labels held in arrays, with optional transforms."""

    classes: tuple[str, ...] = ()

    def __init__(
        self,
        data: np.ndarray,
        targets: np.ndarray,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
    ) -> None:
        self.data = data
        self.targets = targets
        self.transform = transform
        self.target_transform = target_transform

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = _check_index(index, len(self), type(self).__name__)
        image: Any = self.data[index]
        image = self.transform(image) if self.transform is not None else _TO_TENSOR(image)
        label: Any = int(self.targets[index])
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def get_batch(self, indices: np.ndarray) -> tuple[Any, Any]:
        """The images and labels at `indices`, transformed as a batch when the transform can."""
        images = self.data[indices]
        if self.transform is None:
            images = _TO_TENSOR.apply_batch(images)
        elif works_on_batches(self.transform):
            images = self.transform.apply_batch(images)  # type: ignore[union-attr]
        else:
            images = [self.transform(image) for image in images]
        labels: Any = self.targets[indices]
        if self.target_transform is not None:
            labels = [self.target_transform(int(label)) for label in labels]
        return images, labels

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}: {len(self)} images of shape {self.data.shape[1:]}, "
            f"transform={self.transform!r}"
        )


class _StandardDataset(ImageDataset):
    """A data set of `load_*` files, torchvision's signature: the train or the test split."""

    _load: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = True,
    ) -> None:
        x_train, y_train, x_test, y_test = self._load(root, download=download)
        self.train = train
        super().__init__(
            x_train if train else x_test, y_train if train else y_test, transform, target_transform
        )


class MNIST(_StandardDataset):
    """MNIST's 60,000 training or 10,000 test digits, 1 x 28 x 28, labels 0..9."""

    classes = tuple(
        f"{digit} - {name}"
        for digit, name in enumerate(
            ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
        )
    )

    _load = staticmethod(load_mnist)


class CIFAR10(_StandardDataset):
    """CIFAR-10's 50,000 training or 10,000 test images, 3 x 32 x 32, labels 0..9."""

    classes = CIFAR10_CLASSES

    _load = staticmethod(load_cifar10)
