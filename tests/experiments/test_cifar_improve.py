"""experiments/cifar_improve.py and evaluate.py: settings, the recipe's optimiser, test-time
augmentation, and short smoke runs of both modes on a slice of the data."""

import json
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import augment, nn
from tapegrad.engine.tensor import Tensor

#: A few dozen steps on a slice of the data, on a narrow network.
SMOKE = ["--widths", "8,16,16", "--batch-size", "64", "--train-images", "1024", "--no-progress"]


def test_presets_are_chosen_by_budget(load_experiment):
    script = load_experiment("cifar_improve")
    budgets = (2, 10, 29, 30, 59, 60, 119, 120, 500)
    assert [script.pick_preset(m) for m in budgets] == [10, 10, 10, 30, 30, 60, 60, 120, 120]


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


def _settings(script, *argv):
    return script.resolve_settings(script._parser().parse_args(list(argv)))


def test_settings_come_from_the_preset_then_the_command_line(load_experiment):
    script = load_experiment("cifar_improve")
    airbench = _settings(script, "--preset", "airbench94")
    assert airbench["epochs"] == 9.9 and airbench["budget_minutes"] is None
    assert airbench["widths"] == (64, 256, 256) and airbench["batch_size"] == 1024
    assert airbench["tta"] == "flip-translate"
    budget = _settings(script, "--budget-minutes", "12")
    assert budget["budget_minutes"] == 12 and budget["epochs"] is None
    assert budget["widths"] == script.PRESETS[10]["widths"]
    assert budget["tta"] == script.PRESETS[10]["tta"]
    mixed = _settings(
        script, "--preset", "30", "--epochs", "3", "--widths", "16,32,64", "--tta", "none"
    )
    assert mixed["epochs"] == 3 and mixed["budget_minutes"] is None
    assert mixed["widths"] == (16, 32, 64) and mixed["batch_size"] == 1024
    assert mixed["tta"] == "none"
    thirty = _settings(script, "--preset", "30")
    assert thirty["budget_minutes"] == 30 and thirty["epochs"] is None
    assert thirty["widths"] == (64, 256, 256) and thirty["tta"] == "flip-translate"
    assert thirty["hyper"] == script.HYPER  # airbench94's recipe, scheduled to the budget
    wide = _settings(script, "--preset", "120", "--set", "momentum=0.9")
    assert wide["widths"] == (128, 384, 384) and wide["budget_minutes"] == 120
    assert wide["hyper"] == {**script.HYPER, "lr": 10.0, "momentum": 0.9}  # airbench95's rate
    overridden = _settings(script, "--set", "lr=9.5", "translate=1")
    assert overridden["overrides"] == {"lr": 9.5, "translate": 1}
    overridden = overridden["hyper"]
    assert overridden["lr"] == 9.5 and overridden["translate"] == 1
    assert isinstance(overridden["translate"], int)
    assert overridden["momentum"] == script.HYPER["momentum"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("learning_rate=1", "KEY one of lr, momentum"),
        ("lr", "expected KEY=VALUE"),
        ("lr=fast", "lr takes a number, got 'fast'"),
        ("translate=1.5", "translate takes an integer"),
    ],
)
def test_set_rejects_unknown_keys_and_bad_values(load_experiment, capsys, item, message):
    script = load_experiment("cifar_improve")
    with pytest.raises(ValueError, match=message):
        script.parse_overrides([item])
    with pytest.raises(SystemExit):
        script.main(["--set", item])
    assert message in capsys.readouterr().err


def test_the_muon_preset_and_its_checks(load_experiment, capsys):
    script = load_experiment("cifar_improve")
    muon = _settings(script, "--preset", "airbench94_muon", "--set", "muon_lr=0.3")
    assert muon["epochs"] == 8 and muon["batch_size"] == 2000 and "recipe" not in muon
    assert muon["hyper"]["filter_optimizer"] == "muon" and muon["hyper"]["lookahead_every"] == 0
    assert muon["hyper"]["muon_lr"] == 0.3 and muon["overrides"] == {"muon_lr": 0.3}
    assert _settings(script, "--preset", "airbench94")["hyper"]["filter_optimizer"] == "sgd"
    assert script.HYPER["filter_optimizer"] == "sgd"  # the preset did not change the defaults
    for argv, message in (
        (["--set", "filter_optimizer=adam"], "expected one of sgd, muon"),
        (["--preset", "airbench94_muon", "--framework", "torch"], "SGD only"),
    ):
        with pytest.raises(SystemExit):
            script.main(argv)
        assert message in capsys.readouterr().err


