"""Byte-level BPE (GPT-2 style) trained on the corpus with the HuggingFace `tokenizers` library.

Byte-level means the base alphabet is the 256 bytes, each shown as a printable character (space is 'Ġ', newline
'Ċ'), so any text encodes and round-trips. The tokenizer is stored as the library's own JSON, which other tools can
load, and `merges()` lists the learned merges in order so the app can replay how words get built up.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ..errors import TokenizerError
from .char import check_ids, visible


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte -> printable character table: printable Latin-1 bytes stand for themselves,
    the other 68 bytes (controls, space, a few Latin-1 gaps) are moved to code points 256 and up, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + shifted)] = b
            shifted += 1
    return table


class BPETokenizer:
    kind = "bpe"

    def __init__(self, tokenizer: Tokenizer):
        self.tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def train(cls, text: str, vocab_size: int = 512) -> "BPETokenizer":
        """Learn merges until the vocabulary has `vocab_size` entries (fewer if the corpus runs out of pairs)."""
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise TokenizerError(f"byte-level BPE needs vocab_size of at least 256 (the bytes), not {vocab_size!r}")
        if not text:
            raise TokenizerError("cannot train BPE on empty text")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      special_tokens=[], show_progress=False)
        tok.train_from_iterator([text], trainer=trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(check_ids(ids, self.vocab_size), skip_special_tokens=False)

    def stream_decoder(self) -> "_ByteStream":
        """decode() one token at a time: bytes of a character split over tokens wait for the rest."""
        return _ByteStream(self)

    def token_bytes(self, i: int) -> bytes:
        table = byte_decoder()
        return bytes(table[c] for c in self.tok.id_to_token(check_ids([i], self.vocab_size)[0]))

    def token_str(self, i: int) -> str:
        """The token's text with spaces as ␣ and newlines as \\n; a token holding part of a multi-byte character
        shows the leftover bytes as \\xNN."""
        return visible(self.token_bytes(i).decode("utf-8", errors="backslashreplace"))

    def merges(self) -> list[tuple[str, str]]:
        """The learned merges in the order they are applied, as pairs of byte-level token strings."""
        raw = json.loads(self.tok.to_str())["model"]["merges"]
        # Older `tokenizers` releases store a merge as "a b", newer ones as ["a", "b"].
        return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in raw]

    def save(self, path: str | Path) -> None:
        """Write the library's JSON format, loadable with `tokenizers.Tokenizer.from_file`."""
        self.tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as e:  # the library raises plain Exception subclasses for unreadable JSON
            raise TokenizerError(f"cannot load BPE tokenizer from {path}: {e}") from None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokenizer_json": self.tok.to_str()}

    @classmethod
    def from_dict(cls, d: dict) -> "BPETokenizer":
        try:
            return cls(Tokenizer.from_str(d["tokenizer_json"]))
        except Exception as e:
            raise TokenizerError(f"stored BPE tokenizer is not valid tokenizers JSON: {e}") from None


class _ByteStream:
    """A byte-level token is a run of bytes; UTF-8's incremental decoder holds an incomplete character until its
    last byte arrives and turns invalid bytes into '\ufffd', as the library's lossy decode of the whole does."""

    def __init__(self, tokenizer: BPETokenizer):
        import codecs
        self.tokenizer = tokenizer
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.cache: dict[int, bytes] = {}

    def add(self, i: int) -> str:
        b = self.cache.get(i)
        if b is None:
            try:
                b = self.tokenizer.token_bytes(i)
            except KeyError:   # an added token outside the byte alphabet: its text as it decodes
                b = self.tokenizer.decode([i]).encode("utf-8")
            self.cache[i] = b
        return self.utf8.decode(b)

    def flush(self) -> str:
        return self.utf8.decode(b"", final=True)
