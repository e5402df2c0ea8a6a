"""tapegrad.plots: every figure saves a valid PNG, atomically, without a display."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from tapegrad.course.plots import (
    plot_confusion_matrix,
    plot_curves,
    plot_filters,
    plot_images,
    save_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    assert image.std() > 0  # something is drawn
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    return image


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_plot_filters_for_grey_rgb_and_other_channel_counts(tmp_path, channels):
    weights = np.random.default_rng(0).normal(size=(10, channels, 5, 5))
    figure = plot_filters(weights, tmp_path / "figures" / "filters.png")  # folder is created
    assert isinstance(figure, Figure)
    assert len([a for a in figure.axes if a.images]) == 10
    assert [a.get_title() for a in figure.axes if a.images][:3] == ["0", "1", "2"]
    assert_png(tmp_path / "figures" / "filters.png")


def test_plot_filters_handles_constant_filters_and_rejects_bad_shapes():
    plot_filters(np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"\(C_out, C_in, kh, kw\), got \(8, 5, 5\)"):
        plot_filters(np.zeros((8, 5, 5)))


@pytest.mark.parametrize(
    ("images", "names"),
    [
        (np.random.default_rng(1).integers(0, 256, (7, 1, 28, 28), dtype=np.uint8), None),
        (np.random.default_rng(2).random((5, 3, 32, 32)), ["cat", "dog", "ship"]),
        (np.random.default_rng(3).normal(size=(3, 3, 8, 8)), None),  # normalised floats
    ],
)
def test_plot_images_captions_true_and_predicted(tmp_path, images, names):
    true = np.arange(len(images)) % 3
    predicted = (true + 1) % 3
    figure = plot_images(images, true, predicted, class_names=names, path=tmp_path / "wrong.png")
    titles = [a.get_title() for a in figure.axes if a.images]
    assert len(titles) == len(images)
    first = f"{names[0]} / {names[1]}" if names else "0 / 1"
    assert titles[0] == first
    assert_png(tmp_path / "wrong.png")


def test_plot_images_limits_the_count_and_shows_an_empty_set(tmp_path):
    images = np.zeros((50, 1, 4, 4), dtype=np.uint8)
    figure = plot_images(images, np.zeros(50, int), np.ones(50, int), max_images=12)
    assert len([a for a in figure.axes if a.images]) == 12
    assert "12 of 50" in figure.get_suptitle()
    plot_images(images[:0], [], [], path=tmp_path / "none.png")
    assert_png(tmp_path / "none.png")


def test_plot_images_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="3 images but 2 predicted_labels"):
        plot_images(np.zeros((3, 1, 4, 4)), [0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got \(4,\)"):
        plot_images(np.zeros(4), [0], [0])


def test_plot_confusion_matrix_writes_counts_in_cells(tmp_path):
    cm = np.array([[50, 2, 0], [3, 40, 7], [0, 1, 60]])
    figure = plot_confusion_matrix(cm, ["a", "b", "c"], tmp_path / "cm.png")
    axes = figure.axes[0]
    texts = [t.get_text() for t in axes.texts]
    assert texts == [str(v) for v in cm.ravel()]
    assert axes.get_xlabel() == "predicted class" and axes.get_ylabel() == "true class"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["a", "b", "c"]
    assert "150 of 163 correct" in axes.get_title()
    # Coloured by the share of the row, the diagonal left out: the errors fill the scale.
    colours = axes.images[0].get_array()
    assert colours.mask.tolist() == np.eye(3, dtype=bool).tolist()
    assert colours[1, 2] == pytest.approx(7 / 50)
    assert axes.images[0].get_clim() == pytest.approx((0, 7 / 50))
    assert_png(tmp_path / "cm.png")
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 class_names for a 3x3"):
        plot_confusion_matrix(cm, ["a", "b"])


def test_plot_curves_puts_losses_and_accuracies_in_their_panels(tmp_path):
    steps = list(range(0, 1000, 10))
    history = {
        "iteration": steps,
        "loss": list(np.linspace(2.3, 0.1, 100)),
        "weight_decay_loss": list(np.linspace(0.5, 0.2, 100)),
        "accuracy": list(np.linspace(0.1, 0.99, 100)),
        "test_accuracy": [0.9, 0.95, 0.97],  # per epoch: spread up to the last iteration
        "lr": [0.01] * 100,
        "seed": 0,  # metadata: ignored
    }
    figure = plot_curves(history, tmp_path / "curves.png")
    titles = [a.get_title() for a in figure.axes]
    assert titles == ["loss", "accuracy", "other"]
    loss_axes, accuracy_axes, _ = figure.axes
    assert [line.get_label() for line in loss_axes.lines] == ["loss", "weight_decay_loss"]
    test_line = accuracy_axes.lines[1]
    np.testing.assert_allclose(test_line.get_xdata(), [330, 660, 990])
    assert_png(tmp_path / "curves.png")


def test_plot_curves_draws_losses_of_different_magnitudes_on_a_log_axis():
    """A weight-decay loss in the hundreds would flatten a data loss near one on a linear axis."""
    comparable = {"loss": [2.3, 1.0, 0.1], "weight_decay_loss": [0.5, 0.4, 0.3]}
    assert plot_curves(comparable).axes[0].get_yscale() == "linear"
    apart = {"loss": [2.3, 1.0, 0.5], "weight_decay_loss": [1200.0, 300.0, 100.0]}
    assert plot_curves(apart).axes[0].get_yscale() == "log"
    with_zero = {"loss": [2.3, 1.0, 0.0], "weight_decay_loss": [1200.0, 300.0, 100.0]}
    assert plot_curves(with_zero).axes[0].get_yscale() == "linear"  # log would drop the zero


def test_plot_curves_uses_a_series_own_iterations_and_rejects_empty_histories():
    figure = plot_curves(
        {
            "loss": [3.0, 2.0, 1.0],
            "test_accuracy": [0.5, 0.7],
            "test_accuracy_iteration": [100, 300],
        }
    )
    np.testing.assert_allclose(figure.axes[1].lines[0].get_xdata(), [100, 300])
    np.testing.assert_allclose(figure.axes[0].lines[0].get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="no list of numbers"):
        plot_curves({"iteration": [1, 2], "seed": 3})
    with pytest.raises(ValueError, match=r"history\['loss'\] must be a list of numbers"):
        plot_curves({"loss": ["a", "b"]})


def test_saving_is_atomic_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "cm.png"
    target.write_bytes(b"the previous figure")
    figure = plot_confusion_matrix(np.eye(3, dtype=int))

    def broken_savefig(file, **kwargs):
        file.write(b"half a PNG")
        raise RuntimeError("disk full")

    monkeypatch.setattr(figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(figure, target)
    assert target.read_bytes() == b"the previous figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png"]


def test_saving_needs_a_known_suffix(tmp_path):
    figure = plot_confusion_matrix(np.eye(2, dtype=int))
    with pytest.raises(ValueError, match=r"suffix '\.xyz' is not a known format.*\.png"):
        save_figure(figure, tmp_path / "cm.xyz")
    with pytest.raises(ValueError, match="suffix ''"):
        save_figure(figure, tmp_path / "cm")
    save_figure(figure, tmp_path / "cm.svg")
    assert (tmp_path / "cm.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.svg"]


def test_figures_are_built_in_threads_without_pyplot(tmp_path):
    errors: list[BaseException] = []

    def draw(index: int) -> None:
        try:
            plot_filters(np.ones((4, 1, 3, 3)) * index, tmp_path / f"f{index}.png")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for index in range(4):
        assert (tmp_path / f"f{index}.png").read_bytes()[:8] == PNG_SIGNATURE


def test_plots_never_import_pyplot(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from tapegrad.course.plots import plot_confusion_matrix\n"
        f"plot_confusion_matrix(np.eye(2, dtype=int), path={str(tmp_path / 'cm.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cm.png").read_bytes()[:8] == PNG_SIGNATURE


def test_saved_files_get_the_usual_permissions_not_private_temporary_ones(tmp_path):
    previous = os.umask(0o022)
    try:
        save_figure(plot_confusion_matrix(np.eye(2, dtype=int)), tmp_path / "cm.png")
    finally:
        os.umask(previous)
    assert (tmp_path / "cm.png").stat().st_mode & 0o777 == 0o644
