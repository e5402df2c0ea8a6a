"""Modules: parameters found by attribute, layers, losses, initialisers and `summary`."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from tapegrad.engine import ops
from tapegrad.engine.rng import generator
from tapegrad.engine.tape import no_grad
from tapegrad.engine.tensor import Tensor, as_tensor
from tapegrad.nn import init as initialisers
from tapegrad.nn.init import copy_into, dirac_  # noqa: F401  (nn.dirac_, as before)

_GRAD_SLOT = Tensor.grad  # the slot that Parameter.grad wraps


class Parameter(Tensor):
    """A tensor that a Module owns and an optimiser updates (requires a gradient by default).

    A Parameter that a Module keeps in a plain list or dict is not registered (the optimiser
    and the state dict never see it): it warns once, the first time it receives a gradient.
    """

    __slots__ = ("_unregistered_in",)

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    @property
    def grad(self) -> np.ndarray | None:
        return _GRAD_SLOT.__get__(self, Tensor)

    @grad.setter
    def grad(self, value: np.ndarray | None) -> None:
        _GRAD_SLOT.__set__(self, value)
        if value is not None and getattr(self, "_unregistered_in", None):
            warnings.warn(
                f"a Parameter of shape {self.shape} kept in {self._unregistered_in} received a "
                "gradient, but a plain list or dict does not register it: the optimiser will "
                "not update it and the state dict leaves it out. Keep it in nn.ParameterList, "
                "nn.ParameterDict, nn.ModuleList or nn.ModuleDict instead.",
                RuntimeWarning,
                stacklevel=2,
            )
            self._unregistered_in = ""  # once per parameter

    def _mark_unregistered(self, where: str) -> None:
        if getattr(self, "_unregistered_in", None) is None:
            self._unregistered_in = where

    def _mark_registered(self) -> None:
        self._unregistered_in = None

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


# --- initialisers ---------------------------------------------------------------------
def he_normal(shape: tuple[int, ...], fan_in: int | None = None, scale: float = 1.0) -> np.ndarray:
    """N(0, 1) / sqrt(fan_in / 2), the assignment's initialisation (He et al.), times `scale`.

    `fan_in` defaults to the product of all axes but the first (in x kh x kw for a conv).
    """
    fan_in = fan_in or math.prod(shape[1:])
    values = generator().standard_normal(shape) * (scale / math.sqrt(fan_in / 2))
    return values.astype(np.float32)


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
#: While `summary` runs: called with (module, output) after every module's forward.
_forward_observer: Callable[[Module, Any], None] | None = None


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict` returns: the keys it did not find, and the keys it ignored."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(ValueError, RuntimeError):
    """A state dict does not fit a model (a ValueError, and a RuntimeError as in PyTorch)."""


class Module:
    """Base class of layers and networks: parameters and submodules are found by attribute.

    Attributes holding a Parameter, a Module, or a list/tuple of Modules are part of the
    model; names follow the attribute path ("features.0.weight"). Keep Parameters and
    Modules in lists or dicts through `ParameterList`, `ParameterDict`, `ModuleList` and
    `ModuleDict`: ones hidden in a plain dict or list are not registered, and warn when they
    receive a gradient. Arrays named in `_buffers`, or registered with `register_buffer`
    (running statistics, say), are saved in the state dict too.
    """

    training: bool = True
    _buffers: tuple[str, ...] = ()
    _non_persistent_buffers: tuple[str, ...] = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        output = self.forward(*args, **kwargs)
        if _forward_observer is not None:
            _forward_observer(self, output)
        return output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward().")

    # --- registration ---------------------------------------------------------------
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add `param` (or None, a placeholder) as the attribute `name`."""
        self._check_new_name(name, "register_parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"{type(self).__name__}.register_parameter: {name!r} must be a Parameter or "
                f"None, got {type(param).__name__}."
            )
        setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add an array that is state but not a parameter (running statistics, say).

        It is saved in the state dict unless `persistent=False`; None is a placeholder.
        """
        self._check_new_name(name, "register_buffer")
        if tensor is not None and not isinstance(tensor, np.ndarray | Tensor):
            raise TypeError(
                f"{type(self).__name__}.register_buffer: {name!r} must be an array, a Tensor "
                f"or None, got {type(tensor).__name__}."
            )
        setattr(self, name, tensor)
        if name not in self._buffers:
            self._buffers = (*self._buffers, name)
        if not persistent and name not in self._non_persistent_buffers:
            self._non_persistent_buffers = (*self._non_persistent_buffers, name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add `module` as the attribute `name`."""
        self._check_new_name(name, "add_module")
        setattr(self, name, module)

    register_module = add_module

    def _check_new_name(self, name: str, method: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(
                f"{type(self).__name__}.{method}: the name must be a non-empty string without "
                f"dots, got {name!r}."
            )
        if hasattr(type(self), name):
            raise KeyError(f"{type(self).__name__}.{method}: {name!r} is a class attribute.")

    # --- walking the tree -----------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first, each once (by identity)."""
        if isinstance(memo, str):  # named_modules("prefix"), this project's old signature
            memo, prefix = None, memo
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(
                memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
            )

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every submodule (children first) and on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _named_own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """This module's own parameters (not its children's), by attribute name."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield name, value

    def _hidden_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Parameters in this module's plain lists, tuples, dicts and sets (and those of the
        Modules in its plain dicts and sets): not registered, so never trained or saved."""
        for attribute, value in vars(self).items():
            if not isinstance(value, list | tuple | dict | set):
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                where = f"{type(self).__name__}.{attribute}[{key!r}]"
                if isinstance(item, Parameter):
                    yield where, item
                elif isinstance(item, Module) and isinstance(value, dict | set):
                    for p in item.parameters():
                        yield where, p

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter by state-dict name; a parameter shared by two layers comes once."""
        modules = self.named_modules(prefix=prefix) if recurse else iter([(prefix, self)])
        seen: set[int] = set()
        hidden: list[tuple[str, Parameter]] = []
        for module_name, module in modules:
            hidden.extend(module._hidden_parameters())
            for name, value in module._named_own_parameters():
                if id(value) in seen and remove_duplicate:
                    continue
                seen.add(id(value))
                value._mark_registered()
                yield (f"{module_name}.{name}" if module_name else name), value
        for where, p in hidden:  # reached only when the walk is complete
            if id(p) not in seen:
                p._mark_unregistered(where)

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Every buffer's array by state-dict name, live (not copied)."""
        modules = self.named_modules(prefix=prefix) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name in module._buffers:
                value = getattr(module, name)
                if value is not None:
                    array = value.data if isinstance(value, Tensor) else value
                    yield (f"{module_name}.{name}" if module_name else name), array

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, array in self.named_buffers(recurse=recurse):
            yield array

    # --- modes and gradients --------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set `requires_grad` on every parameter (freeze with False); returns self."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (or fill it with zeros, `set_to_none=False`)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0)

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # --- state ----------------------------------------------------------------------
    def named_arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every parameter's and saved buffer's array by state-dict name, live (not copied)."""
        for name, target in self._state_targets():
            yield name, target.data if isinstance(target, Tensor) else getattr(*target)

    def _state_targets(self) -> Iterator[tuple[str, Any]]:
        """State-dict names with what holds each value: a Parameter, or (module, attribute)."""
        yield from self.named_parameters()
        for module_name, module in self.named_modules():
            for name in module._buffers:
                value = getattr(module, name)
                if value is None or name in module._non_persistent_buffers:
                    continue
                key = f"{module_name}.{name}" if module_name else name
                yield key, value if isinstance(value, Tensor) else (module, name)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by name."""
        return {name: array.copy() for name, array in self.named_arrays()}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy `state_dict` into the model; returns (missing_keys, unexpected_keys).

        Keys that do not match raise StateDictError unless `strict=False`; shapes must always
        fit. Works also while a forward pass holds the parameters (they get new arrays).
        """
        targets = dict(self._state_targets())
        own = dict(self.named_arrays())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [
            f"{k}: checkpoint {tuple(np.shape(state_dict[k]))}, model {own[k].shape}"
            for k in own
            if k in state_dict and tuple(np.shape(state_dict[k])) != own[k].shape
        ]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append(f"mismatched shapes [{'; '.join(mismatched)}]")
        if problems:
            raise StateDictError(
                f"load_state_dict: the state does not fit {type(self).__name__}: "
                + ", ".join(problems)
                + "."
            )
        for name, target in targets.items():
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name])
            if isinstance(target, Tensor):
                copy_into(target, value)
            else:
                module, attribute = target
                array = getattr(module, attribute)
                if array.flags.writeable:
                    array[...] = value
                else:
                    setattr(module, attribute, value.astype(array.dtype))
        return IncompatibleKeys(missing, unexpected)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Layers applied one after the other, fusing where it can; indexable like a list.

    forward runs a Conv2d followed by a ReLU, a 2x2 stride-2 MaxPool2d, or both in either order,
    as one fused conv2d primitive (see `_fused_after`): same values, fewer passes. Fusion matches
    the exact classes, so a subclass of Conv2d, ReLU or MaxPool2d (say, one with its own forward)
    is never fused and runs as its own layer.
    """

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x: Tensor) -> Tensor:
        i = 0
        while i < len(self.layers):
            # the same values in fewer passes; layer by layer while `summary` watches
            fused = _fused_after(self.layers, i) if _forward_observer is None else {}
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

    A Conv2d runs the ReLU (relu=True) and the 2x2, stride-2 MaxPool2d (pool=True) that follow
    it, one of each in either order, as one conv2d primitive, which clips before it pools:
    max pooling and ReLU commute, max(max_w y, 0) = max_w max(y, 0), and where a window's
    maximum is not positive both orders pass it no gradient.
    """
    if type(layers[i]) is not Conv2d:
        return {}
    fused: dict[str, bool] = {}
    for layer in layers[i + 1 : i + 3]:
        if type(layer) is ReLU and "relu" not in fused:
            fused["relu"] = True
        elif type(layer) is MaxPool2d and _is_2x2(layer) and "pool" not in fused:
            fused["pool"] = True
        else:
            break
    return fused


def _is_2x2(pool: MaxPool2d) -> bool:
    """Whether the pooling has 2x2 windows and stride 2 (no padding, dilation or ceil_mode),
    the one pool=True fuses."""
    return (
        pool.kernel_size in (2, (2, 2))
        and pool.stride in (2, (2, 2))
        and pool.padding in (0, (0, 0))
        and pool.dilation in (1, (1, 1))
        and not pool.ceil_mode
    )


def _as_input(x: Any) -> Tensor:
    """A layer's input as a Tensor: arrays and (nested) lists are converted as by `tensor`."""
    return x if isinstance(x, Tensor) else as_tensor(x)


