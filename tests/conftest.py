"""Shared pytest fixtures, and the markers that sort the tests by layer.

The folders follow the package's layers (engine, kernels, library, course, experiments); the
assignment's own exercise tests live in acceptance/. Each test is marked with its folder's
name, and `data` when it reads the real data sets, so `pytest -m engine` or
`pytest -m "not data"` selects a slice.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests check values, never time: no per-example deadline, so that a loaded or slow
# machine cannot fail them (speed is experiments/benchmark.py's job).
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of the real data sets, from $TAPEGRAD_DATA (holding mnist/ and cifar10/).

    Skips the test when the data is absent, or fails it when TAPEGRAD_REQUIRE_DATA=1 (CI),
    so that CI can never pass by silently skipping the real-data checks.
    """
    value = os.environ.get("TAPEGRAD_DATA")
    problem = None
    if not value:
        problem = "TAPEGRAD_DATA is not set"
    else:
        root = Path(value).expanduser().absolute()  # a relative path is from the working dir
        missing = [name for name in ("mnist", "cifar10") if not (root / name).is_dir()]
        if missing:
            problem = f"TAPEGRAD_DATA={value} lacks the folder(s) {', '.join(missing)}/"
    if problem is None:
        return root
    example = 'export TAPEGRAD_DATA="$PWD/../shared/data"'
    message = f"real data sets unavailable: {problem} (e.g. {example})"
    if os.environ.get("TAPEGRAD_REQUIRE_DATA") == "1":
        pytest.fail(f"{message}; TAPEGRAD_REQUIRE_DATA=1 requires them")
    pytest.skip(message)


TESTS = Path(__file__).resolve().parent
EXPERIMENTS = TESTS.parent / "experiments"
LAYERS = ("engine", "kernels", "library", "course", "experiments", "acceptance")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = item.path.relative_to(TESTS).parts[0]
        if layer in LAYERS:
            item.add_marker(layer)
        if "data_root" in getattr(item, "fixturenames", ()):
            item.add_marker("data")


@pytest.fixture(scope="session")
def load_experiment():
    """Import a script from experiments/ by name (its folder on sys.path, as when run)."""
    import importlib
    import sys

    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    return importlib.import_module
