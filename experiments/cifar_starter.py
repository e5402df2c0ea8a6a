"""The course's CIFAR-10 starter network and settings, trained and analysed (exercise 7 baseline).

    python experiments/cifar_starter.py [--out runs/cifar_starter] [--seed 0] [--iterations N]
                                        [--batch-size B] [--data-dir DIR]

Same outputs as mnist_starter.py. As in the course's skeleton, only the first 20,000 training
images (data batches 1 and 2) are used, minus their mean RGB triplet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import run_main, run_starter

from tapegrad import nn
from tapegrad.data import CIFAR10_CLASSES, load_cifar10

TRAINING_IMAGES = 20_000

SETTINGS = {
    "learning_rate": 5e-4,
    "momentum": 0.95,
    "weight_decay": 0.001,
    "iterations": 5000,
    "batch_size": 16,
    "training_images": TRAINING_IMAGES,
}


def build_model() -> nn.Sequential:
    """conv5 3-16, relu, pool, conv5 16-16, relu, linear 4096-10 (the skeleton's init)."""
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2, init="he"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 5, padding=2, init="he"),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4096, 10, init="he"),
    )
    model[0].weight.data[...] = nn.he_normal((16, 3, 5, 5), scale=0.1)
    model[3].weight.data[...] = nn.he_normal((16, 16, 5, 5), scale=0.1)
    return model


def load_data(root: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x_train, y_train, x_test, y_test = load_cifar10(root)
    return x_train[:TRAINING_IMAGES], y_train[:TRAINING_IMAGES], x_test, y_test


def normalise(train_images: np.ndarray, test_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels as floats minus the mean RGB triplet of the training images."""
    train = train_images.astype(np.float32)
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    return train - mean, test_images.astype(np.float32) - mean


def main(argv: list[str] | None = None) -> dict:
    return run_starter(
        argv,
        description=__doc__.split("\n")[0],
        default_out="runs/cifar_starter",
        settings=SETTINGS,
        build_model=build_model,
        load_data=load_data,
        normalise=normalise,
        class_names=CIFAR10_CLASSES,
    )


if __name__ == "__main__":
    run_main(main)
