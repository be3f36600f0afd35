"""The Tokens tab's engine side: spans that match the encoding, counts that add up, compression, <unk> accounting,
and the BPE replay ending in exactly what the tokenizer encodes."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import TokenizerError
from engine.tokenizers import build_tokenizer
from engine.tokenizers.inspect import (bpe_replay, form_tokenizer, readable, token_spans, token_stats,
                                       unk_words)

TEXT = ("The quick brown fox jumps over the lazy dog.\nThe dog sleeps; the fox runs away, quickly!\n"
        "Tokenization turns text into tokens: tokens, tokenizer, tokenized. Naïve café — déjà vu.\n") * 6


@pytest.fixture(scope="module")
def bpe():
    return build_tokenizer("bpe", TEXT, vocab_size=300)


def test_form_tokenizer_follows_the_run_rule():
    """char learns from the whole text (validation never meets an unknown character), the others from train."""
    text = "aaaa bbbb cccc " * 20 + "zzz"    # 'z' appears only in the validation tenth
    char, train, val = form_tokenizer("char", text, {})
    assert "z" in char.stoi and train + val == text
    word, _, _ = form_tokenizer("word", text, {})
    assert "zzz" not in word.stoi


@pytest.mark.parametrize("kind, options", [("char", {}), ("word", {"vocab_size": 12}), ("bpe", {"vocab_size": 280})])
def test_counts_sum_to_train_tokens(kind, options):
    tok, train, val = form_tokenizer(kind, TEXT, options)
    s = token_stats(tok, train, val)
    assert s.counts.sum() == s.train_tokens == len(tok.encode(train))
    assert s.val_tokens == len(tok.encode(val))
    assert s.counts.shape == (tok.vocab_size,)
    ordered = s.counts[s.order]
    assert (np.diff(ordered) <= 0).all() and sorted(s.order.tolist()) == list(range(tok.vocab_size))
    assert s.order[0] == int(np.bincount(tok.encode(train)).argmax())


def test_char_compression_is_one_and_word_compresses_more():
    char = token_stats(*form_tokenizer("char", TEXT, {}))
    word = token_stats(*form_tokenizer("word", TEXT, {}))
    bpe = token_stats(*form_tokenizer("bpe", TEXT, {"vocab_size": 300}))
    assert char.chars_per_token == 1.0 and char.unk_train == 0
    assert word.chars_per_token > bpe.chars_per_token > 1.0


def test_word_unk_stats_count_what_the_cap_cut():
    tok, train, val = form_tokenizer("word", TEXT, {"vocab_size": 10})
    s = token_stats(tok, train, val)
    words = tok.split(train)
    cut = [w for w in words if w not in tok.stoi]
    assert s.unk_train == len(cut) > 0 and s.unk_fraction == pytest.approx(len(cut) / len(words))
    assert dict(s.unk_words) == {w: cut.count(w) for w in set(cut)}
    counts = [c for _, c in s.unk_words]
    assert counts == sorted(counts, reverse=True)
    assert unk_words(tok, train, limit=3) == s.unk_words[:3]
    assert s.unk_distinct == len(unk_words(tok, train, limit=10 ** 9)) >= len(s.unk_words)


@pytest.mark.parametrize("kind, options", [("char", {}), ("word", {"lowercase": True}), ("bpe", {"vocab_size": 300})])
def test_spans_match_the_encoding(kind, options, bpe):
    tok = bpe if kind == "bpe" else build_tokenizer(kind, TEXT, **options)
    text = TEXT[:400]
    spans = token_spans(tok, text)
    assert [s.id for s in spans] == tok.encode(text)
    if kind == "word":   # words skip the spaces between them, nothing else
        covered = set().union(*(range(s.start, s.end) for s in spans))
        assert all(text[k] in " " for k in range(len(text)) if k not in covered)
        assert all(tok.token_str(s.id) != "<unk>" for s in spans)   # lowercase: every word of TEXT is known
    else:                # char and BPE spans tile the text
        assert "".join(text[s.start:s.end] for s in spans) == text
        assert all(a.end == b.start for a, b in zip(spans, spans[1:]))


def test_bpe_split_character_goes_to_the_completing_token():
    tok = build_tokenizer("bpe", "plain ascii text " * 30, vocab_size=260)   # 'é' never merged: two byte tokens
    spans = token_spans(tok, "é")
    assert len(spans) == 2 and spans[0].start == spans[0].end == 0 and (spans[1].start, spans[1].end) == (0, 1)


def test_char_spans_refuse_unknown_characters():
    tok = build_tokenizer("char", "abc")
    with pytest.raises(TokenizerError, match="'z'"):
        token_spans(tok, "abz")
    with pytest.raises(TokenizerError):
        token_stats(tok, "abc", "xyz")


@pytest.mark.parametrize("text", [" tokenization", "tokens", " Naïve café", "quickly!!  \n x", "zzzz", ""])
def test_bpe_replay_ends_in_the_encoding(bpe, text):
    replay = bpe_replay(bpe, text)
    assert [i for r in replay for i in r.ids] == bpe.encode(text)
    ranks = {pair: r for r, pair in enumerate(bpe.merges())}
    for r in replay:
        assert "".join(r.start) == "".join(r.final)
        assert [readable(p) for p in r.final] == [bpe.token_str(i) for i in r.ids]
        parts = r.start
        for step in r.steps:        # each step merges a learned pair, in the order the merges were learned
            assert ranks[step.pair] == step.rank and step.pair[0] + step.pair[1] in step.parts
            assert len(step.parts) < len(parts)
            parts = step.parts
        assert [s.rank for s in r.steps] == sorted({s.rank for s in r.steps})   # learned order, no repeats


def test_bpe_replay_of_a_frequent_word_uses_merges(bpe):
    replay = bpe_replay(bpe, " tokens")
    assert len(replay) == 1 and replay[0].text == " tokens"
    assert readable("".join(replay[0].start)) == "␣tokens" and len(replay[0].start) == 7
    assert replay[0].steps and len(replay[0].final) < 7


def test_bpe_replay_refuses_other_kinds():
    with pytest.raises(TokenizerError, match="BPE"):
        bpe_replay(build_tokenizer("char", "abc"), "abc")


def test_lowercased_word_spans_follow_encode_when_lowercasing_changes_the_length():
    """'İ'.lower() is 'i' plus a combining dot (one character longer): encode() keeps the mark with its word, so
    'İstanbul' is one token, and its span must cover the original word (offsets still into the original text)."""
    tok = build_tokenizer("word", "café naïve İstanbul the", lowercase=True)
    text = "Café İstanbul naïve"
    spans = token_spans(tok, text)
    assert [s.id for s in spans] == tok.encode(text) and len(spans) == 3
    assert tok.tokens[spans[1].id] == "i\u0307stanbul"
    assert [text[s.start:s.end] for s in spans] == ["Café", "İstanbul", "naïve"]
