"""Modules (layers) in PyTorch's style, built on the engine's primitives."""

from tapegrad.nn import functional, init
from tapegrad.nn import utils as utils
from tapegrad.nn.activation import (
    ELU,
    Hardtanh,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from tapegrad.nn.attention import MultiheadAttention
from tapegrad.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from tapegrad.nn.conv import Conv1d, ConvTranspose2d
from tapegrad.nn.dropout import Dropout2d
from tapegrad.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from tapegrad.nn.modules import (
    GELU,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    IncompatibleKeys,
    Linear,
    MaxPool2d,
    Module,
    Parameter,
    ReLU,
    Sequential,
    StateDictError,
    Unflatten,
    count_macs,
    dirac_,
    he_normal,
    summary,
    whitening_filters,
)
from tapegrad.nn.normalization import BatchNorm1d, GroupNorm, LayerNorm
from tapegrad.nn.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d
from tapegrad.nn.sparse import Embedding

__all__ = [
    "GELU",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "IncompatibleKeys",
    "Linear",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "ReLU",
    "Sequential",
    "StateDictError",
    "count_macs",
    "dirac_",
    "functional",
    "he_normal",
    "init",
    "summary",
    "whitening_filters",
]
# convolution, pooling, normalisation, losses, attention and activation layers (issue 14)
__all__ += [
    "ELU",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "Conv1d",
    "ConvTranspose2d",
    "Dropout2d",
    "Embedding",
    "GroupNorm",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "LogSoftmax",
    "MSELoss",
    "MultiheadAttention",
    "NLLLoss",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
]
# the PyTorch layers people reach for next
__all__ += ["Hardtanh", "ReLU6", "Unflatten"]
