"""tapegrad.report: reading finished runs, and quick runs where they are missing."""

from __future__ import annotations

import numpy as np
import pytest

from tapegrad import nn
from tapegrad.course import report
from tapegrad.course.analysis import misclassified, write_classification_run
from tapegrad.train import History


def _write_run(folder, accuracy_of=(0, 1, 1)):
    labels = np.array([0, 1, 1])
    history = History(iteration=[1, 2], loss=[2.0, 1.0], accuracy=[0.5, 1.0], seconds=1.5, images=6)
    write_classification_run(
        folder,
        model=nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()),
        history=history,
        test_images=np.zeros((3, 1, 4, 4), np.uint8),
        test_labels=labels,
        predictions=np.array(accuracy_of),
        settings={"seed": 0},
    )


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv(report.RUNS_VARIABLE, str(tmp_path))
    monkeypatch.delenv(report.QUICK_VARIABLE, raising=False)
    return tmp_path


def test_load_run_reads_what_the_experiments_write(runs):
    _write_run(runs / "a_seed0", accuracy_of=(0, 1, 0))
    run = report.load_run(runs / "a_seed0")
    assert run.accuracy == pytest.approx(2 / 3) and not run.quick
    assert run.history.loss == [2.0, 1.0]
    np.testing.assert_array_equal(run.predictions, [0, 1, 0])
    assert run.weights["0.weight"].shape == (2, 1, 3, 3)


def test_load_run_names_the_missing_files(runs):
    (runs / "half").mkdir()
    (runs / "half" / "metrics.json").write_text("{}")
    with pytest.raises(
        FileNotFoundError, match=r"missing history.json, predictions.npy, model.npz"
    ):
        report.load_run(runs / "half")


def test_run_or_train_reads_an_existing_run_and_trains_only_a_missing_one(runs):
    _write_run(runs / "present")
    trained = []
    assert not report.run_or_train("present", trained.append).quick
    assert trained == []
    quick = report.run_or_train("absent", lambda out: (trained.append(out), _write_run(out)))
    assert quick.quick and trained == [quick.path] and not (runs / "absent").exists()


def test_quick_mode_trains_even_where_runs_exist_and_find_runs_ignores_them(runs, monkeypatch):
    _write_run(runs / "b_seed0")
    _write_run(runs / "b_seed1")
    (runs / "b_seed2").mkdir()  # unfinished: not listed
    assert [r.name for r in report.find_runs("b_seed")] == ["b_seed0", "b_seed1"]
    monkeypatch.setenv(report.QUICK_VARIABLE, "1")
    assert report.run_or_train("b_seed0", _write_run).quick
    assert report.find_runs("b_seed") == []


def test_project_root_is_found_from_a_subfolder(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    assert report.project_root(tmp_path / "notebooks") == tmp_path.resolve()


def test_markdown_table_and_most_confused():
    assert report.markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n| --- | --- |\n| 1 | x |"
    confusion = np.array([[5, 2, 0], [7, 4, 1], [0, 3, 9]])
    assert report.most_confused(confusion, ["p", "q", "r"], count=2) == [
        ("q", "p", 7),
        ("r", "q", 3),
    ]


def test_runs_label_is_relative_inside_the_project(runs, monkeypatch):
    monkeypatch.setenv(report.RUNS_VARIABLE, str(report.project_root() / "runs"))
    assert report.runs_label() == "runs/"
    monkeypatch.setenv(report.RUNS_VARIABLE, str(runs))
    assert report.runs_label() == f"{runs.resolve()}/"


def test_misclassified_puts_the_most_confident_mistakes_first():
    labels = np.array([0, 1, 2, 3, 4])
    predictions = np.array([1, 1, 0, 0, 0])
    confidences = np.array([0.4, 0.99, 0.9, 0.3, 0.6])
    np.testing.assert_array_equal(misclassified(labels, predictions), [0, 2, 3, 4])
    np.testing.assert_array_equal(misclassified(labels, predictions, confidences), [2, 4, 0, 3])