#: How Linear and Conv2d initialise: "pytorch" (the default), "he" (the course's), or a
#: function of the weight's shape returning its array (the bias then starts at zero).
Initialisation = str | Callable[[tuple[int, ...]], np.ndarray]


def _initial_parameters(
    shape: tuple[int, ...], bias: bool, init: Initialisation
) -> tuple[Parameter, Parameter | None]:
    """The weight and bias of a Linear or Conv2d layer, initialised as `init` says.

    "pytorch": weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default
    (kaiming_uniform_ with a = sqrt(5) for the weight). "he": weight N(0, 2 / fan_in), the
    assignment's, and bias 0.
    """
    if init == "pytorch":
        weight = Parameter(np.empty(shape, np.float32))
        initialisers.kaiming_uniform_(weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(math.prod(shape[1:]))
        bias_values = generator().uniform(-bound, bound, shape[0]) if bias else None
    elif init == "he" or callable(init):
        weight = Parameter(he_normal(shape) if init == "he" else init(shape))
        bias_values = np.zeros(shape[0]) if bias else None
    else:
        raise ValueError(f"init must be 'pytorch', 'he' or a function of the shape, got {init!r}.")
    if bias_values is None:
        return weight, None
    return weight, Parameter(bias_values.astype(np.float32))


class Linear(Module):
    """y = x W^T + b, times an optional constant output `scale` (W has shape (out, in))."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        scale: float = 1.0,
        init: Initialisation = "pytorch",
    ) -> None:
        self.in_features, self.out_features, self.scale = in_features, out_features, scale
        self.weight, self.bias = _initial_parameters((out_features, in_features), bias, init)

    def forward(self, x: Tensor) -> Tensor:
        x = _as_input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}, expected (N, {self.in_features})."
            )
        y = ops.linear(x, self.weight, self.bias)
        return y if self.scale == 1.0 else y * self.scale

    def extra_repr(self) -> str:
        scale = "" if self.scale == 1.0 else f", scale={self.scale:g}"
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}{scale}"


def _check_padding_mode(layer: str, padding_mode: str) -> None:
    if padding_mode != "zeros":
        raise ValueError(f"{layer}: only padding_mode='zeros' is supported, got {padding_mode!r}.")


class Conv2d(Module):
    """2-D convolution over NCHW input; weight (out, in / groups, kh, kw). PyTorch's
    arguments in PyTorch's order; `init` ("pytorch", "he" or a function of the shape) is
    tapegrad's own and keyword-only."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | str | tuple[int, ...] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        init: Initialisation = "pytorch",
    ) -> None:
        _check_padding_mode("Conv2d", padding_mode)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}."
            )
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.dilation, self.groups = dilation, groups
        shape = (out_channels, in_channels // groups, kh, kw)
        self.weight, self.bias = _initial_parameters(shape, bias, init)

    def forward(self, x: Tensor, relu: bool = False, pool: bool = False) -> Tensor:
        """The convolution of x; with relu then max(., 0), with pool then 2x2 max pooling
        with stride 2: one fused primitive (see ops.conv2d)."""
        x, channels = _as_input(x), self.in_channels
        if x.ndim not in (3, 4) or x.shape[-3] != channels:  # (C, H, W): ops.conv2d's batch of one
            raise ValueError(
                f"{self!r} got input of shape {x.shape}, expected (N, {channels}, H, W) or one "
                f"image ({channels}, H, W)."
            )
        return ops.conv2d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            relu=relu,
            pool=pool,
        )

    def extra_repr(self) -> str:
        extra = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
        extra += f"stride={self.stride}, padding={self.padding}"
        if self.dilation not in (1, (1, 1)):
            extra += f", dilation={self.dilation}"
        if self.groups != 1:
            extra += f", groups={self.groups}"
        return extra + f", bias={self.bias is not None}"


