"""The course's MNIST starter network, trained and analysed (exercise 6).

    python experiments/mnist_starter.py [--out runs/mnist_starter] [--seed 0] [--iterations N]
                                        [--batch-size B] [--data-dir DIR]

Writes metrics.json, predictions.npy, model.npz, history.json and the figures filters.png,
misclassified.png, confusion_matrix.png and curves.png to --out; prints the test accuracy.
The network and its initialisation are the course's starter; the default settings are not the
course's (see SETTINGS): `--batch-size 16 --learning-rate 4e-3 --decay none` gives those.
"""

from __future__ import annotations

import numpy as np
from common import run_main, run_starter

from tapegrad import nn
from tapegrad.data import load_mnist

# The course's momentum, weight decay and iterations. Its learning rate (4e-3) and batch
# (16) reach 96.3 % here, and PyTorch with the same initialisation and updates 96.2 %, so
# for the stated 98 % the batch is 64, the rate 0.04, decaying linearly to 0 (see README).
SETTINGS = {
    "learning_rate": 0.04,
    "momentum": 0.95,
    "weight_decay": 0.01,
    "iterations": 5000,
    "batch_size": 64,
    "decay": "linear",
}


def build_model() -> nn.Sequential:
    """conv5 1-16, relu, pool, conv5 16-16, relu, conv5 16-16, relu, pool, linear 784-10."""
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2, init="he"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 5, padding=2, init="he"),
        nn.ReLU(),
        nn.Conv2d(16, 16, 5, padding=2, init="he"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(784, 10, init="he"),
    )
    # The skeleton scaled the first layer as if it had 3 input channels: N(0,1)/sqrt(5*5*3/2).
    model[0].weight.data[...] = nn.he_normal((16, 1, 5, 5), fan_in=5 * 5 * 3)
    return model


def normalise(train_images: np.ndarray, test_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels to [0, 1], minus the single mean intensity of the training set."""
    train = train_images.astype(np.float32) / 255
    mean = train.mean()
    return train - mean, test_images.astype(np.float32) / 255 - mean


def main(argv: list[str] | None = None) -> dict:
    return run_starter(
        argv,
        description=__doc__.split("\n")[0],
        default_out="runs/mnist_starter",
        settings=SETTINGS,
        build_model=build_model,
        load_data=load_mnist,
        normalise=normalise,
        class_names=[str(digit) for digit in range(10)],
    )


if __name__ == "__main__":
    run_main(main)
