"""Modules: parameters found by attribute, layers, losses, initialisers and `summary`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tapegrad import ops
from tapegrad import random as _random
from tapegrad.tape import no_grad
from tapegrad.tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module owns and an optimiser updates (requires a gradient by default)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


# --- initialisers ---------------------------------------------------------------------
def he_normal(shape: tuple[int, ...], fan_in: int | None = None, scale: float = 1.0) -> np.ndarray:
    """N(0, 1) / sqrt(fan_in / 2), the assignment's initialisation (He et al.), times `scale`.

    `fan_in` defaults to the product of all axes but the first (in x kh x kw for a conv).
    """
    fan_in = fan_in or math.prod(shape[1:])
    values = _random.generator().standard_normal(shape) * (scale / math.sqrt(fan_in / 2))
    return values.astype(np.float32)


def uniform_fan_in(shape: tuple[int, ...], fan_in: int | None = None) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for Linear and Conv2d."""
    bound = 1 / math.sqrt(fan_in or math.prod(shape[1:]))
    return _random.generator().uniform(-bound, bound, shape).astype(np.float32)


def dirac_(weight: np.ndarray) -> np.ndarray:
    """Make the first min(C_out, C_in) filters of a conv weight identities (in place).

    Filter i then passes input channel i through unchanged (a 1 at the kernel's centre), so
    a freshly initialised deep stack starts close to the identity map.
    """
    out_channels, in_channels, kh, kw = weight.shape
    count = min(out_channels, in_channels)
    weight[:count] = 0
    weight[np.arange(count), np.arange(count), kh // 2, kw // 2] = 1
    return weight


def whitening_filters(
    images: np.ndarray, kernel_size: int = 2, eps: float = 5e-4, centred: bool = True
) -> np.ndarray:
    """Conv filters that whiten the kernel_size x kernel_size patches of `images` (N, C, H, W).

    From the PCA of the patches: the eigenvectors of their covariance scaled by
    1 / sqrt(eigenvalue + eps), and their negatives, so that the filters' outputs are
    decorrelated with unit variance. `centred=False` uses the second moment instead of the
    covariance, as airbench does. Returns (2 C k k, C, k, k) float32 filters.
    """
    images = np.asarray(images, dtype=np.float64)
    channels, k = images.shape[1], kernel_size
    windows = np.lib.stride_tricks.sliding_window_view(images, (k, k), axis=(2, 3))
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, channels * k * k)
    if centred:
        patches = patches - patches.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(patches.T @ patches / len(patches))
    filters = (eigenvectors.T / np.sqrt(eigenvalues + eps)[:, None]).reshape(-1, channels, k, k)
    return np.concatenate([filters, -filters]).astype(np.float32)


# --- Module ---------------------------------------------------------------------------
class Module:
    """Base class of layers and networks: parameters and submodules are found by attribute.

    Attributes holding a Parameter, a Module, or a list/tuple of Modules are part of the
    model; names follow the attribute path ("features.0.weight"). Arrays named in
    `_buffers` (running statistics, say) are saved in the state dict too.
    """

    training: bool = True
    _buffers: tuple[str, ...] = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward().")

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for module_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def named_arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every parameter's and buffer's array by state-dict name, live (not copied)."""
        for name, p in self.named_parameters():
            yield name, p.data
        for module_name, module in self.named_modules():
            for buffer in module._buffers:
                yield (
                    (f"{module_name}.{buffer}" if module_name else buffer),
                    getattr(module, buffer),
                )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by name."""
        return {name: array.copy() for name, array in self.named_arrays()}

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy `state` into the model; a key or shape that does not fit raises ValueError.

        With `strict=False`, missing and unexpected keys are ignored (shapes still must fit).
        """
        own = dict(self.named_arrays())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched = [
            f"{k}: checkpoint {tuple(np.shape(state[k]))}, model {own[k].shape}"
            for k in own
            if k in state and tuple(np.shape(state[k])) != own[k].shape
        ]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append(f"mismatched shapes [{'; '.join(mismatched)}]")
        if problems:
            raise ValueError(
                f"load_state_dict: the state does not fit {type(self).__name__}: "
                + ", ".join(problems)
                + "."
            )
        for name, array in own.items():
            if name in state:
                array[...] = state[name]

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Layers applied one after the other; indexable like a list."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x: Tensor) -> Tensor:
        i = 0
        while i < len(self.layers):
            fused = _fused_after(self.layers, i)  # the same values, fewer passes over them
            x = self.layers[i](x, **fused)
            i += 1 + len(fused)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)


def _fused_after(layers: list[Module], i: int) -> dict[str, bool]:
    """The layers after layers[i] that run inside it, as keyword arguments of its forward.

    A Conv2d runs a ReLU that follows it (relu=True), and a 2x2, stride-2 MaxPool2d after
    that (pool=True), as one conv2d primitive.
    """
    following = [type(layer) for layer in layers[i : i + 3]]
    if following[:2] != [Conv2d, ReLU]:
        return {}
    if following[2:] == [MaxPool2d] and _is_2x2(layers[i + 2]):
        return {"relu": True, "pool": True}
    return {"relu": True}


def _is_2x2(pool: MaxPool2d) -> bool:
    """Whether the pooling has 2x2 windows and stride 2, the one pool=True fuses."""
    return pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2))


def _check_input(layer: Module, x: Tensor, ndim: int, axis: int, size: int, expected: str) -> None:
    if x.ndim != ndim or x.shape[axis] != size:
        raise ValueError(f"{layer!r} got input of shape {x.shape}, expected {expected}.")


class Linear(Module):
    """y = x W^T + b, times an optional constant output `scale` (W has shape (out, in))."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        scale: float = 1.0,
        init: Callable[..., np.ndarray] = he_normal,
    ) -> None:
        self.in_features, self.out_features, self.scale = in_features, out_features, scale
        self.weight = Parameter(init((out_features, in_features)))
        self.bias = Parameter(np.zeros(out_features, np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}, expected (N, {self.in_features})."
            )
        y = ops.linear(x, self.weight, self.bias)
        return y if self.scale == 1.0 else y * self.scale

    def extra_repr(self) -> str:
        scale = "" if self.scale == 1.0 else f", scale={self.scale:g}"
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}{scale}"


