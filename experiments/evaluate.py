"""Reproduce a saved cifar_improve model's test accuracy without retraining.

    python experiments/evaluate.py --model runs/RUN/model.npz [--tta none|flip|flip-translate]
                                   [--out DIR] [--data-dir DIR] [--test-images N]

Rebuilds the network from the weights' shapes, reads the run's metrics.json beside the model
(when there is one) for its test-time augmentation, head scale and test-set size, predicts the
test set with the same augmentation, and writes predictions.npy and metrics.json as a training
run does (default folder: `evaluation/` beside the model), with the training run's accuracy
and the number of predictions that differ from its predictions.npy (over the first N test
images with `--test-images N`).

The committed models are the airbench94 preset's seed-0 run
(`experiments/results/cifar_improve_airbench94_seed0/model.npz`, 93.90 % with flip-translate
TTA) and the 30-minute preset's seed-0 run
(`experiments/results/cifar_improve_30min_seed0_2026-12-02_d413cf3/model.npz`, 94.49 %).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from cifar_improve import EVAL_BATCH, HYPER, Net, normalise, widths_of
from common import run_main

from tapegrad import augment, io
from tapegrad.course import metrics, plots
from tapegrad.course.analysis import layer_parameters
from tapegrad.data import CIFAR10_CLASSES, load_cifar10


def load_model(path: Path, settings: dict[str, Any]) -> Net:
    """The Net whose weights are in `path` (an .npz written by tapegrad's save)."""
    state = io.load_arrays(path)
    if "groups.0.conv1.weight" not in state:
        raise ValueError(
            f"evaluate: {path} holds no cifar_improve network (keys {list(state)[:4]}...)."
        )
    head_scale = settings.get("head_scale", HYPER["head_scale"])
    model = Net(widths_of(state), HYPER["batchnorm_momentum"], head_scale)
    io.load(model, path)
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a model.npz")
    parser.add_argument(
        "--tta", choices=augment.TTA_LEVELS, default=None, help="default: the run's"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: evaluation/ beside it")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $TAPEGRAD_DATA")
    parser.add_argument("--test-images", type=int, default=None, help="default: the run's")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"--model {args.model}: no such file.")
    run_metrics_path = args.model.parent / "metrics.json"
    reference = json.loads(run_metrics_path.read_text()) if run_metrics_path.is_file() else {}
    settings = reference.get("settings", {})
    tta = args.tta or settings.get("tta", "flip")
    test_images = args.test_images or settings.get("test_images")
    out = args.out or args.model.parent / "evaluation"

    model = load_model(args.model, settings)
    _, _, x_test, y_test = load_cifar10(args.data_dir)
    x_test, y_test = x_test[:test_images], y_test[:test_images]
    started = time.perf_counter()
    logits = augment.tta_logits(model, x_test, tta, EVAL_BATCH, normalise)
    seconds = time.perf_counter() - started
    predictions = logits.argmax(axis=1)

    confusion = metrics.confusion_matrix(y_test, predictions, num_classes=10)
    precision, recall = metrics.precision_recall(confusion)
    results: dict[str, Any] = {
        "test_accuracy": metrics.accuracy(y_test, predictions),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "confusion_matrix": confusion.tolist(),
        "parameters": layer_parameters(model),
        "settings": {"model": str(args.model), "tta": tta, "test_images": len(x_test)},
        "evaluation_seconds": seconds,
        "reference_test_accuracy": reference.get("test_accuracy"),
    }
    saved_predictions = args.model.parent / "predictions.npy"
    if saved_predictions.is_file():
        saved = np.load(saved_predictions, allow_pickle=False)
        if len(saved) >= len(predictions):  # the run's, over the images evaluated here
            differing = saved[: len(predictions)] != predictions
            results["predictions_differing_from_run"] = int(np.sum(differing))
    io.write_json(out / "metrics.json", results)
    io.write_atomically(out / "predictions.npy", lambda f: np.save(f, predictions.astype(np.int64)))
    plots.plot_confusion_matrix(confusion, CIFAR10_CLASSES, out / "confusion_matrix.png")

    against = reference.get("test_accuracy")
    note = f" (the training run reported {against:.4f})" if against is not None else ""
    print(
        f"test accuracy ({tta} TTA, {len(x_test)} images): {results['test_accuracy']:.4f}{note} "
        f"in {seconds:.0f} s; outputs in {out}"
    )
    return results


if __name__ == "__main__":
    run_main(main)
