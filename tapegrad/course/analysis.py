"""Exercise 6 in one call: the numbers and figures of a trained classifier, written to a folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tapegrad import io
from tapegrad.course import metrics, plots
from tapegrad.nn import Conv2d, Module
from tapegrad.train import History


def layer_parameters(model: Module) -> dict[str, int]:
    """Parameters per layer, keyed "name (Type)", then "total"."""
    modules = dict(model.named_modules())
    counts = metrics.parameter_counts(model)
    return {
        (f"{name} ({type(modules[name]).__name__})" if name in modules else name): count
        for name, count in counts.items()
    }


def misclassified(
    labels: np.ndarray, predictions: np.ndarray, confidences: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the wrong predictions: the most confident first when `confidences` (the
    probability given to each prediction) are known, else in order."""
    wrong = np.flatnonzero(np.asarray(predictions) != np.asarray(labels))
    if confidences is None:
        return wrong
    return wrong[np.argsort(-np.asarray(confidences)[wrong], kind="stable")]


def write_classification_run(
    out: str | Path,
    *,
    model: Module,
    history: History,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    predictions: np.ndarray,
    settings: dict[str, Any],
    class_names: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
    confidences: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write metrics.json, predictions.npy, model.npz, history.json and the four figures.

    `test_images` are the images as a person sees them (uint8 NCHW), for the misclassified
    grid; with `confidences` (the probability given to each predicted class) the grid shows
    the most confident mistakes first, otherwise the first ones. Returns the metrics written
    to metrics.json.
    """
    out = Path(out)
    classes = (
        len(class_names) if class_names else int(max(test_labels.max(), predictions.max())) + 1
    )
    confusion = metrics.confusion_matrix(test_labels, predictions, num_classes=classes)
    precision, recall = metrics.precision_recall(confusion)
    results = {
        "test_accuracy": metrics.accuracy(test_labels, predictions),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "confusion_matrix": confusion.tolist(),
        "parameters": layer_parameters(model),
        "train_seconds": history.seconds,
        "images_per_second": history.images_per_second,
        "settings": settings,
        **(extra or {}),
    }
    io.write_json(out / "metrics.json", results)
    io.write_atomically(out / "predictions.npy", lambda f: np.save(f, predictions.astype(np.int64)))
    io.save(model, out / "model.npz")
    history.save(out / "history.json")

    first_conv = next(m for _, m in model.named_modules() if isinstance(m, Conv2d))
    plots.plot_filters(first_conv.weight.data, out / "filters.png")
    wrong = misclassified(test_labels, predictions, confidences)
    figure = plots.plot_images(
        test_images[wrong], test_labels[wrong], predictions[wrong], class_names
    )
    if confidences is not None and len(wrong):
        figure.suptitle(
            f"{figure.get_suptitle()}, the most confident mistakes first "
            f"({confidences[wrong[0]]:.0%} down to {confidences[wrong[:36][-1]]:.0%})"
        )
    plots.save_figure(figure, out / "misclassified.png")
    plots.plot_confusion_matrix(confusion, class_names, out / "confusion_matrix.png")
    plots.plot_curves(
        {k: v for k, v in history.to_dict().items() if isinstance(v, list)}, out / "curves.png"
    )
    return results
