"""Prepare once, train from token files: `main.py prepare --corpus PATH --tokenizer char|word|bpe --out DIR`.

The corpus is streamed in chunks (engine/corpus_stream.py), never held whole, and written as token ids:

    DIR/train.bin, DIR/val.bin   the splits' ids, uint16 when the vocabulary fits (<= 65,536), else uint32
    DIR/tokenizer.json           the tokenizer as a checkpoint stores it (Tokenizer.to_dict(), tokenizer_from_dict)
    DIR/meta.json                counts: tokens and characters of each split, characters per token, and more

It is the same corpus, split and tokenizer a run makes in memory (engine.api.prepare_corpus), so training from the
folder (`main.py train --data DIR`, engine/data.py) sees the same token ids:
  * the split: the first int(N * (1 - val_fraction)) of the N characters are training text, the rest validation
    (engine.corpus.split_text), so pass 1 counts the characters;
  * the vocabulary: char, every character of the whole text (found in pass 1); word, token counts over the
    training split; BPE, the tokenizers library trained from an iterator over the training split (pass 2);
  * the ids: each split encoded in pieces cut where the tokenizer itself cuts (anywhere for char, before
    whitespace for word, before a space that starts a word for byte-level BPE), so the pieces' ids are exactly
    the whole split's.
The folder is written under a temporary name and renamed when complete: a failed or cancelled prepare leaves
nothing behind, and a folder that exists is one that is whole.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .corpus import VAL_FRACTION
from .corpus_stream import CHUNK_BYTES, TextStream, open_stream
from .data import FORMAT, META, TOKENIZER, TRAIN_BIN, VAL_BIN, token_dtype, write_json
from .errors import ConfigError, CorpusError, PlaygroundError, TokenizerError

__all__ = ["prepare", "Cancelled", "prepared_root", "default_prepared_dir", "find_prepared"]

ProgressFn = Callable[[float, str], None]   # (fraction of the whole prepare done, 0..1; what is being done)


class Cancelled(PlaygroundError):
    """cancel() turned true: the prepare stopped and removed what it had written."""


def prepare(corpus: str, kind: str, out, *, tokenizer_options: dict | None = None,
            val_fraction: float = VAL_FRACTION, on_bad_utf8: str = "error", progress: ProgressFn | None = None,
            cancel: Callable[[], bool] | None = None, chunk_bytes: int = CHUNK_BYTES) -> dict:
    """Write the prepared folder `out` for `corpus` (a file, folder or builtin:NAME) tokenized by `kind` and return
    its meta.json as a dict. tokenizer_options: as a run's (word: vocab_size, lowercase; bpe: vocab_size), values
    may be strings. progress(fraction, stage) is called after each chunk; cancel() is checked as often and, once
    true, ends it with Cancelled. Raises CorpusError (missing, empty, whitespace-only, binary, bad UTF-8 with its
    byte offset, too short to split, `out` a non-empty folder that is not a prepared one), TokenizerError,
    ConfigError, OSError from writing."""
    from .settings import coerce
    from .tokenizers import KINDS, OPTIONS
    if kind not in KINDS:
        raise TokenizerError(f"unknown tokenizer {kind!r}; choose one of {', '.join(KINDS)}")
    options = {k: coerce(v) if isinstance(v, str) else v for k, v in (tokenizer_options or {}).items()}
    unknown = sorted(set(options) - set(OPTIONS[kind]))
    if unknown:
        raise TokenizerError(f"{kind} tokenizer has no option(s) {', '.join(unknown)}; it takes: "
                             f"{', '.join(OPTIONS[kind]) or 'none'}")
    if not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), not {val_fraction!r}")
    out = Path(out).expanduser()
    _check_out(out)
    stream = open_stream(corpus, on_bad_utf8)
    t0 = time.perf_counter()
    passes = 2 if kind == "char" else 3
    tmp = out.parent / f".{out.name}.preparing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        steps = _Steps(stream.total_bytes, passes, progress, cancel)
        n_chars, seen = _count(stream, chunk_bytes, steps, want_chars=kind == "char")
        n_train = int(n_chars * (1.0 - val_fraction))
        if n_train == 0 or n_train == n_chars:
            raise CorpusError(f"text of {n_chars} characters is too short to split with val_fraction={val_fraction}")
        tokenizer = _vocabulary(kind, options, stream, chunk_bytes, n_train, seen, steps)
        dtype = token_dtype(tokenizer.vocab_size)
        tmp.mkdir(parents=True)
        counts = _encode(tokenizer, stream, chunk_bytes, n_train, dtype, tmp, steps)
        if counts["val"][0] < 2:
            raise CorpusError(f"the validation split has {counts['val'][0]} tokens; the corpus is too short "
                              f"(or val_fraction {val_fraction} too small)")
        seconds = time.perf_counter() - t0
        meta = {"format": FORMAT, "version": 1, "corpus": stream.name, "source": stream.source,
                "skipped": [list(s) for s in stream.skipped], "bytes": stream.total_bytes,
                "tokenizer": kind, "tokenizer_options": options, "vocab_size": tokenizer.vocab_size,
                "dtype": dtype.name, "val_fraction": val_fraction, "on_bad_utf8": on_bad_utf8,
                **{split: {"tokens": tokens, "chars": chars, "chars_per_token": round(chars / max(tokens, 1), 4)}
                   for split, (tokens, chars, _) in counts.items()},
                "seconds": round(seconds, 3), "mb_per_s": round(stream.total_bytes / 1e6 / max(seconds, 1e-9), 2)}
        if kind == "word":   # <unk> is id 0: the share of words whose spelling costs nothing (see val_bpc_note)
            for split in ("train", "val"):
                meta[split]["unk"] = counts[split][2]
        import json
        (tmp / TOKENIZER).write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")
        write_json(tmp / META, meta)
        if out.exists():
            _check_out(out)      # again: the folder may have changed while this prepare ran
            shutil.rmtree(out)   # empty, or an earlier prepared folder (nothing but prepare's own files)
        tmp.rename(out)
        if progress:
            progress(1.0, "done")
        return meta
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


PREPARED_FILES = frozenset({META, TOKENIZER, TRAIN_BIN, VAL_BIN})   # all a prepare writes: nothing else is deleted


def is_prepared_folder(folder: Path) -> bool:
    """True when `folder` is one prepare wrote: its meta.json is a JSON object whose "format" is FORMAT, and it
    holds no file but prepare's own (meta.json, tokenizer.json, train.bin, val.bin)."""
    import json
    try:
        names = {p.name for p in folder.iterdir()}
        if META not in names or not names <= PREPARED_FILES or (folder / META).stat().st_size > 1 << 20:
            return False
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def _check_out(out: Path) -> None:
    """`out` may be new, an empty folder, or an earlier prepared folder (is_prepared_folder; replaced when the new
    one is complete). Anything else is refused with CorpusError naming it: a checkpoint folder also has a
    meta.json, and a replace deletes the whole folder."""
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not is_prepared_folder(out):
        raise CorpusError(f"{out} is a folder that prepare did not write (it holds other files, or its {META} is "
                          f"not a prepared corpus's); nothing was changed: choose a new or empty folder for --out")


