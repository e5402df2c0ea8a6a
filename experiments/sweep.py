"""Run an experiment over a grid or random draw of its settings, in parallel, with Ray Tune.

    python experiments/sweep.py CONFIG --out DIR [--address ADDRESS] [--cpus-per-trial N]
                                       [--num-cpus N] [--data-dir DIR]

CONFIG is a TOML file naming the experiment (a script in experiments/, e.g. mnist_starter, or
a path to one) and its search space (see experiments/sweeps/). Each trial calls the
experiment's main() with a command line built from its settings (`learning_rate = 0.04` ->
`--learning-rate 0.04`; a list gives several values; true gives the bare flag), writing its
outputs to DIR/runs/TRIAL, and reports that run's metrics.json to Tune.

Without --address, Ray starts on this machine; with it, the sweep joins an existing Ray
cluster (`ray start --head`, then `ray start --address=HEAD:6379` on the others), whose
machines all need tapegrad installed, this checkout at the same path and DIR on a shared
file system. A trial takes --cpus-per-trial cores (default: all cores of the smallest
machine) and pins its numba and BLAS threads to them, so trials never oversubscribe a machine.

Writes DIR/results.csv, DIR/results.md (a table for experiments/README.md) and
DIR/accuracy_against_time.png (the Pareto front marked). Running the same command again
resumes an interrupted sweep with Tune's experiment restore: finished trials are kept, not
rerun.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tapegrad.course.plots import save_figure
from tapegrad.course.report import markdown_table
from tapegrad.io import write_atomically

EXPERIMENTS = Path(__file__).resolve().parent
TUNE_FOLDER = "tune"  # Tune's experiment folder inside --out, what a resume restores
CONFIG_COPY = "sweep.toml"  # the configuration the sweep in --out was started from
#: Training-set sizes, for the epochs of experiments whose metrics.json does not say them.
TRAINING_EXAMPLES = {"mnist_starter": 60_000, "cifar_starter": 20_000}
SPACES = ("grid", "choice", "uniform", "loguniform")
RESULT_KEYS = (
    "test_accuracy",
    "epochs",
    "train_seconds",
    "total_seconds",
    "gflops_per_second",
    "images_per_second",
)


@dataclass(frozen=True)
class SweepConfig:
    """A parsed sweep configuration: the experiment, fixed settings and the search space."""

    experiment: str
    script: Path
    fixed: dict[str, Any] = field(default_factory=dict)
    spaces: dict[str, dict[str, list]] = field(default_factory=dict)
    samples: int = 1
    cpus_per_trial: int | None = None
    search_seed: int = 0

    @property
    def varied(self) -> list[str]:
        """The settings the search space varies, in the order the configuration gives them."""
        return [name for space in SPACES for name in self.spaces.get(space, {})]


def find_script(experiment: str, base: Path) -> Path:
    """experiments/NAME.py for a bare name, else a .py path relative to the config's folder."""
    if re.fullmatch(r"[A-Za-z_]\w*", experiment) and (EXPERIMENTS / f"{experiment}.py").is_file():
        return EXPERIMENTS / f"{experiment}.py"
    path = (base / experiment).resolve()
    if path.suffix == ".py" and path.is_file():
        return path
    names = sorted(p.stem for p in EXPERIMENTS.glob("*.py") if p.stem not in ("common", "sweep"))
    raise ValueError(
        f"sweep config: experiment {experiment!r} is neither a script in {EXPERIMENTS} "
        f"({', '.join(names)}) nor a .py file relative to {base}."
    )


