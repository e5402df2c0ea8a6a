"""experiments/common.py's entry point: a missing data set is one message and exit status 1."""

import importlib
from pathlib import Path

import pytest

from tapegrad.data import DataNotFoundError


@pytest.fixture
def run_main(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "experiments"))
    return importlib.import_module("common").run_main


def test_missing_data_prints_the_message_alone_and_exits_1(run_main, capsys):
    def main():
        try:
            raise ConnectionError("Max retries exceeded with url: ... (urllib3 noise)")
        except ConnectionError as offline:
            raise DataNotFoundError("MNIST was not found and was not downloaded.") from offline

    with pytest.raises(SystemExit) as exit_:
        run_main(main)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "MNIST was not found and was not downloaded." in err
    assert "Traceback" not in err and "urllib3" not in err


def test_other_errors_keep_their_traceback(run_main):
    def main():
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        run_main(main)