class Conv2d(Module):
    """2-D convolution over NCHW input; weight (out, in, kh, kw)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        init: Callable[..., np.ndarray] = he_normal,
    ) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.weight = Parameter(init((out_channels, in_channels, kh, kw)))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None

    def forward(self, x: Tensor, relu: bool = False, pool: bool = False) -> Tensor:
        """The convolution of x; with relu then max(., 0), with pool then 2x2 max pooling
        with stride 2: one fused primitive (see ops.conv2d)."""
        _check_input(self, x, 4, 1, self.in_channels, f"(N, {self.in_channels}, H, W)")
        return ops.conv2d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            relu=relu,
            pool=pool,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class MaxPool2d(Module):
    """Max pooling over windows of `kernel_size`, moved by `stride` (default: the kernel)."""

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        self.kernel_size, self.stride = kernel_size, stride or kernel_size

    def forward(self, x: Tensor) -> Tensor:
        return ops.max_pool2d(x, kernel_size=self.kernel_size, stride=self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Flatten(Module):
    """Flatten all axes but the batch axis: (N, ...) -> (N, prod(...))."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)


class BatchNorm2d(Module):
    """Batch normalisation over the channels of NCHW input, with running statistics.

    Training normalises with the batch's statistics and updates the running ones
    (r <- (1 - momentum) r + momentum batch); evaluation uses the running ones.
    `affine=False` drops weight and bias; `freeze_weight=True` keeps the weight at 1.
    """

    _buffers = ("running_mean", "running_var")

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        freeze_weight: bool = False,
    ) -> None:
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = self.bias = None
        if affine:
            ones = np.ones(num_features, np.float32)
            self.weight = Parameter(ones, requires_grad=not freeze_weight)
            self.bias = Parameter(np.zeros(num_features, np.float32))
        self.running_mean = np.zeros(num_features, np.float32)
        self.running_var = np.ones(num_features, np.float32)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, 4, 1, self.num_features, f"(N, {self.num_features}, H, W)")
        return ops.batch_norm(
            x,
            self.weight,
            self.bias,
            running_mean=self.running_mean,
            running_var=self.running_var,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"


class GELU(Module):
    """GELU activation, tanh approximation (PyTorch's `GELU(approximate="tanh")`)."""

    def __init__(self, approximate: str = "tanh") -> None:
        if approximate != "tanh":
            raise ValueError(f"GELU: only approximate='tanh' is implemented, got {approximate!r}.")

    def forward(self, x: Tensor) -> Tensor:
        return ops.gelu(x)


class Dropout(Module):
    """Zero each element with probability p in training (and scale the rest by 1/(1-p))."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}.")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return ops.dropout(x, p=self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class GlobalMaxPool2d(Module):
    """The maximum over each channel's whole plane: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.max(axis=(2, 3))


class GlobalAvgPool2d(Module):
    """The mean over each channel's whole plane: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(axis=(2, 3))


class CrossEntropyLoss(Module):
    """The softmax loss (see `tapegrad.cross_entropy`) as a module."""

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def forward(self, logits: Tensor, labels: Any) -> Tensor:
        return ops.cross_entropy(
            logits, labels, label_smoothing=self.label_smoothing, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing:g}, reduction={self.reduction!r}"


# --- summary --------------------------------------------------------------------------
def summary(model: Module, input_shape: tuple[int, ...], print_table: bool = True) -> list[dict]:
    """Each layer's output shape and parameter count for one input of `input_shape`.

    Layers of a Sequential (nested ones too) get a row each; other modules one row. Returns
    the rows ({"layer", "output_shape", "parameters"}) and prints them as a table.
    """
    rows: list[dict] = []

    def run(module: Module, x: Tensor, name: str) -> Tensor:
        if isinstance(module, Sequential):
            for i, layer in enumerate(module.layers):
                x = run(layer, x, f"{name}.{i}" if name else str(i))
            return x
        y = module(x)
        count = sum(p.size for p in module.parameters())
        rows.append(
            {"layer": f"{name} {module!r}", "output_shape": y.shape[1:], "parameters": count}
        )
        return y

    was_training = model.training
    model.eval()
    try:
        with no_grad():
            run(model, Tensor._wrap(np.zeros((1, *input_shape), np.float32)), "")
    finally:
        model.train(was_training)
    if print_table:
        width = max(len(r["layer"]) for r in rows)
        print(f"{'layer':<{width}}  {'output shape':<16}{'parameters':>12}")
        for r in rows:
            shape = " x ".join(map(str, r["output_shape"]))
            print(f"{r['layer']:<{width}}  {shape:<16}{r['parameters']:>12,}")
        print(f"{'total':<{width}}  {'':<16}{sum(r['parameters'] for r in rows):>12,}")
    return rows