def load_config(path: str | Path) -> SweepConfig:
    """Read and check a sweep's TOML file (its keys explained in experiments/sweeps/*.toml)."""
    path = Path(path)
    with path.open("rb") as file:
        raw = tomllib.load(file)
    known = {"experiment", "samples", "cpus_per_trial", "search_seed", "fixed", *SPACES}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(
            f"sweep config {path}: unknown key(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(known))}."
        )
    if "experiment" not in raw:
        raise ValueError(f'sweep config {path}: no `experiment = "NAME"` line.')
    spaces = {name: dict(raw.get(name, {})) for name in SPACES if raw.get(name)}
    seen: dict[str, str] = {key: "fixed" for key in raw.get("fixed", {})}
    for space, settings in spaces.items():
        for key, values in settings.items():
            if key in seen:
                raise ValueError(
                    f"sweep config {path}: setting {key!r} is given in both [{seen[key]}] and "
                    f"[{space}]; give it once."
                )
            seen[key] = space
            bounded = space in ("uniform", "loguniform")
            if not isinstance(values, list) or not values or (bounded and len(values) != 2):
                expected = "[low, high]" if bounded else "a non-empty list of values"
                raise ValueError(
                    f"sweep config {path}: [{space}] {key} = {values!r}; expected {expected}."
                )
    return SweepConfig(
        experiment=raw["experiment"],
        script=find_script(raw["experiment"], path.resolve().parent),
        fixed=dict(raw.get("fixed", {})),
        spaces=spaces,
        samples=int(raw.get("samples", 1)),
        cpus_per_trial=raw.get("cpus_per_trial"),
        search_seed=int(raw.get("search_seed", 0)),
    )


def command_line(settings: dict[str, Any]) -> list[str]:
    """Settings as options: `a_b=1` -> `--a-b 1`, `[1, 2]` -> `--a-b 1 2`, true -> `--a-b`."""
    argv: list[str] = []
    for key, value in settings.items():
        option = "--" + key.replace("_", "-")
        if value is True:
            argv.append(option)
        elif value is False or value is None:
            continue
        elif isinstance(value, list | tuple):
            argv += [option, *(str(v) for v in value)]
        else:
            argv += [option, str(value)]
    return argv


def pin_threads(cpus: int) -> None:
    """Limit this process's numba and BLAS thread pools (and any child's) to `cpus` threads."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(cpus)
    os.environ["NUMBA_NUM_THREADS"] = str(cpus)  # for numba if it is not imported yet
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(cpus, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(cpus)


def summarise(experiment: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers a sweep's table shows, from one run's metrics.json."""
    summary = {key: metrics[key] for key in RESULT_KEYS if metrics.get(key) is not None}
    settings = metrics.get("settings", {})
    if "epochs" not in summary and experiment in TRAINING_EXAMPLES and "iterations" in settings:
        examples = settings["iterations"] * settings["batch_size"]
        summary["epochs"] = examples / TRAINING_EXAMPLES[experiment]
    return summary


def make_trainable(config: SweepConfig, runs: Path, cpus: int) -> Callable[[dict], None]:
    """The function Tune runs per trial: the experiment's main() with the trial's settings."""
    script, fixed, experiment = config.script, dict(config.fixed), config.experiment

    def run_trial(settings: dict[str, Any]) -> None:
        from ray import tune

        pin_threads(cpus)
        if not script.is_file():
            raise FileNotFoundError(
                f"sweep trial: {script} is missing on this machine; every machine of the "
                f"cluster needs this checkout at the same path."
            )
        sys.path.insert(0, str(script.parent))  # the scripts import their neighbours
        module = importlib.import_module(script.stem)
        out = runs / tune.get_context().get_trial_id()
        module.main([*command_line({**fixed, **settings}), "--out", str(out), "--no-progress"])
        metrics = json.loads((out / "metrics.json").read_text())
        tune.report({**summarise(experiment, metrics), "run": str(out)})

    return run_trial


def search_space(config: SweepConfig) -> dict[str, Any]:
    """Tune's param_space: grid_search, choice, uniform and loguniform per setting."""
    from ray import tune

    make = {
        "grid": tune.grid_search,
        "choice": tune.choice,
        "uniform": lambda bounds: tune.uniform(*bounds),
        "loguniform": lambda bounds: tune.loguniform(*bounds),
    }
    return {
        key: make[space](values)
        for space, settings in config.spaces.items()
        for key, values in settings.items()
    }