class _Steps:
    """Progress over the passes (each reads the corpus once) and the cancel check, per chunk."""

    def __init__(self, total: int, passes: int, progress, cancel):
        self.total, self.passes, self.progress, self.cancel = max(total, 1), passes, progress, cancel
        self.index, self.stage = 0, ""

    def start(self, index: int, stage: str) -> None:
        """A pass begins: said at once (a small corpus's pass is one chunk, which would otherwise report only its
        end, so stages seemed skipped)."""
        self.index, self.stage = index, stage
        if self.progress is not None:
            self.progress(index / self.passes, stage)

    def __call__(self, done_bytes: int) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("preparing was cancelled; nothing was written")
        if self.progress is not None:
            frac = (self.index + min(done_bytes, self.total) / self.total) / self.passes
            self.progress(min(frac, 1.0), self.stage)


def _count(stream: TextStream, chunk_bytes: int, steps: _Steps, want_chars: bool) -> tuple[int, np.ndarray | None]:
    """Pass 1: the number of characters and, for a char vocabulary, which code points occur (a flag per code
    point, set with one numpy scatter per chunk)."""
    steps.start(0, "counting characters")
    from .tokenizers.char import code_points
    seen = np.zeros(0x110000, dtype=bool) if want_chars else None
    known = b""   # the ASCII characters seen so far
    n = 0
    for chunk in stream.chunks(chunk_bytes, steps):
        n += len(chunk)
        if seen is None or not chunk:
            continue
        if chunk.isascii():   # only bytes not seen yet are looked at: deleting the known ones is one fast pass
            new = chunk.encode("ascii").translate(None, known)
            if not new:
                continue
            codes = np.frombuffer(new, dtype=np.uint8)
        else:
            codes = code_points(chunk)
        if codes.dtype == np.uint8 or int(codes.max()) < 1 << 16:   # a histogram: one fast pass
            found = np.flatnonzero(np.bincount(codes, minlength=1))
        else:
            found = np.unique(codes)
        seen[found] = True
        known = bytes(np.flatnonzero(seen[:128]).astype(np.uint8))
    return n, seen