class MaxPool2d(Module):
    """Max pooling over windows of `kernel_size`, moved by `stride` (default: the kernel),
    with PyTorch's padding (read as -inf), dilation and ceil_mode."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported.")
        stride = kernel_size if stride is None else stride
        for name, value in (("kernel_size", kernel_size), ("stride", stride)):
            if min(value if isinstance(value, tuple | list) else (value,)) < 1:
                raise ValueError(f"MaxPool2d: {name} must be positive, got {value!r}.")
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return ops.max_pool2d(
            x,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            ceil_mode=self.ceil_mode,
        )

    def extra_repr(self) -> str:
        extra = f"kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in (0, (0, 0)) or self.dilation not in (1, (1, 1)):
            extra += f", padding={self.padding}, dilation={self.dilation}"
        return extra + (", ceil_mode=True" if self.ceil_mode else "")


class ReLU(Module):
    """max(x, 0). `inplace` is accepted for PyTorch's signature: the layer returns a new
    tensor either way, which a model built of layers cannot tell apart."""

    def __init__(self, inplace: bool = False) -> None:
        pass

    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Flatten(Module):
    """Merge axes start_dim..end_dim into one; by default all but the batch axis:
    (N, ...) -> (N, prod(...))."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return _as_input(x).flatten(self.start_dim, self.end_dim)