def smallest_machine_cpus() -> int:
    """The CPU count of the smallest live machine of the Ray cluster (at least 1)."""
    import ray

    counts = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]]
    return max(int(min(counts, default=1)), 1)


def run_tuner(config: SweepConfig, config_text: str, out: Path, cpus: int) -> Any:
    """Start the sweep in out/tune, or resume it there; returns Tune's ResultGrid."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    trainable = tune.with_resources(make_trainable(config, out / "runs", cpus), {"cpu": cpus})
    experiment = out / TUNE_FOLDER
    if tune.Tuner.can_restore(experiment):
        started_from = tomllib.loads((out / CONFIG_COPY).read_text())
        if tomllib.loads(config_text) != started_from:
            raise ValueError(
                f"sweep: {out} holds a sweep started from another configuration "
                f"({out / CONFIG_COPY}); resume with that one or choose another --out."
            )
        print(f"sweep: resuming the sweep in {out}; finished trials are kept")
        tuner = tune.Tuner.restore(str(experiment), trainable, restart_errored=True)
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_atomically(out / CONFIG_COPY, lambda file: file.write(config_text.encode()))
        tuner = tune.Tuner(
            trainable,
            param_space=search_space(config),
            tune_config=tune.TuneConfig(
                num_samples=config.samples,
                search_alg=BasicVariantGenerator(random_state=config.search_seed),
            ),
            run_config=tune.RunConfig(
                name=TUNE_FOLDER, storage_path=str(out), verbose=1, log_to_file=True
            ),
        )
    return tuner.fit()


def result_rows(config: SweepConfig, results: Any, out: Path) -> list[dict[str, Any]]:
    """One row per trial: its id, settings, numbers, status and run folder (relative to `out`)."""
    from ray import tune

    # A trial that never started has no result, hence no config: read them all from Tune's state.
    settings = tune.ExperimentAnalysis(results.experiment_path).get_all_configs()
    rows = []
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None:
            status = "error"
        elif "test_accuracy" in metrics:
            status = "finished"
        else:
            status = "unfinished"
        trial = metrics.get("trial_id") or re.search(r"[0-9a-f]{5}_\d{5}", result.path)[0]
        rows.append(
            {
                "trial": trial,
                **{key: settings.get(trial, {}).get(key) for key in config.varied},
                **{key: metrics.get(key) for key in RESULT_KEYS},
                "status": status,
                "run": os.path.relpath(metrics["run"], out) if metrics.get("run") else None,
            }
        )
    rows.sort(key=lambda row: row["trial"])
    front = set(pareto_front([(row["train_seconds"], row["test_accuracy"]) for row in rows]))
    for index, row in enumerate(rows):
        row["pareto"] = index in front
    return rows


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[int]:
    """Indices of the (seconds, accuracy) points no other point beats in both: faster and better.

    Points with a missing value are never on the front. Ties in both keep the first.
    """
    order = sorted(
        (i for i, (s, a) in enumerate(points) if s is not None and a is not None),
        key=lambda i: (points[i][0], -points[i][1], i),
    )
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return sorted(front)


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return "/".join(str(v) for v in value)
    return str(value)


def table(config: SweepConfig, rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table for experiments/README.md, the Pareto front in bold."""
    header = ["#", *config.varied, "test accuracy", "epochs", "seconds", "GFLOP/s", "status"]
    lines = []
    for number, row in enumerate(rows, 1):
        accuracy = row["test_accuracy"]
        accuracy = "" if accuracy is None else f"{100 * accuracy:.2f} %"
        if row["pareto"]:
            accuracy = f"**{accuracy}**"
        seconds = row["total_seconds"] if row["total_seconds"] is not None else row["train_seconds"]
        lines.append(
            [
                number,
                *(_cell(row[key], 4) for key in config.varied),
                accuracy,
                _cell(row["epochs"], 2),
                _cell(seconds, 1),
                _cell(row["gflops_per_second"], 1),
                row["status"],
            ]
        )
    return markdown_table(header, lines)