def _vocabulary(kind: str, options: dict, stream: TextStream, chunk_bytes: int, n_train: int, seen, steps: _Steps):
    from .tokenizers import BPETokenizer, CharTokenizer, WordTokenizer
    from .tokenizers.word import find_tokens
    if kind == "char":   # the whole text's characters, sorted by code point: sorted(set(text))
        return CharTokenizer("".join(map(chr, np.flatnonzero(seen).tolist())))
    steps.start(1, "learning the vocabulary")
    train = _train_pieces(stream.chunks(chunk_bytes, steps), n_train, CUTS[kind])
    if kind == "word":
        lower = bool(options.get("lowercase", False))
        if "vocab_size" in options and (not isinstance(options["vocab_size"], int) or options["vocab_size"] < 2):
            raise TokenizerError(f"word vocab_size must be an integer of at least 2, not {options['vocab_size']!r}")
        counts: Counter = Counter()
        for piece in train:
            counts.update(find_tokens(piece.lower() if lower else piece))
        return WordTokenizer.from_counts(counts, options.get("vocab_size"), lower)
    from .tokenizers.bpe import split_at_word_starts
    # parts of ~1 MB: the library pre-tokenizes several items at once, and 8 MB items held over 1 GB doing so
    return BPETokenizer.train_from_pieces((part for piece in train for part in split_at_word_starts(piece, BPE_PART)),
                                          **options)


def _train_pieces(chunks: Iterator[str], n_train: int, cut) -> Iterator[str]:
    """The training split's pieces; stops reading at the validation split (closing the file)."""
    for split, piece in _pieces(chunks, n_train, cut):
        if split != "train":
            return
        yield piece


def _encode(tokenizer, stream: TextStream, chunk_bytes: int, n_train: int, dtype, folder: Path,
            steps: _Steps) -> dict[str, tuple[int, int, int]]:
    """The last pass: each split's ids written to its .bin; returns {split: (tokens, characters, <unk> tokens)}."""
    steps.start(steps.passes - 1, "writing token ids")
    counts = {"train": [0, 0, 0], "val": [0, 0, 0]}   # tokens, characters, <unk> (word)
    if tokenizer.kind == "char":
        encode = lambda t: tokenizer.encode_array(t, dtype)   # noqa: E731
    elif tokenizer.kind == "bpe":
        encode = lambda t: _encode_bpe(tokenizer, t, dtype)   # noqa: E731
    else:
        encode = lambda t: np.asarray(tokenizer.encode(t), dtype=dtype)   # noqa: E731
    with open(folder / TRAIN_BIN, "wb") as train_f, open(folder / VAL_BIN, "wb") as val_f:
        files = {"train": train_f, "val": val_f}
        for split, piece in _pieces(stream.chunks(chunk_bytes, steps), n_train, CUTS[tokenizer.kind]):
            ids = encode(piece)
            ids.tofile(files[split])
            counts[split][0] += len(ids)
            counts[split][1] += len(piece)
            if tokenizer.kind == "word":
                counts[split][2] += int(np.count_nonzero(ids == 0))
    return {k: tuple(v) for k, v in counts.items()}


BPE_PART = 1 << 20   # characters a BPE encodes at once: the library's Encoding objects cost ~200 bytes a token


