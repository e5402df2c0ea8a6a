"""An improved CIFAR-10 network trained to a wall-clock budget or for a fixed number of epochs.

    python experiments/cifar_improve.py [--preset 10|30|60|120|airbench94|airbench94_muon]
                                        [--budget-minutes M | --epochs E] [--widths A,B,C]
                                        [--batch-size B] [--tta none|flip|flip-translate]
                                        [--set KEY=VALUE ...] [--eval-every-epoch]
                                        [--framework tapegrad|torch]
                                        [--seed 0] [--out DIR] [--data-dir DIR] [--no-progress]

The recipe is Keller Jordan's airbench94: a frozen patch-whitening first convolution (its bias
trained for the first epochs), three conv-pool-BN-GELU-conv-BN-GELU blocks with
identity-initialised 3x3 convolutions, a global max pool and a scaled bias-free linear head,
label smoothing 0.2, Nesterov SGD in airbench's decoupled units with a larger learning rate
for the BN biases, a triangular schedule stepped every iteration, lookahead towards an EMA of
the weights, reflect-pad-and-translate with alternating flips, and test-time augmentation.

Two ways to say how much to train, and the schedules (learning rate, lookahead) run on the
progress through whichever is given:

- `--epochs E` (fixed work): progress is the fraction of the ceil(E x steps per epoch) steps
  done, as in airbench; a result obtained on one machine can be checked on any other.
  An epoch is a pass of whole batches (the last, partial batch of each shuffle is dropped,
  as airbench's loader does), and a run reports its epochs in that unit: a budget run's
  reported epochs, given to `--epochs`, repeat its steps.
- `--budget-minutes M`: progress is the fraction of the training time used. The budget covers
  everything from the first training step to the final test-time-augmented predictions (the
  whitening initialisation included; loading data and numba compilation excluded); the time
  the final evaluation will take is kept back, estimated from the measured speed.

`--preset airbench94` is airbench94 itself (9.9 epochs, widths 64/256/256, batch 1024,
flip-and-translate TTA); `--preset airbench94_muon` is airbench94_muon's recipe (8 epochs,
batch 2000, the 3x3 filters stepped by Muon, a linear decay, no lookahead); the numbered
presets are budgets in minutes. Every entry of `HYPER`
can be overridden with `--set`, and all settings are recorded in metrics.json.
`--framework torch` trains the same network from the same initial weights in PyTorch
(experiments/torch_recipe.py), through the same data pipeline, schedules and TTA.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench.machine import machine_info
from common import run_main

import tapegrad as tg
from tapegrad import augment, nn, optim
from tapegrad.course import plots
from tapegrad.course.analysis import write_classification_run
from tapegrad.data import CIFAR10_CLASSES, load_cifar10
from tapegrad.engine.tensor import Tensor, as_tensor
from tapegrad.train import History, predict_logits, weight_decay_loss

#: Network width per block, batch size and test-time augmentation for each budget in minutes
#: (see experiments/README.md), each with airbench94's recipe scheduled to the budget: 30 and
#: 60 train airbench94's network (30 minutes are about 14 epochs on the 2-core AMD EPYC of
#: 2026-12-02), 10 a narrower one at batch 512 (about 5 epochs there), and 120 airbench95's
#: widths and learning rate. A preset's "recipe" overrides HYPER.
PRESETS = {
    10: {"widths": (64, 192, 192), "batch_size": 512, "tta": "flip-translate"},
    30: {"widths": (64, 256, 256), "batch_size": 1024, "tta": "flip-translate"},
    60: {"widths": (64, 256, 256), "batch_size": 1024, "tta": "flip-translate"},
    120: {
        "widths": (128, 384, 384),
        "batch_size": 1024,
        "tta": "flip-translate",
        "recipe": {"lr": 10.0},
    },
}
#: Presets of fixed work: airbench's network, batch, epochs, test-time augmentation and the
#: recipe's entries that differ from HYPER (airbench94's).
FIXED_PRESETS = {
    "airbench94": {
        "epochs": 9.9,
        "widths": (64, 256, 256),
        "batch_size": 1024,
        "tta": "flip-translate",
        "recipe": {},
    },
    # airbench94_muon.py's absolute rates in HYPER's units (kilostep = 7851 examples at
    # momentum 0.85, head scale 1/9 against its 1/256 on unit-std weights): head 0.67 -> lr 6.5,
    # biases 0.053 = 64 x the head's, decay 2e-6 x batch per step -> 0.0157 per 1024.
    "airbench94_muon": {
        "epochs": 8.0,
        "widths": (64, 256, 256),
        "batch_size": 2000,
        "tta": "flip-translate",
        "recipe": {
            "filter_optimizer": "muon",
            "lr": 6.5,
            "weight_decay": 0.0157,
            "whiten_bias_scaler": 64.0,
            "lookahead_every": 0,
            "warmup_fraction": 0.0,
            "lr_start": 1.0,
            "lr_end": 0.0,
        },
    },
}
FILTER_OPTIMIZERS = ("sgd", "muon")
#: The recipe, airbench94's values; each entry can be overridden with --set KEY=VALUE.
HYPER = {
    "lr": 11.5,  # per 1024 examples, airbench's "decoupled" units, converted below
    "momentum": 0.85,
    "weight_decay": 0.0153,  # per 1024 examples, decoupled from the learning rate
    "bias_scaler": 64.0,  # the BN biases' learning rate (not their decay) is this much larger
    "whiten_bias_scaler": 1.0,  # the same for the whitening layer's bias
    "label_smoothing": 0.2,
    "batchnorm_momentum": 0.6,  # the running statistics' weight: r <- 0.6 r + 0.4 batch
    "head_scale": 1 / 9,
    "translate": 2,
    "whiten_bias_epochs": 3,  # the whitening layer's bias trains for this many epochs
    "lookahead_every": 5,  # steps between lookahead updates; 0: no lookahead
    "lookahead_decay": 0.95**5,  # at the end of training; ramps up as the cube of progress
    "warmup_fraction": 0.23,
    "lr_start": 0.2,
    "lr_end": 0.07,
    "filter_optimizer": "sgd",  # or "muon": the 3x3 filters stepped by Muon (airbench94_muon)
    "muon_lr": 0.24,  # Muon's rate per step, on filters renormalised to sqrt(out_channels)
    "muon_momentum": 0.6,
    "muon_ns_steps": 3,
}
#: Each channel's mean and standard deviation over the training set, in uint8 units (airbench's).
CHANNEL_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(1, 3, 1, 1) * 255
CHANNEL_STD = np.array([0.2470, 0.2435, 0.2616], np.float32).reshape(1, 3, 1, 1) * 255
#: Images the whitening filters are computed from (the first ones of the training set).
WHITENING_IMAGES = 5000
#: Forward passes per test image of each test-time augmentation level.
TTA_VIEWS = {"none": 1, "flip": 2, "flip-translate": 6}
EVAL_BATCH = 500
#: A budget run keeps back the final evaluation's time, estimated from a test batch's forward
#: pass timed at step EVAL_TIMED_AT and scaled with the training speed as it changes; this
#: margin (and 5 s) covers a machine shared with light work.
EVAL_TIMED_AT = 10
EVAL_MARGIN = 1.15


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 NCHW images to float32 with each channel's mean and std taken out."""
    return (images.astype(np.float32) - CHANNEL_MEAN) / CHANNEL_STD


