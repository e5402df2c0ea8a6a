"""A short smoke run of experiments/cifar_starter.py on the real data."""

import json

import numpy as np

import tapegrad as tg


def test_build_model_is_the_course_network(load_experiment):
    rows = tg.nn.summary(load_experiment("cifar_starter").build_model(), (3, 32, 32), False)
    assert [r["parameters"] for r in rows if r["parameters"]] == [1216, 6416, 40970]


def test_smoke_run(data_root, tmp_path, load_experiment):
    out = tmp_path / "run"
    load_experiment("cifar_starter").main(
        ["--out", str(out), "--iterations", "30", "--data-dir", str(data_root), "--no-progress"]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["training_images"] == 20_000
    assert np.array(metrics["confusion_matrix"]).sum() == 10_000
    assert {p.name for p in out.glob("*.png")} == {
        "filters.png",
        "misclassified.png",
        "confusion_matrix.png",
        "curves.png",
    }
