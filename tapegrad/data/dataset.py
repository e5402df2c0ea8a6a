"""Datasets as PyTorch has them: Dataset, TensorDataset, Subset, ConcatDataset, random_split.

A dataset is anything with `__len__` and `__getitem__(index)`. A dataset held in arrays may
also define `get_batch(indices) -> tuple of arrays`, the whole batch at once: the DataLoader
then gathers a batch with one fancy index per array instead of one item at a time (its fast
path). TensorDataset, Subset of such a dataset, MNIST and CIFAR10 do.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tapegrad.engine.rng import generator as default_generator
from tapegrad.engine.tensor import Tensor

__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]


class Dataset:
    """A map-style dataset: subclasses define `__getitem__(index)` and `__len__()`."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__.")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__.")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _check_index(index: Any, length: int, owner: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise TypeError(f"{owner}: an index must be an integer, got {type(index).__name__}.")
    if not -length <= index < length:
        raise IndexError(f"{owner}: index {index} is out of range for {length} items.")
    return int(index) % length


class TensorDataset(Dataset):
    """Items are the `index`-th rows of the given Tensors or arrays (all of the same length).

    `dataset[i]` is a tuple of Tensors, as in PyTorch; batches are gathered array-wise.
    """

    def __init__(self, *tensors: Tensor | np.ndarray) -> None:
        if not tensors:
            raise ValueError("TensorDataset: give at least one Tensor or array.")
        self.arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
        lengths = [len(a) if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(
                f"TensorDataset: every Tensor needs the same first dimension, got shapes {shapes}."
            )
        self.tensors = tuple(Tensor._wrap(a) for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        index = _check_index(index, len(self), "TensorDataset")
        return tuple(Tensor._wrap(np.asarray(a[index])) for a in self.arrays)

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The items of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.indices.size and (
            self.indices.min() < -len(dataset) or self.indices.max() >= len(dataset)
        ):
            raise IndexError(
                f"Subset: indices must lie in [-{len(dataset)}, {len(dataset)}), got "
                f"{int(self.indices.min())}..{int(self.indices.max())}."
            )
        if hasattr(dataset, "get_batch"):
            self.get_batch = self._get_batch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[_check_index(index, len(self), "Subset")])]

    def _get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        return self.dataset.get_batch(self.indices[indices])


class ConcatDataset(Dataset):
    """The datasets one after another."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: give at least one dataset.")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        index = _check_index(index, len(self), "ConcatDataset")
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(
    dataset: Any,
    lengths: Sequence[int | float],
    generator: np.random.Generator | None = None,
) -> list[Subset]:
    """Split `dataset` into non-overlapping random Subsets of the given lengths.

    `lengths` are counts summing to len(dataset), or fractions summing to 1 (the remainder
    of the rounding going one item at a time to the first subsets, as PyTorch does).
    `generator` defaults to tapegrad's (seeded by `tg.manual_seed`).
    """
    total = len(dataset)
    if lengths and all(isinstance(n, float) for n in lengths) and math.isclose(sum(lengths), 1):
        if any(not 0 <= n <= 1 for n in lengths):
            raise ValueError(f"random_split: fractions must lie in [0, 1], got {list(lengths)}.")
        counts = [math.floor(total * n) for n in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(n) for n in lengths]
        if any(n != c or c < 0 for n, c in zip(lengths, counts, strict=True)):
            raise ValueError(f"random_split: lengths must be non-negative integers, got {lengths}.")
    if sum(counts) != total:
        raise ValueError(
            f"random_split: the lengths {list(lengths)} sum to {sum(counts)}, but the dataset "
            f"holds {total} items."
        )
    order = (generator or default_generator()).permutation(total)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, order[a:b]) for a, b in itertools.pairwise(bounds)]
