"""Turning generated token ids into text one token at a time, at a constant cost per token.

`tokenizer.decode(ids)` of the whole text for every new token costs time proportional to the text, so a long
generation slows down as it grows. A stream decoder keeps just the state a tokenizer's joins depend on: nothing for
characters, the word tokenizer's spacing and open quotes, a byte-level BPE's bytes of a character not yet complete.
Feeding it ids one by one gives pieces whose concatenation is `decode(ids)`. Every tokenizer has a
`stream_decoder()` method."""
from __future__ import annotations

from typing import Protocol


class StreamDecoder(Protocol):
    def add(self, i: int) -> str: ...   # the text token i adds ("" while a multi-byte character is incomplete)
    def flush(self) -> str: ...          # what is still held (incomplete bytes, as '\ufffd'); "" for most


def stream_decoder(tokenizer) -> StreamDecoder:
    return tokenizer.stream_decoder()
