"""MNIST and CIFAR-10: find the files, download them if missing, verify them, parse them.

Both loaders return uint8 images in NCHW layout and int64 labels. They never unpickle anything:
MNIST is read from its IDX files and CIFAR-10 from its "binary version", so a data file can
never run code. A truncated or corrupted file raises `DataCorruptedError` (a ValueError) that
names the file, never returns silent garbage: the structure is always checked, and by default
(`verify=True`) each file's SHA-256 too, which costs about 0.1 s per data set.

Where the loaders look, in order: the `root` argument, then `$TAPEGRAD_DATA` (a relative path
is taken from the working directory and made absolute), then the user cache folder
(`pooch.os_cache("tapegrad")`, e.g. ~/.cache/tapegrad). In each of these the data set's
subfolder (`mnist/`, `cifar10/`) and the folder itself are searched. If the files are in
none of them they are downloaded into the cache folder, verified against the published SHA-256
and moved into place atomically; offline, one `DataNotFoundError` says what is missing, where it
was looked for and where to put it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from tapegrad.io import CorruptedFileError

__all__ = [
    "CIFAR10_CLASSES",
    "DataCorruptedError",
    "DataNotFoundError",
    "load_cifar10",
    "load_mnist",
]

#: CIFAR-10's class names, in label order (as in batches.meta.txt).
CIFAR10_CLASSES: tuple[str, ...] = (
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

ENV_VAR = "TAPEGRAD_DATA"

# SHA-256 of the *uncompressed* IDX files (the .gz compression differs between mirrors).
_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Mirrors of the official .gz files, tried in order (yann.lecun.com no longer serves them).
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_MNIST_IMAGE_SIZE = (28, 28)
_IDX_UBYTE = 0x08

_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_CIFAR10_TARBALL = "cifar-10-binary.tar.gz"
_CIFAR10_TARBALL_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
_CIFAR10_FOLDER = "cifar-10-batches-bin"
_CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR10_TEST = "test_batch.bin"
_CIFAR10_META = "batches.meta.txt"
_CIFAR10_SHA256 = {
    "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    "test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # one label byte, then the red, green and blue 32x32 planes

_NUM_CLASSES = 10
_CHUNK = 1 << 22

_FIX_CORRUPTED = (
    "Delete it and load again to download a fresh copy, or replace it with the official file."
)
_FIX_DOWNLOAD = (
    "The download is not the official file (a broken transfer or a bad mirror), so nothing "
    "was saved; try again, or fetch the file by hand."
)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class DataNotFoundError(FileNotFoundError):
    """A data set is in none of the searched folders and could not be downloaded."""


class DataCorruptedError(CorruptedFileError):
    """A data file is truncated, malformed or does not match its published SHA-256."""


# --------------------------------------------------------------------------- public API


def load_mnist(
    root: str | os.PathLike[str] | None = None, *, download: bool = True, verify: bool = True
) -> Arrays:
    """Load MNIST as (x_train, y_train, x_test, y_test).

    Images are uint8 of shape (60000, 1, 28, 28) and (10000, 1, 28, 28); labels are int64 in
    0..9. The four official IDX files are read raw or gzip-compressed. `verify` checks each
    file's SHA-256 against the published one (about 0.05 s); the structure (magic number,
    dimensions, exact length, label range) is always checked. `download=False` never goes
    to the network.
    """
    folders = _candidate_folders(root, "mnist")
    for folder in folders:
        found = _find_mnist_files(folder.path)
        if all(found.values()):
            with _hint(_FIX_CORRUPTED):
                return _load_mnist_files(found, verify=verify)
    cache = _cache_dir() / "mnist"
    if not download:
        raise _mnist_not_found(folders, cache, "download=False was given")
    present = _find_mnist_files(cache)
    missing = [name for name, path in present.items() if path is None]
    try:
        _download_mnist(cache, missing)
    except _DownloadFailed as failure:
        raise _mnist_not_found(folders, cache, str(failure)) from failure.__cause__
    with _hint(_FIX_CORRUPTED):
        return _load_mnist_files(_find_mnist_files(cache), verify=False)


def load_cifar10(
    root: str | os.PathLike[str] | None = None, *, download: bool = True, verify: bool = True
) -> Arrays:
    """Load CIFAR-10 (binary version) as (x_train, y_train, x_test, y_test).

    Images are uint8 NCHW of shape (50000, 3, 32, 32) and (10000, 3, 32, 32); labels are int64
    in 0..9 (names in `CIFAR10_CLASSES`). Reads the folder `cifar-10-batches-bin/` or the
    tarball `cifar-10-binary.tar.gz` (members are read in memory, never extracted). `verify`
    checks each .bin file's SHA-256 (about 0.15 s); the record structure and the label range
    are always checked. `download=False` never goes to the network.
    """
    folders = _candidate_folders(root, "cifar10")
    for folder in folders:
        source = _find_cifar10_source(folder.path)
        if source is not None:
            with _hint(_FIX_CORRUPTED):
                return _assemble_cifar10(_read_cifar10(source, verify=verify))
    cache = _cache_dir() / "cifar10"
    if not download:
        raise _cifar10_not_found(folders, cache, "download=False was given")
    try:
        contents = _download_cifar10(cache)
    except _DownloadFailed as failure:
        raise _cifar10_not_found(folders, cache, str(failure)) from failure.__cause__
    return _assemble_cifar10(contents)


# --------------------------------------------------------------------------- where to look


def _cache_dir() -> Path:
    """The user cache folder that downloads go to (tests replace this function)."""
    import pooch  # imported here: it costs 0.1 s and is only needed to find or fetch data

    return Path(pooch.os_cache("tapegrad"))


class _Folder(NamedTuple):
    """A folder to search and why it is searched (for the not-found message)."""

    path: Path
    origin: str


def _candidate_folders(root: str | os.PathLike[str] | None, subfolder: str) -> list[_Folder]:
    """Folders to search, in order: root, $TAPEGRAD_DATA, cache; each subfolder first."""
    bases: list[tuple[Path, str]] = []
    if root is not None:
        bases.append(_absolute(root, "root argument"))
    env = os.environ.get(ENV_VAR)
    if env:
        bases.append(_absolute(env, f"${ENV_VAR}"))
    bases.append((_cache_dir(), "user cache"))
    folders: list[_Folder] = []
    seen: set[Path] = set()
    for base, origin in bases:
        for path in (base / subfolder, base):
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                folders.append(_Folder(path, origin))
    return folders


def _absolute(folder: str | os.PathLike[str], origin: str) -> tuple[Path, str]:
    """`folder` as an absolute path; a relative one is read from the working directory, and
    the origin says so (a notebook kernel or a script may run in another folder)."""
    path = Path(folder).expanduser()
    if path.is_absolute():
        return path, origin
    return Path.cwd() / path, f"{origin}={os.fspath(folder)!r}, relative to the working directory"


def _find_mnist_files(folder: Path) -> dict[str, Path | None]:
    """Each MNIST file in `folder`, raw preferred to .gz, or None where it is missing."""
    found: dict[str, Path | None] = {}
    for name in _MNIST_SHA256:
        raw, packed = folder / name, folder / f"{name}.gz"
        found[name] = raw if raw.is_file() else packed if packed.is_file() else None
    return found


def _find_cifar10_source(folder: Path) -> Path | None:
    """A complete `cifar-10-batches-bin` folder (or `folder` itself) or the tarball, if any."""
    for batches in (folder / _CIFAR10_FOLDER, folder):
        if all((batches / name).is_file() for name in _CIFAR10_SHA256):
            return batches
    tarball = folder / _CIFAR10_TARBALL
    return tarball if tarball.is_file() else None


def _describe(folder: _Folder, missing: list[str]) -> str:
    if not folder.path.is_dir():
        state = "does not exist"
    elif missing:
        state = "lacks " + ", ".join(missing)
    else:
        state = "complete"
    return f"  {folder.path}  ({folder.origin}: {state})"


def _searched(folders: list[_Folder], missing_in: Callable[[Path], list[str]]) -> str:
    lines = [_describe(folder, missing_in(folder.path)) for folder in folders]
    if not os.environ.get(ENV_VAR):
        lines.append(f"  (${ENV_VAR} is not set)")
    lines.append(f"  (working directory: {Path.cwd()})")
    return "\n".join(lines)


def _mnist_not_found(folders: list[_Folder], cache: Path, why: str) -> DataNotFoundError:
    names = list(_MNIST_SHA256)

    def missing_in(path: Path) -> list[str]:
        return [name for name, file in _find_mnist_files(path).items() if file is None]

    return DataNotFoundError(
        "MNIST was not found and was not downloaded.\n"
        f"Looked for {', '.join(names)} (each raw or .gz) in:\n"
        f"{_searched(folders, missing_in)}\n"
        f"Download: {why}.\n"
        f"To fix it, put the four files (raw or .gz) in one of these folders, e.g. {cache}; "
        f"or set ${ENV_VAR} to a folder that holds `mnist/`; or pass root=... ."
    )


def _cifar10_not_found(folders: list[_Folder], cache: Path, why: str) -> DataNotFoundError:
    def missing_in(path: Path) -> list[str]:
        if _find_cifar10_source(path) is not None:
            return []
        batches = path / _CIFAR10_FOLDER
        if batches.is_dir():
            lacking = [name for name in _CIFAR10_SHA256 if not (batches / name).is_file()]
            return [f"{_CIFAR10_FOLDER}/{name}" for name in lacking] + [_CIFAR10_TARBALL]
        return [f"{_CIFAR10_FOLDER}/", _CIFAR10_TARBALL]

    return DataNotFoundError(
        "CIFAR-10 (binary version) was not found and was not downloaded.\n"
        f"Looked for the folder {_CIFAR10_FOLDER}/ holding {', '.join(_CIFAR10_SHA256)}, "
        f"or the tarball {_CIFAR10_TARBALL}, in:\n"
        f"{_searched(folders, missing_in)}\n"
        f"Download: {why}.\n"
        f"To fix it, put {_CIFAR10_FOLDER}/ or {_CIFAR10_TARBALL} (from {_CIFAR10_URL}) in "
        f"one of these folders, e.g. {cache}; or set ${ENV_VAR} to a folder that holds "
        "`cifar10/`; or pass root=... ."
    )


# --------------------------------------------------------------------------- reading bytes


@contextlib.contextmanager
def _hint(advice: str) -> Iterator[None]:
    """Append what to do about it to a DataCorruptedError raised inside."""
    try:
        yield
    except DataCorruptedError as exc:
        exc.args = (f"{exc.args[0]} {advice}", *exc.args[1:])
        raise


def _read_file(path: Path, what: str) -> bytearray:
    """The file's (uncompressed, for .gz) bytes, in a writable buffer."""
    try:
        if path.suffix == ".gz":
            data = bytearray()
            with gzip.open(path, "rb") as file:
                while chunk := file.read(_CHUNK):
                    data += chunk
            return data
        with open(path, "rb") as file:
            data = bytearray(os.fstat(file.fileno()).st_size)
            count = file.readinto(data)
        return data[:count] if count != len(data) else data
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataCorruptedError(
            f"{what} is not a complete gzip file ({exc}): it is truncated or corrupted."
        ) from exc