class ConvGroup(nn.Module):
    """conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU, convolutions identity-initialised.

    `bn_momentum` is airbench's: the weight of the running statistics, not of the batch's.
    Convolutions start as PyTorch's (uniform in +-1/sqrt(fan_in)) with the first filters
    replaced by identities. The first convolution max-pools its output as it writes it
    (`pool=True`, one fused primitive: the same values as a MaxPool2d(2) after it).
    """

    def __init__(self, in_channels: int, out_channels: int, bn_momentum: float) -> None:
        conv = {"padding": 1, "bias": False}  # PyTorch's initialisation, the default
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, **conv)
        self.norm1 = nn.BatchNorm2d(out_channels, 1e-12, 1 - bn_momentum, freeze_weight=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, **conv)
        self.norm2 = nn.BatchNorm2d(out_channels, 1e-12, 1 - bn_momentum, freeze_weight=True)
        for conv_layer in (self.conv1, self.conv2):
            nn.dirac_(conv_layer.weight.data[: conv_layer.in_channels])

    def forward(self, x: Tensor) -> Tensor:
        x = tg.gelu(self.norm1(self.conv1(x, pool=True)), approximate="tanh")
        return tg.gelu(self.norm2(self.conv2(x)), approximate="tanh")


class Net(nn.Module):
    def __init__(self, widths: tuple[int, int, int], bn_momentum: float, head_scale: float):
        self.whiten = nn.Conv2d(3, 24, 2, padding=0)
        self.whiten.weight.requires_grad = False
        self.groups = [
            ConvGroup(24, widths[0], bn_momentum),
            ConvGroup(widths[0], widths[1], bn_momentum),
            ConvGroup(widths[1], widths[2], bn_momentum),
        ]
        self.pool = nn.GlobalMaxPool2d()
        self.head = nn.Linear(widths[2], 10, bias=False, scale=head_scale)

    def forward(self, x: Tensor) -> Tensor:
        x = tg.gelu(self.whiten(x), approximate="tanh")
        for group in self.groups:
            x = group(x)
        return self.head(self.pool(x))


