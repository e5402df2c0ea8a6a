"""Modules (layers) in PyTorch's style, built on the engine's primitives."""

from tapegrad.nn import utils as utils
from tapegrad.nn.modules import (
    GELU,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    Linear,
    MaxPool2d,
    Module,
    Parameter,
    ReLU,
    Sequential,
    dirac_,
    he_normal,
    summary,
    whitening_filters,
)

__all__ = [
    "GELU",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "dirac_",
    "he_normal",
    "summary",
    "whitening_filters",
]
