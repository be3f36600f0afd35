"""Checkpoint folders: `meta.json` (plain JSON: format version, family, configs, tokenizer, step, metrics) plus
one safetensors file per tensor group (`model`, `optimizer`, ...). No pickle anywhere. Every file is written to a
temporary name and renamed into place, so a crash mid-save never leaves a half-written checkpoint."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.numpy import load_file as _np_load, save_file as _np_save
from safetensors.torch import load_file as _torch_load, save_file as _torch_save

from .errors import CheckpointError

FORMAT_VERSION = 1
META = "meta.json"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode("utf-8"))


def prepare_dir(out_dir: str | os.PathLike) -> Path:
    """Create the checkpoint folder, refusing a path that is an existing file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"output path {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot create output folder {out}: {e.strerror}") from None
    return out


def save_checkpoint(out_dir: str | os.PathLike, meta: Mapping[str, Any],
                    groups: Mapping[str, Mapping[str, torch.Tensor | np.ndarray]]) -> Path:
    """Write tensor groups first and meta.json last, so meta.json existing means the checkpoint is complete."""
    out = prepare_dir(out_dir)
    for name, tensors in groups.items():
        tmp = out / f".{name}.safetensors.tmp"
        if any(isinstance(t, torch.Tensor) for t in tensors.values()):
            _torch_save({k: torch.as_tensor(v).detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
        else:
            _np_save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
        os.replace(tmp, out / f"{name}.safetensors")
    full_meta = dict(meta)
    full_meta["format_version"] = FORMAT_VERSION
    full_meta["groups"] = sorted(groups)
    atomic_write_json(out / META, full_meta)
    return out


def load_meta(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    d = Path(ckpt_dir)
    if d.exists() and not d.is_dir():
        raise CheckpointError(f"{d} is a file; a checkpoint is a folder (with meta.json inside)")
    if not d.is_dir():
        raise CheckpointError(f"checkpoint folder {d} does not exist")
    try:
        meta = json.loads((d / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{d} is not a checkpoint (no {META})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{d / META} is damaged: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{d} has checkpoint format {meta.get('format_version')!r}; "
                              f"this version reads format {FORMAT_VERSION}")
    return meta


def load_group(ckpt_dir: str | os.PathLike, name: str, *, as_torch: bool = True) -> dict[str, Any]:
    path = Path(ckpt_dir) / f"{name}.safetensors"
    if not path.exists():
        raise CheckpointError(f"checkpoint {ckpt_dir} has no '{name}' tensors")
    try:
        return _torch_load(str(path)) if as_torch else _np_load(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{path} is damaged: {e}") from None
