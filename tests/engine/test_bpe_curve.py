"""BPE size against length: the curve's token counts equal the cut tokenizer's own encoding at every point, fall
as merges are added, start at the text's UTF-8 bytes and end at the full tokenizer's encoding."""
import numpy as np
import pytest

from engine.errors import TokenizerError
from engine.tokenizers import build_tokenizer
from engine.tokenizers.bpe_curve import (length_curve, merge_count, merge_grid, sampled_curve, truncated,
                                         vocab_after)


@pytest.fixture(scope="module")
def bpe():
    text = ("the king and queen walk to the castle where a knight waits; café, naïve — 東京 ✓\n" * 40
            + "rain falls on the old stone walls and the people sing songs of hope\n" * 30)
    return build_tokenizer("bpe", text, vocab_size=400), text


@pytest.mark.parametrize("curve_of", [lambda tok, text: sampled_curve(tok, text, points=12), length_curve])
def test_curve_matches_the_cut_tokenizers_encoding(bpe, curve_of):
    tok, text = bpe
    curve = curve_of(tok, text)
    assert curve.merges[0] == 0 and curve.merges[-1] == merge_count(tok) == tok.vocab_size - 256
    assert curve.tokens[0] == len(text.encode("utf-8"))            # no merges: one token per byte
    assert curve.tokens[-1] == len(tok.encode(text))                # every merge: the tokenizer itself
    for m, n in zip(curve.merges, curve.tokens):
        assert n == len(truncated(tok, int(m)).encode(text))
    assert np.all(np.diff(curve.tokens) <= 0)                        # more merges never lengthen the text
    assert np.all(np.diff(curve.chars_per_token) >= 0)
    assert curve.chars_per_token[-1] == pytest.approx(len(text) / len(tok.encode(text)))
    np.testing.assert_array_equal(curve.vocab_sizes, 256 + curve.merges)


def test_every_merge_count_is_monotone(bpe):
    tok, text = bpe
    lengths = [len(truncated(tok, m).encode(text)) for m in range(merge_count(tok) + 1)]
    assert all(b <= a for a, b in zip(lengths, lengths[1:]))
    curve = sampled_curve(tok, text, merges=np.arange(0, merge_count(tok) + 1, 7))
    assert curve.tokens.tolist() == lengths[::7]
    exact = length_curve(tok, text)                                  # every merge count, from one encoding
    assert exact.tokens.tolist() == lengths
    counts = np.bincount(tok.encode(text), minlength=tok.vocab_size)
    assert length_curve(tok, text, counts=counts).tokens.tolist() == lengths


def test_cut_tokenizer_keeps_ids_and_round_trips(bpe):
    tok, text = bpe
    sample = text[:200]
    for m in (0, 1, 50, merge_count(tok)):
        cut = truncated(tok, m)
        ids = cut.encode(sample)
        assert cut.decode(ids) == sample
        assert max(ids) < 256 + m or m == 0 and max(ids) < 256
        if m == merge_count(tok):
            assert ids == tok.encode(sample)
    assert [tok.token_str(i) for i in truncated(tok, 0).encode("ab")] == ["a", "b"]


def test_bad_requests_are_refused(bpe):
    tok, text = bpe
    for m in (-1, merge_count(tok) + 1, 2.5):
        with pytest.raises(TokenizerError):
            truncated(tok, m)
    for curve_of in (length_curve, sampled_curve):
        with pytest.raises(TokenizerError):
            curve_of(build_tokenizer("char", "abc"), "abc")
    with pytest.raises(TokenizerError):
        length_curve(tok, "x\udcffy")


def test_grid_and_vocab_sizes():
    assert merge_grid(0).tolist() == [0]
    assert merge_grid(5, 33).tolist() == [0, 1, 2, 3, 4, 5]
    g = merge_grid(1744)
    assert g[0] == 0 and g[-1] == 1744 and len(g) == 33
    assert vocab_after([("a", "b"), ("ab", "c"), ("a", "bc")]).tolist() == [256, 257, 258, 258]


def test_cancel_stops_early(bpe):
    tok, text = bpe
    calls = []
    curve = sampled_curve(tok, text, points=10, cancel=lambda: calls.append(1) or len(calls) > 3)
    assert len(curve.merges) == len(curve.tokens) == 3


def test_merges_that_make_the_same_token_fall_back_to_measuring(bpe, monkeypatch):
    from engine.tokenizers import bpe_curve
    tok, text = bpe
    merges = tok.merges()
    monkeypatch.setattr(type(tok), "merges", lambda self: merges + [merges[-1]])
    monkeypatch.setattr(bpe_curve, "sampled_curve", lambda *a, **k: "measured")
    assert length_curve(tok, text) == "measured"


def test_the_tokens_tab_result_carries_the_curve(bpe):
    from engine.tokenizers.inspect import analyse
    _, text = bpe
    r = analyse(text, "bpe", 0.1, kind="bpe", options={"vocab_size": 300})
    assert r.curve.tokens[-1] == r.stats.train_tokens and r.curve.chars == r.stats.train_chars
    assert r.curve.chars_per_token[-1] == pytest.approx(r.stats.chars_per_token)
    assert analyse(text, "char", 0.1, kind="char").curve is None
