"""cifar_improve runs side by side: a table and the accuracy-against-minutes plot.

    python experiments/cifar_summary.py RUN_DIR [RUN_DIR ...] [--out DIR]

Reads each run's metrics.json (written by cifar_improve.py) and writes `summary.md` (one row
per run, then the mean of each preset, network and framework over its seeds) and
`accuracy_vs_minutes.png`: every run as a point at its total minutes (training and the final
test-time-augmented evaluation), tapegrad and PyTorch with their own markers and each machine
with its own colour, the issue's targets drawn as steps. "Minutes to 93 % / 94 %" is the first
time the run's test accuracy was at least that much: after an epoch (live weights, no TTA;
`--eval-every-epoch` runs only) or at the end (the reported accuracy, with TTA). Epochs are
counted as `--epochs` counts them, for runs of every date. Means and ratios are taken per
machine, the CPU each run recorded (a budget buys different work on different machines); runs
from before cifar_improve recorded it form one group of their own.
A preset is also told apart by its network and batch, which change when it is retuned, and by
the work asked of it: a budget preset run for a fixed number of epochs (to repeat on one
machine what its budget bought on another) is not a budget run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import run_main
from matplotlib.figure import Figure

from tapegrad.course import plots
from tapegrad.io import write_atomically

#: Minutes of budget and the mean test accuracy each must reach (issue 16).
TARGETS = {10: 0.915, 30: 0.940, 120: 0.950}
THRESHOLDS = (0.93, 0.94)
#: The machine of runs whose metrics.json predates the record of it.
UNRECORDED = "not recorded"
#: One colour per machine in the plot (red is the targets').
MACHINE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")


def load_run(directory: Path) -> dict[str, Any]:
    """The fields of a run's metrics.json that the summary needs."""
    path = directory / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no metrics.json (is it a cifar_improve run?)")
    metrics = json.loads(path.read_text())
    settings = metrics["settings"]
    minutes = metrics["total_seconds"] / 60
    times = [s / 60 for s in metrics.get("epoch_test_seconds", [])]
    accuracies = metrics.get("epoch_test_accuracy", [])[: len(times)]
    checkpoints = [*zip(times, accuracies, strict=True), (minutes, metrics["test_accuracy"])]
    widths, batch_size = settings.get("widths"), settings.get("batch_size")
    return {
        "run": directory.name,
        "preset": str(settings.get("preset")),
        "work": _work(settings),
        "network": f"{'/'.join(map(str, widths))}, batch {batch_size}" if widths else "-",
        "framework": settings.get("framework", "tapegrad"),
        "seed": settings.get("seed"),
        "tta": settings.get("tta"),
        "machine": metrics.get("machine", {}).get("processor", UNRECORDED),
        "accuracy": metrics["test_accuracy"],
        "epochs": _epochs(metrics),
        "minutes": minutes,
        **{
            f"minutes_to_{threshold}": next(
                (t for t, accuracy in checkpoints if accuracy >= threshold), None
            )
            for threshold in THRESHOLDS
        },
    }


