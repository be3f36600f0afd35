"""The n-gram explanation: its counts equal counts done by hand on a tiny corpus, its pieces put back into each
smoothing's formula give the model's probability (to 1e-9) for every smoothing, and the CLI's --explain prints
one JSON line per generated token."""
import json
import math
from collections import Counter

import numpy as np
import pytest

from engine.cli import main
from engine.models.ngram import SMOOTHINGS, NGramConfig, NGramLM
from engine.models.ngram_explain import FORMULAS, describe, explain_token, recombine
from engine.tokenizers import build_tokenizer

TEXT = "abracadabra cab"


def _model(order, smoothing, text=TEXT, **kw):
    tok = build_tokenizer("char", text)
    return tok, NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=order, smoothing=smoothing, **kw)).fit(
        np.array(tok.encode(text)))


def _grams(text, j):
    return Counter(text[i:i + j] for i in range(len(text) - j + 1))


def _by_hand(text, h, w, continuation):
    """(c(h w), c(h) summed over followers, followers N1+(h •)) counted with Counters; with `continuation` the
    counts are Kneser-Ney's N1+(• h v): distinct tokens seen before h v."""
    j = len(h) + 1
    if continuation:
        left = Counter(g[1:] for g in _grams(text, j + 1))   # each distinct (j+1)-gram once
        follow = {g: left[g] for g in _grams(text, j) if g.startswith(h)}
    else:
        follow = {g: c for g, c in _grams(text, j).items() if g.startswith(h)}
    return follow.get(h + w, 0), sum(follow.values()), sum(1 for c in follow.values() if c > 0)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("ctx,w", [("abr", "a"), ("cad", "a"), ("zab", "r"), ("a c", "a"), ("bra", "b"),
                                   ("", "a"), ("ca", "d"), ("rac", "z"), ("ab", "a")])
def test_counts_match_hand_counts(smoothing, ctx, w):
    text = TEXT + "z"   # z occurs once, at the very end: never followed, never a context
    tok, m = _model(4, smoothing, text)
    e = explain_token(m, tok.encode(ctx), tok.encode(w)[0])
    assert [o["order"] for o in e["orders"]] == list(range(1, len(ctx) + 2))
    for o in e["orders"]:
        h = ctx[len(ctx) - o["order"] + 1:]
        cont = smoothing == "kneser-ney" and o["order"] < 4
        count, total, followers = _by_hand(text, h, w, cont)
        assert (o["count"], o["context_count"], o["followers"]) == (count, total, followers), (h, o)
        if "raw_count" in o:
            assert (o["raw_count"], o["raw_context_count"]) == _by_hand(text, h, w, False)[:2]
        assert o["context_seen"] == (total > 0)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_pieces_recombine_to_the_models_probability(small_text, seed, smoothing, order):
    tok = build_tokenizer("char", small_text)
    ids = np.array(tok.encode(small_text))
    m = NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=order, smoothing=smoothing)).fit(ids[:3000])
    rng = np.random.default_rng(seed)
    lp = m.log_probs(ids[3000:3200])
    for t in range(order, 200, 7):       # held-out text: seen and unseen contexts, true next tokens
        ctx = ids[3000 + t - order + 1:3000 + t].tolist()
        e = explain_token(m, ctx, int(ids[3000 + t]))
        assert abs(recombine(e) - math.exp(lp[t])) < 1e-9 and abs(e["probability"] - math.exp(lp[t])) < 1e-9
    for _ in range(30):                  # random tokens, random (mostly unseen) contexts
        ctx = rng.integers(0, tok.vocab_size, rng.integers(0, order)).tolist()
        w = int(rng.integers(0, tok.vocab_size))
        e = explain_token(m, ctx, w)
        assert abs(recombine(e) - m.next_distribution(ctx)[w]) < 1e-9
        for mine, model in zip(e["orders"], m.explain(ctx)["orders"]):
            if model["context_seen"]:
                assert mine["mass_down"] == pytest.approx(model["backoff_mass"], abs=1e-9)


def test_kneser_ney_pieces_by_hand():
    # The bigram case of tests/engine/test_ngram.py: "abab c" style, here "ababc" as characters, D = 0.5.
    tok, m = _model(2, "kneser-ney", "ababc", discount=0.5)
    a, b, c = (tok.encode(x)[0] for x in "abc")
    e = explain_token(m, [a], b)
    top, low = e["orders"][1], e["orders"][0]
    assert (top["count"], top["context_count"], top["followers"]) == (2, 2, 1)
    assert top["A"] == pytest.approx((2 - 0.5) / 2) and top["B"] == pytest.approx(0.5 * 1 / 2)
    # continuation: b is preceded only by a -> N1+(. b) = 1, of 3 distinct bigrams
    assert e["kn_continuation"] == {"count": 1, "total": 3}
    assert low["p"] == pytest.approx(0.5 / 3 + 0.5 * 3 / 3 / 3)
    assert e["probability"] == pytest.approx(m.next_distribution([a])[b], abs=1e-12)
    assert e["order_used"] == 2 and e["ngram_order"] == 2


def test_backoff_names_the_order_that_answered():
    # "cad" as a context was seen once (followed by a); "zad" never: katz backs off to the bigram "d a"...
    tok, m = _model(4, "katz", TEXT)
    e = explain_token(m, tok.encode("bad"), tok.encode("a")[0])
    assert [o["context_seen"] for o in e["orders"]] == [True, True, True, False]
    assert e["order_used"] == 3 and e["ngram_order"] == 3
    lines = describe(e, tok.token_str)
    assert "trigram context 'ad'" in lines[1] and "order 3 answered" in lines[2]
    assert lines[-1] == "Formula: " + FORMULAS["katz"]
    unseen = explain_token(m, tok.encode("abr"), tok.encode("c")[0])   # "brc", "rc", "c" after r: never
    assert unseen["ngram_order"] == 1 and unseen["orders"][-1]["seen"] is False


def test_every_smoothing_has_words_and_a_formula(small_text):
    tok = build_tokenizer("char", small_text)
    for s in SMOOTHINGS:
        m = NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=3, smoothing=s)).fit(np.array(tok.encode(small_text)))
        lines = describe(explain_token(m, tok.encode("the"), tok.encode(" ")[0]), tok.token_str)
        assert len(lines) >= 6 and all(isinstance(x, str) and x for x in lines)
        assert not any("nan" in x.lower() for x in lines)


def test_cli_explain_prints_a_line_per_token(tmp_path, capsys, small_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text)
    assert main(["train", "--corpus", str(corpus), "--tokenizer", "char", "--model", "ngram", "--set", "order=4",
                 "--quiet", "--out", str(tmp_path / "ng")]) == 0
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tmp_path / "ng"), "--prompt", "the k", "--explain",
                 "--max-new-tokens", "12", "--seed", "3"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 12 and [x["step"] for x in lines] == list(range(1, 13))
    for x in lines:
        assert x["smoothing"] == "kneser-ney" and len(x["orders"]) == 4 and x["explanation"]
        assert abs(x["probability"] - x["model_prob"]) < 1e-9
        assert 0 <= x["order_used"] <= 4 and x["kn_continuation"]["total"] > 0


def test_cli_explain_refuses_a_neural_model(tmp_path, capsys, small_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text)
    assert main(["train", "--corpus", str(corpus), "--model", "rnn", "--preset", "tiny-cpu-rnn", "--max-steps", "1",
                 "--quiet", "--out", str(tmp_path / "rnn")]) == 0
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tmp_path / "rnn"), "--prompt", "the", "--explain"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error:" in err and "n-gram" in err
