"""tg.save / tg.load, the atomic writer and the errors for damaged files."""

import json
import os
import subprocess
import sys
import zipfile

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
    with pytest.raises(io.CorruptedFileError, match=r"evil\.npz holds a pickled \(object\) array"):
        io.load_arrays(path)
    with pytest.raises(io.CorruptedFileError, match="pickled"):
        tg.load(path)


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


# --------------------------------------------------------------------- tg.save(obj), tg.load(path)


def _checkpoint():
    model = _model()
    return {
        "model": model.state_dict(),
        "optimizer": {"state": {0: {"momentum": np.ones(3)}}, "lr": 0.1, "nesterov": False},
        "scheduler": {"last_epoch": 4, "milestones": [2, 5], "gamma": 0.5, "name": "step"},
        "epoch": 3,
        "best": float("inf"),
        "history": [(0.5, 0.9), (0.25, 0.95)],
        "note": None,
        "weights": tg.tensor(np.arange(4.0, dtype=np.float32), requires_grad=True),
        "count": np.int64(7),
        "raw": b"\x00\x01",
    }


def test_a_nested_checkpoint_round_trips_with_its_types(tmp_path):
    original = _checkpoint()
    loaded = tg.load(tg.save(original, tmp_path / "checkpoint.npz"))
    assert loaded.keys() == original.keys()
    for key, array in original["model"].items():
        np.testing.assert_array_equal(loaded["model"][key], array)
        assert loaded["model"][key].dtype == array.dtype
    assert list(loaded["optimizer"]["state"]) == [0]  # int keys stay ints
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0]["momentum"], np.ones(3))
    assert loaded["scheduler"] == original["scheduler"]
    assert loaded["epoch"] == 3 and loaded["best"] == float("inf") and loaded["note"] is None
    assert loaded["history"] == [(0.5, 0.9), (0.25, 0.95)]  # tuples stay tuples
    assert isinstance(loaded["weights"], tg.Tensor) and loaded["weights"].requires_grad
    assert loaded["weights"].data.dtype == np.float32
    assert loaded["count"] == 7 and type(loaded["count"]) is np.int64
    assert loaded["raw"] == b"\x00\x01"


def test_the_file_is_an_npz_with_a_json_manifest_and_no_pickle(tmp_path):
    path = tg.save(_checkpoint(), tmp_path / "checkpoint.npz")
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == "tapegrad.save"
    with np.load(path, allow_pickle=False) as archive:  # NumPy reads the arrays by itself
        assert "0" in archive.files


def test_a_state_dict_saves_as_a_plain_npz_that_load_into_a_model_reads(tmp_path):
    model, other = _model(), _model()
    path = tg.save(model.state_dict(), tmp_path / "state.npz")
    assert sorted(io.load_arrays(path)) == sorted(model.state_dict())
    tg.load(other, path)
    np.testing.assert_array_equal(other[0].weight.data, model[0].weight.data)
    loaded = tg.load(path)
    assert sorted(loaded) == sorted(model.state_dict())


def test_a_state_dict_of_tensors_loads_into_a_model(tmp_path):
    model, other = _model(), _model()
    state = {name: tg.tensor(array) for name, array in model.state_dict().items()}
    tg.load(other, tg.save(state, tmp_path / "state.npz"))
    np.testing.assert_array_equal(other[2].weight.data, model[2].weight.data)


def test_saving_what_cannot_be_saved_without_pickling_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    with pytest.raises(TypeError, match=r"\['optimizer'\]\[1\] is an array of dtype object"):
        tg.save({"optimizer": [np.zeros(2), np.array([{}], dtype=object)]}, path)
    with pytest.raises(TypeError, match="'payload' is an array of dtype object"):
        io.save_arrays(path, {"payload": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(TypeError, match=r"\['model'\] is a Sequential \(save its state_dict"):
        tg.save({"model": _model()}, path)
    with pytest.raises(TypeError, match="has a key of type tuple"):
        tg.save({(1, 2): 3}, path)
    assert not path.exists() and not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- damaged files


def _saved(tmp_path, name="checkpoint.npz"):
    return tg.save({"w": np.arange(6.0), "epoch": 2, "tag": "x"}, tmp_path / name)


@pytest.mark.parametrize("loader", ["object", "arrays", "model"])
def test_truncated_empty_and_npy_files_raise_one_error_naming_the_file(tmp_path, loader):
    path = _saved(tmp_path)
    data = path.read_bytes()
    npy = tmp_path / "single.npy"
    np.save(npy, np.arange(3))
    cases = {
        "truncated": (data[: len(data) // 2], "damaged or truncated zip archive"),
        "empty": (b"", "is empty"),
        "text": (b"hello world\n", "not an .npz archive"),
    }
    read = {
        "object": tg.load,
        "arrays": io.load_arrays,
        "model": lambda p: tg.load(_model(), p),
    }[loader]
    for content, what in cases.values():
        path.write_bytes(content)
        with pytest.raises(io.CorruptedFileError, match=what) as caught:
            read(path)
        assert str(path) in str(caught.value)
    with pytest.raises(io.CorruptedFileError, match=r"single\.npy is a single \.npy array"):
        read(npy)


@pytest.mark.parametrize("kind", ["structure", "state dict"])
def test_every_flipped_byte_is_caught_or_harmless(tmp_path, kind):
    if kind == "structure":
        path = _saved(tmp_path)
    else:
        path = tg.save({"w": np.arange(6.0), "b": np.ones(2)}, tmp_path / "state.npz")
    data = path.read_bytes()
    expected = tg.load(path)
    caught = 0
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            loaded = tg.load(path)
        except io.CorruptedFileError as error:
            assert str(path) in str(error)
            caught += 1
            continue
        # a flip in a field nothing reads (a timestamp, say) must not change the content
        assert loaded.keys() == expected.keys()
        for key, value in expected.items():
            np.testing.assert_array_equal(loaded[key], value)
    assert caught > len(data) // 2


# --------------------------------------------------------------------------- the atomic writer


def test_files_get_the_umask_s_mode_and_keep_the_mode_of_the_file_they_replace(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = tg.save(_model(), tmp_path / "model.npz")
        assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
        os.chmod(path, 0o640)
        tg.save(_model(), path)
        assert path.stat().st_mode & 0o777 == 0o640
        os.umask(0o077)
        json_path = io.write_json(tmp_path / "metrics.json", {"a": 1})
        assert json_path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old_umask)


def test_figures_go_through_the_same_writer(tmp_path):
    from tapegrad.course.plots import plot_confusion_matrix, save_figure

    old_umask = os.umask(0o022)
    try:
        path = save_figure(plot_confusion_matrix(np.eye(2, dtype=int)), tmp_path / "cm.png")
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_temporaries_of_a_killed_writer_are_removed_at_the_next_save(tmp_path):
    target = tmp_path / "checkpoint.npz"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".checkpoint.npz.{dead_pid}.0a1b2c3d.tmp"
    live = tmp_path / f".checkpoint.npz.{os.getppid()}.0a1b2c3d.tmp"  # a writer still running
    other = tmp_path / f".other.npz.{dead_pid}.0a1b2c3d.tmp"  # another target's
    for path in (stale, live, other):
        path.write_bytes(b"half a checkpoint")
    tg.save(_model(), target)
    assert not stale.exists()
    assert live.exists() and other.exists() and target.exists()


def test_damaged_data_sets_raise_the_same_error_type():
    from tapegrad.data import DataCorruptedError

    assert issubclass(DataCorruptedError, io.CorruptedFileError)
    assert tg.CorruptedFileError is io.CorruptedFileError
