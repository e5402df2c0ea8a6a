"""tapegrad.data.transforms: each transform on one image and on a batch; torchvision's semantics."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.transforms as alias
from tapegrad.data import transforms as T


def batch(n=8, channels=3, size=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), dtype=np.uint8)


def test_the_alias_module_is_the_same():
    assert alias.Normalize is T.Normalize and alias.Compose is T.Compose


def test_to_tensor_scales_uint8_to_unit_float32_and_adds_a_channel_to_2d():
    image = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    out = T.ToTensor()(image)
    assert isinstance(out, tg.Tensor) and out.data.shape == (1, 2, 2)
    assert out.data.dtype == np.float32 and out.data.ravel().tolist() == pytest.approx(
        [0, 1, 0.2, 0.4]
    )
    floats = T.ToTensor()(np.full((1, 2, 2), 3.0))
    assert floats.data.dtype == np.float32 and floats.data.max() == 3.0  # floats are not scaled


def test_normalize_per_channel_and_refuses_uint8():
    images = T.ToTensor().apply_batch(batch())
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = T.Normalize(mean, std).apply_batch(images)
    expected = (images - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.dtype == np.float32
    with pytest.raises(TypeError, match="put ToTensor\\(\\) before Normalize"):
        T.Normalize(0.5, 0.5)(batch()[0])
    with pytest.raises(ValueError, match="2 mean values for images of 3 channels"):
        T.Normalize((0.5, 0.5), 1.0).apply_batch(images)
    with pytest.raises(ValueError, match="std must not be 0"):
        T.Normalize(0.0, (1.0, 0.0))


def test_random_crop_with_zero_padding_shifts_each_image_by_its_own_offset():
    tg.manual_seed(0)
    images = batch(n=64, channels=2, size=5) | 1  # no zeros: padding shows as zeros
    out = T.RandomCrop(5, padding=2).apply_batch(images)
    assert out.shape == images.shape and out.dtype == np.uint8
    shifts = set()
    for original, cropped in zip(images, out, strict=True):
        padded = np.pad(original, ((0, 0), (2, 2), (2, 2)))
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(padded[:, dy : dy + 5, dx : dx + 5], cropped)
        ]
        assert found, "a crop is not a window of the padded image"
        shifts.add(found[0])
    assert len(shifts) > 10  # the offsets are drawn per image


def test_random_crop_to_a_smaller_size_and_its_errors():
    image = batch(n=1, size=8)[0]
    out = T.RandomCrop((4, 6))(image)
    assert out.shape == (3, 4, 6)
    assert T.RandomCrop(10, pad_if_needed=True)(image).shape == (3, 10, 10)
    with pytest.raises(ValueError, match="larger than the padded image 8x8"):
        T.RandomCrop(10)(image)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        T.RandomCrop(4, padding_mode="wrap")
    reflected = T.RandomCrop(8, padding=3, padding_mode="reflect").apply_batch(batch(n=4, size=8))
    assert reflected.shape == (4, 3, 8, 8)


def test_random_horizontal_flip_mirrors_about_p_of_the_images():
    tg.manual_seed(1)
    images = batch(n=400, channels=1, size=4)
    out = T.RandomHorizontalFlip(p=0.25).apply_batch(images)
    flipped = np.array([np.array_equal(o, i[:, :, ::-1]) for o, i in zip(out, images, strict=True)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images, strict=True)])
    assert np.all(flipped | kept) and 0.15 < flipped.mean() < 0.35
    assert np.array_equal(T.RandomHorizontalFlip(p=1.0)(images[0]), images[0][:, :, ::-1])


def test_compose_batches_only_when_every_transform_can():
    pipeline = T.Compose([T.RandomHorizontalFlip(0.0), T.ToTensor(), T.Normalize(0.5, 0.5)])
    assert T.works_on_batches(pipeline)
    out = pipeline.apply_batch(batch())
    np.testing.assert_allclose(out, (batch() / 255 - 0.5) / 0.5, atol=1e-6)
    single = pipeline(batch()[0])
    assert isinstance(single, tg.Tensor)
    np.testing.assert_allclose(single.data, out[0], rtol=1e-6)
    assert not T.works_on_batches(T.Compose([T.ToTensor(), lambda x: x]))


def test_a_tensor_in_gives_a_tensor_out():
    image = tg.tensor(np.ones((1, 4, 4), dtype=np.float32))
    assert isinstance(T.RandomCrop(4, padding=1)(image), tg.Tensor)
    with pytest.raises(ValueError, match="expected one C x H x W image, got shape \\(4, 4\\)"):
        T.RandomHorizontalFlip()(np.ones((4, 4)))