def test_epochs_and_budget_are_exclusive(load_experiment, capsys):
    with pytest.raises(SystemExit):
        load_experiment("cifar_improve").main(["--epochs", "2", "--budget-minutes", "3"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["airbench94", "airbench94_muon"])
def test_weight_decay_is_airbenchs_per_step_decay_for_every_group(load_experiment, preset):
    script = load_experiment("cifar_improve")
    tg.manual_seed(0)
    model = script.Net((8, 16, 16), 0.6, 1 / 9)
    hyper = _settings(script, "--preset", preset)["hyper"]
    optimizers = script.build_optimizers(model, 512, hyper)
    kilostep = 1024 * (1 + 1 / (1 - hyper["momentum"]))
    decay_per_step = hyper["weight_decay"] * 512 / kilostep
    norm_biases, whitening_bias, others = optimizers[0].param_groups
    for group in optimizers[0].param_groups:
        # PyTorch semantics: the step removes lr x weight_decay x p.
        assert group["lr"] * group["weight_decay"] == pytest.approx(decay_per_step)
    assert norm_biases["lr"] == pytest.approx(hyper["bias_scaler"] * others["lr"])
    assert whitening_bias["lr"] == pytest.approx(hyper["whiten_bias_scaler"] * others["lr"])
    assert whitening_bias["params"] == [model.whiten.bias]
    filters = [p for name, p in model.named_parameters() if name.endswith("conv1.weight")]
    filters += [p for name, p in model.named_parameters() if name.endswith("conv2.weight")]
    assert len(filters) == 6
    if preset == "airbench94":
        assert len(optimizers) == 1 and len(others["params"]) == 7  # the filters and the head
    else:  # airbench94_muon: the filters are Muon's, undecayed; SGD keeps the head
        assert others["params"] == [model.head.weight]
        muon = optimizers[1].param_groups[0]
        assert {id(p) for p in muon["params"]} == {id(p) for p in filters}
        assert muon["weight_decay"] == 0 and muon["lr"] == hyper["muon_lr"] == 0.24
        # airbench94_muon's absolute rates: head 0.67 at scale 1/256 on unit-std weights is
        # 0.67 x (9/256)^2 at scale 1/9; biases 0.053; decay 2e-6 x batch per step.
        assert others["lr"] == pytest.approx(0.67 * (9 / 256) ** 2, rel=2e-3)
        assert norm_biases["lr"] == pytest.approx(0.053, rel=2e-3)
        assert decay_per_step == pytest.approx(2e-6 * 512, rel=2e-3)


def test_the_muon_trainer_renormalises_the_filters_then_steps_them(load_experiment):
    script = load_experiment("cifar_improve")
    tg.manual_seed(0)
    model = script.Net((8, 16, 16), 0.6, 1 / 9)
    hyper = {**script.HYPER, "filter_optimizer": "muon", "muon_lr": 0.0}
    trainer = script.TapegradTrainer(model, 8, hyper)
    assert len(trainer.muon_filters) == 6
    images = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    before = model.head.weight.data.copy()
    trainer.step(images, np.arange(8) % 10)
    for p in trainer.muon_filters:  # with a zero rate Muon leaves them at the renormalised size
        assert np.linalg.norm(p.data) == pytest.approx(np.sqrt(len(p.data)), rel=1e-5)
    assert np.abs(model.head.weight.data - before).max() > 0  # SGD stepped the head
    trainer.set_lr_factor(0.5)
    assert trainer.optimizers[1].param_groups[0]["lr"] == 0
    hyper["muon_lr"] = 0.2
    trainer = script.TapegradTrainer(model, 8, hyper)
    filters = [p.data.copy() for p in trainer.muon_filters]
    trainer.step(images, np.arange(8) % 10)
    moved = [np.linalg.norm(p.data - f) for p, f in zip(trainer.muon_filters, filters, strict=True)]
    assert min(moved) > 0.05


def test_batchnorm_momentum_weights_the_running_statistics(load_experiment):
    # airbench's 0.6 is PyTorch's momentum 0.4: r <- 0.6 r + 0.4 batch.
    group = load_experiment("cifar_improve").ConvGroup(4, 4, bn_momentum=0.6)
    assert group.norm1.momentum == pytest.approx(0.4)


class _FirstRowPixels(nn.Module):
    """Logits = the first ten pixels of channel 0's first row: sees flips and translations."""

    def forward(self, x: Tensor) -> Tensor:
        return tg.as_tensor(np.ascontiguousarray(x.data[:, 0, 0, :10]))


def test_flip_translate_tta_weights_six_views_as_airbench():
    rng = np.random.default_rng(0)
    images = rng.random((3, 1, 12, 12)).astype(np.float32)
    model = _FirstRowPixels()

    def view(array):
        return array[:, 0, 0, :10]

    mirrored = images[..., ::-1]
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    up_left, down_right = padded[..., :12, :12], padded[..., 2:, 2:]
    expected = 0.25 * (view(images) + view(mirrored)) + 0.125 * sum(
        view(v) + view(v[..., ::-1]) for v in (up_left, down_right)
    )
    got = augment.tta_logits(model, images, "flip-translate", batch_size=2)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(augment.tta_logits(model, images, "none"), view(images))
    assert sum(weight for weight, _ in augment.tta_views(images, "flip-translate")) == 1
    with pytest.raises(ValueError, match="unknown level 'rotate'"):
        augment.tta_logits(model, images, "rotate")


def test_fixed_epochs_smoke_run_then_evaluate_reproduces_it(data_root, tmp_path, load_experiment):
    out = tmp_path / "run"
    args = ["--epochs", "2", "--tta", "flip-translate", "--test-images", "200"]
    args += ["--set", "lr=9", "whiten_bias_epochs=1", "--eval-every-epoch"]
    results = load_experiment("cifar_improve").main(
        [*SMOKE, *args, "--train-images", "1000", "--out", str(out), "--data-dir", str(data_root)]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    # an epoch is a pass of whole batches (15 of 64 images from 1000), reported in that unit
    assert metrics["steps"] == 2 * (1000 // 64) and metrics["epochs"] == 2
    assert len(metrics["epoch_test_accuracy"]) == 2
    first, second = metrics["epoch_test_seconds"]
    assert 0 < first < second <= metrics["total_seconds"]
    settings = metrics["settings"]
    assert settings["epochs"] == 2 and settings["budget_minutes"] is None
    assert settings["lr"] == 9 and settings["widths"] == [8, 16, 16]
    assert settings["tta"] == "flip-translate" and settings["test_images"] == 200
    assert len(np.load(out / "predictions.npy")) == 200
    assert {p.name for p in out.glob("*.png")} == {
        "filters.png",
        "first_layer_filters.png",
        "misclassified.png",
        "confusion_matrix.png",
        "curves.png",
    }

    evaluation = load_experiment("evaluate").main(
        ["--model", str(out / "model.npz"), "--data-dir", str(data_root)]
    )
    assert evaluation["test_accuracy"] == results["test_accuracy"]
    assert evaluation["predictions_differing_from_run"] == 0
    assert evaluation["settings"]["tta"] == "flip-translate"
    written = json.loads((out / "evaluation" / "metrics.json").read_text())
    assert written["reference_test_accuracy"] == results["test_accuracy"]
    assert (
        np.load(out / "evaluation" / "predictions.npy") == np.load(out / "predictions.npy")
    ).all()

    summary = load_experiment("cifar_summary").main([str(out), "--out", str(tmp_path / "sum")])
    assert [run["accuracy"] for run in summary] == [results["test_accuracy"]]
    table = (tmp_path / "sum" / "summary.md").read_text()
    accuracy = f"{100 * results['test_accuracy']:.2f} %"
    row = "| run | airbench94 | 2 epochs | 8/16/16, batch 64 | tapegrad | 0 | flip-translate |"
    row += f" {accuracy}"
    assert row in table
    assert (tmp_path / "sum" / "accuracy_vs_minutes.png").stat().st_size > 10_000


def test_first_layer_in_pixels_is_the_odd_part_of_its_response(load_experiment):
    """(f(x) - f(-x)) / 2 of whitening - GELU - conv1 is the 4x4 filters' correlation with x."""
    script = load_experiment("cifar_improve")
    tg.manual_seed(1)
    model = script.Net((5, 8, 8), 0.6, 1 / 9)
    rng = np.random.default_rng(1)
    model.whiten.weight.data[...] = nn.whitening_filters(rng.random((8, 3, 8, 8)), 2)
    model.whiten.bias.data[...] = 0
    model.groups[0].conv1.weight.data[...] = rng.standard_normal((5, 24, 3, 3))

    def first_layer(x):
        return model.groups[0].conv1(tg.gelu(model.whiten(Tensor(x)), approximate="tanh")).data

    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    odd = (first_layer(x) - first_layer(-x))[0, :, 1:-1, 1:-1] / 2  # away from the padding
    filters = script.first_layer_in_pixels(
        model.whiten.weight.data, model.groups[0].conv1.weight.data
    )
    assert filters.shape == (5, 3, 4, 4)
    windows = np.lib.stride_tricks.sliding_window_view(x[0], (4, 4), axis=(1, 2))
    expected = np.einsum("chwuv,ocuv->ohw", windows, filters)
    np.testing.assert_allclose(odd, expected, rtol=1e-4, atol=1e-4)


def test_muon_smoke_run_learns_and_keeps_its_last_weights(data_root, tmp_path, load_experiment):
    """No lookahead in airbench94_muon: the final weights are the last step's, not an average
    that was never updated (which would be the initial weights, at chance)."""
    out = tmp_path / "run"
    args = ["--preset", "airbench94_muon", *SMOKE, "--epochs", "2", "--test-images", "500"]
    results = load_experiment("cifar_improve").main(
        [*args, "--tta", "none", "--out", str(out), "--data-dir", str(data_root)]
    )
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["filter_optimizer"] == "muon" and settings["lookahead_every"] == 0
    assert results["test_accuracy"] > 0.15  # chance is 0.10 (+-0.013 on 500 images)


def test_summary_times_each_threshold_by_the_first_measurement_reaching_it(
    tmp_path, load_experiment
):
    metrics = {
        "settings": {"preset": "30", "framework": "torch", "seed": 2, "tta": "flip"},
        "test_accuracy": 0.945,
        "epochs": 12.0,
        "total_seconds": 1500.0,
        "epoch_test_accuracy": [0.90, 0.932, 0.929, 0.938],
        "epoch_test_seconds": [300.0, 600.0, 900.0, 1200.0],
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    run = load_experiment("cifar_summary").load_run(tmp_path)
    assert run["minutes_to_0.93"] == 10.0  # the second epoch, not the later dip
    assert run["minutes_to_0.94"] == 25.0  # only the final, test-time-augmented accuracy
    assert run["framework"] == "torch" and run["preset"] == "30"
    assert run["network"] == run["work"] == "-"  # not in these settings
    assert run["machine"] == "not recorded"  # a run from before cifar_improve recorded it
    assert run["epochs"] == 12.0  # as reported, where the steps are not recorded
    metrics |= {"steps": 120, "epochs": 120 * 256 / 50_000}  # reported in images / 50,000
    metrics["settings"] |= {"batch_size": 256, "train_images": 50_000}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert load_experiment("cifar_summary").load_run(tmp_path)["epochs"] == 120 / 195
    metrics["machine"] = {"processor": "Some CPU (family 6, model 1)"}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert (
        load_experiment("cifar_summary").load_run(tmp_path)["machine"]
        == metrics["machine"]["processor"]
    )
    metrics["settings"] |= {"budget_minutes": 30.0, "epochs": None}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert load_experiment("cifar_summary").load_run(tmp_path)["work"] == "30 minutes"
    metrics["settings"] |= {"budget_minutes": None, "epochs": 35.25}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert load_experiment("cifar_summary").load_run(tmp_path)["work"] == "35.25 epochs"
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        load_experiment("cifar_summary").load_run(tmp_path / "missing")


def test_summary_gives_tapegrads_minutes_over_pytorchs(load_experiment):
    summary = load_experiment("cifar_summary")

    def run(framework, minutes, to_93, to_94, machine="A"):
        return {
            "run": f"{framework}-{minutes}",
            "preset": "airbench94",
            "work": "9.9 epochs",
            "network": "64/256/256, batch 1024",
            "framework": framework,
            "seed": 0,
            "tta": "flip-translate",
            "accuracy": 0.94,
            "epochs": 9.9,
            "minutes": minutes,
            "minutes_to_0.93": to_93,
            "minutes_to_0.94": to_94,
            "machine": machine,
        }

    runs = [run("tapegrad", 50.0, 40.0, None), run("tapegrad", 60.0, 50.0, 58.0)]
    runs.append(run("torch", 40.0, 30.0, 38.0))
    table = summary.summary_table(runs)
    # (50 + 60) / 2 / 40 and 45 / 30; one tapegrad run never reached 94 %
    assert "| airbench94 | 9.9 epochs | 64/256/256, batch 1024 | A | 1.38 | 1.50 | - |" in table
    assert "minutes over PyTorch's" not in summary.summary_table(runs[:2])
    # runs on different machines are never averaged or compared
    elsewhere = summary.summary_table([*runs[:2], run("torch", 40.0, 30.0, 38.0, machine="B")])
    assert "minutes over PyTorch's" not in elsewhere
    network = "9.9 epochs | 64/256/256, batch 1024"
    assert f"| airbench94 | {network} | tapegrad | A | 2 | 94.00 % | 55.0 |" in elsewhere
    assert f"| airbench94 | {network} | torch | B | 1 | 94.00 % | 40.0 |" in elsewhere
    # nor are runs of a preset retuned to another network
    retuned = [*runs, {**runs[0], "network": "64/192/192, batch 512"}]
    table = summary.summary_table(retuned)
    assert f"| airbench94 | {network} | tapegrad | A | 2 | 94.00 % | 55.0 |" in table
    assert "| 9.9 epochs | 64/192/192, batch 512 | tapegrad | A | 1 | 94.00 % | 50.0 |" in table
    # nor a budget preset's budget runs with its runs for a fixed number of epochs
    budget = {**runs[0], "preset": "120", "work": "120 minutes"}
    by_epochs = {**budget, "work": "35.25 epochs", "minutes": 130.0}
    table = summary.summary_table([budget, by_epochs])
    assert "| 120 | 120 minutes | 64/256/256, batch 1024 | tapegrad | A | 1 |" in table
    assert "| 120 | 35.25 epochs | 64/256/256, batch 1024 | tapegrad | A | 1 |" in table
    labels = [summary._point_label(run) for run in (runs[0], budget, by_epochs)]
    assert labels == ["airbench94", "120", "120, 35.25 epochs"]


def test_an_epoch_count_read_back_from_a_run_repeats_its_steps(load_experiment):
    steps_for = load_experiment("cifar_improve").steps_for
    assert steps_for(9.9, 48) == 476  # airbench94: ceil(9.9 x 48), a started pass rounded up
    assert steps_for(2, 15) == 30
    for steps_per_epoch in (15, 48, 97, 195):
        for steps in range(1, 3000, 7):
            assert steps_for(steps / steps_per_epoch, steps_per_epoch) == steps


def test_budget_smoke_run_stays_within_its_budget(data_root, tmp_path, load_experiment):
    out = tmp_path / "run"
    budget_minutes = 0.4
    load_experiment("cifar_improve").main(
        [
            *SMOKE,
            *("--budget-minutes", str(budget_minutes), "--tta", "flip", "--test-images", "500"),
            *("--out", str(out), "--data-dir", str(data_root)),
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    # the final evaluation's time is kept back, measured rather than guessed generously
    assert 0.6 * budget_minutes * 60 <= metrics["total_seconds"] <= budget_minutes * 60 + 5
    assert metrics["epochs"] > 0 and 0 <= metrics["test_accuracy"] <= 1
    assert metrics["settings"]["budget_minutes"] == budget_minutes
    assert metrics["settings"]["epochs"] is None
    # a budget's result depends on the machine, so the run says which it was
    machine = metrics["machine"]
    assert machine["cpu_count"] >= 1 and machine["numba_threads"] >= 1
    assert machine["processor"] and machine["numba"]


RESULTS = Path(__file__).resolve().parents[2] / "experiments" / "results"
#: The committed models: airbench94's fixed recipe and the 30-minute preset (issue 16).
COMMITTED_MODELS = sorted(path.parent for path in RESULTS.glob("cifar_improve_*/model.npz"))


def test_both_models_are_committed():
    presets = [
        json.loads((run / "metrics.json").read_text())["settings"]["preset"]
        for run in COMMITTED_MODELS
    ]
    assert sorted(presets) == ["30", "airbench94"]


@pytest.mark.parametrize("run", COMMITTED_MODELS, ids=lambda path: path.name)
def test_a_committed_model_gives_its_runs_predictions(run, data_root, tmp_path, load_experiment):
    """A committed model, evaluated again (a slice of the test set, to keep CI short),
    predicts what its training run predicted, image for image."""
    recorded = json.loads((run / "metrics.json").read_text())
    assert (run / "model.npz").stat().st_size <= 10 * 2**20
    args = ["--model", str(run / "model.npz"), "--test-images", "300", "--out", str(tmp_path)]
    evaluation = load_experiment("evaluate").main([*args, "--data-dir", str(data_root)])
    assert evaluation["settings"]["tta"] == recorded["settings"]["tta"] == "flip-translate"
    assert evaluation["reference_test_accuracy"] == recorded["test_accuracy"] > 0.93
    assert evaluation["predictions_differing_from_run"] == 0
    saved = np.load(run / "predictions.npy")[:300]
    labels = np.load(tmp_path / "predictions.npy")
    assert (saved == labels).all() and evaluation["test_accuracy"] > 0.85


def test_evaluate_refuses_other_archives(tmp_path, load_experiment):
    path = tmp_path / "model.npz"
    np.savez(path, weight=np.zeros(3))
    with pytest.raises(ValueError, match="holds no cifar_improve network"):
        load_experiment("evaluate").main(["--model", str(path)])


def test_torch_trainer_takes_the_same_steps_as_tapegrads(load_experiment):
    """Same weights, same batch: PyTorch's trainer and tapegrad's agree on the logits, and
    after two steps (the second with the whitening bias frozen) and a lookahead on every
    weight and running statistic: the optimiser groups, decay and BN momentum match."""
    pytest.importorskip("torch")
    script = load_experiment("cifar_improve")
    torch_recipe = load_experiment("torch_recipe")
    tg.manual_seed(0)
    hyper = script.HYPER
    model = script.Net((8, 16, 16), hyper["batchnorm_momentum"], hyper["head_scale"])
    rng = np.random.default_rng(0)
    model.whiten.weight.data[...] = nn.whitening_filters(rng.random((8, 3, 8, 8)), 2)
    reference = script.TapegradTrainer(model, 16, hyper)
    other = torch_recipe.TorchTrainer(model.state_dict(), (8, 16, 16), 16, hyper)
    images = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 16)
    for trained_bias in (True, False):
        for trainer in (reference, other):
            trainer.set_lr_factor(0.5)
            trainer.train_whitening_bias(trained_bias)
        loss, logits = reference.step(images, labels)
        torch_loss, torch_logits = other.step(images, labels)
        assert torch_loss == pytest.approx(loss, rel=1e-4)
        np.testing.assert_allclose(torch_logits, logits, rtol=1e-3, atol=1e-4)
    for trainer in (reference, other):
        trainer.lookahead(0.3)
    ours, theirs = reference.state_dict(), other.state_dict()
    assert set(ours) == set(theirs)
    for name in ours:
        np.testing.assert_allclose(theirs[name], ours[name], rtol=1e-3, atol=1e-5, err_msg=name)
    assert other.weight_decay_loss() == pytest.approx(reference.weight_decay_loss(), rel=1e-4)
    test_images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    np.testing.assert_allclose(
        other.predict(test_images), reference.predict(test_images), rtol=1e-3, atol=1e-4
    )


def test_torch_smoke_run_is_evaluated_by_tapegrad(data_root, tmp_path, load_experiment):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    results = load_experiment("cifar_improve").main(
        [
            *SMOKE,
            *("--framework", "torch", "--epochs", "1", "--tta", "flip", "--test-images", "200"),
            *("--out", str(out), "--data-dir", str(data_root)),
        ]
    )
    assert json.loads((out / "metrics.json").read_text())["settings"]["framework"] == "torch"
    evaluation = load_experiment("evaluate").main(
        ["--model", str(out / "model.npz"), "--data-dir", str(data_root)]
    )
    # The same weights in the other framework: at most a near-tie or two may flip.
    assert evaluation["predictions_differing_from_run"] <= 2
    assert abs(evaluation["test_accuracy"] - results["test_accuracy"]) <= 0.01
