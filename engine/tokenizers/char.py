"""Character tokenizer: one token per Unicode character of the corpus, as in nanoGPT's shakespeare_char."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import TokenizerError
from .text_check import require_unicode

# How whitespace and control characters are shown in token lists, where a bare "\n" or " " would be invisible.
_VISIBLE = {"\n": "\\n", "\t": "\\t", "\r": "\\r", " ": "␣"}


def visible(s: str) -> str:
    """A display form of a token: spaces as ␣, newlines and tabs escaped, other control characters as \\xNN."""
    return "".join(_VISIBLE.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c) for c in s)


def check_ids(ids: Sequence[int], vocab_size: int) -> list[int]:
    """Token ids as Python ints, refusing any outside the vocabulary (a model sampled from another tokenizer)."""
    out = [int(i) for i in ids]
    bad = [i for i in out if not 0 <= i < vocab_size]
    if bad:
        raise TokenizerError(f"token id {bad[0]} is outside the vocabulary (size {vocab_size})")
    return out


def code_points(text: str) -> np.ndarray:
    """The code points of `text`: uint8 when it is ASCII (a copy of its bytes, 4x less to move than UTF-32),
    else uint32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class CharTokenizer:
    kind = "char"

    def __init__(self, chars: str):
        if not chars:
            raise TokenizerError("cannot build a character vocabulary from empty text")
        if len(set(chars)) != len(chars):
            raise TokenizerError("character vocabulary has repeated characters")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.vocab_size = len(chars)
        # Encoding looks code points up in this sorted array, so a megabyte encodes in one vectorized pass.
        self._codes = np.array([ord(c) for c in chars], dtype=np.uint32)
        self._lut = None

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(require_unicode(text)))))

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str, dtype=np.int64) -> np.ndarray:
        """The ids of `text` as an array of `dtype` (what encode returns, without building a list: a prepared
        corpus encodes this way at over 100 MB/s). TokenizerError names characters outside the vocabulary, or a
        lone surrogate (text_check.require_unicode)."""
        if not require_unicode(text):
            return np.zeros(0, dtype=dtype)
        if self.vocab_size < 256 and text.isascii():   # bytes.translate: a table lookup at memcpy speed
            ids = text.encode("ascii").translate(self._byte_table())
            if b"\xff" not in ids:                       # 255 marks a character outside the vocabulary
                return np.frombuffer(ids, dtype=np.uint8).astype(dtype)
        codes = code_points(text)
        lut = self._lookup()
        if int(codes.max()) >= len(lut):
            codes = np.minimum(codes, len(lut) - 1)   # the last entry is -1: reported below
        ids = lut[codes]
        if int(ids.min()) < 0:
            unknown = sorted({chr(c) for c in code_points(text)[ids < 0]} | self._beyond(text))
            shown = ", ".join(repr(c) for c in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise TokenizerError(f"{len(unknown)} character(s) not in the vocabulary: {shown}")
        return ids.astype(dtype, copy=False)

    def _beyond(self, text: str) -> set[str]:
        codes = code_points(text)
        return {chr(c) for c in codes[codes >= len(self._lookup()) - 1]}

    def _byte_table(self) -> bytes:
        """bytes.translate's table for ASCII text and a vocabulary of at most 255: id by byte, 255 if unknown."""
        if getattr(self, "_table", None) is None:
            lut = self._lookup()[:128]
            self._table = bytes(int(i) if i >= 0 else 255 for i in lut) + bytes([255]) * (256 - len(lut))
        return self._table

    def _lookup(self) -> np.ndarray:
        """id by code point, -1 where a code point is not in the vocabulary; as long as the largest code point
        plus one (at most 1.1 M entries, 4.5 MB), so encoding is one gather."""
        if getattr(self, "_lut", None) is None:
            lut = np.full(int(self._codes.max()) + 2, -1, dtype=np.int32)   # the last entry stays -1: overflow
            lut[self._codes] = np.arange(self.vocab_size, dtype=np.int32)
            self._lut = lut
        return self._lut

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in check_ids(ids, self.vocab_size))

    def token_str(self, i: int) -> str:
        return visible(self.chars[check_ids([i], self.vocab_size)[0]])

    def stream_decoder(self) -> "_CharStream":
        return _CharStream(self)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}

    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        """TokenizerError unless d["chars"] is a string of distinct characters."""
        if type(d["chars"]) is not str:
            raise TokenizerError(f"stored char vocabulary must be a string, not {type(d['chars']).__name__}")
        return cls(d["chars"])


class _CharStream:
    """Each id is its character: nothing to carry between tokens."""

    def __init__(self, tokenizer: CharTokenizer):
        self.chars, self.vocab_size = tokenizer.chars, tokenizer.vocab_size

    def add(self, i: int) -> str:
        return self.chars[check_ids([i], self.vocab_size)[0]]

    def flush(self) -> str:
        return ""
