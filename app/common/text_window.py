"""A random window of a validation text, for the tabs that run the model on one (Graph, Inside). Qt-free."""
from __future__ import annotations

import random


def random_window(text: str, tokenizer, n_tokens: int, rng: random.Random, line_start: bool = False) -> str:
    """`n_tokens` tokens of `text` from a random place, as text (about 12 characters a token are read, so a word
    or BPE tokenizer gets enough). line_start: start at a line start when one is within 200 characters."""
    chars = min(len(text), 12 * n_tokens)
    start = rng.randrange(max(1, len(text) - chars))
    if line_start:
        nl = text.find("\n", start, start + 200)
        if nl >= 0 and nl + 1 < len(text) - n_tokens:
            start = nl + 1
    return tokenizer.decode(tokenizer.encode(text[start:start + chars])[:n_tokens])
