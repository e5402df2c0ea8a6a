"""experiments/cifar_improve.py: preset choice, FLOP count, and a short budgeted smoke run."""

import json


def test_presets_are_chosen_by_budget(load_experiment):
    script = load_experiment("cifar_improve")
    assert [script.pick_preset(m) for m in (2, 10, 29, 30, 100, 180, 500)] == [
        10,
        10,
        10,
        30,
        30,
        180,
        180,
    ]


def test_training_flops_of_the_airbench94_widths(load_experiment):
    script = load_experiment("cifar_improve")
    model = script.Net((64, 256, 256), 0.6, 1 / 9)
    macs = (
        3 * 24 * 4 * 31 * 31
        + 9 * (24 * 64 * 31 * 31 + 64 * 64 * 15 * 15)
        + 9 * (64 * 256 * 15 * 15 + 256 * 256 * 7 * 7)
        + 9 * (256 * 256 * 7 * 7 + 256 * 256 * 3 * 3)
        + 256 * 10
    )
    assert script.training_flops(model) == 6 * macs


def test_smoke_run_stays_within_its_budget(data_root, tmp_path, load_experiment):
    out = tmp_path / "run"
    budget_minutes = 0.75
    load_experiment("cifar_improve").main(
        [
            "--budget-minutes",
            str(budget_minutes),
            "--out",
            str(out),
            "--data-dir",
            str(data_root),
            "--no-progress",
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["total_seconds"] <= budget_minutes * 60 + 5
    assert metrics["epochs"] > 0 and 0 <= metrics["test_accuracy"] <= 1
    assert {p.name for p in out.glob("*.png")} == {
        "filters.png",
        "misclassified.png",
        "confusion_matrix.png",
        "curves.png",
    }
