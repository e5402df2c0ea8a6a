"""DataLoader: batches of a dataset as Tensors, in order or shuffled, as PyTorch's.

Fast path: when the dataset holds its items in arrays (it defines `get_batch(indices)`, as
TensorDataset, Subset of one, MNIST and CIFAR10 do) and no `collate_fn` is given, a batch is
gathered with one fancy index per array and transformed as a whole, instead of item by item.
Everything runs in the calling process: the data sets here fit in memory, so there are no workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tapegrad.engine.rng import generator as default_generator
from tapegrad.engine.tensor import Tensor

__all__ = ["DataLoader", "default_collate"]


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of items into a batch, as PyTorch's default_collate does.

    Tensors and arrays are stacked along a new first axis into a Tensor; ints become an int64
    Tensor, floats a float64 Tensor, bools a bool Tensor; tuples, lists and dicts are collated
    field by field; strings stay a list.
    """
    first = samples[0]
    if isinstance(first, Tensor | np.ndarray | np.generic):
        arrays = [s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples]
        return Tensor._wrap(np.stack(arrays))
    if isinstance(first, bool):
        return Tensor._wrap(np.array(samples, dtype=bool))
    if isinstance(first, int):
        return Tensor._wrap(np.array(samples, dtype=np.int64))
    if isinstance(first, float):
        return Tensor._wrap(np.array(samples, dtype=np.float64))
    if isinstance(first, str | bytes):
        return list(samples)
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, tuple | list):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: the items of a batch have different lengths.")
        fields = [default_collate(list(column)) for column in zip(*samples, strict=True)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(
        f"default_collate: cannot batch items of type {type(first).__name__}; pass a collate_fn."
    )


def _as_batch_field(field: Any) -> Any:
    """One field of a dataset's get_batch result as a Tensor."""
    if isinstance(field, Tensor):
        return field
    if isinstance(field, np.ndarray):
        return Tensor._wrap(field)
    return default_collate(field)  # a list of per-item results (a per-image transform)


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`, yielding Tensors.

    `shuffle` draws a new order every epoch (every `iter`) from `generator`, a NumPy Generator,
    or from tapegrad's (seeded by `tg.manual_seed`) when None; `drop_last` leaves out a last
    batch smaller than `batch_size`; `collate_fn` turns a list of items into a batch (default:
    `default_collate`). `num_workers` and `pin_memory` are accepted for scripts written for
    PyTorch and change nothing: batches are built in this process.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: np.random.Generator | None = None,
        *,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}.")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(
                "DataLoader: generator must be a numpy.random.Generator (np.random.default_rng"
                f"(seed)), got {type(generator).__name__}."
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.generator = generator
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        count = len(self.dataset) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.dataset))
        return (self.generator or default_generator()).permutation(len(self.dataset))

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        fast = self.collate_fn is None and callable(getattr(self.dataset, "get_batch", None))
        collate = self.collate_fn or default_collate
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start : start + self.batch_size]
            if fast:
                yield tuple(_as_batch_field(f) for f in self.dataset.get_batch(indices))
            else:
                yield collate([self.dataset[int(i)] for i in indices])
