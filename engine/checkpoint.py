"""Checkpoint folders: `meta.json` (plain JSON: format version, family, configs, tokenizer, step, metrics, and a
manifest of the other files) plus one safetensors file per tensor group (`model`, `optimizer`, ...). No pickle.

Saving is atomic for the folder as a whole: everything is written into a new hidden sibling folder
(`.NAME.saving-*`), fsynced, and then swapped with the old folder in one rename (renameat2's RENAME_EXCHANGE on
Linux; elsewhere two renames, with the old folder put back by the next save or load if a crash falls between
them). A reader sees the old checkpoint or the new one, never a mix. Leftovers of interrupted saves are removed
by the next save into the same place.

Loading trusts nothing: meta.json is read as a bounded regular file and checked against a schema
(`engine.checkpoint_schema`), and every tensor file must match the manifest (size and SHA-256) and have a sane
safetensors header (allowed dtypes, expected names and shapes) before its data is read. Every failure, on save or
on load, is one `CheckpointError`."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import logging
import os
import shutil
import struct
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from safetensors import SafetensorError

from .errors import CheckpointError, PlaygroundError
from .safe_read import parse_json, read_regular

log = logging.getLogger(__name__)

FORMAT_VERSION = 2       # 2 added the manifest ("files"); format 1 folders (no manifest) still load
READABLE_FORMATS = (1, 2)
META = "meta.json"
MAX_META_BYTES = 64 * 1024 * 1024          # a BPE vocabulary of 50k tokens and 2,000 history rows are ~4 MB
MAX_HEADER_BYTES = 16 * 1024 * 1024        # a safetensors header lists names, dtypes and shapes only
MAX_GROUP_BYTES = 64 * 1024 ** 3           # beyond any model this program can train
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
             "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8}
_SAVING, _OLD, _CLEARED = "saving", "old", "cleared"
# what a checkpoint folder may contain besides its tensor files (earlier versions' per-file temporaries too)
_LEGACY_TEMP_SUFFIX = ".tmp"
# a headless run's own files kept in its checkpoint folder (engine.metrics_log, engine.snapshots); a save carries
# them over
RUN_FILES = ("metrics.jsonl", "snapshots")


# -- saving ---------------------------------------------------------------------------------------------------
def prepare_dir(out_dir: str | os.PathLike) -> Path:
    """Check that a checkpoint can be saved at `out_dir` before anything is trained: the parent folder exists (it
    is created) and is writable, and `out_dir` is new, empty or a checkpoint (whose files a save replaces). The
    folder is created empty. Returns the absolute path. Raises CheckpointError naming what is wrong."""
    out = save_path(out_dir)
    _check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.{_SAVING}-probe-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
        out.mkdir(exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot save a checkpoint at {out}: {_reason(e)}") from None
    return out


def save_checkpoint(out_dir: str | os.PathLike, meta: Mapping[str, Any],
                    groups: Mapping[str, Mapping[str, torch.Tensor | np.ndarray]]) -> Path:
    """Write a checkpoint atomically (see the module docstring) and return its absolute path.

    meta: JSON-serialisable; `format_version`, `groups` and the manifest `files` are added. groups: group name ->
    tensors (torch or numpy). Raises CheckpointError for every failure (full disk, read-only or missing
    permission, a target that is a file or a folder of other things); the previous checkpoint at that place, if
    any, is then left as it was."""
    out = save_path(out_dir)
    _check_target(out)
    tmp = out.parent / f".{out.name}.{_SAVING}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _recover(out)
        _clean_leftovers(out)
        tmp.mkdir()
        _carry_run_files(out, tmp)
        files = {}
        for name, tensors in groups.items():
            data = _serialise(tensors)
            fname = f"{name}.safetensors"
            _write_synced(tmp / fname, data)
            files[fname] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        full_meta = dict(meta)
        full_meta.update(format_version=FORMAT_VERSION, groups=sorted(groups), files=files)
        _write_synced(tmp / META, json.dumps(full_meta, indent=2, sort_keys=True).encode("utf-8"))
        _fsync_dir(tmp)
        _swap_in(tmp, out)
    except PlaygroundError:
        _remove_quietly(tmp)
        raise
    except (OSError, SafetensorError, ValueError, TypeError, RuntimeError) as e:
        # OSError: disk full, read-only, permission; safetensors' SafetensorError is neither OSError nor ours
        _remove_quietly(tmp)
        raise CheckpointError(f"could not save the checkpoint to {out}: {_reason(e)}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    return out


def save_path(out_dir: str | os.PathLike) -> Path:
    """The folder a save to `out_dir` writes: absolute, '~' expanded, and every link in it (the folder itself
    being a link too) and any '..' after one resolved as the OS resolves them when the folder is opened, not
    lexically (so 'link/../x' is x beside the link's target, the folder a later read by that name finds; the swap
    replaces the target, never the link). Raises CheckpointError for an empty path or a root."""
    text = os.fspath(out_dir)
    if not str(text).strip():
        raise CheckpointError("no checkpoint folder given")
    out = Path(os.path.realpath(os.path.expanduser(text)))
    if out.parent == out:
        raise CheckpointError(f"cannot save a checkpoint as {out}")
    return out


def _check_target(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise CheckpointError(f"output path {out} is a file, not a folder")
    try:
        entries = list(out.iterdir())
    except OSError as e:
        raise CheckpointError(f"cannot save a checkpoint at {out}: {_reason(e)}") from None
    foreign = [p.name for p in entries if not (p.name == META or p.name.endswith(".safetensors")
                                               or p.name in RUN_FILES
                                               or (p.name.startswith(".") and p.name.endswith(_LEGACY_TEMP_SUFFIX)))]
    if foreign:   # a checkpoint's own files (also those of an interrupted earlier-version save) may be replaced
        shown = ", ".join(sorted(foreign)[:3])
        raise CheckpointError(f"{out} holds other things ({shown}); save the checkpoint into a new or empty "
                              f"folder, or over an earlier checkpoint")


def _carry_run_files(out: Path, new: Path) -> None:
    """Give the new folder the run files of the old one (RUN_FILES) before the swap: hard links, so a writer
    appending to `out`/metrics.jsonl by name keeps writing the same file, and a reader never sees it (or a kept
    snapshot, whose folder is linked file by file) missing; copies where the file system has no hard links."""
    for name in RUN_FILES:
        old = out / name
        if old.is_symlink():
            continue
        if old.is_file():
            _link_or_copy(old, new / name)
        elif old.is_dir():
            (new / name).mkdir()
            for f in old.iterdir():
                if f.is_file() and not f.is_symlink():
                    _link_or_copy(f, new / name / f.name)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _serialise(tensors: Mapping[str, Any]) -> bytes:
    from safetensors.numpy import save as np_save
    from safetensors.torch import save as torch_save
    if any(isinstance(t, torch.Tensor) for t in tensors.values()):
        return torch_save({k: torch.as_tensor(v).detach().contiguous().cpu() for k, v in tensors.items()})
    return np_save({k: np.ascontiguousarray(v) for k, v in tensors.items()})


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return   # some platforms cannot open folders; the rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap_in(new: Path, out: Path) -> None:
    """Put the finished folder `new` at `out` in one step. The old folder, if any, ends under a hidden name and
    is removed."""
    if not out.exists():
        os.rename(new, out)
    elif _exchange(new, out):
        _remove_quietly(new)   # now holds the old checkpoint
    else:
        old = out.parent / f".{out.name}.{_OLD}-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)    # a crash right here leaves no `out`; _recover puts `old` back
        os.rename(new, out)
        _remove_quietly(old)
    _fsync_dir(out.parent)


_RENAME_EXCHANGE = 2
_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE). False where the system or file system lacks
    it; other errors raise OSError."""
    global _libc
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = getattr(_libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _siblings(out: Path, kind: str) -> list[Path]:
    prefix = f".{out.name}.{kind}-"
    try:
        return sorted(p for p in out.parent.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []


def holds_checkpoint(path: str | os.PathLike) -> bool:
    """Whether the folder a save to `path` would write (`save_path`) holds a checkpoint (its meta.json), or held
    one that a save left between its two renames (see `recover`). Reads nothing but the names; a missing folder
    holds none. Raises CheckpointError for an empty path."""
    d = save_path(path)
    return (d / META).is_file() or any((old / META).is_file() for old in _siblings(d, _OLD))


def check_save_target(out_dir: str | os.PathLike) -> Path:
    """`save_path(out_dir)` after checking that a save may go there: the folder is missing, empty or a checkpoint's
    (its own files and its run's); CheckpointError naming what else is in it."""
    out = save_path(out_dir)
    _check_target(out)
    return out


def clear(out_dir: str | os.PathLike) -> None:
    """Remove the checkpoint at `out_dir` (see `save_path`) and its run's files (RUN_FILES), in one step a reader
    sees whole: the folder is renamed aside (`.NAME.cleared-*`), an empty one takes its name, and the old one is
    deleted; what a failed delete leaves is removed by the next save there. An old metrics.jsonl is followed by an
    empty one, so a window following the folder sees a run start over rather than a missing file. Only a folder
    holding a checkpoint's own files is touched (else CheckpointError, as for a save). Raises CheckpointError when
    the folder cannot be renamed or recreated."""
    out = check_save_target(out_dir)
    _recover(out)
    _clean_leftovers(out)
    if not out.exists():
        return
    aside = out.parent / f".{out.name}.{_CLEARED}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    had_log = (out / RUN_FILES[0]).exists()
    try:
        os.rename(out, aside)
        out.mkdir()
        if had_log:
            (out / RUN_FILES[0]).touch()
    except OSError as e:
        raise CheckpointError(f"cannot clear {out}: {_reason(e)}") from None
    _remove_quietly(aside)


def recover(ckpt_dir: str | os.PathLike) -> None:
    """Put back the checkpoint a crash between the fallback swap's two renames left under `.NAME.old-*`, so that
    whoever looks for `ckpt_dir` next finds it; nothing when the folder is there. A link by that name stands for
    its target (`save_path`), as it does for a save."""
    try:
        _recover(save_path(ckpt_dir))   # the folder a save by that name writes (a link: its target)
    except CheckpointError:             # an empty name: the caller says so
        pass


def _recover(out: Path) -> None:
    """A crash between the two renames of the fallback swap leaves no checkpoint at `out` and the previous one
    under `.NAME.old-*`: put it back."""
    if out.exists():
        return
    for old in _siblings(out, _OLD):
        if (old / META).is_file():
            try:
                os.rename(old, out)
                log.warning("restored the checkpoint %s from an interrupted save", out)
            except OSError:
                pass
            return


def _clean_leftovers(out: Path) -> None:
    """Remove what interrupted saves and clears left: `.NAME.saving-*`, `.NAME.old-*` and `.NAME.cleared-*`
    folders next to `out`, and the per-file temporaries earlier versions wrote inside it."""
    for p in _siblings(out, _SAVING) + _siblings(out, _OLD) + _siblings(out, _CLEARED):
        _remove_quietly(p)
    if out.is_dir():
        for p in out.iterdir():
            if p.name.startswith(".") and p.name.endswith(_LEGACY_TEMP_SUFFIX):
                _remove_quietly(p)


def remove_path(p: Path) -> None:
    """Remove a folder with what is in it (links inside are removed, not followed), or a file or link, if `p`
    is there. Raises OSError."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _remove_quietly(p: Path) -> None:
    try:
        remove_path(p)
    except OSError as e:
        log.warning("could not remove %s: %s", p, e)


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError):
        if e.errno == errno.ENOSPC:
            return "the disk is full"
        if e.errno == errno.EROFS:
            return "the file system is read-only"
        if e.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        if e.errno == errno.EDQUOT:
            return "the disk quota is exceeded"
        return e.strerror or str(e)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


# -- loading --------------------------------------------------------------------------------------------------
def load_meta(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    """meta.json of a checkpoint folder, read with a byte cap and checked against the schema (types, ranges,
    the tokenizer, the history, the manifest). Raises CheckpointError."""
    d = Path(ckpt_dir)
    if not str(ckpt_dir).strip():
        raise CheckpointError("no checkpoint folder given")
    recover(d)
    if d.exists() and not d.is_dir():
        raise CheckpointError(f"{d} is a file; a checkpoint is a folder (with meta.json inside)")
    if not d.is_dir():
        raise CheckpointError(f"checkpoint folder {d} does not exist")
    if not (d / META).exists() and not (d / META).is_symlink():
        raise CheckpointError(f"{d} is not a checkpoint (no {META})")
    meta = _raw_meta(d)
    from .checkpoint_schema import check_meta
    check_meta(meta, d)
    return meta


def _raw_meta(d: Path) -> dict[str, Any]:
    """meta.json as a dict of a readable format, read with a byte cap, without the schema check."""
    data = read_regular(d / META, MAX_META_BYTES, "checkpoint file", CheckpointError)
    meta = parse_json(data, f"{d / META}", CheckpointError)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{d / META} is damaged: it holds a {type(meta).__name__}, not an object")
    version = meta.get("format_version")
    if type(version) is not int or version not in READABLE_FORMATS:
        raise CheckpointError(f"{d} has checkpoint format {version!r}; this version reads formats "
                              f"{', '.join(map(str, READABLE_FORMATS))}")
    files = meta.get("files")
    if files is not None and not (isinstance(files, dict) and all(
            isinstance(e, dict) and type(e.get("bytes")) is int and type(e.get("sha256")) is str
            for e in files.values())):
        raise CheckpointError(f"{d / META}: files must map file names to their bytes and sha256")
    return meta


def group_header(ckpt_dir: str | os.PathLike, name: str, meta: Mapping[str, Any]) -> dict[str, tuple[str, tuple]]:
    """{tensor name: (dtype, shape)} from a group file's safetensors header, read without its data; the file is
    checked against the manifest's size first. Raises CheckpointError."""
    path = _group_path(ckpt_dir, name, meta)
    return read_header(path, _expected_size(path, name, meta), "is damaged")   # a regular file: _group_path


def read_header(path: Path, size: int, bad: str) -> dict:
    """The checked header of the safetensors file `path` of `size` bytes (see _parse_header); `bad` words what
    a file that is not one is ("is damaged", "is not a safetensors file"). Raises CheckpointError."""
    try:
        with open(path, "rb", buffering=0) as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path} {bad}: shorter than a safetensors header")
            n = struct.unpack("<Q", head)[0]
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise CheckpointError(f"{path} {bad}: its header claims {n:,} bytes")
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {_reason(e)}") from None
    return _parse_header(raw, size - 8 - n, path)


def load_group(ckpt_dir: str | os.PathLike, name: str, *, as_torch: bool = True,
               meta: Mapping[str, Any] | None = None, dtypes: Iterable[str] = FLOAT_DTYPES,
               expect: Mapping[str, tuple] | None = None) -> dict[str, Any]:
    """The tensors of group `name`, after checking the file against the manifest (size, SHA-256) and its header:
    every dtype in `dtypes` (safetensors names: F32, I64, U8, ...), and with `expect` (name -> shape) exactly those
    names with those shapes. meta: the checkpoint's, as load_meta returns it; None reads only its format and
    manifest (for callers that check the rest themselves). Raises CheckpointError."""
    meta = _raw_meta(Path(ckpt_dir)) if meta is None else meta
    header = group_header(ckpt_dir, name, meta)
    path = _group_path(ckpt_dir, name, meta)
    allowed = set(dtypes)
    for key, (dtype, shape) in header.items():
        if dtype not in allowed:
            raise CheckpointError(f"{path}: tensor {key} has dtype {dtype}; this group holds only "
                                  f"{', '.join(sorted(allowed))}")
    if expect is not None:
        missing, extra = sorted(set(expect) - set(header)), sorted(set(header) - set(expect))
        if missing or extra:
            raise CheckpointError(f"{path} does not fit the model in meta.json (missing {missing[:3]}, "
                                  f"unexpected {extra[:3]})")
        for key, shape in expect.items():
            if tuple(header[key][1]) != tuple(shape):
                raise CheckpointError(f"{path}: tensor {key} has shape {tuple(header[key][1])}, the model in "
                                      f"meta.json needs {tuple(shape)}")
    size = _expected_size(path, name, meta)
    data = read_regular(path, size, "checkpoint file", CheckpointError)
    entry = (meta.get("files") or {}).get(path.name)
    if entry is not None and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CheckpointError(f"{path} does not match the checksum in meta.json: the file is damaged or from "
                              f"another save")
    try:
        if as_torch:
            from safetensors.torch import load
        else:
            from safetensors.numpy import load
        return load(data)
    except Exception as e:  # safetensors raises its own error types for damaged data
        raise CheckpointError(f"{path} is damaged: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None


def _group_path(ckpt_dir, name: str, meta: Mapping[str, Any]) -> Path:
    path = Path(ckpt_dir) / f"{name}.safetensors"
    if name not in (meta.get("groups") or []) or not (path.exists() or path.is_symlink()):
        raise CheckpointError(f"checkpoint {ckpt_dir} has no '{name}' tensors")
    return path


def _expected_size(path: Path, name: str, meta: Mapping[str, Any]) -> int:
    """The file's size, which must equal the manifest's (format 2) and be a regular file."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {_reason(e)}") from None
    import stat as _stat
    if not _stat.S_ISREG(st.st_mode):
        read_regular(path, 0, "checkpoint file", CheckpointError)   # raises, naming what it is
    entry = (meta.get("files") or {}).get(path.name)
    if entry is None:
        if meta.get("format_version", 1) >= 2:
            raise CheckpointError(f"{path.name} is not in the manifest of {path.parent / META}")
        if st.st_size > MAX_GROUP_BYTES:
            raise CheckpointError(f"{path} is {st.st_size:,} bytes, more than a checkpoint file can be")
        return st.st_size
    if st.st_size != entry["bytes"]:
        raise CheckpointError(f"{path} is {st.st_size:,} bytes but meta.json says {entry['bytes']:,}: the file "
                              f"is damaged or from another save")
    return st.st_size


def _parse_header(raw: bytes, data_bytes: int, path: Path) -> dict[str, tuple[str, tuple]]:
    header = parse_json(raw, f"the header of {path}", CheckpointError, max_depth=4)
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is damaged: its header is not an object")
    out, spans = {}, []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("shape"), list) and isinstance(entry.get("data_offsets"), list)
                and all(type(s) is int and s >= 0 for s in entry["shape"])
                and len(entry["data_offsets"]) == 2 and all(type(o) is int for o in entry["data_offsets"])):
            raise CheckpointError(f"{path} is damaged: bad header entry for {key!r}")
        dtype = entry["dtype"]
        if dtype not in _ITEMSIZE:
            raise CheckpointError(f"{path}: tensor {key} has unknown dtype {dtype}")
        numel = 1
        for s in entry["shape"]:
            numel *= s
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end <= data_bytes or end - begin != numel * _ITEMSIZE[dtype]:
            raise CheckpointError(f"{path} is damaged: tensor {key}'s data does not fit the file")
        spans.append((begin, end))
        out[key] = (dtype, tuple(entry["shape"]))
    return out