def _check_sha256(data: bytes | bytearray, expected: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataCorruptedError(
            f"{what} has SHA-256 {actual}, but the published file has {expected}: "
            f"it is corrupted or not the official file."
        )


def _check_labels(labels: np.ndarray, what: str) -> None:
    if labels.size and int(labels.max()) >= _NUM_CLASSES:
        index = int(np.argmax(labels >= _NUM_CLASSES))
        raise DataCorruptedError(
            f"{what} holds label {int(labels[index])} at record {index}, but labels must be "
            f"in 0..{_NUM_CLASSES - 1}."
        )


# --------------------------------------------------------------------------- MNIST (IDX)


def _parse_idx(data: bytearray, ndim: int, what: str) -> np.ndarray:
    """The uint8 array of an IDX file with `ndim` dimensions, its length checked exactly."""
    header = 4 + 4 * ndim
    magic = int.from_bytes(data[:4], "big")
    expected_magic = (_IDX_UBYTE << 8) | ndim
    if len(data) >= 4 and magic != expected_magic:
        raise DataCorruptedError(
            f"{what} has magic number 0x{magic:08x}, expected 0x{expected_magic:08x} (an IDX "
            f"file of unsigned bytes with {ndim} dimensions)."
        )
    if len(data) < header:
        raise DataCorruptedError(
            f"{what} is truncated: an IDX header of {ndim} dimensions takes {header} bytes, "
            f"but the file holds {len(data)}."
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "longer than its header says"
        raise DataCorruptedError(
            f"{what} is {kind}: its header gives shape {shape}, so it should be {expected} "
            f"bytes, but it is {len(data)} bytes."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_mnist_file(path: Path, name: str, verify: bool, what: str = "") -> np.ndarray:
    what = what or f"MNIST file {path}"
    data = _read_file(path, what)
    array = _parse_idx(data, ndim=3 if "images" in name else 1, what=what)
    if verify:
        _check_sha256(data, _MNIST_SHA256[name], what)
    if array.ndim == 3 and array.shape[1:] != _MNIST_IMAGE_SIZE:
        raise DataCorruptedError(
            f"{what} holds images of {array.shape[1]}x{array.shape[2]} pixels, expected "
            f"{_MNIST_IMAGE_SIZE[0]}x{_MNIST_IMAGE_SIZE[1]}."
        )
    if array.ndim == 1:
        _check_labels(array, what)
    return array


def _load_mnist_files(files: dict[str, Path | None], verify: bool) -> Arrays:
    arrays = {}
    for name, path in files.items():
        assert path is not None
        arrays[name] = _read_mnist_file(path, name, verify)
    result = []
    for split in ("train", "t10k"):
        images = arrays[f"{split}-images-idx3-ubyte"]
        labels = arrays[f"{split}-labels-idx1-ubyte"]
        if len(images) != len(labels):
            raise DataCorruptedError(
                f"MNIST {split} files disagree: {files[f'{split}-images-idx3-ubyte']} holds "
                f"{len(images)} images but {files[f'{split}-labels-idx1-ubyte']} holds "
                f"{len(labels)} labels."
            )
        result += [images[:, None, :, :], labels.astype(np.int64)]
    return result[0], result[1], result[2], result[3]


# --------------------------------------------------------------------------- CIFAR-10 (binary)


def _read_cifar10(source: Path, verify: bool, what: str = "") -> dict[str, bytearray]:
    """The bytes of the six .bin files, from a folder or (in memory) from the tarball."""
    if source.is_dir():
        whats = {name: f"CIFAR-10 file {source / name}" for name in _CIFAR10_SHA256}
        contents = {name: _read_file(source / name, whats[name]) for name in whats}
    else:
        what = what or f"CIFAR-10 tarball {source}"
        contents = _read_cifar10_tarball(source, what)
        whats = {name: f"member {name} of {what}" for name in contents}
    for name, data in contents.items():
        if name == _CIFAR10_META:
            continue
        if len(data) == 0 or len(data) % _CIFAR10_RECORD:
            raise DataCorruptedError(
                f"{whats[name]} is {len(data)} bytes, which is not a whole number of "
                f"{_CIFAR10_RECORD}-byte records (the official file is "
                f"{10000 * _CIFAR10_RECORD}): it is truncated or corrupted."
            )
        if verify:
            _check_sha256(data, _CIFAR10_SHA256[name], whats[name])
    return contents


def _read_cifar10_tarball(path: Path, what: str) -> dict[str, bytearray]:
    """Read the .bin members of the official tarball in one sequential pass, extracting nothing."""
    wanted = {*_CIFAR10_SHA256, _CIFAR10_META}
    contents: dict[str, bytearray] = {}
    try:
        with tarfile.open(path, mode="r|gz") as archive:
            for member in archive:
                name = PurePosixPath(member.name).name
                if not member.isfile() or name not in wanted or name in contents:
                    continue
                file = archive.extractfile(member)
                assert file is not None
                data = bytearray(member.size)
                count = file.readinto(data)
                if count != member.size:
                    raise EOFError(f"member {member.name} ended after {count} bytes")
                contents[name] = data
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataCorruptedError(
            f"{what} cannot be read ({exc}): it is truncated or corrupted."
        ) from exc
    missing = [name for name in _CIFAR10_SHA256 if name not in contents]
    if missing:
        raise DataCorruptedError(
            f"{what} lacks {', '.join(missing)}: expected the official {_CIFAR10_TARBALL} "
            f"(binary version) from {_CIFAR10_URL}."
        )
    return contents


def _records(data: bytearray, what: str) -> tuple[np.ndarray, np.ndarray]:
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    _check_labels(labels, what)
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _assemble_cifar10(contents: dict[str, bytearray]) -> Arrays:
    """Concatenate the five training batches; the test batch as it is."""
    train = [_records(contents[name], f"CIFAR-10 {name}") for name in _CIFAR10_TRAIN]
    x_train = np.empty((sum(len(x) for x, _ in train), 3, 32, 32), dtype=np.uint8)
    start = 0
    for images, _ in train:
        x_train[start : start + len(images)] = images
        start += len(images)
    y_train = np.concatenate([labels for _, labels in train])
    x_test, y_test = _records(contents[_CIFAR10_TEST], f"CIFAR-10 {_CIFAR10_TEST}")
    return x_train, y_train, np.ascontiguousarray(x_test), y_test


# --------------------------------------------------------------------------- downloading


class _DownloadFailed(Exception):
    """Every address of a file failed (network, HTTP or pooch's hash check)."""


def _download(url: str, destination: Path, known_hash: str | None) -> None:
    """Fetch `url` to `destination` with pooch (progress bar, hash check); tests replace this."""
    import pooch

    pooch.retrieve(
        url,
        known_hash=known_hash,
        fname=destination.name,
        path=destination.parent,
        progressbar=True,
    )


def _fetch(urls: list[str], destination: Path, known_hash: str | None) -> str:
    """Download the first of `urls` that works to `destination`; return that address."""
    errors = []
    for url in urls:
        try:
            _download(url, destination, known_hash)
        except Exception as exc:  # network, HTTP, hash: try the next mirror, report them all
            errors.append((url, exc))
        else:
            if destination.is_file():
                return url
            errors.append((url, FileNotFoundError(f"the downloader wrote no {destination}")))
    failure = _DownloadFailed(
        "; ".join(f"fetching {url} failed ({type(exc).__name__}: {exc})" for url, exc in errors)
    )
    failure.__cause__ = errors[-1][1]
    raise failure


def _download_mnist(folder: Path, names: list[str]) -> None:
    """Download the missing .gz files into `folder`, verifying each before moving it in place."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        for name in names:
            staged = staging / f"{name}.gz"
            url = _fetch([mirror + staged.name for mirror in _MNIST_MIRRORS], staged, None)
            with _hint(_FIX_DOWNLOAD):
                _read_mnist_file(staged, name, verify=True, what=f"the file downloaded from {url}")
            os.replace(staged, folder / staged.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download_cifar10(folder: Path) -> dict[str, bytearray]:
    """Download the tarball, verify it, and write its .bin files into `folder`, atomically.

    The .bin files are written under our own fixed names from the verified member bytes (no
    tar extraction, so a hostile archive cannot write elsewhere); loading them later is fast.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        tarball = staging / _CIFAR10_TARBALL
        url = _fetch([_CIFAR10_URL], tarball, _CIFAR10_TARBALL_SHA256)
        with _hint(_FIX_DOWNLOAD):
            contents = _read_cifar10(
                tarball, verify=True, what=f"the tarball downloaded from {url}"
            )
        tarball.unlink()
        target = folder / _CIFAR10_FOLDER
        target.mkdir(exist_ok=True)
        for name, data in contents.items():
            staged = staging / name
            staged.write_bytes(data)
            os.replace(staged, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return contents
