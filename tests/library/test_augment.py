"""Augmentation invariants: crops are translations with mirrored borders, flips are mirrors."""

import numpy as np

import tapegrad as tg
from tapegrad import augment, nn


def _images(n=64, dtype=np.uint8):
    return np.random.default_rng(0).integers(0, 256, (n, 3, 8, 8)).astype(dtype)


def test_random_crop_is_a_translation_of_the_reflect_padded_image():
    images = _images()
    out = augment.random_crop(images, 2, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == images.dtype
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)), "reflect")
    offsets = set()
    for i in range(len(images)):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(out[i], padded[i, :, dy : dy + 8, dx : dx + 8])
        ]
        assert matches, f"image {i} is not a crop"
        offsets.update(matches)
    assert len(offsets) > 10  # offsets vary
    np.testing.assert_array_equal(augment.random_crop(images, 0), images)


def test_random_flip_mirrors_about_half():
    images = _images(400, np.float32)
    out = augment.random_flip(images, np.random.default_rng(2))
    mirrored = np.array(
        [np.array_equal(o, i[:, :, ::-1]) for o, i in zip(out, images, strict=True)]
    )
    same = np.array([np.array_equal(o, i) for o, i in zip(out, images, strict=True)])
    assert np.all(mirrored | same) and 0.4 < mirrored.mean() < 0.6


def test_alternating_flip_alternates_per_image():
    images = _images(50)
    indices = np.arange(50)
    even = augment.alternating_flip(images, indices, epoch=0, seed=3)
    odd = augment.alternating_flip(images, indices, epoch=1, seed=3)
    for i in range(50):
        flipped_even = np.array_equal(even[i], images[i, :, :, ::-1])
        flipped_odd = np.array_equal(odd[i], images[i, :, :, ::-1])
        assert flipped_even != flipped_odd
    np.testing.assert_array_equal(augment.alternating_flip(images, indices, 2, 3), even)


def test_flip_tta_averages_the_mirrored_predictions():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    x = _images(5, np.float32)
    logits = augment.flip_tta_logits(model, x)
    mirrored = model(tg.tensor(np.ascontiguousarray(x[:, :, :, ::-1]))).numpy()
    np.testing.assert_allclose(logits, (model(tg.tensor(x)).numpy() + mirrored) / 2, rtol=1e-5)
