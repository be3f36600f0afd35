"""Turning generated token ids into text one token at a time, at a constant cost per token.

`tokenizer.decode(ids)` of the whole text for every new token costs time proportional to the text, so a long
generation slows down as it grows. A stream decoder keeps just the state a tokenizer's joins depend on: nothing for
characters, the word tokenizer's spacing and open quotes, a byte-level BPE's bytes of a character not yet complete.
Feeding it ids one by one gives pieces whose concatenation is `decode(ids)`."""
from __future__ import annotations

from typing import Protocol


class StreamDecoder(Protocol):
    def add(self, i: int) -> str: ...   # the text token i adds ("" while a multi-byte character is incomplete)
    def flush(self) -> str: ...          # what is still held (incomplete bytes, as '\ufffd'); "" for most


class Redecode:
    """For a tokenizer without its own stream decoder: decode everything so far and hand out what is new (the
    cost grows with the text; the project's three tokenizers do not need it)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.text = tokenizer, [], ""

    def add(self, i: int) -> str:
        self.ids.append(i)
        full = self.tokenizer.decode(self.ids).rstrip("\ufffd")
        n = 0
        while n < min(len(full), len(self.text)) and full[n] == self.text[n]:
            n += 1
        piece, self.text = full[n:], full
        return piece

    def flush(self) -> str:
        full = self.tokenizer.decode(self.ids)
        return full[len(self.text):] if full.startswith(self.text) else ""


def stream_decoder(tokenizer) -> StreamDecoder:
    make = getattr(tokenizer, "stream_decoder", None)
    return make() if make is not None else Redecode(tokenizer)