def plot_accuracy_against_time(rows: list[dict[str, Any]], path: str | Path) -> Figure:
    """Test accuracy against training seconds, one numbered point per trial, the front joined."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    done = [(n, row) for n, row in enumerate(rows, 1) if row["status"] == "finished"]
    for number, row in done:
        on_front = row["pareto"]
        axes.scatter(
            row["train_seconds"],
            100 * row["test_accuracy"],
            color="tab:red" if on_front else "tab:blue",
            zorder=3,
        )
        axes.annotate(
            str(number),
            (row["train_seconds"], 100 * row["test_accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    front = sorted(
        (row["train_seconds"], 100 * row["test_accuracy"]) for _, row in done if row["pareto"]
    )
    if front:
        axes.step(*zip(*front, strict=True), where="post", color="tab:red", label="Pareto front")
        axes.legend(loc="best")
    axes.set_xlabel("training time (s)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("trials of the sweep (numbers as in results.md)")
    axes.grid(alpha=0.3)
    save_figure(figure, path)
    return figure


def write_results(config: SweepConfig, rows: list[dict[str, Any]], out: Path) -> None:
    """results.csv, results.md and accuracy_against_time.png in `out`, each written atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["trial"])
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(value) for key, value in row.items()})
    write_atomically(out / "results.csv", lambda file: file.write(text.getvalue().encode()))
    markdown = f"{table(config, rows)}\n"
    write_atomically(out / "results.md", lambda file: file.write(markdown.encode()))
    plot_accuracy_against_time(rows, out / "accuracy_against_time.png")


def _csv_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return "" if value is None else value


def run_sweep(
    config_path: str | Path,
    out: str | Path,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_trial: int | None = None,
    data_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the sweep of `config_path` into `out`; returns one row per trial.

    Uses the Ray session already started in this process if there is one, else starts Ray on
    this machine (`num_cpus` cores) or joins the cluster at `address`.
    """
    import ray
    import ray.cloudpickle

    config = load_config(config_path)
    config_text = Path(config_path).read_text()
    if data_dir is not None:
        config = SweepConfig(
            **{**config.__dict__, "fixed": {**config.fixed, "data_dir": str(data_dir)}}
        )
    out = Path(out).resolve()
    if __name__ != "__main__":  # imported: ship this module's code to the trials by value
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address or "local",
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
        )
    try:
        cpus = cpus_per_trial or config.cpus_per_trial or smallest_machine_cpus()
        results = run_tuner(config, config_text, out, int(cpus))
    finally:
        if started:
            ray.shutdown()
    rows = result_rows(config, results, out)
    write_results(config, rows, out)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="the sweep's TOML file")
    parser.add_argument(
        "--out", type=Path, required=True, help="e.g. experiments/results/sweeps/NAME"
    )
    parser.add_argument(
        "--address", default=None, help="a Ray cluster's address (default: this machine)"
    )
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="cores Ray may use on this machine"
    )
    parser.add_argument("--cpus-per-trial", type=int, default=None, help="overrides the config's")
    parser.add_argument("--data-dir", type=Path, default=None, help="passed to every trial")
    args = parser.parse_args(argv)
    rows = run_sweep(
        args.config,
        args.out,
        address=args.address,
        num_cpus=args.num_cpus,
        cpus_per_trial=args.cpus_per_trial,
        data_dir=args.data_dir,
    )
    counts = {
        status: sum(row["status"] == status for row in rows)
        for status in ("finished", "unfinished", "error")
    }
    print(
        f"sweep: {counts['finished']} of {len(rows)} trials finished"
        + (f", {counts['error']} failed" if counts["error"] else "")
        + (
            f", {counts['unfinished']} unfinished (run the same command to resume)"
            if counts["unfinished"]
            else ""
        )
        + f"; results in {args.out}/results.md"
    )
    return rows


if __name__ == "__main__":
    finished = main()
    sys.exit(0 if all(row["status"] == "finished" for row in finished) else 1)
