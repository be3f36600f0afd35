"""Word tokenizer: words and single punctuation marks, newlines kept as tokens, a capped vocabulary with <unk>.

Spaces are not tokens; `decode` puts them back by simple English rules (none before closing punctuation, none after
opening brackets, quotes alternate open/close). Newlines are tokens so that verse and code keep their line shape.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from ..errors import TokenizerError
from .char import check_ids, visible

UNK = "<unk>"
# A newline; or a word with inner apostrophes/hyphens ("don't", "well-known"); or one punctuation mark.
TOKEN_RE = re.compile(r"\n|\w+(?:['’-]\w+)*|[^\w\s]")
_CLOSERS = set(".,;:!?)]}%…")
_OPENERS = set("([{")
_QUOTES = set("\"'")


class WordTokenizer:
    kind = "word"

    def __init__(self, tokens: Sequence[str], lowercase: bool = False):
        if not tokens or tokens[0] != UNK:
            raise TokenizerError(f"a word vocabulary must start with {UNK}")
        self.tokens = list(tokens)
        self.lowercase = bool(lowercase)
        self.stoi = {t: i for i, t in enumerate(self.tokens)}
        self.vocab_size = len(self.tokens)

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None, lowercase: bool = False) -> "WordTokenizer":
        """Keep the `vocab_size - 1` most frequent tokens (ties broken alphabetically, so training is
        deterministic); everything else encodes as <unk>. vocab_size None keeps every token."""
        if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size < 2):
            raise TokenizerError(f"word vocab_size must be an integer of at least 2, not {vocab_size!r}")
        counts = Counter(TOKEN_RE.findall(text.lower() if lowercase else text))
        counts.pop(UNK, None)
        if not counts:
            raise TokenizerError("the text has no words to build a vocabulary from")
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        if vocab_size is not None:
            ranked = ranked[:vocab_size - 1]
        return cls([UNK] + ranked, lowercase)

    def split(self, text: str) -> list[str]:
        return TOKEN_RE.findall(text.lower() if self.lowercase else text)

    def encode(self, text: str) -> list[int]:
        get = self.stoi.get
        return [get(t, 0) for t in self.split(text)]

    def decode(self, ids: Sequence[int]) -> str:
        joiner = _Joiner(self)
        return "".join(joiner.add(i) for i in check_ids(ids, self.vocab_size))

    def stream_decoder(self) -> "_Joiner":
        """decode() one token at a time: the spacing state carries over (engine/tokenizers/stream.py)."""
        return _Joiner(self)

    def token_str(self, i: int) -> str:
        return visible(self.tokens[check_ids([i], self.vocab_size)[0]])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict) -> "WordTokenizer":
        return cls(d["tokens"], d.get("lowercase", False))


class _Joiner:
    """The spacing rules as a state machine over tokens, so decode() and streaming share them."""

    def __init__(self, tokenizer: WordTokenizer):
        self.tokens, self.vocab_size = tokenizer.tokens, tokenizer.vocab_size
        self.glue = True          # no space before the next token (start of text, after a newline or an opener)
        self.open_quote = {q: False for q in _QUOTES}

    def add(self, i: int) -> str:
        tok = self.tokens[check_ids([i], self.vocab_size)[0]]
        if tok == "\n":
            self.glue = True
            return "\n"
        space = not self.glue and tok not in _CLOSERS
        self.glue = tok in _OPENERS
        if tok in _QUOTES:
            closing = self.open_quote[tok]
            self.open_quote[tok] = not closing
            space = space and not closing
            self.glue = not closing
        return " " + tok if space else tok

    def flush(self) -> str:
        return ""