def _encode_bpe(tokenizer, text: str, dtype) -> np.ndarray:
    """A chunk's BPE ids, encoded a part of about BPE_PART characters at a time (cut where the pre-tokenizer cuts,
    so the ids are the same): a whole 8 MB chunk at once held about 1.5 GB of the library's Encoding objects."""
    from .tokenizers.bpe import split_at_word_starts
    parts = [np.asarray(tokenizer.encode(p), dtype=dtype) for p in split_at_word_starts(text, BPE_PART)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _pieces(chunks: Iterator[str], n_train: int, cut: Callable[[str], int]) -> Iterator[tuple[str, str]]:
    """("train" | "val", piece) over the streamed text: the first n_train characters are "train". Each piece ends
    at an index `cut` says the tokenizer may cut at (the rest waits for the next chunk), and the training split's
    last piece ends exactly at n_train, as split_text cuts."""
    pos, carry, split = 0, "", "train"
    for chunk in chunks:
        if split == "train" and pos + len(chunk) >= n_train:
            k = n_train - pos
            if carry or k:
                yield "train", carry + chunk[:k]
            carry, split, pos, chunk = "", "val", n_train, chunk[k:]
        pos += len(chunk)
        text = carry + chunk
        j = cut(text)
        if j > 0:
            yield split, text[:j]
        carry = text[j:]
    if carry:
        yield split, carry


SCAN_BACK = 1 << 16   # characters searched back from a chunk's end for a cut; none there carries the whole chunk
_WHITESPACE = re.compile(r"\s")


def _cut_anywhere(text: str) -> int:
    return len(text)


def _cut_before_whitespace(text: str) -> int:
    """The word tokenizer's cut (engine.tokenizers.word.find_tokens): just before the last whitespace character,
    since no token spans whitespace."""
    lo = max(0, len(text) - SCAN_BACK)
    last = -1
    for m in _WHITESPACE.finditer(text, lo):
        last = m.start()
    return max(last, 0)


def _cut_before_word(text: str) -> int:
    """Byte-level BPE's cut (engine.tokenizers.bpe.split_at_word_starts): before a space that sits between two
    non-space characters, where GPT-2's pre-tokenizer starts a new pre-token."""
    lo = max(1, len(text) - SCAN_BACK)
    j = text.rfind(" ", lo, len(text) - 1)
    while j >= lo and (text[j - 1].isspace() or text[j + 1].isspace()):
        j = text.rfind(" ", lo, j)
    return j if j >= lo else 0


CUTS = {"char": _cut_anywhere, "word": _cut_before_whitespace, "bpe": _cut_before_word}


def prepared_root() -> Path:
    """Where the window keeps prepared corpora: $LM_PLAYGROUND_PREPARED when set, else `prepared/` beside the
    runs location (engine.runs_dir)."""
    from .runs_dir import runs_root
    env = os.environ.get("LM_PLAYGROUND_PREPARED")
    return Path(env).expanduser() if env else runs_root().parent / "prepared"


def default_prepared_dir(source: str, kind: str, options: dict | None = None, root: Path | None = None) -> Path:
    """The window's folder for `source` prepared with `kind` and `options`: NAME-HASH-KIND[-key-value...] in `root`
    (default prepared_root()), HASH being 8 hex digits of a SHA-256 of the source's resolved absolute path (a
    builtin:NAME as it is), so two files of the same name never share a folder."""
    import hashlib
    source = str(source)
    key = source if source.startswith("builtin:") else str(Path(source).expanduser().resolve())
    name = Path(source).name or "corpus"
    tag = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    extra = "".join(f"-{k}-{v}" for k, v in sorted((options or {}).items()))
    safe = re.sub(r"[^\w.\-]+", "_", f"{name}-{tag}-{kind}{extra}")
    return (root or prepared_root()) / safe


def find_prepared(source: str, kind: str, options: dict | None = None, root: Path | None = None) -> Path | None:
    """default_prepared_dir(...) when it holds a complete prepare of `source` as it is now with the same tokenizer
    and options; else None. "As it is now": the same resolved path, the same size (a folder: its files' sizes
    summed, less those the prepare skipped), and meta.json written after the file (a folder: any of its files, or
    the folder itself, which changes when a file is added or removed) last changed."""
    from .data import load_prepared
    from .settings import coerce
    folder = default_prepared_dir(source, kind, options, root)
    try:
        data = load_prepared(folder)
        size, mtime = _size_and_mtime(Path(source).expanduser(), data.meta.get("skipped") or [])
    except (PlaygroundError, OSError):
        return None
    meta = data.meta
    want = {k: coerce(v) if isinstance(v, str) else v for k, v in (options or {}).items()}
    same = (meta.get("source") == str(Path(source).expanduser().resolve()) and meta.get("bytes") == size
            and meta.get("tokenizer") == kind and meta.get("tokenizer_options") == want
            and (folder / META).stat().st_mtime >= mtime)
    return folder if same else None


def _size_and_mtime(path: Path, skipped: list) -> tuple[int, float]:
    """(bytes read, latest modification time) of a corpus file, or of a folder's files (listed only: no file is
    read) less the `skipped` ones (meta.json's (relative path, why) pairs)."""
    from .corpus import _folder_files
    st = path.stat()
    if not path.is_dir():
        return st.st_size, st.st_mtime
    skip = {s[0] for s in skipped if isinstance(s, list) and s}
    size, mtime = 0, st.st_mtime
    for p in _folder_files(path)[0]:
        fst = p.stat()
        mtime = max(mtime, fst.st_mtime)
        if p.relative_to(path).as_posix() not in skip:
            size += fst.st_size
    return size, mtime
