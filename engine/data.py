"""Token data for training: the train and validation splits as 1-D integer arrays, and the windows drawn from them.

A split is a numpy array, either in memory (a corpus tokenized by this process) or an `np.memmap` of a prepared
`train.bin` / `val.bin` (engine/prepare.py writes them; `load_prepared` opens them). Both go through the same code:
`sample_windows` draws the training batch's start positions with a torch CPU generator and gathers the windows with
numpy indexing, which on a memmap reads only the pages those windows touch, so a corpus of several GB trains with
the memory of one batch. `eval_batches` cuts the validation split into the windows an evaluation scores, a batch at
a time, so a large split is never copied whole either. The same seed draws the same windows from the same tokens, in
memory or mapped (tests/engine/test_prepare_train.py checks it). torch is imported where it is used, so
`main.py prepare` starts without it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import CorpusError

if TYPE_CHECKING:
    import torch

__all__ = ["as_token_array", "sample_windows", "to_device", "eval_batches", "PreparedData", "load_prepared",
           "token_dtype", "fingerprint", "FORMAT", "META", "TOKENIZER", "TRAIN_BIN", "VAL_BIN"]

FORMAT = "lm-playground prepared tokens"   # meta.json's "format": what tells a prepared folder from any folder
META, TOKENIZER, TRAIN_BIN, VAL_BIN = "meta.json", "tokenizer.json", "train.bin", "val.bin"
MAX_META_BYTES = 1 << 20
MAX_TOKENIZER_BYTES = 96 * 1024 * 1024   # a BPE's library JSON may be 64 MB (engine/tokenizers/bpe.py), quoted


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits (vocab_size <= 65,536), else uint32: the on-disk width of a token."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def as_token_array(ids) -> np.ndarray:
    """A 1-D numpy integer array of token ids from a list, a numpy array or np.memmap (kept as is, never copied)
    or a torch tensor (copied to the CPU). ValueError when it is not one-dimensional integers."""
    import torch
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = ids if isinstance(ids, np.ndarray) else np.asarray(ids, dtype=np.int64)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"token ids must be a 1-D integer sequence, not {arr.dtype} of shape {arr.shape}")
    return arr


def sample_windows(data: np.ndarray, generator: torch.Generator, batch_size: int, block_size: int) -> torch.Tensor:
    """`batch_size` windows of `block_size + 1` consecutive tokens from `data`, as a (B, T+1) int64 CPU tensor:
    inputs are [:, :-1], targets [:, 1:]. Start positions are uniform over 0 .. len(data) - T - 1, drawn with
    `torch.randint(len(data) - T, (B, 1), generator=generator)` (nanoGPT's draw; the exported script makes the same),
    so the same generator state gives the same windows whether `data` is in memory or memory-mapped."""
    import torch
    ix = torch.randint(len(data) - block_size, (batch_size, 1), generator=generator).numpy()
    rows = fresh_map(data)[ix + np.arange(block_size + 1)]   # (B, T+1) gathered by numpy: a memmap reads those pages
    return torch.from_numpy(rows.astype(np.int64, copy=False))


def fresh_map(data: np.ndarray) -> np.ndarray:
    """For the memmap of a whole token file, a new memmap of the same file, dropped after one batch; anything else
    as it is. Every page a mapping has touched stays in the process's resident memory until it is unmapped, and
    the kernel maps whole large folios around each window (about 1 MB here), so one long-lived mapping of a 4 GB
    train.bin grew to 2.5 GB resident within 100 steps of random windows. A mapping per batch, as nanoGPT makes,
    keeps it to one batch's pages."""
    if not isinstance(data, np.memmap) or data.filename is None:
        return data
    try:
        whole = os.stat(data.filename).st_size == data.offset + data.nbytes
    except OSError:
        return data
    if not whole:   # a slice of a mapping: its own offset is not recorded, keep it
        return data
    known = _identity.get(str(data.filename))
    if known is not None and known != _file_identity(data.filename):
        from .errors import CorpusError
        raise CorpusError(f"{data.filename} was replaced while training from it (prepared again?): the run stops "
                          f"rather than train on other tokens")
    return np.memmap(data.filename, dtype=data.dtype, mode="r", offset=data.offset, shape=data.shape)


_identity: dict[str, tuple[int, int, int]] = {}   # token file -> (inode, mtime, size) when it was opened


def _file_identity(path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _remember(path) -> None:
    """Note a token file's identity as load_prepared opens it: fresh_map, which maps the file again by name for
    every batch, then refuses a file that `prepare` replaced (a new inode of the same size would be read as if it
    were the same tokens)."""
    _identity[str(path)] = _file_identity(path)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch on `device`. On CUDA through pinned memory without blocking (as nanoGPT does), so the host never
    waits for the GPU's queue to drain; on the CPU the tensor itself."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def eval_batches(data: np.ndarray, block_size: int, batch: int, windows: int = 0
                 ) -> tuple[list[tuple[np.ndarray, int]], int, str]:
    """How an evaluation covers the split `data` of n + 1 tokens: (plan, scored, scope). Each entry of `plan` is
    (start positions, length) of up to `batch` windows scored together, each window predicting `length` tokens from
    the `length` before. windows 0: every predicted token once, in non-overlapping block_size windows (the last
    shorter, on its own), scored = n, scope "whole split". windows k (0 < k < n // block_size): k windows spread
    evenly (torch.linspace over 0 .. n - block_size, the same at every call), scored = k * block_size, scope
    "k windows". Only start positions are held; `gather` reads a batch at a time."""
    import torch
    n = len(data) - 1
    T = block_size
    w = n // T
    if 0 < windows < w:
        starts = torch.linspace(0, n - T, windows).long().numpy()
        plan = [(starts[i:i + batch], T) for i in range(0, windows, batch)]
        return plan, windows * T, f"{windows} windows"
    starts = np.arange(w, dtype=np.int64) * T
    plan = [(starts[i:i + batch], T) for i in range(0, w, batch)]
    if n - w * T:
        plan.append((np.array([w * T], dtype=np.int64), n - w * T))
    return plan, n, "whole split"


def gather(data: np.ndarray, starts: np.ndarray, length: int, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of the windows at `starts`: x = data[s : s + length], y = data[s + 1 : s + length + 1], each
    (len(starts), length) int64 on `device`."""
    import torch
    rows = torch.from_numpy(fresh_map(data)[starts[:, None] + np.arange(length + 1)].astype(np.int64, copy=False))
    rows = to_device(rows, device)
    return rows[:, :-1], rows[:, 1:]


@dataclass
class PreparedData:
    """A folder written by `main.py prepare` (engine/prepare.py), opened: the splits memory-mapped, the tokenizer
    rebuilt, and meta.json's counts."""
    folder: Path
    meta: dict
    tokenizer: object
    train: np.ndarray     # np.memmap of train.bin (read-only)
    val: np.ndarray       # np.memmap of val.bin

    @property
    def train_chars(self) -> int:
        return int(self.meta["train"]["chars"])

    @property
    def val_chars(self) -> int:
        return int(self.meta["val"]["chars"])

    @property
    def name(self) -> str:
        return str(self.meta.get("corpus") or self.folder.name)


def _need_int(d, key: str, where: str) -> int:
    v = d.get(key) if isinstance(d, dict) else None
    if type(v) is not int or v < 0:
        raise CorpusError(f"{where}: {key} must be a whole number of 0 or more, not {v!r}")
    return v


def read_meta(folder: Path) -> dict:
    """A prepared folder's meta.json, checked to be one (its "format" is FORMAT); CorpusError otherwise."""
    from .safe_read import parse_json, read_regular
    if not (folder / META).exists():
        raise CorpusError(f"{folder} has no {META}: it is not a folder written by main.py prepare")
    meta = parse_json(read_regular(folder / META, MAX_META_BYTES, "prepared meta", CorpusError),
                      f"prepared folder {folder}/{META}", CorpusError, max_depth=8)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CorpusError(f"{folder / META} is not a prepared-tokens meta.json (its format is not {FORMAT!r})")
    return meta


def load_prepared(folder) -> PreparedData:
    """Open a prepared folder: meta.json, tokenizer.json, train.bin and val.bin. Everything is checked before it is
    used (the JSON's size and depth, the dtype, each file's size against its token count, the vocabulary size);
    any problem is a CorpusError naming the folder."""
    from .safe_read import parse_json, read_regular
    from .tokenizers import tokenizer_from_dict
    from .errors import PlaygroundError
    folder = Path(folder).expanduser()
    where = f"prepared folder {folder}"
    if not folder.is_dir():
        raise CorpusError(f"{where} does not exist or is not a folder (make one with: main.py prepare)")
    meta = read_meta(folder)
    try:
        dtype = np.dtype(meta.get("dtype"))
    except TypeError:
        dtype = None
    if dtype not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise CorpusError(f"{where}: dtype must be uint16 or uint32, not {meta.get('dtype')!r}")
    raw = read_regular(folder / TOKENIZER, MAX_TOKENIZER_BYTES, "prepared tokenizer", CorpusError)
    try:
        tokenizer = tokenizer_from_dict(parse_json(raw, f"{where}/{TOKENIZER}", CorpusError, max_depth=8))
    except PlaygroundError as e:
        raise CorpusError(f"{where}: its tokenizer cannot be rebuilt: {e}") from None
    if meta.get("vocab_size") != tokenizer.vocab_size or token_dtype(tokenizer.vocab_size) != dtype:
        raise CorpusError(f"{where}: meta.json's vocab_size {meta.get('vocab_size')!r} and dtype {dtype} do not "
                          f"match its tokenizer's {tokenizer.vocab_size}")
    splits = []
    for name, key in ((TRAIN_BIN, "train"), (VAL_BIN, "val")):
        tokens = _need_int(meta.get(key), "tokens", f"{where}: {key}")
        _need_int(meta.get(key), "chars", f"{where}: {key}")
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError as e:
            raise CorpusError(f"{where}: cannot read {name}: {e.strerror}") from None
        if size != tokens * dtype.itemsize:
            raise CorpusError(f"{where}: {name} is {size:,} bytes but meta.json says {tokens:,} {dtype} tokens "
                              f"({tokens * dtype.itemsize:,} bytes); prepare it again")
        splits.append(np.memmap(path, dtype=dtype, mode="r") if tokens else np.zeros(0, dtype))
        if tokens:
            _remember(path)
    return PreparedData(folder.resolve(), meta, tokenizer, *splits)


FINGERPRINT_KEYS = ("source", "bytes", "tokenizer", "tokenizer_options", "vocab_size", "dtype", "val_fraction",
                    "on_bad_utf8", "train", "val")
FINGERPRINT_SAMPLE = 1 << 16   # bytes of each .bin's start and end hashed into the fingerprint


def fingerprint(folder: Path, meta: dict) -> str:
    """What identifies a prepared folder's data, as 16 hex digits of a SHA-256: meta.json's corpus source and size,
    tokenizer, vocabulary, split (val_fraction and each split's token and character counts), plus the size and the
    first and last FINGERPRINT_SAMPLE bytes of train.bin and val.bin. Preparing another corpus, another split or
    another tokenizer into the folder changes it; preparing the same one again does not (the timing is left out)."""
    import hashlib
    h = hashlib.sha256(json.dumps({k: meta.get(k) for k in FINGERPRINT_KEYS}, sort_keys=True).encode())
    for name in (TRAIN_BIN, VAL_BIN):
        with open(Path(folder) / name, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            h.update(str(size).encode())
            for at in (0, max(0, size - FINGERPRINT_SAMPLE)):
                f.seek(at)
                h.update(f.read(FINGERPRINT_SAMPLE))
    return h.hexdigest()[:16]


def check_fingerprint(folder: Path, meta: dict | None, expected: str | None) -> str:
    """The folder's fingerprint (meta: its meta.json, None reads it), after checking it is `expected` (a resumed
    run's; None: no check, a checkpoint from before fingerprints). CheckpointError, saying what the folder holds
    now, when it is not; OSError when a .bin cannot be read."""
    from .errors import CheckpointError
    folder = Path(folder).expanduser()
    meta = read_meta(folder) if meta is None else meta
    mark = fingerprint(folder, meta)
    if expected is not None and expected != mark:
        raise CheckpointError(f"the prepared folder {folder} changed since the checkpoint was saved: it now holds "
                              f"{describe(meta)}, not the data the run trained on (another corpus, split or "
                              f"tokenizer was prepared into it); resume with the folder the run used, or start a "
                              f"new run")
    return mark


def describe(meta: dict) -> str:
    """A prepared folder's data in a few words, for messages: source, tokenizer, split and token counts."""
    return (f"{meta.get('source')}, {meta.get('tokenizer')} tokens, val_fraction {meta.get('val_fraction')}, "
            f"{(meta.get('train') or {}).get('tokens', 0):,} train / {(meta.get('val') or {}).get('tokens', 0):,} "
            f"val tokens")


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def count_equal(data: np.ndarray, value: int, chunk: int = 1 << 24) -> int:
    """How many tokens of `data` equal `value`, a chunk at a time (a memmap is never copied whole)."""
    return int(sum(np.count_nonzero(data[i:i + chunk] == value) for i in range(0, len(data), chunk)))


PREVIEW_TOKENS = 20_000   # validation tokens decoded for a prepared run's val_text (the Inside tab's sample text)


def prepared_corpus(spec, tokenizer=None):
    """What engine.api.prepare_corpus returns, for a RunSpec whose `data` names a prepared folder: (Corpus, tokenizer,
    train_chars, val_chars, val_text, train_ids, val_ids). The ids are the folder's memmaps; val_text is only the
    start of the validation split (at most PREVIEW_TOKENS tokens, decoded). The spec's corpus, tokenizer, its
    options, val_fraction and on_bad_utf8 are set from meta.json, so a checkpoint's spec says what the run trained
    on. `tokenizer` (a resumed run's, from its checkpoint) must equal the folder's, and spec.data_fingerprint (a
    resumed run's) the folder's fingerprint(): CheckpointError otherwise; it is then set to the folder's."""
    from .corpus import Corpus
    from .errors import CheckpointError
    data = load_prepared(spec.data)
    meta = data.meta
    if tokenizer is not None and tokenizer.to_dict() != data.tokenizer.to_dict():
        raise CheckpointError(f"the prepared folder {data.folder} changed since the checkpoint was saved: its "
                              f"{data.tokenizer.kind} tokenizer is not the checkpoint's")
    spec.data_fingerprint = check_fingerprint(data.folder, meta, spec.data_fingerprint)
    spec.data = str(data.folder)
    spec.corpus = str(meta.get("source") or data.folder)
    spec.tokenizer = data.tokenizer.kind
    spec.tokenizer_options = dict(meta.get("tokenizer_options") or {})
    spec.val_fraction = float(meta.get("val_fraction", spec.val_fraction))
    spec.on_bad_utf8 = str(meta.get("on_bad_utf8", spec.on_bad_utf8))
    if len(data.val) < 2:
        raise CorpusError(f"prepared folder {data.folder}: the validation split has {len(data.val)} tokens; it "
                          f"needs at least 2")
    skipped = tuple(tuple(s) for s in meta.get("skipped") or () if isinstance(s, list) and len(s) == 2)
    corpus = Corpus(data.name, "", str(data.folder), skipped)
    val_text = data.tokenizer.decode(np.asarray(data.val[:PREVIEW_TOKENS]).tolist())
    return corpus, data.tokenizer, data.train_chars, data.val_chars, val_text, data.train, data.val
