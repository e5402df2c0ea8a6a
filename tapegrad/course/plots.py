"""The exercise-6 figures: first-layer filters, image grids, confusion matrix, training curves.

Every function builds a `matplotlib.figure.Figure` on the Agg canvas directly, never through
pyplot, so it works without a display, in threads and in tests, and leaves no global state.
With `path` the figure is also saved (format from the suffix: .png, .pdf, .svg, ...) to a
temporary file in the same folder and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tapegrad.io import write_atomically

__all__ = ["plot_confusion_matrix", "plot_curves", "plot_filters", "plot_images", "save_figure"]

PathLike = str | os.PathLike[str]


def save_figure(figure: Figure, path: PathLike, dpi: int = 120) -> Path:
    """Save `figure` atomically to `path`, creating its folder; returns the path.

    Written by `tapegrad.io.write_atomically`: if anything fails, an existing file at `path` is
    left untouched and no temporary file stays behind.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"cannot save a figure to {path}: the suffix {path.suffix!r} is not a known format; "
            f"use one of {', '.join('.' + name for name in sorted(supported))}"
        )
    return write_atomically(path, lambda file: figure.savefig(file, format=fmt, dpi=dpi))


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _finish(figure: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        save_figure(figure, path)
    return figure


def _array(values: Any) -> np.ndarray:
    """A NumPy array from an ndarray, a sequence, or a tensor-like object with `.data`."""
    if isinstance(values, np.ndarray):
        return values
    data = getattr(values, "data", None)
    if isinstance(data, np.ndarray):
        return data
    return np.asarray(values)


def _grid(count: int, columns: int | None) -> tuple[int, int]:
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    return max(1, math.ceil(count / columns)), columns


def _rescale(image: np.ndarray) -> np.ndarray:
    """Stretch to 0..1 (a constant image becomes mid-grey)."""
    image = image.astype(np.float64)
    low, high = float(image.min()), float(image.max())
    if high - low <= 0:
        return np.full_like(image, 0.5)
    return (image - low) / (high - low)


def plot_filters(
    weights: Any, path: PathLike | None = None, *, columns: int | None = None
) -> Figure:
    """A grid of the first layer's filters, weights of shape (C_out, C_in, kh, kw).

    One-channel filters are drawn in grey, three-channel ones as RGB, each stretched to its
    own range so that its pattern shows (otherwise the mean over the input channels is drawn
    in grey). Each tile is numbered by its output channel.
    """
    w = _array(weights)
    if w.ndim != 4 or w.shape[0] == 0:
        raise ValueError(
            f"plot_filters expects weights of shape (C_out, C_in, kh, kw), got {w.shape}"
        )
    count, channels, height, width = w.shape
    rows, cols = _grid(count, columns)
    figure = _new_figure(1.1 * cols + 0.4, 1.1 * rows + 0.6)
    for index, axes in enumerate(figure.subplots(rows, cols, squeeze=False).flat):
        axes.set_axis_off()
        if index >= count:
            continue
        if channels == 3:
            axes.imshow(_rescale(w[index]).transpose(1, 2, 0), interpolation="nearest")
        else:
            tile = w[index].mean(axis=0)
            axes.imshow(_rescale(tile), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes.set_title(f"{index}", fontsize=8)
    mode = {1: "grey", 3: "RGB"}.get(channels, "mean over input channels")
    figure.suptitle(f"{count} filters of {channels}x{height}x{width} ({mode}, each rescaled)")
    return _finish(figure, path)


def _display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An (H, W) or (H, W, 3) image in 0..1 from (C, H, W) uint8 or float, and its colour map."""
    if image.dtype == np.uint8:
        scaled = image.astype(np.float64) / 255.0
    elif image.min() >= 0 and image.max() <= 1:
        scaled = image.astype(np.float64)
    else:  # e.g. normalised inputs: stretch each image to its own range
        scaled = _rescale(image)
    if scaled.shape[0] == 3:
        return scaled.transpose(1, 2, 0), None
    return scaled.mean(axis=0), "gray"


def _name(label: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


def plot_images(
    images: Any,
    true_labels: Any,
    predicted_labels: Any = None,
    class_names: Sequence[str] | None = None,
    path: PathLike | None = None,
    max_images: int = 36,
    *,
    columns: int | None = None,
) -> Figure:
    """A grid of the first `max_images` images captioned "true / predicted".

    `images` is (N, C, H, W) (or (N, H, W)) uint8 or float; one channel is drawn in grey,
    three as RGB. Captions of wrong predictions are red. Meant for misclassified images:
    pass `x[wrong], y[wrong], predictions[wrong]`; with none, the figure says so.
    """
    array = _array(images)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise ValueError(f"plot_images expects images of shape (N, C, H, W), got {array.shape}")
    true = np.asarray(true_labels).reshape(-1)
    predicted = None if predicted_labels is None else np.asarray(predicted_labels).reshape(-1)
    for name, labels in (("true_labels", true), ("predicted_labels", predicted)):
        if labels is not None and len(labels) != len(array):
            raise ValueError(
                f"plot_images got {len(array)} images but {len(labels)} {name}; "
                "they must have the same length"
            )
    if max_images < 1:
        raise ValueError(f"max_images must be at least 1, got {max_images}")
    count = min(len(array), max_images)
    rows, cols = _grid(count, columns)
    figure = _new_figure(1.5 * cols + 0.4, 1.6 * rows + 0.6)
    if count == 0:
        figure.text(0.5, 0.5, "no images to show", ha="center", va="center")
        return _finish(figure, path)
    for index, axes in enumerate(figure.subplots(rows, cols, squeeze=False).flat):
        axes.set_axis_off()
        if index >= count:
            continue
        image, cmap = _display(array[index])
        axes.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        caption = _name(int(true[index]), class_names)
        color = "black"
        if predicted is not None:
            caption += " / " + _name(int(predicted[index]), class_names)
            color = "black" if predicted[index] == true[index] else "tab:red"
        axes.set_title(caption, fontsize=8, color=color)
    shown = f"{count} of {len(array)}" if count < len(array) else f"{count}"
    legend = "true / predicted" if predicted is not None else "true label"
    figure.suptitle(f"{shown} images ({legend})")
    return _finish(figure, path)


def plot_confusion_matrix(
    cm: Any, class_names: Sequence[str] | None = None, path: PathLike | None = None
) -> Figure:
    """The confusion matrix (rows true, columns predicted) with the count in every cell.

    Cells off the diagonal are coloured by their share of the row (the true class's images),
    on a scale that ends at the largest such share, so that the errors stand out; the
    diagonal, which would otherwise take the whole scale, is drawn in grey.
    """
    matrix = np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"plot_confusion_matrix expects a square (C, C) matrix, got {matrix.shape}"
        )
    size = matrix.shape[0]
    if class_names is not None and len(class_names) != size:
        raise ValueError(
            f"plot_confusion_matrix got {len(class_names)} class_names for a {size}x{size} matrix"
        )
    named = class_names is not None
    names = [str(name) for name in class_names] if named else [str(i) for i in range(size)]
    side = max(4.0, 0.6 * size + 2.5)
    figure = _new_figure(side + 1.0, side)
    axes = figure.subplots()
    rows = matrix.sum(axis=1, keepdims=True).astype(np.float64)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    errors = np.ma.masked_array(shares, mask=np.eye(size, dtype=bool))
    largest = float(errors.max()) if size > 1 and errors.max() > 0 else 1.0
    colours = colormaps["Reds"].with_extremes(bad="0.85")
    shown = axes.imshow(errors, cmap=colours, vmin=0, vmax=largest, interpolation="nearest")
    figure.colorbar(shown, ax=axes, shrink=0.8, label="share of the true class's images")
    integral = np.issubdtype(matrix.dtype, np.integer)
    for (row, col), value in np.ndenumerate(matrix):
        text = f"{value:d}" if integral else f"{value:.2g}"
        strong = row != col and shares[row, col] > largest / 2
        axes.text(
            col,
            row,
            text,
            ha="center",
            va="center",
            color="white" if strong else "black",
            fontsize=8,
            fontweight="bold" if row == col else "normal",
        )
    axes.set_xticks(
        range(size),
        names,
        rotation=45 if named else 0,
        ha="right" if named else "center",
        rotation_mode="anchor",
    )
    axes.set_yticks(range(size), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    total, correct = matrix.sum(), np.trace(matrix)
    title = "Confusion matrix"
    if integral and total > 0:
        title += f" ({correct} of {total} correct, {correct / total:.2%})"
    axes.set_title(title)
    return _finish(figure, path)


def _series(history: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The plottable series of `history`: 1-D numeric sequences, without the x-axis keys."""
    series = {}
    for key, values in history.items():
        if key == "iteration" or key.endswith("_iteration"):
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            continue  # settings or other metadata stored beside the curves
        try:
            array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"history[{key!r}] must be a list of numbers: {exc}") from exc
        if array.size:
            series[key] = array
    return series


def _x_values(history: Mapping[str, Any], key: str, count: int) -> np.ndarray:
    """Where series `key` was measured: `<key>_iteration`, else `iteration`, else spread."""
    own = history.get(f"{key}_iteration")
    if own is not None:
        if len(own) != count:
            raise ValueError(
                f"history[{key + '_iteration'!r}] has {len(own)} values but history[{key!r}] "
                f"has {count}"
            )
        return np.asarray(own, dtype=np.float64)
    iterations = history.get("iteration")
    if iterations is not None and len(iterations) == count:
        return np.asarray(iterations, dtype=np.float64)
    if iterations is not None and len(iterations):
        last = float(iterations[-1])
        return last * np.arange(1, count + 1) / count  # measured at the end of equal intervals
    return np.arange(1, count + 1, dtype=np.float64)


#: The ratio of largest to smallest loss beyond which plot_curves draws losses on a log axis.
LOG_SPAN = 100.0


def plot_curves(history: Mapping[str, Any], path: PathLike | None = None) -> Figure:
    """Training curves against the iteration: losses in one panel, accuracies in another.

    `history` maps names to lists of numbers, as `fit` records them, e.g. {"iteration": [...],
    "loss": [...], "weight_decay_loss": [...], "accuracy": [...], "test_accuracy": [...]}.
    Keys containing "loss" go to the loss panel, keys containing "acc" to the accuracy panel,
    any other list (a learning rate, images/s) to a third. A series is plotted against
    `history["<name>_iteration"]` if present, else `history["iteration"]` when the lengths
    agree, else spread evenly up to the last iteration (e.g. a test accuracy per epoch).
    Values that are not lists (settings saved alongside) are ignored. The loss panel's axis is
    logarithmic when its positive values span more than LOG_SPAN (a weight-decay loss in the
    hundreds beside a data loss near one would otherwise flatten the data loss to a line).
    """
    series = _series(history)
    if not series:
        raise ValueError(
            f"plot_curves found no list of numbers to plot in the history keys {list(history)}; "
            "expected e.g. 'loss' and 'accuracy'"
        )
    panels: dict[str, list[str]] = {"loss": [], "accuracy": [], "other": []}
    for key in series:
        panel = "loss" if "loss" in key else "accuracy" if "acc" in key else "other"
        panels[panel].append(key)
    used = [(title, keys) for title, keys in panels.items() if keys]
    figure = _new_figure(5.0 * len(used), 3.8)
    for axes, (title, keys) in zip(
        figure.subplots(1, len(used), squeeze=False).flat, used, strict=True
    ):
        for key in keys:
            values = series[key]
            marker = "o" if len(values) <= 30 else None
            axes.plot(_x_values(history, key, len(values)), values, label=key, marker=marker)
        shown = np.concatenate([series[key] for key in keys])
        if title == "loss" and shown.min() > 0 and shown.max() > LOG_SPAN * shown.min():
            axes.set_yscale("log")
        axes.set_xlabel("iteration")
        axes.set_ylabel(title)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend()
    return _finish(figure, path)