class Unflatten(Module):
    """Split axis `dim` into `unflattened_size` (one entry may be -1), Flatten's inverse."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]) -> None:
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        x = _as_input(x)
        axis = self.dim % x.ndim
        return x.reshape(*x.shape[:axis], *self.unflattened_size, *x.shape[axis + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class BatchNorm2d(Module):
    """Batch normalisation over the channels of NCHW input, with running statistics.

    Training normalises with the batch's statistics and updates the running ones
    (r <- (1 - momentum) r + momentum batch); evaluation uses the running ones.
    `affine=False` drops weight and bias; `track_running_stats=False` keeps no running
    statistics and normalises with the batch's in evaluation too (as PyTorch);
    `freeze_weight=True` keeps the weight at 1.
    """

    _buffers = ("running_mean", "running_var")
    #: The input ranks taken, and their layout for the error message (C: num_features).
    _ranks, _layout = (4,), "(N, {C}, H, W)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        freeze_weight: bool = False,
    ) -> None:
        if momentum is None:
            raise TypeError(
                f"{type(self).__name__}: momentum must be a number; PyTorch's momentum=None (a "
                "cumulative average of the batches' statistics) is not supported."
            )
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.track_running_stats = track_running_stats
        self.weight = self.bias = None
        if affine:
            ones = np.ones(num_features, np.float32)
            self.weight = Parameter(ones, requires_grad=not freeze_weight)
            self.bias = Parameter(np.zeros(num_features, np.float32))
        self.running_mean = self.running_var = None
        if track_running_stats:
            self.running_mean = np.zeros(num_features, np.float32)
            self.running_var = np.ones(num_features, np.float32)

    def forward(self, x: Tensor) -> Tensor:
        x = _as_input(x)
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            expected = self._layout.format(C=self.num_features)
            raise ValueError(f"{self!r} got input of shape {x.shape}, expected {expected}.")
        return ops.batch_norm(
            x,
            self.weight,
            self.bias,
            running_mean=self.running_mean,
            running_var=self.running_var,
            training=self.training or not self.track_running_stats,
            momentum=self.momentum,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        extra = "" if self.track_running_stats else ", track_running_stats=False"
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}{extra}"


class GELU(Module):
    """GELU activation: exact x Phi(x) (`approximate="none"`, PyTorch's default) or its tanh
    approximation (`approximate="tanh"`, one fused kernel pass)."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}.")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return ops.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Dropout(Module):
    """Zero each element with probability p in training (and scale the rest by 1/(1-p))."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:  # inplace: see ReLU
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must lie in [0, 1], got {p}.")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return ops.dropout(x, p=self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class GlobalMaxPool2d(Module):
    """The maximum over each channel's whole plane: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return _as_input(x).max(axis=(2, 3))


