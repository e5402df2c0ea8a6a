"""tg.save / tg.load and the atomic writers."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import io, nn


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_save_load_round_trip(tmp_path):
    model, other = _model(), _model()
    path = tg.save(model, tmp_path / "deep" / "model.npz")
    tg.load(other, path)
    for (_, a), (_, b) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_loading_into_a_model_it_does_not_fit_names_the_file_and_keys(tmp_path):
    path = tg.save(_model(), tmp_path / "model.npz")
    wrong = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(
        ValueError, match=r"model\.npz.*0\.weight: checkpoint \(4, 3\), model \(5, 3\)"
    ):
        tg.load(wrong, path)


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a plain array archive"):
        io.load_arrays(path)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    io.write_json(path, {"accuracy": 0.5})

    def explode(file):
        file.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.write_atomically(path, explode)
    assert path.read_text().strip().endswith("}") and "0.5" in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
