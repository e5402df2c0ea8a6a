"""Data augmentation for image batches (N, C, H, W), uint8 or float, and test-time augmentation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tapegrad.engine.rng import generator
from tapegrad.nn import Module
from tapegrad.train import predict_logits


def random_crop(
    images: np.ndarray, padding: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Reflect-pad by `padding` and crop back to the original size at a random offset.

    The same as translating every image by up to `padding` pixels in each direction, with
    the border filled by its mirror image. Images sharing an offset are cropped together,
    so the cost is (2 padding + 1)^2 slices, not one per image.
    """
    if padding == 0:
        return images.copy()
    rng = rng or generator()
    n, _, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)), "reflect")
    offsets = rng.integers(0, 2 * padding + 1, size=(2, n))
    out = np.empty_like(images)
    keys = offsets[0] * (2 * padding + 1) + offsets[1]
    for key in np.unique(keys):
        chosen = np.flatnonzero(keys == key)
        dy, dx = divmod(int(key), 2 * padding + 1)
        out[chosen] = padded[chosen, :, dy : dy + h, dx : dx + w]
    return out


def random_flip(images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Mirror each image left-right with probability 1/2."""
    rng = rng or generator()
    return _mirror(images, rng.random(len(images)) < 0.5)


def alternating_flip(
    images: np.ndarray, indices: np.ndarray, epoch: int, seed: int = 0
) -> np.ndarray:
    """Mirror images so that each one alternates between flipped and not, epoch by epoch.

    Image i starts flipped or not by a fixed coin toss (from `seed` and its index in the
    data set) and switches every epoch: over any two epochs every image is seen both ways,
    which random flips only achieve on average.
    """
    first = np.random.default_rng(seed).random(int(indices.max()) + 1) < 0.5
    return _mirror(images, first[indices] ^ bool(epoch % 2))


def _mirror(images: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """A copy of `images` with those where `flip` is True mirrored left-right."""
    out = images.copy()
    out[flip] = images[flip, :, :, ::-1]
    return out


def flip_tta_logits(
    model: Module,
    x: np.ndarray,
    batch_size: int = 1000,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Test-time augmentation: the mean of the logits for the images and their mirrors."""
    plain = predict_logits(model, x, batch_size, transform)
    mirrored = predict_logits(model, np.ascontiguousarray(x[:, :, :, ::-1]), batch_size, transform)
    return (plain + mirrored) / 2


#: Test-time augmentation levels, from none to airbench's six views.
TTA_LEVELS = ("none", "flip", "flip-translate")


def tta_views(x: np.ndarray, level: str = "flip") -> list[tuple[float, np.ndarray]]:
    """The test-time views of images `x` (N, C, H, W) and their weights, as airbench weights them.

    "none": the images alone. "flip": the images and their mirrors, 1/2 each.
    "flip-translate": the images and their mirrors, 1/4 each, and the mirror pairs of the
    images translated by one pixel up-left and down-right (reflect-padded), 1/8 each.
    """
    if level not in TTA_LEVELS:
        raise ValueError(f"tta_views: unknown level {level!r}, expected one of {TTA_LEVELS}.")
    if level == "none":
        return [(1.0, x)]
    sources = [(1.0, x)]
    if level == "flip-translate":
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), "reflect")
        height, width = x.shape[2:]
        sources = [(0.5, x)] + [
            (0.25, padded[:, :, shift : shift + height, shift : shift + width]) for shift in (0, 2)
        ]
    return [
        (weight / 2, np.ascontiguousarray(view))
        for weight, source in sources
        for view in (source, source[:, :, :, ::-1])
    ]


def tta_logits(
    model: Module,
    x: np.ndarray,
    level: str = "flip",
    batch_size: int = 1000,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The model's logits for `x`, the weighted mean over the views of `tta_views(x, level)`."""
    views = tta_views(x, level)
    logits = views[0][0] * predict_logits(model, views[0][1], batch_size, transform)
    for weight, view in views[1:]:
        logits += weight * predict_logits(model, view, batch_size, transform)
    return logits
