"""A short smoke run of experiments/mnist_starter.py on the real data, and its model."""

import json

import numpy as np

import tapegrad as tg


def test_build_model_is_the_course_network(load_experiment):
    model = load_experiment("mnist_starter").build_model()
    rows = tg.nn.summary(model, (1, 28, 28), print_table=False)
    assert [r["output_shape"] for r in rows][-1] == (10,)
    assert [r["parameters"] for r in rows if r["parameters"]] == [416, 6416, 6416, 7850]
    # The skeleton's first-layer scale: N(0,1) / sqrt(5*5*3/2).
    assert 0.8 < np.std(model[0].weight.data) / np.sqrt(2 / 75) < 1.2


def test_smoke_run_writes_every_output(data_root, tmp_path, capsys, load_experiment):
    script = load_experiment("mnist_starter")
    out = tmp_path / "run"
    results = script.main(
        ["--out", str(out), "--iterations", "60", "--data-dir", str(data_root), "--no-progress"]
    )
    assert "test accuracy" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert names >= {
        "metrics.json",
        "predictions.npy",
        "model.npz",
        "history.json",
        "filters.png",
        "misclassified.png",
        "confusion_matrix.png",
        "curves.png",
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["test_accuracy"] == results["test_accuracy"] > 0.15
    )  # above chance (0.1) after 60 steps
    assert len(metrics["precision"]) == len(metrics["recall"]) == 10
    assert np.array(metrics["confusion_matrix"]).sum() == 10_000
    assert metrics["parameters"]["total"] == 416 + 6416 + 6416 + 7850
    assert metrics["settings"]["iterations"] == 60 and metrics["train_seconds"] > 0
    predictions = np.load(out / "predictions.npy")
    assert predictions.shape == (10_000,)
    model = script.build_model()
    tg.load(model, out / "model.npz")
    for path in out.glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
