"""The report's view of the experiments: read the runs they wrote, or train a quick one.

The notebooks in notebooks/ show the runs under runs/ (what `experiments/*.py --out runs/NAME`
wrote). Where a run is missing, or where TAPEGRAD_REPORT_QUICK=1 asks for it (the notebook
test does), they train a short run into a temporary folder instead, marked `quick`, so that
a reader is never shown a short run's numbers as if they were the real ones.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tapegrad.io import load_arrays
from tapegrad.train import History

QUICK_VARIABLE = "TAPEGRAD_REPORT_QUICK"
RUNS_VARIABLE = "TAPEGRAD_RUNS"
RUN_FILES = ("metrics.json", "history.json", "predictions.npy", "model.npz")


@dataclass(frozen=True)
class Run:
    """One finished run of an experiment: its numbers, learning curves, predictions, weights."""

    name: str
    path: Path
    metrics: dict[str, Any]
    history: History
    predictions: np.ndarray
    weights: dict[str, np.ndarray]
    quick: bool = False

    @property
    def accuracy(self) -> float:
        return float(self.metrics["test_accuracy"])


def quick_mode() -> bool:
    """Whether TAPEGRAD_REPORT_QUICK asks for quick runs even where real ones exist."""
    return os.environ.get(QUICK_VARIABLE, "").strip() not in ("", "0")


def project_root(start: str | Path | None = None) -> Path:
    """The folder with pyproject.toml that holds `start` (default: the working directory)."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(f"project_root: no pyproject.toml in {start} or above it.")


def runs_directory() -> Path:
    """$TAPEGRAD_RUNS if set, else runs/ in the project root."""
    configured = os.environ.get(RUNS_VARIABLE)
    return Path(configured) if configured else project_root() / "runs"


def _missing_files(path: Path) -> list[str]:
    return [name for name in RUN_FILES if not (path / name).is_file()]


def runs_label() -> str:
    """The runs folder as a reader should see it: relative to the project when inside it."""
    folder, root = runs_directory().resolve(), project_root()
    return f"{folder.relative_to(root) if folder.is_relative_to(root) else folder}/"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table, each cell as str() gives it."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def most_confused(
    confusion: np.ndarray, names: Sequence[str], count: int = 4
) -> list[tuple[str, str, int]]:
    """The `count` largest off-diagonal cells of a confusion matrix: (true, predicted, times)."""
    confusion = np.asarray(confusion)
    wrong = confusion - np.diag(np.diag(confusion))
    cells = np.argsort(-wrong, axis=None, kind="stable")[:count]
    return [
        (names[t], names[p], int(wrong[t, p]))
        for t, p in zip(*np.unravel_index(cells, wrong.shape), strict=True)
    ]


def load_run(path: str | Path, *, quick: bool = False) -> Run:
    """Read the files `write_classification_run` wrote to `path`; never unpickles."""
    path = Path(path)
    missing = _missing_files(path)
    if missing:
        raise FileNotFoundError(
            f"load_run: {path} is not a finished run; missing {', '.join(missing)} "
            f"(expected {', '.join(RUN_FILES)})."
        )
    return Run(
        name=path.name,
        path=path,
        metrics=json.loads((path / "metrics.json").read_text()),
        history=History.load(path / "history.json"),
        predictions=np.load(path / "predictions.npy", allow_pickle=False),
        weights=load_arrays(path / "model.npz"),
        quick=quick,
    )


def find_runs(prefix: str) -> list[Run]:
    """Every finished run under runs/ whose folder name starts with `prefix`, by name."""
    root = runs_directory()
    if quick_mode() or not root.is_dir():
        return []
    return [load_run(p) for p in sorted(root.glob(f"{prefix}*")) if not _missing_files(p)]


def run_or_train(name: str, train: Callable[[Path], object]) -> Run:
    """runs/NAME if it is there (and quick mode is off); else `train(folder)`, marked quick."""
    path = runs_directory() / name
    if not quick_mode() and path.is_dir():
        return load_run(path)
    folder = Path(tempfile.mkdtemp(prefix=f"tapegrad-quick-{name}-"))
    train(folder)
    return load_run(folder, quick=True)
