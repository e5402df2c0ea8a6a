"""experiments/sweep.py: a real two-trial MNIST sweep on Ray Tune, and resuming an interrupted one.

Ray takes seconds to start, so one local Ray session (one core) serves the whole module.
"""

from __future__ import annotations

import csv
import json
import os
import textwrap

import numpy as np
import pytest
import ray


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=1, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def sweep(load_experiment):
    return load_experiment("sweep")


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_command_line_from_settings(sweep):
    settings = {"learning_rate": 0.04, "widths": [32, 64], "tta": True, "ema": False, "seed": 1}
    assert sweep.command_line(settings) == [
        "--learning-rate",
        "0.04",
        "--widths",
        "32",
        "64",
        "--tta",
        "--seed",
        "1",
    ]


def test_pareto_front_keeps_only_unbeaten_trials(sweep):
    points = [(10, 0.90), (5, 0.80), (20, 0.95), (12, 0.85), (5, 0.70), (None, 0.99), (30, 0.95)]
    # (12, 0.85) is beaten by (10, 0.90); (5, 0.70) by (5, 0.80); (30, 0.95) by (20, 0.95).
    assert sweep.pareto_front(points) == [0, 1, 2]


def test_config_errors_name_the_problem(sweep, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('experiment = "mnist_starter"\n[fixed]\nseed = 0\n[grid]\nseed = [1, 2]\n')
    with pytest.raises(ValueError, match="'seed' is given in both"):
        sweep.load_config(path)
    path.write_text('experiment = "mnist_starter"\n[grids]\nseed = [1, 2]\n')
    with pytest.raises(ValueError, match="unknown key.*grids"):
        sweep.load_config(path)
    path.write_text('experiment = "no_such_script"\n')
    with pytest.raises(ValueError, match="neither a script"):
        sweep.load_config(path)


def test_two_trial_mnist_sweep(ray_session, sweep, data_root, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            experiment = "mnist_starter"
            cpus_per_trial = 1
            [fixed]
            iterations = 60
            batch_size = 64
            data_dir = "{data_root}"
            [grid]
            learning_rate = [0.04, 0.06]
            """
        )
    )
    out = tmp_path / "sweep"
    rows = sweep.main([str(config), "--out", str(out)])

    assert [row["status"] for row in rows] == ["finished", "finished"]
    table = read_csv(out / "results.csv")
    assert sorted(float(row["learning_rate"]) for row in table) == [0.04, 0.06]
    for row in table:
        metrics = json.loads((out / "runs" / row["trial"] / "metrics.json").read_text())
        assert metrics["settings"]["iterations"] == 60
        assert metrics["settings"]["learning_rate"] == float(row["learning_rate"])
        assert float(row["test_accuracy"]) == metrics["test_accuracy"] > 0.15  # chance is 0.1
        assert float(row["epochs"]) == pytest.approx(60 * 64 / 60_000)
        assert float(row["train_seconds"]) == metrics["train_seconds"] > 0
    assert "True" in {row["pareto"] for row in table}
    markdown = (out / "results.md").read_text().splitlines()
    assert markdown[0].startswith("| # | learning_rate | test accuracy | epochs | seconds |")
    assert len(markdown) == 4 and all("finished" in line for line in markdown[2:])
    assert (out / "accuracy_against_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# A stand-in experiment: on its first run with --value 2 it interrupts the sweep as Ctrl+C
# would (Tune stops on SIGUSR1 as on SIGINT) and waits to be stopped. It logs every run, and
# records the thread counts it was given.
FAKE_EXPERIMENT = """
import argparse, json, os, signal, time
from pathlib import Path

import numba
from threadpoolctl import threadpool_info

LOG = Path({log!r})


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--value", type=int)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    earlier = LOG.read_text().split() if LOG.exists() else []
    with LOG.open("a") as log:
        log.write(f"{{args.value}}\\n")
    if args.value == 2 and "2" not in earlier:
        os.kill({driver}, signal.SIGUSR1)
        time.sleep(120)
    args.out.mkdir(parents=True)
    metrics = {{
        "test_accuracy": args.value / 10,
        "train_seconds": 10.0 - args.value,
        "settings": {{"value": args.value}},
        "numba_threads": numba.get_num_threads(),
        "blas_threads": [pool["num_threads"] for pool in threadpool_info()],
    }}
    (args.out / "metrics.json").write_text(json.dumps(metrics))
"""


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(ray_session, sweep, tmp_path):
    log = tmp_path / "runs.log"
    (tmp_path / "fake_experiment.py").write_text(
        FAKE_EXPERIMENT.format(log=str(log), driver=os.getpid())
    )
    config = tmp_path / "fake.toml"
    config.write_text(
        'experiment = "fake_experiment.py"\ncpus_per_trial = 1\n[grid]\nvalue = [1, 2, 3]\n'
    )
    out = tmp_path / "sweep"

    first = sweep.main([str(config), "--out", str(out)])
    assert [row["status"] for row in first] == ["finished", "unfinished", "unfinished"]
    assert [row["value"] for row in first] == [1, 2, 3]
    assert log.read_text().split() == ["1", "2"]

    # The same command again: Tune restores the experiment and runs only what is left.
    second = sweep.main([str(config), "--out", str(out)])
    assert [row["status"] for row in second] == ["finished"] * 3
    assert sorted(log.read_text().split()) == ["1", "2", "2", "3"]
    assert [row["trial"] for row in second] == [row["trial"] for row in first]
    table = read_csv(out / "results.csv")
    assert [float(row["test_accuracy"]) for row in table] == [0.1, 0.2, 0.3]
    assert [row["pareto"] for row in table] == ["False", "False", "True"]
    for row in table:
        metrics = json.loads((out / "runs" / row["trial"] / "metrics.json").read_text())
        assert metrics["numba_threads"] == 1  # pinned to the trial's one core
        assert np.all(np.array(metrics["blas_threads"]) == 1)

    changed = tmp_path / "changed.toml"
    changed.write_text(config.read_text().replace("[1, 2, 3]", "[1, 2]"))
    with pytest.raises(ValueError, match="another configuration"):
        sweep.main([str(changed), "--out", str(out)])
