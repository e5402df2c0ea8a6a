"""Classification metrics on integer labels, and per-layer parameter counts.

Plain NumPy in, plain NumPy (or Python numbers) out: these run after evaluation, on the
predicted labels, and never touch the tape. Bad input (labels out of range, lengths that
differ, non-integer labels) raises a ValueError that says what was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["accuracy", "confusion_matrix", "parameter_counts", "precision_recall"]


def _labels(values: Any, name: str) -> np.ndarray:
    """`values` as a 1-D int64 array of non-negative class labels, or a ValueError naming it."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {array.shape}")
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        labels = array.astype(np.int64)
    elif np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)):
        labels = array.astype(np.int64)
        if not np.array_equal(labels, array):
            raise ValueError(f"{name} must hold whole-number class labels, got fractional values")
    else:
        raise ValueError(f"{name} must hold integer class labels, got dtype {array.dtype}")
    if labels.size and labels.min() < 0:
        index = int(np.argmin(labels))
        raise ValueError(f"{name} holds the negative label {labels[index]} at index {index}")
    return labels


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true = _labels(y_true, "y_true")
    pred = np.asarray(y_pred)
    if pred.ndim == 2:  # scores or logits (N, C): the prediction is the best-scoring class
        pred = pred.argmax(axis=1)
    pred = _labels(pred, "y_pred")
    if len(true) != len(pred):
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(true)} and {len(pred)}"
        )
    return true, pred


def accuracy(y_true: Any, y_pred: Any) -> float:
    """The fraction of samples whose predicted label equals the true label.

    `y_pred` holds labels (N,) or scores (N, C), of which the arg-max is taken.
    """
    true, pred = _pair(y_true, y_pred)
    if len(true) == 0:
        raise ValueError("accuracy of zero samples is undefined: y_true and y_pred are empty")
    return float(np.mean(true == pred))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts (num_classes, num_classes) int64: entry [i, j] = samples of class i predicted j.

    Rows are true classes, columns predicted ones (scikit-learn's convention). Without
    `num_classes` it is one more than the largest label seen in either array.
    """
    true, pred = _pair(y_true, y_pred)
    largest = int(max(true.max(initial=-1), pred.max(initial=-1)))
    if num_classes is None:
        num_classes = largest + 1
    elif num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    else:
        for name, labels in (("y_true", true), ("y_pred", pred)):
            if labels.size and labels.max() >= num_classes:
                index = int(np.argmax(labels >= num_classes))
                raise ValueError(
                    f"{name} holds label {labels[index]} at index {index}, outside "
                    f"0..{num_classes - 1} (num_classes={num_classes})"
                )
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def precision_recall(confusion: Any, zero_division: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall (float64 arrays) from a confusion matrix.

    precision[c] = confusion[c, c] / (column c's sum: samples predicted c) and
    recall[c] = confusion[c, c] / (row c's sum: samples of class c). A class never predicted
    (precision) or never present (recall) gets `zero_division` instead, without a warning.
    """
    matrix = np.asarray(confusion)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"confusion must be a square (C, C) matrix with C >= 1, got shape {matrix.shape}"
        )
    if not (np.issubdtype(matrix.dtype, np.integer) or np.issubdtype(matrix.dtype, np.floating)):
        raise ValueError(f"confusion must hold numbers, got dtype {matrix.dtype}")
    matrix = matrix.astype(np.float64)
    if not np.all(np.isfinite(matrix)) or matrix.min() < 0:
        raise ValueError("confusion must hold finite, non-negative counts")
    hits = np.diagonal(matrix)
    return _ratio(hits, matrix.sum(axis=0), zero_division), _ratio(
        hits, matrix.sum(axis=1), zero_division
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    out = np.full(numerator.shape, float(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def parameter_counts(model: Any) -> dict[str, int]:
    """Trainable numbers per layer, in the order the model lists them, then "total".

    Duck-typed on `model.named_parameters()` yielding (name, parameter) pairs, where a
    parameter has a `.shape` (or an integer `.size`). Names are grouped by the part before
    their last dot ("layers.0.weight" and "layers.0.bias" count towards "layers.0"); a
    parameter without a dot counts under its own name. The last key, "total", is the sum
    of all the others.
    """
    counts: dict[str, int] = {}
    pairs: Iterable[tuple[str, Any]] = model.named_parameters()
    for name, parameter in pairs:
        layer = name.rpartition(".")[0] or name
        if layer == "total":
            raise ValueError(
                f"parameter {name!r} would be counted under the layer 'total', which is the "
                "name of the sum; rename the layer"
            )
        counts[layer] = counts.get(layer, 0) + _size(name, parameter)
    counts["total"] = sum(counts.values())
    return counts


def _size(name: str, parameter: Any) -> int:
    shape = getattr(parameter, "shape", None)
    if shape is not None:
        return int(np.prod(tuple(shape), dtype=np.int64))
    size = getattr(parameter, "size", None)
    if isinstance(size, (int, np.integer)):
        return int(size)
    raise TypeError(
        f"parameter {name!r} has neither a .shape nor an integer .size, got "
        f"{type(parameter).__name__}"
    )