def _epochs(metrics: dict[str, Any]) -> float:
    """Epochs as `--epochs` counts them (passes of whole batches), from the steps where the
    run recorded them: runs before 2026-12-03 reported training images over the training set's
    size, 1.7 % less at batch 1024."""
    settings = metrics["settings"]
    steps, batch_size = metrics.get("steps"), settings.get("batch_size")
    images = settings.get("train_images")
    if steps and batch_size and images:
        return steps / (images // batch_size)
    return metrics["epochs"]


def _work(settings: dict[str, Any]) -> str:
    """What the run was asked to do: a budget in minutes or a number of epochs."""
    if settings.get("budget_minutes"):
        return f"{settings['budget_minutes']:g} minutes"
    if settings.get("epochs"):
        return f"{settings['epochs']:g} epochs"
    return "-"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary_table(runs: list[dict[str, Any]]) -> str:
    """Markdown: one row per run, then the mean over seeds of each preset, work, network,
    framework and machine."""
    header = (
        "| run | preset | work | network | framework | seed | TTA | test accuracy | epochs | "
        "minutes | minutes to 93 % | minutes to 94 % | machine |\n"
        "|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---|"
    )
    lines = [header]
    for run in runs:
        lines.append(
            f"| {run['run']} | {run['preset']} | {run['work']} | {run['network']} | "
            f"{run['framework']} | {run['seed']} | {run['tta']} | {100 * run['accuracy']:.2f} % | "
            f"{run['epochs']:.2f} | {run['minutes']:.1f} | {_minutes(run['minutes_to_0.93'])} | "
            f"{_minutes(run['minutes_to_0.94'])} | {run['machine']} |"
        )
    groups: dict[tuple[str, str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        key = run["preset"], run["work"], run["network"], run["framework"], run["machine"]
        groups[key].append(run)
    lines += [
        "",
        "| preset | work | network | framework | machine | seeds | mean test accuracy | "
        "mean minutes |",
        "|---|---|---|---|---|---:|---:|---:|",
    ]
    for (preset, work, network, framework, machine), members in groups.items():
        lines.append(
            f"| {preset} | {work} | {network} | {framework} | {machine} | {len(members)} | "
            f"{100 * statistics.mean(r['accuracy'] for r in members):.2f} % | "
            f"{statistics.mean(r['minutes'] for r in members):.1f} |"
        )
    lines += _framework_ratios(groups)
    return "\n".join(lines) + "\n"


def _framework_ratios(
    groups: dict[tuple[str, str, str, str, str], list[dict[str, Any]]],
) -> list[str]:
    """For each preset, work and network run in both frameworks on one machine: tapegrad's
    mean minutes over PyTorch's, for the whole run and to each threshold that every run of
    both reached (issue 16's ratio)."""
    lines = []
    pairs = sorted({(p, work, network, machine) for p, work, network, _, machine in groups})
    for preset, work, network, machine in pairs:
        ours = groups.get((preset, work, network, "tapegrad", machine))
        theirs = groups.get((preset, work, network, "torch", machine))
        if not ours or not theirs:
            continue
        cells = []
        for key in ("minutes", *(f"minutes_to_{threshold}" for threshold in THRESHOLDS)):
            minutes_ours, minutes_theirs = ([r[key] for r in runs] for runs in (ours, theirs))
            if None in minutes_ours + minutes_theirs:
                cells.append("-")
            else:
                ratio = statistics.mean(minutes_ours) / statistics.mean(minutes_theirs)
                cells.append(f"{ratio:.2f}")
        lines.append(f"| {preset} | {work} | {network} | {machine} | {' | '.join(cells)} |")
    if not lines:
        return []
    header = "| preset | work | network | machine | whole run | to 93 % | to 94 % |"
    title = "tapegrad's minutes over PyTorch's (means over seeds; - where a run never reached it):"
    return ["", title, "", header, "|---|---|---|---|---:|---:|---:|", *lines]


def _point_label(run: dict[str, Any]) -> str:
    """The preset, with the epochs asked where a budget preset (named by its minutes) ran for
    a fixed number of epochs rather than its budget."""
    by_epochs = run["preset"].isdigit() and run["work"].endswith("epochs")
    return f"{run['preset']}, {run['work']}" if by_epochs else run["preset"]


def plot_accuracy_vs_minutes(runs: list[dict[str, Any]], path: Path) -> None:
    """Each run as a point (accuracy against total minutes), a marker per framework and a
    colour per machine; the targets as a step line."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    markers = {"tapegrad": "o", "torch": "s"}
    machines = sorted({r["machine"] for r in runs})
    colours = dict(zip(machines, MACHINE_COLOURS, strict=False))
    for framework, marker in markers.items():
        for machine in machines:
            chosen = [r for r in runs if (r["framework"], r["machine"]) == (framework, machine)]
            if not chosen:
                continue
            axes.scatter(
                [r["minutes"] for r in chosen],
                [100 * r["accuracy"] for r in chosen],
                marker=marker,
                color=colours.get(machine, "tab:gray"),
                label=f"{framework}, {machine}",
            )
            for r in chosen:
                axes.annotate(
                    _point_label(r), (r["minutes"], 100 * r["accuracy"]), fontsize=7, alpha=0.7
                )
    minutes = sorted(TARGETS)
    axes.step(
        minutes,
        [100 * TARGETS[m] for m in minutes],
        where="post",
        color="tab:red",
        linestyle="--",
        label="targets (mean of seeds, issue 16)",
    )
    axes.scatter(minutes, [100 * TARGETS[m] for m in minutes], marker="_", s=200, color="tab:red")
    axes.set_xlabel("minutes (training + final evaluation, 2 cores)")
    axes.set_ylabel("test accuracy, % (final, with TTA)")
    axes.set_title("CIFAR-10: test accuracy against wall-clock minutes")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=7, title="one point per run", title_fontsize=7)
    plots.save_figure(figure, path)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="cifar_improve output directories")
    parser.add_argument("--out", type=Path, default=Path("runs/cifar_summary"))
    args = parser.parse_args(argv)
    runs = [load_run(directory) for directory in args.runs]
    table = summary_table(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out / "summary.md", lambda file: file.write(table.encode()))
    plot_accuracy_vs_minutes(runs, args.out / "accuracy_vs_minutes.png")
    print(table)
    print(f"outputs in {args.out}")
    return runs


if __name__ == "__main__":
    run_main(main)
