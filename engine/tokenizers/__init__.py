"""Tokenizers: char, word and byte-level BPE behind one small interface, built by name from a corpus and rebuilt
from the plain dict stored in every checkpoint."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ..errors import TokenizerError
from .bpe import BPETokenizer
from .char import CharTokenizer
from .word import WordTokenizer

KINDS = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}
# Options each kind's `train` accepts; anything else is a mistake worth naming rather than ignoring.
OPTIONS = {"char": (), "word": ("vocab_size", "lowercase"), "bpe": ("vocab_size",)}


@runtime_checkable
class Tokenizer(Protocol):
    kind: str
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def token_str(self, i: int) -> str: ...
    def to_dict(self) -> dict: ...


def _kind_class(kind) -> type:
    if kind not in KINDS:
        raise TokenizerError(f"unknown tokenizer {kind!r}; choose one of {', '.join(KINDS)}")
    return KINDS[kind]


def build_tokenizer(kind: str, text: str, **options) -> Tokenizer:
    """Train a `kind` tokenizer on `text`. Options: word takes vocab_size and lowercase, bpe takes vocab_size."""
    cls = _kind_class(kind)
    unknown = sorted(set(options) - set(OPTIONS[kind]))
    if unknown:
        allowed = ", ".join(OPTIONS[kind]) or "none"
        raise TokenizerError(f"{kind} tokenizer has no option(s) {', '.join(unknown)}; it takes: {allowed}")
    return cls.train(text, **options)


def build_for_corpus(kind: str, text: str, train: str, **options) -> Tokenizer:
    """The tokenizer a run builds for a corpus (`text`, whose train split is `train`). A char vocabulary is the
    set of characters of the whole text (as nanoGPT builds it), so validation never meets a character it cannot
    encode; word and BPE vocabularies learn from the training split only and map the unseen to <unk> / bytes."""
    return build_tokenizer(kind, text if kind == "char" else train, **options)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    if not isinstance(d, dict) or "kind" not in d:
        raise TokenizerError("stored tokenizer is not a dict with a 'kind'")
    try:
        return _kind_class(d["kind"]).from_dict(d)
    except KeyError as e:
        raise TokenizerError(f"stored {d['kind']} tokenizer is missing {e}") from None


__all__ = ["Tokenizer", "CharTokenizer", "WordTokenizer", "BPETokenizer", "KINDS", "build_tokenizer", "build_for_corpus",
           "tokenizer_from_dict"]