def widths_of(state: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """The block widths of a saved Net, read from its convolutions' shapes."""
    return tuple(int(state[f"groups.{i}.conv1.weight"].shape[0]) for i in range(3))


def first_layer_in_pixels(whiten: np.ndarray, conv: np.ndarray) -> np.ndarray:
    """The first learned convolution's filters `conv` as filters on the image (4x4, RGB): the
    linear part of its response through the whitening filters `whiten`, their bias left out.

    The whitening filters come in pairs W and -W, and GELU(z) - GELU(-z) = z, so weights a and
    b on the pair act on the image as (a - b) / 2 times W, plus a part even in z (a function of
    |z|, no filter). Composing 3x3 with 2x2 correlations gives 4x4 filters:
    F[o, c, i + u, j + v] = sum_k C[o, k, i, j] W[k, c, u, v] / 2.
    """
    height, width = conv.shape[2] + whiten.shape[2] - 1, conv.shape[3] + whiten.shape[3] - 1
    filters = np.zeros((len(conv), whiten.shape[1], height, width), np.float32)
    for i in range(conv.shape[2]):
        for j in range(conv.shape[3]):
            filters[:, :, i : i + whiten.shape[2], j : j + whiten.shape[3]] += 0.5 * np.einsum(
                "ok,kcuv->ocuv", conv[:, :, i, j], whiten
            )
    return filters


def training_flops(model: Net) -> float:
    """FLOPs of one training image: 2 per multiply-add, forward and backward = 3 forwards."""
    return 6 * nn.count_macs(model, (3, 32, 32))


def is_filter(name: str, p: Tensor) -> bool:
    """The trained 3x3 filters, which Muon steps when the recipe says so."""
    return p.ndim == 4 and name != "whiten.weight"


def sgd_groups(
    named_parameters: list[tuple[str, Any]], batch_size: int, hyper: dict[str, Any]
) -> tuple[list[dict[str, Any]], float]:
    """Nesterov SGD's groups and momentum from airbench's decoupled units: the loss is summed
    over the batch, so the learning rate is per example; the decay per step is
    weight_decay x batch / kilostep for every parameter (PyTorch's weight_decay coefficient is
    that divided by the group's lr); the BN biases get `bias_scaler` times the learning rate
    and the whitening bias `whiten_bias_scaler` times. With Muon the filters are left out.
    Shared with torch_recipe.py, so both frameworks build the same groups."""
    momentum = hyper["momentum"]
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr, decay = hyper["lr"] / kilostep, hyper["weight_decay"] * batch_size / kilostep
    by_scaler: dict[str, list[Any]] = {"bias_scaler": [], "whiten_bias_scaler": [], "": []}
    for name, p in named_parameters:
        if hyper["filter_optimizer"] == "muon" and is_filter(name, p):
            continue
        key = "bias_scaler" if "norm" in name else "whiten_bias_scaler" if "whiten" in name else ""
        by_scaler[key].append(p)
    groups = []
    for key, params in by_scaler.items():
        group_lr = lr * hyper[key] if key else lr
        groups.append({"params": params, "lr": group_lr, "weight_decay": decay / group_lr})
    return groups, momentum


def build_optimizers(model: Net, batch_size: int, hyper: dict[str, Any]) -> list[optim.Optimizer]:
    """The recipe's SGD (see `sgd_groups`), then Muon for the filters if the recipe says so."""
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    groups, momentum = sgd_groups(trained, batch_size, hyper)
    optimizers: list[optim.Optimizer] = [optim.SGD(groups, momentum=momentum, nesterov=True)]
    if hyper["filter_optimizer"] == "muon":
        filters = [p for name, p in trained if is_filter(name, p)]
        optimizers.append(
            optim.Muon(
                filters,
                lr=hyper["muon_lr"],
                momentum=hyper["muon_momentum"],
                nesterov=True,
                weight_decay=0.0,
                ns_steps=hyper["muon_ns_steps"],
            )
        )
    return optimizers


def renormalise_filters(filters: list[Tensor]) -> None:
    """Scale each filter bank to norm sqrt(out_channels) (airbench94_muon, before each Muon
    step): under BatchNorm only the filters' direction matters, and Muon's steps have a fixed
    size, so a fixed norm keeps the effective step size on schedule."""
    for p in filters:
        p.data *= math.sqrt(len(p.data)) / max(float(np.linalg.norm(p.data)), 1e-12)


class TapegradTrainer:
    """The recipe's loss, optimiser and lookahead around a tapegrad Net, one step at a time on
    prepared batches; the loop (data, augmentation, schedules) is shared with PyTorch's
    trainer in torch_recipe.py, which has the same methods."""

    def __init__(self, model: Net, batch_size: int, hyper: dict[str, Any]) -> None:
        self.model = model
        self.loss_fn = nn.CrossEntropyLoss(
            label_smoothing=hyper["label_smoothing"], reduction="sum"
        )
        self.optimizers = build_optimizers(model, batch_size, hyper)
        self.groups = [group for opt in self.optimizers for group in opt.param_groups]
        self.base_lrs = [group["lr"] for group in self.groups]
        muon = self.optimizers[1:]
        self.muon_filters = [p for opt in muon for p in opt.param_groups[0]["params"]]
        self.average = optim.ExponentialMovingAverage(model, hyper["lookahead_decay"])

    def set_lr_factor(self, factor: float) -> None:
        for group, base in zip(self.groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    @property
    def lr(self) -> float:
        """SGD's learning rate of the weights (not the biases) for the next step."""
        return self.optimizers[0].param_groups[-1]["lr"]

    def train_whitening_bias(self, trained: bool) -> None:
        self.model.whiten.bias.requires_grad = trained

    def step(self, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """One step (SGD, and Muon for the filters if used) on normalised images; returns the
        summed loss and the logits."""
        logits = self.model(as_tensor(inputs))
        loss = self.loss_fn(logits, labels)
        self.model.zero_grad()
        loss.backward()
        renormalise_filters(self.muon_filters)
        for optimizer in self.optimizers:
            optimizer.step()
        return loss.item(), logits.data

    def lookahead(self, decay: float) -> None:
        """Average the weights into the running average with `decay`, and jump to it."""
        self.average.update(self.model, decay)
        self.average.copy_to(self.model)

    def use_average(self) -> None:
        self.average.copy_to(self.model)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Logits for uint8 images, in evaluation mode."""
        return predict_logits(self.model, images, EVAL_BATCH, normalise)

    def weight_decay_loss(self) -> float:
        return weight_decay_loss(self.optimizers[0])  # Muon's filters are not decayed

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()


def seconds_per_view(trainer: Any, images: np.ndarray) -> float:
    """Seconds the evaluation takes per test image, timed on a second batch (the first one
    allocates); `trainer` is either framework's."""
    batch = images[:EVAL_BATCH]
    trainer.predict(batch)
    started = time.perf_counter()
    trainer.predict(batch)
    return (time.perf_counter() - started) / len(batch)


def steps_for(epochs: float, steps_per_epoch: int) -> int:
    """Steps in `epochs` passes of whole batches, a started pass rounded up (as airbench);
    the float noise of an epoch count read back from a run (steps / steps_per_epoch) is
    rounded away first, so that it gives that run's steps again."""
    return math.ceil(round(epochs * steps_per_epoch, 6))


def pick_preset(budget_minutes: float) -> int:
    """The largest preset whose budget fits in the one asked for (the smallest otherwise)."""
    fitting = [minutes for minutes in PRESETS if minutes <= budget_minutes]
    return max(fitting) if fitting else min(PRESETS)


def parse_overrides(items: list[str]) -> dict[str, float]:
    """KEY=VALUE strings to recipe entries, each checked against HYPER's names and types."""
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in HYPER:
            raise ValueError(
                f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(HYPER)}."
            )
        kind = type(HYPER[key])
        try:
            overrides[key] = kind(text)
        except ValueError:
            raise ValueError(
                f"--set {item!r}: {key} takes {'an integer' if kind is int else 'a number'}, "
                f"got {text!r}."
            ) from None
    return overrides


def _widths(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected three positive widths like 64,256,256, got {text!r}"
        )
    return tuple(int(part) for part in parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=[*map(str, PRESETS), *FIXED_PRESETS], default=None)
    work = parser.add_mutually_exclusive_group()
    work.add_argument("--budget-minutes", type=float, default=None, help="default: 30")
    work.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--widths", type=_widths, default=None, help="e.g. 64,256,256")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--tta", choices=augment.TTA_LEVELS, default=None)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides")
    parser.add_argument(
        "--eval-every-epoch",
        action="store_true",
        help="test accuracy (no TTA) after every epoch, outside the timed work",
    )
    parser.add_argument(
        "--train-images", type=int, default=None, help="only the first N (smoke tests)"
    )
    parser.add_argument(
        "--test-images", type=int, default=None, help="only the first N (smoke tests)"
    )
    parser.add_argument(
        "--framework",
        choices=("tapegrad", "torch"),
        default="tapegrad",
        help="the same network, recipe and data pipeline in PyTorch (experiments/torch_recipe.py)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default: runs/cifar_improve_...")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $TAPEGRAD_DATA")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings: the preset's, then the command line's on top.

    Without a preset, a budget picks the budget preset that fits (30 minutes by default) and
    `--epochs` starts from airbench94's.
    """
    if args.preset in FIXED_PRESETS:
        settings = {"preset": args.preset, **FIXED_PRESETS[args.preset], "budget_minutes": None}
    elif args.preset is not None or args.epochs is None:
        minutes = int(args.preset) if args.preset else pick_preset(args.budget_minutes or 30.0)
        settings = {"preset": str(minutes), **PRESETS[minutes]}
        settings.update(budget_minutes=float(minutes), epochs=None)
    else:
        settings = {"preset": "airbench94", **FIXED_PRESETS["airbench94"], "budget_minutes": None}
    if args.budget_minutes is not None:
        settings.update(budget_minutes=args.budget_minutes, epochs=None)
    if args.epochs is not None:
        if args.epochs <= 0:
            raise ValueError(f"--epochs must be positive, got {args.epochs}.")
        settings.update(epochs=args.epochs, budget_minutes=None)
    if args.batch_size is not None:
        if args.batch_size < 2:
            raise ValueError(f"--batch-size must be at least 2, got {args.batch_size}.")
        settings["batch_size"] = args.batch_size
    settings["widths"] = tuple(args.widths or settings["widths"])
    settings["tta"] = args.tta or settings["tta"]
    settings["overrides"] = parse_overrides(args.overrides)
    settings["hyper"] = {**HYPER, **settings.pop("recipe", {}), **settings["overrides"]}
    if settings["hyper"]["filter_optimizer"] not in FILTER_OPTIMIZERS:
        raise ValueError(
            f"--set filter_optimizer={settings['hyper']['filter_optimizer']}: expected one of "
            f"{', '.join(FILTER_OPTIMIZERS)}."
        )
    if args.framework == "torch" and settings["hyper"]["filter_optimizer"] != "sgd":
        raise ValueError("--framework torch trains the filters with SGD only (no Muon).")
    return settings


def main(argv: list[str] | None = None) -> dict:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = resolve_settings(args)
    except ValueError as error:
        parser.error(str(error))
    hyper, batch_size = settings["hyper"], settings["batch_size"]
    budget_minutes, epochs = settings["budget_minutes"], settings["epochs"]
    work = f"{budget_minutes:g}min" if epochs is None else f"{epochs:g}epochs"
    out = args.out or Path(f"runs/cifar_improve_{work}")

    x_train, y_train, x_test, y_test = load_cifar10(args.data_dir)
    x_train, y_train = x_train[: args.train_images], y_train[: args.train_images]
    x_test, y_test = x_test[: args.test_images], y_test[: args.test_images]
    if batch_size > len(x_train):
        parser.error(f"--batch-size {batch_size} exceeds the {len(x_train)} training images.")
    tg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = Net(settings["widths"], hyper["batchnorm_momentum"], hyper["head_scale"])
    if args.framework == "tapegrad":
        _compile(model)  # numba compilation is outside the budget
    machine = machine_info(use_torch=args.framework == "torch")  # budget results depend on it

    clock = time.perf_counter()
    excluded = 0.0  # seconds of per-epoch evaluation, kept out of the timed work

    def timed() -> float:
        return time.perf_counter() - clock - excluded

    model.whiten.weight.data[...] = nn.whitening_filters(
        normalise(x_train[:WHITENING_IMAGES]), 2, centred=False
    )
    if args.framework == "tapegrad":
        trainer = TapegradTrainer(model, batch_size, hyper)
    else:
        from torch_recipe import TorchTrainer  # PyTorch is optional

        trainer = TorchTrainer(model.state_dict(), settings["widths"], batch_size, hyper)
    progress = {"fraction": 0.0}
    schedule = optim.triangular(1, hyper["warmup_fraction"], hyper["lr_start"], hyper["lr_end"])
    trainer.set_lr_factor(schedule(0.0))
    history = History()
    curves: dict[str, list[float]] = {
        "learning_rate": [],
        "learning_rate_iteration": [],
        "test_accuracy": [],
        "test_accuracy_iteration": [],
        "test_accuracy_seconds": [],  # the timed work done when each was measured
    }

    steps_per_epoch = len(x_train) // batch_size  # whole batches; the remainder is dropped
    total_steps = steps_for(epochs, steps_per_epoch) if epochs is not None else None
    budget = budget_minutes * 60 if budget_minutes is not None else math.inf
    reserve = 0.0
    # forward passes of the final evaluation, whose time a budget run keeps back
    evaluation_views = TTA_VIEWS[settings["tta"]] * len(x_test)
    step, epoch, images_seen = 0, 0, 0
    done = False
    while not done:
        trainer.train_whitening_bias(epoch < hyper["whiten_bias_epochs"])
        order = rng.permutation(len(x_train))
        for first in range(0, steps_per_epoch * batch_size, batch_size):
            indices = order[first : first + batch_size]
            batch = augment.random_crop(x_train[indices], hyper["translate"], rng)
            batch = augment.alternating_flip(batch, indices, epoch, args.seed)
            loss, logits = trainer.step(normalise(batch), y_train[indices])
            step += 1
            images_seen += batch_size
            if total_steps is not None:
                progress["fraction"] = min(step / total_steps, 1.0)
            else:
                # Training speed is measured once the first steps, slow to start, are behind;
                # a test view's cost, in training images, once at EVAL_TIMED_AT.
                if step == 5:
                    start_seconds, start_images = timed(), images_seen
                elif step > 5:
                    seconds_per_image = (timed() - start_seconds) / (images_seen - start_images)
                    if step == EVAL_TIMED_AT:
                        view_cost = seconds_per_view(trainer, x_test) / seconds_per_image
                    if step >= EVAL_TIMED_AT:
                        reserve = evaluation_views * view_cost * seconds_per_image * EVAL_MARGIN + 5
                progress["fraction"] = min(timed() / max(budget - reserve, 1e-9), 1.0)
            done = progress["fraction"] >= 1.0
            trainer.set_lr_factor(schedule(progress["fraction"]))  # the next step's rate
            if hyper["lookahead_every"] and step % hyper["lookahead_every"] == 0:
                # Lookahead: the weights jump back to their average, which is averaged more
                # strongly as training ends (airbench's schedule).
                trainer.lookahead(hyper["lookahead_decay"] * progress["fraction"] ** 3)
            if step % 10 == 0 or done:
                history.iteration.append(step)
                history.loss.append(loss / batch_size)
                history.accuracy.append(float(np.mean(logits.argmax(1) == y_train[indices])))
                history.weight_decay_loss.append(trainer.weight_decay_loss())
                curves["learning_rate"].append(trainer.lr)
                curves["learning_rate_iteration"].append(step)
                if not args.no_progress:
                    total = f"{total_steps} steps" if total_steps else f"{budget:.0f} s"
                    print(
                        f"\repoch {epoch} step {step} loss {history.loss[-1]:.3f} "
                        f"acc {history.accuracy[-1]:.3f} lr x{schedule(progress['fraction']):.2f} "
                        f"{timed():.0f} s, {100 * progress['fraction']:.1f} % of {total}",
                        end="",
                        flush=True,
                    )
            if done:
                break
        epoch += 1
        if args.eval_every_epoch:
            started = time.perf_counter()
            accuracy = float(np.mean(trainer.predict(x_test).argmax(1) == y_test))
            curves["test_accuracy"].append(accuracy)
            curves["test_accuracy_iteration"].append(step)
            curves["test_accuracy_seconds"].append(started - clock - excluded)
            excluded += time.perf_counter() - started
            print(
                f"\nepoch {epoch} ({step} steps): test accuracy {accuracy:.4f} (no TTA)", flush=True
            )
    train_seconds = timed()
    history.seconds, history.images = train_seconds, images_seen
    if hyper["lookahead_every"]:
        trainer.use_average()
    views = augment.tta_views(x_test, settings["tta"])
    logits = sum(weight * trainer.predict(view) for weight, view in views)
    predictions = logits.argmax(axis=1)
    total_seconds = timed()
    model.load_state_dict(trainer.state_dict())  # a PyTorch run's weights, saved as tapegrad's
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    confidences = probabilities.max(axis=1) / probabilities.sum(axis=1)
    flops = training_flops(model) * images_seen
    epochs_done = step / steps_per_epoch  # the unit of --epochs
    recorded = {
        **{k: v for k, v in settings.items() if k != "hyper"},
        "seed": args.seed,
        "framework": args.framework,
        "train_images": len(x_train),
        "test_images": len(x_test),
        **hyper,
    }
    results = write_classification_run(
        out,
        model=model,
        history=history,
        test_images=x_test,
        test_labels=y_test,
        predictions=predictions,
        settings=recorded,
        class_names=CIFAR10_CLASSES,
        confidences=confidences,
        extra={
            "epochs": epochs_done,
            "steps": step,
            "seconds_per_epoch": train_seconds / epochs_done,
            "gflops_per_second": flops / train_seconds / 1e9,
            "total_seconds": total_seconds,
            "evaluation_seconds": total_seconds - train_seconds,
            "per_epoch_evaluation_seconds_excluded": excluded,
            "epoch_test_accuracy": curves["test_accuracy"],
            "epoch_test_seconds": curves["test_accuracy_seconds"],
            "machine": machine,
        },
    )
    _plot_curves(history, curves, out / "curves.png")
    filters = plots.plot_filters(model.whiten.weight.data)
    filters.suptitle(
        "Whitening filters (fixed, not learned):\nthe 2x2 patches' principal components\n"
        "over sqrt(eigenvalue + eps), and their negatives\n(each rescaled, RGB)"
    )
    plots.save_figure(filters, out / "filters.png")
    learned = plots.plot_filters(
        first_layer_in_pixels(model.whiten.weight.data, model.groups[0].conv1.weight.data)
    )
    learned.suptitle(
        "First learned layer (groups.0.conv1) seen on the image: each filter composed with\n"
        "the whitening layer, the part linear in the pixels (4x4, RGB, each rescaled)"
    )
    plots.save_figure(learned, out / "first_layer_filters.png")
    budget_text = f"a {budget:.0f} s budget" if epochs is None else f"{epochs:g} epochs asked"
    print(
        f"\ntest accuracy ({settings['tta']} TTA): {results['test_accuracy']:.4f} after "
        f"{epochs_done:.2f} epochs in {total_seconds:.0f} s of {budget_text} "
        f"({results['gflops_per_second']:.1f} GFLOP/s); outputs in {out}"
    )
    return results


def _plot_curves(history: History, curves: dict[str, list[float]], path: Path) -> None:
    """Training-batch loss and accuracy, test accuracy per epoch and the learning rate, each
    labelled with what it was measured on."""
    named = {
        "iteration": history.iteration,
        "training-batch loss": history.loss,
        "weight-decay loss": history.weight_decay_loss,
        "training-batch accuracy": history.accuracy,
    }
    for key, label in (("test_accuracy", "test accuracy (no TTA)"), ("learning_rate", "lr")):
        if curves[key]:
            named[label] = curves[key]
            named[f"{label}_iteration"] = curves[f"{key}_iteration"]
    plots.plot_curves(named, path)


def _compile(model: Net) -> None:
    """One throwaway step on a copy of the state, so that compilation is not timed."""
    state = model.state_dict()
    x = as_tensor(np.zeros((2, 3, 32, 32), np.float32))
    nn.CrossEntropyLoss()(model(x), np.zeros(2, dtype=np.int64)).backward()
    with tg.no_grad():
        model.eval()
        model(x)
        model.train()
    model.load_state_dict(state)
    model.zero_grad()


if __name__ == "__main__":
    run_main(main)
