"""The word tokenizer counts and ranks in pieces so that the window's thread gets the GIL between them (issue 12,
bench/gui_stalls.py tokens_word_result): the pieces must give exactly what one Counter and one sort give."""
from __future__ import annotations

import random
from collections import Counter

from engine.tokenizers import word
from engine.tokenizers.word import TOKEN_RE, count_tokens, find_tokens, rank_by_count


def _text(n_words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocab = ["the", "a", "नमस्ते", "e\u0301t\u00e9", "don't", "well-known", "👍🏽", "🇫🇷", "x", "Zeta", "zeta",
             "。", ","]
    vocab += [f"w{rng.randrange(3000)}" for _ in range(800)]
    return "".join(rng.choice(vocab) + rng.choice([" ", " ", "\n", "  "]) for _ in range(n_words))


def test_pieces_give_the_same_tokens_counts_and_ranking(monkeypatch):
    monkeypatch.setattr(word, "FINDALL_PIECE", 97)     # many slices, most ending inside a word at first
    monkeypatch.setattr(word, "SORT_PIECE", 31)        # many sorted runs to merge
    text = _text(20_000)
    tokens = TOKEN_RE.findall(text)
    assert find_tokens(text) == tokens
    counts = count_tokens(text)
    assert counts == Counter(tokens)
    assert rank_by_count(counts) == sorted(counts, key=lambda t: (-counts[t], t))
    assert rank_by_count({}) == [] and rank_by_count({"b": 1, "a": 1, "c": 2}) == ["c", "a", "b"]


def test_a_trained_vocabulary_is_unchanged_by_the_piece_sizes(monkeypatch):
    text = _text(5_000, seed=1)
    whole = word.WordTokenizer.train(text, vocab_size=300).tokens
    monkeypatch.setattr(word, "FINDALL_PIECE", 50)
    monkeypatch.setattr(word, "SORT_PIECE", 7)
    assert word.WordTokenizer.train(text, vocab_size=300).tokens == whole
