"""tapegrad.data: parsing synthetic IDX / CIFAR files, errors, search order, download, real data."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tapegrad.data import (
    CIFAR10_CLASSES,
    DataCorruptedError,
    DataNotFoundError,
    load_cifar10,
    load_mnist,
)
from tapegrad.data import files as data

MNIST_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_NAMES = (*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")
POOCH_DOWNLOAD = data._download  # before the autouse fixture below replaces it


# --------------------------------------------------------------------------- synthetic files


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_contents(seed: int = 0, train: int = 6, test: int = 4) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (train, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, train)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (test, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, test)),
    }


def write_mnist(folder: Path, contents: dict[str, bytes], gz: bool = False) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, content in contents.items():
        path = folder / (f"{name}.gz" if gz else name)
        path.write_bytes(gzip.compress(content) if gz else content)
        paths[name] = path
    return paths


def cifar_contents(seed: int = 0, records: int = 3) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    contents = {}
    for name in CIFAR_NAMES:
        labels = rng.integers(0, 10, (records, 1))
        pixels = rng.integers(0, 256, (records, 3072))
        contents[name] = np.concatenate([labels, pixels], axis=1).astype(np.uint8).tobytes()
    return contents


def write_cifar_folder(folder: Path, contents: dict[str, bytes]) -> Path:
    batches = folder / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    for name, content in contents.items():
        (batches / name).write_bytes(content)
    return batches


def cifar_tarball(contents: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in {**contents, "batches.meta.txt": b"airplane\n"}.items():
            member = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def expected_cifar(contents: dict[str, bytes]) -> tuple[np.ndarray, ...]:
    def split(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        records = np.frombuffer(b"".join(contents[n] for n in names), np.uint8).reshape(-1, 3073)
        return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)

    return (*split(CIFAR_NAMES[:5]), *split(CIFAR_NAMES[5:]))


def use_hashes(monkeypatch: pytest.MonkeyPatch, contents: dict[str, bytes]) -> None:
    """Make the synthetic files the 'published' ones, so that verify=True accepts them."""
    for name, content in contents.items():
        table = data._MNIST_SHA256 if name in data._MNIST_SHA256 else data._CIFAR10_SHA256
        monkeypatch.setitem(table, name, hashlib.sha256(content).hexdigest())


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network, no $TAPEGRAD_DATA, and a private cache folder, for every test here."""

    def no_network(url: str, destination: Path, known_hash: str | None) -> None:
        raise AssertionError(f"a test tried to download {url}")

    cache = tmp_path / "cache"
    monkeypatch.setattr(data, "_download", no_network)
    monkeypatch.setattr(data, "_cache_dir", lambda: cache)
    monkeypatch.delenv("TAPEGRAD_DATA", raising=False)
    return cache


