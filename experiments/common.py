"""What the starter experiments share: their command line, training run and outputs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.course.analysis import write_classification_run
from tapegrad.data import DataNotFoundError
from tapegrad.train import evaluate, fit

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def run_starter(
    argv: list[str] | None,
    *,
    description: str,
    default_out: str,
    settings: dict,
    build_model: Callable[[], nn.Module],
    load_data: Callable[[Path | None], Arrays],
    normalise: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
) -> dict:
    """Parse the shared options, train with the course's Momentum, write all outputs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path(default_out))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=settings["iterations"])
    parser.add_argument("--batch-size", type=int, default=settings["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=settings["learning_rate"])
    parser.add_argument("--weight-decay", type=float, default=settings["weight_decay"])
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $TAPEGRAD_DATA")
    parser.add_argument(
        "--decay",
        choices=["none", "linear"],
        default=settings.get("decay", "none"),
        help="learning rate: constant (the course's) or decaying linearly to 0",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    settings = {
        **settings,
        "iterations": args.iterations,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "weight_decay": args.weight_decay,
        "decay": args.decay,
        "seed": args.seed,
    }

    train_images, y_train, test_images, y_test = load_data(args.data_dir)
    x_train, x_test = normalise(train_images, test_images)
    tg.manual_seed(args.seed)
    model = build_model()
    optimizer = optim.Momentum(
        model.parameters(),
        lr=settings["learning_rate"],
        momentum=settings["momentum"],
        weight_decay=settings["weight_decay"],
    )
    scheduler = None
    if args.decay == "linear":
        factor = optim.piecewise_linear([0, args.iterations], [1.0, 0.0])
        scheduler = optim.LRScheduler(optimizer, factor)
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        x_train,
        y_train,
        iterations=args.iterations,
        batch_size=args.batch_size,
        shuffle="once",  # the course's loop: one shuffle, walked through in order
        seed=args.seed,
        progress=not args.no_progress,
        callback=None if scheduler is None else lambda iteration, loss: scheduler.step(),
    )
    predictions = evaluate(model, x_test)
    results = write_classification_run(
        args.out,
        model=model,
        history=history,
        test_images=test_images,
        test_labels=y_test,
        predictions=predictions,
        settings=settings,
        class_names=class_names,
    )
    print(
        f"test accuracy: {results['test_accuracy']:.4f}  ({history.seconds:.1f} s training, "
        f"{history.images_per_second:.0f} images/s; outputs in {args.out})"
    )
    return results


def run_main(main: Callable[[], object]) -> None:
    """Run an experiment's `main`; a missing data set prints its message alone and exits 1.

    The DataNotFoundError already says where it looked and how to fix it; the tracebacks of the
    failed download chained to it (dozens of lines offline) would only bury that.
    """
    try:
        main()
    except DataNotFoundError as error:
        print(f"{Path(sys.argv[0]).name}: {error}", file=sys.stderr)
        raise SystemExit(1) from None
