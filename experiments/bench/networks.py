"""The benchmark's networks, defined once in tapegrad; PyTorch gets a converted twin.

The course starters come from the experiment scripts themselves (their `build_model`, with
their initialisation). airbench's layout is written here as a Sequential: the network of
cifar_improve.py has its own forward (ConvGroup, Net), which a layer-by-layer conversion to
PyTorch cannot follow, so the benchmark keeps this Sequential equivalent of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cifar_starter import build_model as cifar_starter
from mnist_starter import build_model as mnist_starter

from tapegrad import nn

CLASSES = 10
FLOPS_PER_MAC = {"train": 6, "eval": 2}  # 2 FLOPs per MAC; training = 3 forwards' worth


def mlp() -> nn.Sequential:
    """784-256-256-10 with ReLU, on MNIST-shaped 1 x 28 x 28 images (flattened first)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, CLASSES),
    )


def airbench_conv(widths: tuple[int, int, int] = (64, 256, 256)) -> nn.Sequential:
    """airbench's layout without BatchNorm and GELU, on 3 x 32 x 32.

    A 3x3 stem conv 3 -> 64, then three blocks (conv, pool 2, relu, conv, relu) of `widths`
    channels, a global max pool over the remaining 4 x 4, and a linear layer without bias.
    """

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.ReLU(),
        ]

    stem = 64
    return nn.Sequential(
        nn.Conv2d(3, stem, 3, padding=1),
        nn.ReLU(),
        *block(stem, widths[0]),
        *block(widths[0], widths[1]),
        *block(widths[1], widths[2]),
        nn.MaxPool2d(4),  # global max pool: 32 -> 16 -> 8 -> 4 after the three blocks
        nn.Flatten(),
        nn.Linear(widths[2], CLASSES, bias=False),
    )


def airbench(widths: tuple[int, int, int] = (64, 256, 256)) -> nn.Sequential:
    """The airbench94 network on 3 x 32 x 32: a 2x2 (whitening) stem conv 3 -> 24 and GELU,
    three blocks (conv, pool 2, BatchNorm, GELU, conv, BatchNorm, GELU) of `widths` channels,
    a global max pool over the remaining 3 x 3, and a linear layer without bias.
    """

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(c_out),
            nn.GELU(approximate="tanh"),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.GELU(approximate="tanh"),
        ]

    return nn.Sequential(
        nn.Conv2d(3, 24, 2),
        nn.GELU(approximate="tanh"),
        *block(24, widths[0]),
        *block(widths[0], widths[1]),
        *block(widths[1], widths[2]),
        nn.MaxPool2d(3),  # global max pool: 31 -> 15 -> 7 -> 3 after the three blocks
        nn.Flatten(),
        nn.Linear(widths[2], CLASSES, bias=False),
    )


@dataclass(frozen=True)
class Network:
    """A network to benchmark: its tapegrad builder and its input shape (one image)."""

    build: Callable[[], nn.Sequential]
    input_shape: tuple[int, ...]
    convolutional: bool = True


NETWORKS: dict[str, Network] = {
    "mnist_starter": Network(mnist_starter, (1, 28, 28)),
    "cifar_starter": Network(cifar_starter, (3, 32, 32)),
    "mlp": Network(mlp, (1, 28, 28), convolutional=False),
    "airbench_conv": Network(airbench_conv, (3, 32, 32)),
    "airbench": Network(airbench, (3, 32, 32)),
}


def network_flops(network: str, mode: str = "train") -> int:
    """FLOPs per image of a training step ("train") or a forward pass ("eval")."""
    spec = NETWORKS[network]
    return FLOPS_PER_MAC[mode] * nn.count_macs(spec.build(), spec.input_shape)


def to_torch(model: nn.Sequential) -> Any:
    """The same network as a torch.nn.Sequential, with copies of the same initial weights."""
    import torch

    def convert(layer: nn.Module) -> torch.nn.Module:
        if isinstance(layer, nn.Conv2d):
            twin = torch.nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                stride=layer.stride,
                padding=layer.padding,
                bias=layer.bias is not None,
            )
        elif isinstance(layer, nn.Linear):
            if layer.scale != 1.0:
                raise ValueError(f"to_torch: {layer!r} has an output scale PyTorch lacks.")
            twin = torch.nn.Linear(
                layer.in_features, layer.out_features, bias=layer.bias is not None
            )
        elif isinstance(layer, nn.BatchNorm2d):
            twin = torch.nn.BatchNorm2d(
                layer.num_features, layer.eps, layer.momentum, affine=layer.weight is not None
            )
            twin.running_mean.copy_(torch.from_numpy(layer.running_mean))
            twin.running_var.copy_(torch.from_numpy(layer.running_var))
        elif isinstance(layer, nn.MaxPool2d):
            twin = torch.nn.MaxPool2d(layer.kernel_size, layer.stride)
        else:
            simple = {nn.ReLU: torch.nn.ReLU, nn.Flatten: torch.nn.Flatten}
            if type(layer) in simple:
                twin = simple[type(layer)]()
            elif isinstance(layer, nn.GELU):
                twin = torch.nn.GELU(approximate=layer.approximate)
            else:
                raise TypeError(f"to_torch: no PyTorch twin for {type(layer).__name__}.")
        for name, parameter in vars(layer).items():
            if isinstance(parameter, nn.Parameter):
                twin_parameter = getattr(twin, name)
                with torch.no_grad():
                    twin_parameter.copy_(torch.from_numpy(parameter.data))
                twin_parameter.requires_grad_(parameter.requires_grad)
        return twin

    return torch.nn.Sequential(*(convert(layer) for layer in model))
