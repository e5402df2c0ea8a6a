"""Saving and loading: npz archives and JSON, written atomically, never pickled.

Two things are saved:

- a flat dict of named arrays (a state dict, `save_arrays`): a plain .npz file, which
  `np.load(path)` reads as well;
- anything else people save with torch (`save(obj, path)`): a nested dict / list / tuple of
  arrays, Tensors, numbers, strings, bytes, None and bools, for example model, optimiser,
  scheduler and epoch together. It is an .npz whose arrays are named "0", "1", ... plus a
  member `manifest.json` that records the structure, the Python type of every leaf and which
  array each array leaf is. Nothing is pickled, so loading a file can never run code; arrays of
  Python objects are refused when saving, never written.

Every reader raises `CorruptedFileError` (a ValueError) naming the file and what is wrong with it
for a truncated, empty or damaged file, or one that is not an .npz archive at all.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from tapegrad.engine.tensor import Tensor

if TYPE_CHECKING:
    from tapegrad.nn import Module

__all__ = [
    "CorruptedFileError",
    "load",
    "load_arrays",
    "save",
    "save_arrays",
    "write_atomically",
    "write_json",
]

PathLike = str | os.PathLike

MANIFEST = "manifest.json"
FORMAT = "tapegrad.save"
FORMAT_VERSION = 1


class CorruptedFileError(ValueError):
    """A file is truncated, damaged, empty or not in the format it should be in."""


# --------------------------------------------------------------------------- the atomic writer


def _temporary_pattern(path: Path) -> re.Pattern[str]:
    """Names of `write_atomically`'s temporaries for `path`: .NAME.PID.RANDOM.tmp"""
    return re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.tmp")


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of `path` left by writers that were killed (their process is gone).

    A temporary of a live process may be a concurrent save in progress, so it is left alone.
    """
    pattern = _temporary_pattern(path)
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _process_is_alive(int(match.group(1))):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _create_temporary(path: Path) -> tuple[Path, int]:
    """A new hidden file beside `path`, with the permissions a plain open() would give it.

    That is the mode of the file it replaces if there is one, otherwise 0666 less the umask
    (as np.savez and torch.save give), never mkstemp's 0600.
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    while True:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            os.chmod(handle, mode)
        return temporary, handle


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every system can open a folder)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def write_atomically(path: PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write` on a temporary file beside `path`, then rename it into place.

    The one writer of the project: a crash or an exception leaves the old file (or none), never
    a half-written one; the file gets the permissions a plain open() would give (the umask, or
    the mode of the file it replaces); temporaries left by an earlier writer of `path` that was
    killed are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    temporary, handle = _create_temporary(path)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def write_json(path: PathLike, value: Any) -> Path:
    """Write `value` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, allow_nan=True) + "\n"
    return write_atomically(path, lambda file: file.write(text.encode()))


# --------------------------------------------------------------------------- npz archives


def _check_savable(array: np.ndarray, where: str) -> None:
    if array.dtype.hasobject:
        raise TypeError(
            f"save: {where} is an array of dtype {array.dtype} (Python objects), which cannot "
            "be saved without pickling; convert it to a numeric, bool or string array."
        )


def _write_npz(file: IO[bytes], arrays: dict[str, np.ndarray], manifest: str | None) -> None:
    """The manifest if any, then the arrays as NAME.npy members (as np.savez writes them)."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED) as archive:
        if manifest is not None:
            archive.writestr(MANIFEST, manifest)
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


# What a damaged zip archive or .npy member can raise while it is read.
_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    struct.error,
    NotImplementedError,
    UnicodeDecodeError,
    json.JSONDecodeError,
    KeyError,
    OverflowError,
    RuntimeError,  # zipfile: "is encrypted, password required" (a damaged flag)
    OSError,  # a damaged compression method read as bz2 data; the file itself opened fine
)


def _describe_non_archive(path: Path) -> str:
    with open(path, "rb") as file:
        head = file.read(6)
    if not head:
        return "is empty"
    if head == b"\x93NUMPY":
        return "is a single .npy array, not an .npz archive (read it with np.load)"
    if head[:2] == b"PK":
        return "is a damaged or truncated zip archive"
    return "is not an .npz archive (or its first bytes are damaged)"


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn whatever a damaged file makes zipfile or NumPy raise into CorruptedFileError."""
    try:
        yield
    except CorruptedFileError:
        raise
    except zipfile.BadZipFile as error:
        try:
            what = _describe_non_archive(path)
        except OSError:
            what = "cannot be read"
        raise CorruptedFileError(f"{path} {what} ({error}).") from None
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise CorruptedFileError(
                f"{path} holds a pickled (object) array, which tapegrad never loads: a file "
                "that needs unpickling could run code."
            ) from None
        raise CorruptedFileError(f"{path} is damaged: {error}.") from None
    except _DAMAGE as error:
        raise CorruptedFileError(
            f"{path} is truncated or damaged ({type(error).__name__}: {error})."
        ) from None


_END_OF_CENTRAL_DIRECTORY = struct.Struct("<4s4H2LH")  # signature ... entries ... comment size


def _check_entry_count(file: IO[bytes], found: int) -> None:
    """The central directory lists as many members as its end record says (zipfile does not
    check it: a damaged directory size would silently drop members)."""
    size = file.seek(0, os.SEEK_END)
    tail_size = min(size, _END_OF_CENTRAL_DIRECTORY.size + 0xFFFF)
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    start = tail.rfind(b"PK\x05\x06")
    if start < 0 or start + _END_OF_CENTRAL_DIRECTORY.size > len(tail):
        raise zipfile.BadZipFile("no end of central directory record")
    entries = _END_OF_CENTRAL_DIRECTORY.unpack_from(tail, start)[4]
    if entries != 0xFFFF and entries != found:  # 0xFFFF: counted in the zip64 record instead
        raise zipfile.BadZipFile(f"the archive lists {found} members, its end record {entries}")


def _read_npz(path: PathLike) -> tuple[dict[str, np.ndarray], Any]:
    """The arrays of an .npz file by name, and its parsed manifest (None for a plain npz)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    manifest = None
    with open(path, "rb") as file, _reading(path), zipfile.ZipFile(file) as archive:
        _check_entry_count(file, len(archive.infolist()))
        for info in archive.infolist():
            if info.filename == MANIFEST:
                manifest = json.loads(archive.read(info).decode())
            elif info.filename.endswith(".npy"):
                with archive.open(info) as member:
                    arrays[info.filename[: -len(".npy")]] = np.lib.format.read_array(
                        member, allow_pickle=False
                    )
                    if member.read(1):  # the member must end where the array ends
                        raise CorruptedFileError(f"{path}: {info.filename} has trailing bytes.")
            else:
                raise CorruptedFileError(
                    f"{path} holds an unexpected member {info.filename!r}: not an .npz archive "
                    "written by tapegrad or np.savez."
                )
    return arrays, manifest


def save_arrays(path: PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write named arrays as a plain .npz file, atomically; object arrays are refused."""
    arrays = {name: np.asanyarray(array) for name, array in arrays.items()}
    for name, array in arrays.items():
        _check_savable(array, f"array {name!r}")
    return write_atomically(path, lambda file: _write_npz(file, arrays, None))


def load_arrays(path: PathLike) -> dict[str, np.ndarray]:
    """Read the named arrays of an .npz file (as `save_arrays` or np.savez write them).

    A damaged file, or one that holds pickled (object) arrays, raises CorruptedFileError.
    """
    arrays, manifest = _read_npz(path)
    if manifest is not None:
        raise CorruptedFileError(
            f"{path} was written by tg.save(obj, path) with a structure, not as named arrays: "
            "read it with tg.load(path)."
        )
    return arrays


# --------------------------------------------------------------------------- nested structures


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """The manifest node of `value`; its arrays go into `arrays` under "0", "1", ..."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool | int | float | str):
        return _scalar(value)
    if isinstance(value, Tensor):
        key = _add_array(value.data, arrays, where)
        return {"type": "tensor", "array": key, "requires_grad": bool(value.requires_grad)}
    if isinstance(value, np.ndarray):
        return {"type": "ndarray", "array": _add_array(value, arrays, where)}
    if isinstance(value, np.generic):
        return {"type": "numpy_scalar", "array": _add_array(np.asarray(value), arrays, where)}
    if isinstance(value, bytes):
        buffer = np.frombuffer(value, dtype=np.uint8)
        return {"type": "bytes", "array": _add_array(buffer, arrays, where)}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not (key is None or type(key) in (bool, int, float, str)):
                raise TypeError(
                    f"save: {where} has a key of type {type(key).__name__} ({key!r}); keys must "
                    "be strings, numbers, bools or None."
                )
            items.append([key, _encode(item, arrays, f"{where}[{key!r}]")])
        return {"type": "dict", "items": items}
    if isinstance(value, list | tuple):
        kind = "list" if isinstance(value, list) else "tuple"
        items = [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
        return {"type": kind, "items": items}
    hint = " (save its state_dict() instead)" if hasattr(value, "state_dict") else ""
    raise TypeError(
        f"save: {where} is a {type(value).__name__}{hint}; tg.save stores nested dicts, lists "
        "and tuples of arrays, Tensors, numbers, strings, bytes, bools and None, never pickles."
    )


def _scalar(value: Any) -> Any:
    """A subclass of int, float or str (an IntEnum, say) saved as its plain value."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _add_array(array: np.ndarray, arrays: dict[str, np.ndarray], where: str) -> str:
    _check_savable(array, where)
    key = str(len(arrays))
    arrays[key] = array
    return key


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if not isinstance(node, dict):
        return node  # None, bool, int, float or str
    kind = node["type"]
    if kind == "dict":
        return {key: _decode(item, arrays) for key, item in node["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(item, arrays) for item in node["items"]]
        return items if kind == "list" else tuple(items)
    array = arrays[node["array"]]
    if kind == "ndarray":
        return array
    if kind == "tensor":
        return Tensor(array, requires_grad=node["requires_grad"], dtype=array.dtype)
    if kind == "numpy_scalar":
        return array[()]
    if kind == "bytes":
        return array.tobytes()
    raise KeyError(f"unknown node type {kind!r}")


def _is_state_dict(obj: Any) -> bool:
    """A flat dict of named arrays: saved as a plain npz that np.load reads as it is."""
    return (
        isinstance(obj, dict)
        and all(type(key) is str for key in obj)
        and all(type(value) is np.ndarray for value in obj.values())
    )


def save(obj: Any, path: PathLike) -> Path:
    """Save `obj` to `path` (an .npz file), atomically, never pickled.

    `obj` is a Module (its state dict is saved), a state dict, or any nesting of dicts, lists
    and tuples of arrays, Tensors, numbers, strings, bytes, bools and None, such as
    {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}.
    Read it back with `tg.load(path)`, or into a model with `tg.load(model, path)`.
    """
    from tapegrad.nn import Module

    if isinstance(obj, Module):
        obj = obj.state_dict()
    if _is_state_dict(obj):
        return save_arrays(path, obj)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, arrays, "the object")
    manifest = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "tree": tree})
    return write_atomically(path, lambda file: _write_npz(file, arrays, manifest))


def _load_object(path: PathLike) -> Any:
    arrays, manifest = _read_npz(path)
    if manifest is None:
        return arrays
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptedFileError(f"{path}: {MANIFEST} is not a tapegrad manifest.")
    if manifest.get("version") != FORMAT_VERSION:
        raise CorruptedFileError(
            f"{path} was written in format version {manifest.get('version')}; this tapegrad "
            f"reads version {FORMAT_VERSION}."
        )
    with _reading(Path(path)):
        try:
            return _decode(manifest["tree"], arrays)
        except (TypeError, ValueError, IndexError) as error:
            raise CorruptedFileError(f"{path}: its manifest is damaged ({error}).") from None


def load(model_or_path: Module | PathLike, path: PathLike | None = None, strict: bool = True):
    """`tg.load(path)` returns what `tg.save(obj, path)` saved; `tg.load(model, path)` loads
    the parameters in `path` into `model` and returns it (a mismatch names the file and keys).

    A damaged file raises CorruptedFileError naming the file and what is wrong.
    """
    if path is None:
        return _load_object(model_or_path)  # type: ignore[arg-type]
    model = model_or_path
    state = _load_object(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of arrays.")
    state = {key: v.data if isinstance(v, Tensor) else v for key, v in state.items()}
    try:
        model.load_state_dict(state, strict=strict)  # type: ignore[union-attr]
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return model