# --------------------------------------------------------------------------- MNIST parsing


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("subfolder", ["mnist", ""])
def test_mnist_reads_raw_and_gz_in_subfolder_or_folder(tmp_path, monkeypatch, gz, subfolder):
    contents = mnist_contents()
    write_mnist(tmp_path / "data" / subfolder, contents, gz=gz)
    use_hashes(monkeypatch, contents)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path / "data")
    assert x_train.shape == (6, 1, 28, 28) and x_test.shape == (4, 1, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert x_train.tobytes() == contents["train-images-idx3-ubyte"][16:]
    assert y_test.tolist() == list(contents["t10k-labels-idx1-ubyte"][8:])
    assert x_train.flags.writeable and x_train.flags.c_contiguous


def test_mnist_prefers_raw_to_gz_and_accepts_a_mix(tmp_path):
    contents = mnist_contents(seed=1)
    write_mnist(tmp_path, dict(list(contents.items())[:2]), gz=True)
    write_mnist(tmp_path, dict(list(contents.items())[2:]), gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not even gzip")  # raw one wins
    *_, y_test = load_mnist(tmp_path, verify=False)
    assert y_test.tolist() == list(contents["t10k-labels-idx1-ubyte"][8:])


def test_search_order_is_root_then_environment_then_cache(tmp_path, monkeypatch, offline):
    sets = {where: mnist_contents(seed=i) for i, where in enumerate(["root", "env", "cache"])}
    write_mnist(tmp_path / "root" / "mnist", sets["root"])
    write_mnist(tmp_path / "env", sets["env"])
    write_mnist(offline / "mnist", sets["cache"])
    monkeypatch.setenv("TAPEGRAD_DATA", str(tmp_path / "env"))

    def first_label(root: Path | None) -> int:
        return int(load_mnist(root, verify=False)[1][0])

    assert first_label(tmp_path / "root") == sets["root"]["train-labels-idx1-ubyte"][8]
    assert first_label(tmp_path / "nowhere") == sets["env"]["train-labels-idx1-ubyte"][8]
    assert first_label(None) == sets["env"]["train-labels-idx1-ubyte"][8]
    monkeypatch.delenv("TAPEGRAD_DATA")
    assert first_label(None) == sets["cache"]["train-labels-idx1-ubyte"][8]


def test_mnist_hash_mismatch_is_reported_when_verifying(tmp_path):
    write_mnist(tmp_path, mnist_contents())  # synthetic files cannot match the published hashes
    load_mnist(tmp_path, verify=False)
    with pytest.raises(DataCorruptedError) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    assert "SHA-256" in message and "train-images-idx3-ubyte" in message
    assert data._MNIST_SHA256["train-images-idx3-ubyte"] in message
    assert "Delete it" in message
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_mnist_file_names_the_file_and_sizes(tmp_path, gz):
    contents = mnist_contents()
    contents["train-images-idx3-ubyte"] = contents["train-images-idx3-ubyte"][:-100]
    write_mnist(tmp_path, contents, gz=gz)
    with pytest.raises(DataCorruptedError, match="truncated") as error:
        load_mnist(tmp_path, verify=False)
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message
    assert (
        f"should be {16 + 6 * 784} bytes" in message and f"is {16 + 6 * 784 - 100} bytes" in message
    )


def test_cut_gzip_stream_is_reported(tmp_path):
    paths = write_mnist(tmp_path, mnist_contents(), gz=True)
    packed = paths["train-images-idx3-ubyte"].read_bytes()
    paths["train-images-idx3-ubyte"].write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataCorruptedError, match="not a complete gzip file") as error:
        load_mnist(tmp_path, verify=False)
    assert str(paths["train-images-idx3-ubyte"]) in str(error.value)


def test_header_shorter_than_idx_header_is_reported(tmp_path):
    contents = mnist_contents()
    contents["t10k-labels-idx1-ubyte"] = b"\x00\x00\x08"
    write_mnist(tmp_path, contents)
    with pytest.raises(DataCorruptedError, match=r"truncated: an IDX header .* takes 8 bytes"):
        load_mnist(tmp_path, verify=False)


def test_wrong_magic_number_is_reported(tmp_path):
    contents = mnist_contents()
    # label bytes where images are expected: a valid IDX file, but of 1 dimension
    contents["t10k-images-idx3-ubyte"] = contents["t10k-labels-idx1-ubyte"]
    write_mnist(tmp_path, contents)
    with pytest.raises(DataCorruptedError) as error:
        load_mnist(tmp_path, verify=False)
    message = str(error.value)
    assert "t10k-images-idx3-ubyte" in message
    assert "magic number 0x00000801, expected 0x00000803" in message


def test_trailing_bytes_are_reported(tmp_path):
    contents = mnist_contents()
    contents["train-labels-idx1-ubyte"] += b"\x00"
    write_mnist(tmp_path, contents)
    with pytest.raises(DataCorruptedError, match="longer than its header says"):
        load_mnist(tmp_path, verify=False)


def test_label_out_of_range_is_reported(tmp_path):
    contents = mnist_contents()
    contents["train-labels-idx1-ubyte"] = idx_bytes(np.array([1, 2, 3, 10, 4, 5]))
    write_mnist(tmp_path, contents)
    with pytest.raises(DataCorruptedError, match=r"label 10 at record 3.*0\.\.9"):
        load_mnist(tmp_path, verify=False)


def test_image_and_label_counts_must_agree(tmp_path):
    contents = mnist_contents()
    contents["train-labels-idx1-ubyte"] = idx_bytes(np.arange(5))
    write_mnist(tmp_path, contents)
    with pytest.raises(DataCorruptedError, match="6 images but .* 5 labels"):
        load_mnist(tmp_path, verify=False)


def test_images_must_be_28_by_28(tmp_path):
    contents = mnist_contents()
    contents["t10k-images-idx3-ubyte"] = idx_bytes(np.zeros((4, 27, 28)))
    write_mnist(tmp_path, contents)
    with pytest.raises(DataCorruptedError, match="27x28 pixels, expected 28x28"):
        load_mnist(tmp_path, verify=False)


# --------------------------------------------------------------------------- CIFAR-10 parsing


@pytest.mark.parametrize("layout", ["cifar10-subfolder", "folder", "batches-folder-itself"])
def test_cifar_reads_the_binary_folder(tmp_path, monkeypatch, layout):
    contents = cifar_contents()
    base = tmp_path / "data"
    batches = write_cifar_folder(
        base / "cifar10" if layout == "cifar10-subfolder" else base, contents
    )
    use_hashes(monkeypatch, contents)
    loaded = load_cifar10(batches if layout == "batches-folder-itself" else base)
    for got, want in zip(loaded, expected_cifar(contents), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert loaded[0].shape == (15, 3, 32, 32) and loaded[0].flags.c_contiguous
    assert loaded[2].flags.c_contiguous and loaded[0].flags.writeable


def test_cifar_reads_the_tarball_without_extracting(tmp_path, monkeypatch):
    contents = cifar_contents(seed=2)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").write_bytes(cifar_tarball(contents))
    use_hashes(monkeypatch, contents)
    before = sorted(tmp_path.rglob("*"))
    loaded = load_cifar10(tmp_path)
    for got, want in zip(loaded, expected_cifar(contents), strict=True):
        np.testing.assert_array_equal(got, want)
    assert sorted(tmp_path.rglob("*")) == before


def test_cifar_class_names():
    assert CIFAR10_CLASSES == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )


def test_cifar_truncated_batch_is_reported(tmp_path):
    contents = cifar_contents()
    contents["data_batch_3.bin"] = contents["data_batch_3.bin"][:-5]
    write_cifar_folder(tmp_path, contents)
    with pytest.raises(DataCorruptedError) as error:
        load_cifar10(tmp_path, verify=False)
    message = str(error.value)
    assert "data_batch_3.bin" in message and f"is {3 * 3073 - 5} bytes" in message
    assert "3073-byte records" in message and "30730000" in message


def test_cifar_label_out_of_range_is_reported(tmp_path):
    contents = cifar_contents()
    broken = bytearray(contents["test_batch.bin"])
    broken[3073] = 200
    contents["test_batch.bin"] = bytes(broken)
    write_cifar_folder(tmp_path, contents)
    with pytest.raises(DataCorruptedError, match=r"test_batch.bin holds label 200 at record 1"):
        load_cifar10(tmp_path, verify=False)


def test_cifar_hash_mismatch_is_reported(tmp_path, monkeypatch):
    contents = cifar_contents()
    write_cifar_folder(tmp_path, contents)
    use_hashes(monkeypatch, {**contents, "data_batch_2.bin": b"something else"})
    with pytest.raises(DataCorruptedError, match=r"data_batch_2.bin has SHA-256 [0-9a-f]{64}"):
        load_cifar10(tmp_path)


def test_cifar_truncated_tarball_is_reported(tmp_path):
    tarball = cifar_tarball(cifar_contents())
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(tarball[: len(tarball) // 2])
    with pytest.raises(DataCorruptedError, match="truncated or corrupted") as error:
        load_cifar10(tmp_path, verify=False)
    assert "cifar-10-binary.tar.gz" in str(error.value)


def test_cifar_tarball_missing_a_member_is_reported(tmp_path):
    contents = cifar_contents()
    del contents["data_batch_4.bin"]
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(cifar_tarball(contents))
    with pytest.raises(DataCorruptedError, match=r"lacks data_batch_4.bin"):
        load_cifar10(tmp_path, verify=False)


def test_incomplete_cifar_folder_is_not_used(tmp_path):
    contents = cifar_contents()
    del contents["test_batch.bin"]
    write_cifar_folder(tmp_path, contents)
    with pytest.raises(DataNotFoundError) as error:
        load_cifar10(tmp_path, download=False)
    assert "cifar-10-batches-bin/test_batch.bin" in str(error.value)


# --------------------------------------------------------------------------- not found


def test_missing_mnist_names_the_files_the_folders_and_the_fix(tmp_path, offline):
    write_mnist(tmp_path / "mnist", dict(list(mnist_contents().items())[:3]))
    with pytest.raises(DataNotFoundError) as error:
        load_mnist(tmp_path, download=False)
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    for name in MNIST_NAMES:
        assert name in message
    assert str(tmp_path / "mnist") in message and "lacks t10k-labels-idx1-ubyte" in message
    assert str(offline / "mnist") in message and "does not exist" in message
    assert "TAPEGRAD_DATA" in message and "root=" in message and "download=False" in message


def test_missing_cifar_names_the_files_and_the_environment_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEGRAD_DATA", str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as error:
        load_cifar10(download=False)
    message = str(error.value)
    for name in (*CIFAR_NAMES, "cifar-10-binary.tar.gz", "cifar-10-batches-bin/"):
        assert name in message
    assert str(tmp_path / "env" / "cifar10") in message and "$TAPEGRAD_DATA" in message


# --------------------------------------------------------------------------- downloading


class FakeServer:
    """Stands in for `data._download`: serves bytes by file name, records every request."""

    def __init__(self, files: dict[str, bytes], failing: tuple[str, ...] = ()) -> None:
        self.files = files
        self.failing = failing
        self.requests: list[tuple[str, Path, str | None]] = []

    def __call__(self, url: str, destination: Path, known_hash: str | None) -> None:
        self.requests.append((url, destination, known_hash))
        if url.startswith(self.failing):
            raise ConnectionError(f"cannot reach {url}")
        # the download goes to a staging folder; nothing is at the final place yet
        assert destination.parent.name.startswith(".download-")
        destination.write_bytes(self.files[url.rsplit("/", 1)[1]])


def test_download_places_verified_mnist_files_atomically(monkeypatch, offline):
    contents = mnist_contents(seed=3)
    use_hashes(monkeypatch, contents)
    server = FakeServer({f"{n}.gz": gzip.compress(c) for n, c in contents.items()})
    monkeypatch.setattr(data, "_download", server)
    x_train, *_ = load_mnist()
    assert x_train.tobytes() == contents["train-images-idx3-ubyte"][16:]
    assert [url for url, _, _ in server.requests] == [
        f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}.gz" for name in MNIST_NAMES
    ]
    assert sorted(p.name for p in (offline / "mnist").iterdir()) == sorted(
        f"{name}.gz" for name in MNIST_NAMES
    )
    load_mnist()  # now found in the cache: no second download
    assert len(server.requests) == 4


def test_download_falls_back_to_the_next_mirror_and_fetches_only_missing_files(
    monkeypatch, offline
):
    contents = mnist_contents(seed=4)
    use_hashes(monkeypatch, contents)
    write_mnist(offline / "mnist", dict(list(contents.items())[:3]), gz=True)
    server = FakeServer(
        {f"{n}.gz": gzip.compress(c) for n, c in contents.items()},
        failing=("https://ossci-datasets",),
    )
    monkeypatch.setattr(data, "_download", server)
    *_, y_test = load_mnist()
    assert y_test.tolist() == list(contents["t10k-labels-idx1-ubyte"][8:])
    assert [url.rsplit("/", 1)[1] for url, _, _ in server.requests] == [
        "t10k-labels-idx1-ubyte.gz"
    ] * 2


def test_offline_download_gives_one_error_naming_files_and_addresses(monkeypatch, offline):
    server = FakeServer({}, failing=("https://",))
    monkeypatch.setattr(data, "_download", server)
    with pytest.raises(DataNotFoundError) as error:
        load_mnist()
    message = str(error.value)
    assert "ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in message
    assert "ConnectionError" in message and str(offline / "mnist") in message
    assert isinstance(error.value.__cause__, ConnectionError)
    assert list((offline / "mnist").iterdir()) == []  # no staging folder, no partial file


def test_corrupted_download_is_rejected_and_not_kept(monkeypatch, offline):
    contents = mnist_contents(seed=5)
    use_hashes(monkeypatch, contents)
    served = {f"{n}.gz": gzip.compress(c) for n, c in contents.items()}
    served["t10k-images-idx3-ubyte.gz"] = gzip.compress(mnist_contents(seed=6)[MNIST_NAMES[2]])
    monkeypatch.setattr(data, "_download", FakeServer(served))
    with pytest.raises(DataCorruptedError) as error:
        load_mnist()
    message = str(error.value)
    assert "downloaded from https://" in message and "nothing was saved" in message
    assert sorted(p.name for p in (offline / "mnist").iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]


def test_download_cifar_checks_the_tarball_hash_and_writes_the_binary_folder(monkeypatch, offline):
    contents = cifar_contents(seed=7)
    use_hashes(monkeypatch, contents)
    server = FakeServer({"cifar-10-binary.tar.gz": cifar_tarball(contents)})
    monkeypatch.setattr(data, "_download", server)
    loaded = load_cifar10()
    for got, want in zip(loaded, expected_cifar(contents), strict=True):
        np.testing.assert_array_equal(got, want)
    ((url, _, known_hash),) = server.requests
    assert url == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert known_hash == "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    assert [p.name for p in (offline / "cifar10").iterdir()] == ["cifar-10-batches-bin"]
    written = sorted(p.name for p in (offline / "cifar10" / "cifar-10-batches-bin").iterdir())
    assert written == sorted([*CIFAR_NAMES, "batches.meta.txt"])
    again = load_cifar10()
    assert len(server.requests) == 1
    np.testing.assert_array_equal(again[0], loaded[0])


def test_corrupted_cifar_download_leaves_nothing(monkeypatch, offline):
    contents = cifar_contents(seed=8)
    use_hashes(monkeypatch, {**contents, "test_batch.bin": b"other"})
    monkeypatch.setattr(
        data, "_download", FakeServer({"cifar-10-binary.tar.gz": cifar_tarball(contents)})
    )
    with pytest.raises(DataCorruptedError, match="test_batch.bin of the tarball downloaded from"):
        load_cifar10()
    assert list((offline / "cifar10").iterdir()) == []


def test_the_downloader_asks_pooch_for_a_verified_download_with_a_progress_bar(
    monkeypatch, tmp_path
):
    import pooch

    calls = []
    monkeypatch.setattr(pooch, "retrieve", lambda *args, **kwargs: calls.append((args, kwargs)))
    POOCH_DOWNLOAD("https://example.org/file.tar.gz", tmp_path / "stage" / "x.tar.gz", "abc")
    assert calls == [
        (
            ("https://example.org/file.tar.gz",),
            {
                "known_hash": "abc",
                "fname": "x.tar.gz",
                "path": tmp_path / "stage",
                "progressbar": True,
            },
        )
    ]


# --------------------------------------------------------------------------- the real data sets

MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
CIFAR_SHA256 = {
    "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    "test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}


@pytest.fixture(scope="module")
def mnist(data_root):
    return load_mnist(data_root, download=False, verify=True)


@pytest.fixture(scope="module")
def cifar10(data_root):
    return load_cifar10(data_root, download=False, verify=True)


def test_real_mnist_shapes_counts_and_first_labels(mnist):
    x_train, y_train, x_test, y_test = mnist
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x_train.max() == 255 and x_train.min() == 0


def test_real_mnist_files_match_the_published_sha256(data_root):
    for name, expected in MNIST_SHA256.items():
        path = data_root / "mnist" / name
        content = (
            path.read_bytes()
            if path.is_file()
            else gzip.decompress(path.with_name(f"{name}.gz").read_bytes())
        )
        assert hashlib.sha256(content).hexdigest() == expected, name
    assert data._MNIST_SHA256 == MNIST_SHA256


def test_real_cifar10_shapes_counts_and_first_labels(cifar10):
    x_train, y_train, x_test, y_test = cifar10
    assert x_train.shape == (50000, 3, 32, 32) and x_test.shape == (10000, 3, 32, 32)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


def test_real_cifar10_files_match_the_published_sha256(data_root):
    batches = data_root / "cifar10" / "cifar-10-batches-bin"
    for name, expected in CIFAR_SHA256.items():
        assert hashlib.sha256((batches / name).read_bytes()).hexdigest() == expected, name
    assert data._CIFAR10_SHA256 == CIFAR_SHA256


def test_real_cifar10_pixels_are_the_record_bytes_in_channel_order(data_root, cifar10):
    record = (data_root / "cifar10" / "cifar-10-batches-bin" / "test_batch.bin").read_bytes()[:3073]
    _, _, x_test, y_test = cifar10
    assert y_test[0] == record[0]
    assert x_test[0, 0].tobytes() == record[1:1025]  # red plane
    assert x_test[0, 2].tobytes() == record[2049:3073]  # blue plane


# ------------------------------------------------------------------------- relative $TAPEGRAD_DATA


def test_a_relative_tapegrad_data_is_read_from_the_working_directory(tmp_path, monkeypatch):
    contents = mnist_contents(seed=3)
    write_mnist(tmp_path / "shared" / "data" / "mnist", contents)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    monkeypatch.setenv("TAPEGRAD_DATA", "../shared/data")
    *_, y_test = load_mnist(verify=False)
    assert y_test.tolist() == list(contents["t10k-labels-idx1-ubyte"][8:])


def test_a_relative_tapegrad_data_not_found_shows_the_absolute_path_and_working_dir(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAPEGRAD_DATA", "../missing/data")
    with pytest.raises(DataNotFoundError) as caught:
        load_mnist(download=False)
    message = str(caught.value)
    assert str(tmp_path / ".." / "missing" / "data" / "mnist") in message
    assert "relative to the working directory" in message
    assert f"working directory: {tmp_path}" in message
