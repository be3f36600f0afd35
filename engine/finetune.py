"""Fine-tuning: a new run that starts from a checkpoint's weights, on another corpus, with the checkpoint's
tokenizer kept (token ids must keep meaning what the weights learned).

A char tokenizer cannot encode characters it never saw, and a word tokenizer turns unseen words into <unk>; both
are refused with a message naming them (most frequent first), unless the caller names a replacement token that
every such character or word is mapped to. A byte-level BPE encodes any text.

The new run's checkpoint records where it came from (meta["parent"]): the parent's folder, step, corpus, loss
history and the step its own curve starts at on a shared axis, so the plot shows both runs one after the other."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .errors import ConfigError

__all__ = ["unencodable", "encode_mapped", "describe_unencodable", "parent_record"]

SHOWN = 12   # how many unencodable symbols a message names


def unencodable(tokenizer, text: str) -> Counter:
    """Symbol -> count for every character (char tokenizer) or word (word tokenizer) of `text` that `tokenizer`
    has no token for; empty for a byte-level BPE, which encodes anything."""
    if tokenizer.kind == "char":
        known = tokenizer.stoi
        return Counter(c for c in text if c not in known)
    if tokenizer.kind == "word":
        known = tokenizer.stoi
        return Counter(w for w in tokenizer.split(text) if w not in known)
    return Counter()


def describe_unencodable(tokenizer, missing: Counter, corpus_name: str) -> str:
    """The refusal message: how many distinct characters/words, the most frequent named with their counts, and
    how to map them instead."""
    what = "character" if tokenizer.kind == "char" else "word"
    shown = ", ".join(f"{s!r} ×{n}" for s, n in missing.most_common(SHOWN))
    more = f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
    example = "' '" if tokenizer.kind == "char" else "'<unk>'"
    return (f"the checkpoint's {tokenizer.kind} tokenizer cannot encode {len(missing)} {what}(s) of {corpus_name}, "
            f"{sum(missing.values()):,} occurrence(s) in all: {shown}{more}. Map them to one of its tokens "
            f"(--map-unknown TOKEN, e.g. {example}) or fine-tune on text that uses its vocabulary")


def encode_mapped(tokenizer, text: str, replacement: str | None) -> np.ndarray:
    """Token ids of `text` (int64, shape (n,)). replacement None: ConfigError naming what cannot be encoded;
    otherwise every such character or word becomes the replacement token, which must be in the vocabulary."""
    missing = unencodable(tokenizer, text)
    if not missing:
        return np.asarray(tokenizer.encode(text), dtype=np.int64)
    if replacement is None:
        raise ConfigError(describe_unencodable(tokenizer, missing, "the corpus"))
    stoi = tokenizer.stoi
    if replacement not in stoi:
        raise ConfigError(f"the replacement token {replacement!r} is not in the checkpoint's {tokenizer.kind} "
                          f"vocabulary")
    rep = stoi[replacement]
    if tokenizer.kind == "char":
        return np.asarray([stoi.get(c, rep) for c in text], dtype=np.int64)
    return np.asarray([stoi.get(w, rep) for w in tokenizer.split(text)], dtype=np.int64)


def parent_record(ckpt_dir, meta: dict) -> dict:
    """What a fine-tuned checkpoint stores about its parent (meta["parent"]): folder (absolute), step, corpus,
    loss history, and `offset`, the parent's own first step on the shared axis (0 unless it was itself
    fine-tuned), so the child's steps start at offset + step."""
    grand = meta.get("parent") or {}
    return {"checkpoint": str(Path(ckpt_dir).resolve()), "step": int(meta.get("step", 0)),
            "corpus": str((meta.get("spec") or {}).get("corpus", "")),
            "offset": int(grand.get("offset", 0)) + int(grand.get("step", 0)) if grand else 0,
            "history": meta.get("history")}
