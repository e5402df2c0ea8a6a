"""One step of either framework on a fixed random batch, as a function of no arguments.

A training step is forward, cross-entropy loss, backward and an SGD update with momentum 0.9
and weight decay 5e-4; an evaluation step is a forward pass in eval mode under no_grad. All
in float32; no data loading.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import tapegrad as tg
from bench.networks import CLASSES, NETWORKS, to_torch
from tapegrad import nn, optim

# Tiny, so that hundreds of steps do not memorise the fixed batch: a saturated loss leaves
# gradients of zeros and denormals, which time differently. The work is the same at any rate.
LEARNING_RATE = 1e-5
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
MODES = ("train", "eval")


def random_batch(network: str, batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed float32 N(0, 1) images and integer labels for `network`."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, *NETWORKS[network].input_shape), np.float32)
    return images, rng.integers(0, CLASSES, batch_size)


def tapegrad_step(
    network: str, batch_size: int, mode: str = "train", seed: int = 0
) -> Callable[[], float]:
    """A function that runs one tapegrad step and returns the loss (train) or a logit (eval)."""
    tg.manual_seed(seed)
    model = NETWORKS[network].build()
    images, labels = random_batch(network, batch_size, seed)
    x = tg.as_tensor(images)
    if mode == "eval":
        model.eval()

        def evaluate() -> float:
            with tg.no_grad():
                return float(model(x).data[0, 0])

        return evaluate

    optimizer = optim.SGD(
        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    loss_fn = nn.CrossEntropyLoss()

    def train() -> float:
        loss = loss_fn(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.data)

    return train


def torch_step(
    network: str, batch_size: int, mode: str = "train", seed: int = 0
) -> Callable[[], float]:
    """The same step in PyTorch, from the same initial weights (imported here: optional)."""
    import torch

    tg.manual_seed(seed)
    model = to_torch(NETWORKS[network].build())
    images, labels = random_batch(network, batch_size, seed)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    if mode == "eval":
        model.eval()

        def evaluate() -> float:
            with torch.no_grad():
                return model(x)[0, 0].item()

        return evaluate

    optimizer = torch.optim.SGD(
        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    loss_fn = torch.nn.CrossEntropyLoss()

    def train() -> float:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return train


STEPS = {"tapegrad": tapegrad_step, "torch": torch_step}
