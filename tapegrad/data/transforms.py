"""Image transforms named as torchvision's: Compose, ToTensor, Normalize, RandomCrop,
RandomHorizontalFlip.

Images here are NumPy arrays in C x H x W layout (uint8 as the data sets store them), never PIL
images. Each transform works on one image (`transform(image)`) and on a whole batch N x C x H x W
(`transform.apply_batch(images)`); the DataLoader uses the latter when every transform of a
pipeline has it, so a batch costs a few array operations instead of one call per image. Random
transforms draw from tapegrad's generator (`tg.manual_seed`), a fresh draw for every image.

Given a Tensor, a transform returns a Tensor; given an array, an array; ToTensor always returns
a Tensor.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tapegrad.engine.rng import generator
from tapegrad.engine.tensor import Tensor

__all__ = [
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "ToTensor",
    "Transform",
    "works_on_batches",
]


def works_on_batches(transform: Callable[..., Any] | None) -> bool:
    """Whether `transform` can be applied to a whole N x C x H x W batch at once."""
    return transform is None or callable(getattr(transform, "apply_batch", None))


class Transform:
    """A transform of images: subclasses define `apply_batch` on N x C x H x W arrays."""

    def apply_batch(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, image: Any) -> Any:
        array = image.data if isinstance(image, Tensor) else np.asarray(image)
        if array.ndim != 3:
            raise ValueError(
                f"{type(self).__name__}: expected one C x H x W image, got shape {array.shape} "
                "(use apply_batch for an N x C x H x W batch)."
            )
        out = self.apply_batch(array[None])[0]
        return Tensor._wrap(out) if isinstance(image, Tensor) else out

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class Compose:
    """Apply `transforms` one after the other."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)
        if all(works_on_batches(t) for t in self.transforms):
            self.apply_batch = self._apply_batch

    def __call__(self, image: Any) -> Any:
        for transform in self.transforms:
            image = transform(image)
        return image

    def _apply_batch(self, images: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            images = transform.apply_batch(images)  # type: ignore[attr-defined]
        return images

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class ToTensor(Transform):
    """uint8 in 0..255 to float32 in [0, 1], as torchvision's ToTensor; other dtypes become
    float32 unscaled. A 2-D H x W image gets its channel axis (1 x H x W)."""

    def apply_batch(self, images: np.ndarray) -> np.ndarray:
        if images.dtype == np.uint8:
            return np.multiply(images, np.float32(1 / 255), dtype=np.float32)
        return images.astype(np.float32)

    def __call__(self, image: Any) -> Tensor:
        array = image.data if isinstance(image, Tensor) else np.asarray(image)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3:
            raise ValueError(
                f"ToTensor: expected a C x H x W or H x W image, got shape {array.shape}."
            )
        return Tensor._wrap(self.apply_batch(array[None])[0])


class Normalize(Transform):
    """(image - mean) / std for each channel; mean and std are per channel or one number."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError("Normalize: mean and std must be numbers or sequences of numbers.")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must not be 0, got {self.std.tolist()}.")

    def apply_batch(self, images: np.ndarray) -> np.ndarray:
        if images.dtype.kind != "f":
            raise TypeError(
                f"Normalize: expected float images, got dtype {images.dtype} (put ToTensor() "
                "before Normalize)."
            )
        channels = images.shape[1]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values.size not in (1, channels):
                raise ValueError(
                    f"Normalize: {values.size} {name} values for images of {channels} channels."
                )
        mean = self.mean.astype(images.dtype).reshape(1, -1, 1, 1)
        scale = (1 / self.std).astype(images.dtype).reshape(1, -1, 1, 1)
        return (images - mean) * scale


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    if len(value) == 1:
        return int(value[0]), int(value[0])
    if len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"RandomCrop: {what} must be an int or a pair, got {value!r}.")


_PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


class RandomCrop(Transform):
    """Crop a random `size` (int or (height, width)) window, after padding the borders.

    `padding` as torchvision's: an int for all sides, (left/right, top/bottom) or (left, top,
    right, bottom); `padding_mode` is "constant" (with `fill`), "edge", "reflect" or
    "symmetric"; `pad_if_needed` pads images smaller than `size`. Each image gets its own offset.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: float = 0,
        padding_mode: str = "constant",
    ) -> None:
        self.size = _pair(size, "size")
        if padding is None:
            padding = 0
        if isinstance(padding, numbers.Integral):
            padding = (int(padding),) * 4
        elif len(padding) == 2:
            padding = (padding[0], padding[1], padding[0], padding[1])
        elif len(padding) != 4:
            raise ValueError(f"RandomCrop: padding must have 1, 2 or 4 values, got {padding!r}.")
        self.padding = tuple(int(p) for p in padding)  # left, top, right, bottom
        if min(self.padding) < 0 or min(self.size) < 1:
            raise ValueError(
                f"RandomCrop: size must be positive and padding non-negative, got size "
                f"{self.size}, padding {self.padding}."
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"RandomCrop: padding_mode must be one of {', '.join(_PADDING_MODES)}, "
                f"got {padding_mode!r}."
            )
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def _pad(self, images: np.ndarray) -> np.ndarray:
        left, top, right, bottom = self.padding
        height, width = images.shape[2] + top + bottom, images.shape[3] + left + right
        if self.pad_if_needed:
            extra_h, extra_w = max(self.size[0] - height, 0), max(self.size[1] - width, 0)
            top, bottom = top + extra_h, bottom + extra_h
            left, right = left + extra_w, right + extra_w
        if not any((left, top, right, bottom)):
            return images
        widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        if self.padding_mode == "constant":
            return np.pad(images, widths, mode="constant", constant_values=self.fill)
        return np.pad(images, widths, mode=self.padding_mode)

    def apply_batch(self, images: np.ndarray) -> np.ndarray:
        padded = self._pad(images)
        n, _, height, width = padded.shape
        crop_h, crop_w = self.size
        if crop_h > height or crop_w > width:
            raise ValueError(
                f"RandomCrop: the crop {crop_h}x{crop_w} is larger than the padded image "
                f"{height}x{width} (pass pad_if_needed=True to pad it)."
            )
        rng = generator()
        tops = rng.integers(0, height - crop_h + 1, size=n)
        lefts = rng.integers(0, width - crop_w + 1, size=n)
        rows = (tops[:, None] + np.arange(crop_h))[:, None, :, None]
        cols = (lefts[:, None] + np.arange(crop_w))[:, None, None, :]
        batch = np.arange(n)[:, None, None, None]
        channel = np.arange(padded.shape[1])[None, :, None, None]
        return padded[batch, channel, rows, cols]


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability `p`."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must lie in [0, 1], got {p}.")
        self.p = p

    def apply_batch(self, images: np.ndarray) -> np.ndarray:
        flip = generator().random(len(images)) < self.p
        out = images.copy()
        out[flip] = images[flip, :, :, ::-1]
        return out