class GlobalAvgPool2d(Module):
    """The mean over each channel's whole plane: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return _as_input(x).mean(axis=(2, 3))


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


# --- summary and multiply-accumulates -----------------------------------------------------
def summary(model: Module, input_shape: tuple[int, ...], print_table: bool = True) -> list[dict]:
    """Each leaf layer's output shape, parameter count and MACs for one input of `input_shape`.

    Runs one zero input through any Module and records a row per call of a module without
    submodules (or with parameters of its own), in call order. Returns the rows ({"layer",
    "output_shape", "parameters", "macs"}) and prints them as a table with the model's total;
    "macs" are the multiply-accumulates of the Conv2d and Linear layers (see `count_macs`).
    """
    global _forward_observer
    names = {id(module): name for name, module in model.named_modules()}
    rows: list[dict] = []
    counted = [0]  # MACs already given to a row

    def observe(module: Module, output: Any) -> None:
        own = sum(p.numel() for p in module.parameters(recurse=False))
        if own == 0 and next(module.children(), None) is not None:
            return  # a container: its layers have rows of their own
        name = names.get(id(module), "?")
        rows.append(
            {
                "layer": f"{name} {module!r}" if name else repr(module),
                "output_shape": getattr(output, "shape", (None,))[1:],
                "parameters": own,
                "macs": macs[0] - counted[0],  # the layers finish in call order
            }
        )
        counted[0] = macs[0]

    previous = _forward_observer
    with _counting_macs(model) as macs:
        _forward_observer = observe
        try:
            model(as_tensor(np.zeros((1, *input_shape), np.float32)))
        finally:
            _forward_observer = previous
    if print_table:
        width = max([len(r["layer"]) for r in rows] + [5])
        print(f"{'layer':<{width}}  {'output shape':<16}{'parameters':>12}{'MACs':>14}")
        for r in rows:
            shape = " x ".join(map(str, r["output_shape"]))
            print(f"{r['layer']:<{width}}  {shape:<16}{r['parameters']:>12,}{r['macs']:>14,}")
        total = sum(p.numel() for p in model.parameters()), sum(r["macs"] for r in rows)
        print(f"{'total':<{width}}  {'':<16}{total[0]:>12,}{total[1]:>14,}")
    return rows


def count_macs(model: Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of one input of `input_shape` (no batch axis).

    Counts the Conv2d (out_channels x output pixels x in_channels x kh x kw) and Linear (outputs
    x in_features) layers anywhere in the model, whatever its forward; activations, pooling,
    norms and losses count 0. A training step does about 3 forwards' worth (the forward, the
    gradients of the inputs and of the weights): 6 FLOPs per MAC.
    """
    with _counting_macs(model) as macs:
        model(as_tensor(np.zeros((1, *input_shape), np.float32)))
    return macs[0]


@contextlib.contextmanager
def _counting_macs(model: Module) -> Iterator[list[int]]:
    """Eval mode, no_grad, and each Conv2d/Linear adding its MACs to the yielded [count].

    The counter wraps the layers' forward (an instance attribute, removed afterwards). A Conv2d
    that a Sequential fuses with its ReLU and pooling runs unfused here, so that its own output
    (before the pooling) is what is counted; the values are the same.
    """
    macs = [0]
    counted = [m for _, m in model.named_modules() if isinstance(m, Conv2d | Linear)]

    def wrap(layer: Conv2d | Linear) -> Callable[..., Tensor]:
        forward = layer.forward

        def counting(x: Tensor, relu: bool = False, pool: bool = False) -> Tensor:
            y = forward(x)
            per_output = layer.weight.data[0].size  # in_features, or in_channels x kh x kw
            macs[0] += (y.numel() // y.shape[0]) * per_output
            if relu:
                y = ops.relu(y)
            return ops.max_pool2d(y, kernel_size=2, stride=2) if pool else y

        return counting

    was_training = model.training
    model.eval()
    try:
        for layer in counted:
            layer.forward = wrap(layer)
        with no_grad():
            yield macs
    finally:
        for layer in counted:
            del layer.forward
        model.train(was_training)
