"""Containers that register what they hold: ModuleList, ModuleDict, ParameterList,
ParameterDict (PyTorch's names and behaviour). Their items are named by index or key in
the state dict ("blocks.0.weight", "heads.cls.bias")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tapegrad.engine.tensor import Tensor
from tapegrad.nn.modules import Module, Parameter

__all__ = ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList"]


def _module(owner: str, value: Any) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{owner} holds Modules, got {type(value).__name__}.")
    return value


def _parameter(value: Any) -> Parameter:
    """A Parameter as it is; a Tensor or array becomes a new Parameter (as in PyTorch)."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value.data, requires_grad=value.requires_grad)
    return Parameter(value)


def _key(owner: str, key: Any) -> str:
    if not isinstance(key, str) or not key or "." in key:
        raise KeyError(f"{owner}: keys are non-empty strings without dots, got {key!r}.")
    return key


class _KeyedItems:
    """The dict interface of ModuleDict and ParameterDict over `self._items`; each class
    checks and converts what it stores in its own `__setitem__`, which `update` goes through."""

    _items: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __delitem__(self, key: str) -> None:
        del self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def keys(self) -> Iterable[str]:
        return self._items.keys()

    def values(self) -> Iterable[Any]:
        return self._items.values()

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._items.items()

    def pop(self, key: str) -> Any:
        return self._items.pop(key)

    def clear(self) -> None:
        self._items.clear()

    def update(self, items: Mapping[str, Any] | Iterable) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self[key] = value  # type: ignore[index]


class ModuleList(Module):
    """A list of Modules, each registered (indexable, iterable, appendable)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        self._items: list[Module] = []
        if modules is not None:
            self.extend(modules)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, module in enumerate(self._items):
            yield str(i), module

    def append(self, module: Module) -> ModuleList:
        self._items.append(_module("ModuleList", module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        self._items.insert(index, _module("ModuleList", module))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(self._items[index])
        return self._items[index]

    def __setitem__(self, index: int, module: Module) -> None:
        self._items[index] = _module("ModuleList", module)

    def __delitem__(self, index: int | slice) -> None:
        del self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(): iterate over it in yours.")


class ModuleDict(_KeyedItems, Module):
    """A dict of Modules by string key, each registered, in insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None) -> None:
        self._items: dict[str, Module] = {}
        if modules is not None:
            self.update(modules)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._items.items()

    def __setitem__(self, key: str, module: Module) -> None:
        self._items[_key("ModuleDict", key)] = _module("ModuleDict", module)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(): pick its modules in yours.")


class ParameterList(Module):
    """A list of Parameters, each registered; Tensors and arrays become Parameters."""

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        self._items: list[Parameter] = []
        if values is not None:
            self.extend(values)

    def _named_own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for i, p in enumerate(self._items):
            yield str(i), p

    def append(self, value: Any) -> ParameterList:
        self._items.append(_parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        for value in values:
            self.append(value)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ParameterList(self._items[index])
        return self._items[index]

    def __setitem__(self, index: int, value: Any) -> None:
        self._items[index] = _parameter(value)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._items)

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def extra_repr(self) -> str:
        return ", ".join(f"({i}): shape {tuple(p.shape)}" for i, p in enumerate(self._items))


class ParameterDict(_KeyedItems, Module):
    """A dict of Parameters by string key, each registered; Tensors and arrays become
    Parameters."""

    def __init__(self, parameters: Mapping[str, Any] | Iterable | None = None) -> None:
        self._items: dict[str, Parameter] = {}
        if parameters is not None:
            self.update(parameters)

    def _named_own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        yield from self._items.items()

    def __setitem__(self, key: str, value: Any) -> None:
        self._items[_key("ParameterDict", key)] = _parameter(value)

    def extra_repr(self) -> str:
        return ", ".join(f"({k}): shape {tuple(p.shape)}" for k, p in self._items.items())
