"""n-gram LM: true distributions for every smoothing, hand-computed values on a tiny corpus, vectorized evaluation
agreeing with per-context distributions, checkpoint round trip and the config errors."""
import math
import warnings

import numpy as np
import pytest

from engine.checkpoint import load_group, save_checkpoint
from engine.corpus import split_text
from engine.errors import CheckpointError, ConfigError, TrainingError
from engine.models.ngram import SMOOTHINGS, NGramConfig, NGramLM
from engine.tokenizers import build_tokenizer

A, B, C, D = 0, 1, 2, 3
TINY = [A, B, A, B, C]  # "a b a b c" over the vocabulary {a, b, c, d}; d never occurs


def fit(ids, vocab_size=4, **cfg) -> NGramLM:
    return NGramLM(NGramConfig(vocab_size=vocab_size, **cfg)).fit(np.array(ids))


@pytest.fixture
def char_ids(small_text):
    tok = build_tokenizer("char", small_text)
    train, val = split_text(small_text)
    return tok.vocab_size, np.array(tok.encode(train)), np.array(tok.encode(val))


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_every_distribution_sums_to_one(char_ids, seed, smoothing, order):
    V, train, val = char_ids
    model = NGramLM(NGramConfig(vocab_size=V, order=order, smoothing=smoothing)).fit(train)
    rng = np.random.default_rng(seed)
    contexts = [[]] + [train[i - L:i].tolist() for i, L in zip(rng.integers(6, len(train), 40), rng.integers(0, 6, 40))]
    contexts += [rng.integers(0, V, rng.integers(1, 7)).tolist() for _ in range(40)]  # mostly unseen
    for ctx in contexts:
        p = model.next_distribution(ctx)
        assert p.shape == (V,) and p.dtype == np.float64
        assert np.all(p >= 0)
        assert abs(p.sum() - 1.0) < 1e-9
        info = model.explain(ctx)
        assert 0 <= info["order_used"] <= order and 0.0 <= info["backoff_mass"] <= 1.0 + 1e-12


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 3, 4])
def test_vectorized_log_probs_match_next_distribution(char_ids, smoothing, order):
    V, train, val = char_ids
    model = NGramLM(NGramConfig(vocab_size=V, order=order, smoothing=smoothing)).fit(train)
    ids = val[:150]
    with np.errstate(divide="ignore"):
        expected = [np.log(model.next_distribution(ids[max(t - order + 1, 0):t])[ids[t]]) for t in range(len(ids))]
    np.testing.assert_allclose(model.log_probs(ids), expected, rtol=1e-12, atol=1e-12)


def test_kneser_ney_by_hand():
    # Bigram KN, D = 0.5, on "a b a b c". Bigrams: (a,b) x2, (b,a), (b,c).
    # Unigram level uses continuation counts N1+(. w) = distinct bigrams ending in w: a 1, b 1, c 1, d 0; total 3,
    #   3 types, so P1(w) = max(N1+ - 0.5, 0) / 3 + 0.5 * 3/3 * 1/4: a, b, c = 1/6 + 1/8 = 7/24; d = 3/24.
    # Context b: counts (b,a) 1, (b,c) 1; c(b) = 2, 2 types -> weight 0.5 * 2/2 = 1/2 on P1.
    #   P(a|b) = 0.5/2 + 1/2 * 7/24 = 19/48, P(b|b) = 7/48, P(c|b) = 19/48, P(d|b) = 3/48.
    # Context a: (a,b) 2; c(a) = 2, 1 type -> weight 0.5 * 1/2 = 1/4.
    #   P(b|a) = 1.5/2 + 1/4 * 7/24 = 79/96, P(a|a) = P(c|a) = 7/96, P(d|a) = 3/96.
    # Context c (only at the end, never followed) and d (never seen) fall back to P1.
    m = fit(TINY, order=2, smoothing="kneser-ney", discount=0.5)
    np.testing.assert_allclose(m.next_distribution([B]), np.array([19, 7, 19, 3]) / 48, rtol=1e-12)
    np.testing.assert_allclose(m.next_distribution([A]), np.array([7, 79, 7, 3]) / 96, rtol=1e-12)
    for ctx in ([C], [D], []):
        np.testing.assert_allclose(m.next_distribution(ctx), np.array([7, 7, 7, 3]) / 24, rtol=1e-12)
    info = m.explain([A])
    assert (info["order_used"], info["context_count"], info["continuations"]) == (2, 2.0, 1)
    assert info["backoff_mass"] == pytest.approx(0.25)                      # the weight on P1 in context a
    assert [o["context_seen"] for o in info["orders"]] == [True, True]
    assert m.explain([D])["order_used"] == 1 and m.explain([D])["backoff_mass"] == pytest.approx(0.5)

    # Trigram: top order uses raw counts, the middle order continuation counts of bigrams (each bigram has one
    # distinct left neighbour: (a,b) <- b, (b,a) <- a, (b,c) <- a), the bottom order is P1 above.
    #   middle, context b: (b,a) 1, (b,c) 1 -> P2(a|b) = P2(c|b) = 0.25 + 0.5 * 7/24 = 19/48, P2(b|b) = 7/48,
    #   P2(d|b) = 3/48.  top, context (a,b): (a,b,a) 1, (a,b,c) 1 -> weight 1/2 on P2:
    #   P(a|ab) = 0.25 + 19/96 = 43/96, P(b|ab) = 7/96, P(c|ab) = 43/96, P(d|ab) = 3/96.
    m3 = fit(TINY, order=3, smoothing="kneser-ney", discount=0.5)
    np.testing.assert_allclose(m3.next_distribution([A, B]), np.array([43, 7, 43, 3]) / 96, rtol=1e-12)


def test_interpolation_by_hand():
    # lambdas (1/4, 3/4); the unigram is add-1: counts a 2, b 2, c 1, d 0 over 5 tokens -> (3, 3, 2, 1) / 9.
    # Context a: ML(b|a) = 1, so P(b|a) = 3/4 + 1/4 * 3/9 = 5/6, P(a|a) = 1/12, P(c|a) = 1/18, P(d|a) = 1/36.
    m = fit(TINY, order=2, smoothing="interpolation", lambdas=(0.25, 0.75), k=1.0)
    np.testing.assert_allclose(m.next_distribution([A]), [1 / 12, 5 / 6, 1 / 18, 1 / 36], rtol=1e-12)
    # An unseen context drops its order's weight: only the unigram is left.
    np.testing.assert_allclose(m.next_distribution([D]), np.array([3, 3, 2, 1]) / 9, rtol=1e-12)
    assert m.explain([A])["backoff_mass"] == pytest.approx(0.25)


def test_add_k_by_hand():
    # k = 0.5, context b: counts (b,a) 1, (b,c) 1, c(b) = 2 -> (c + 0.5) / (2 + 0.5 * 4) = (1.5, .5, 1.5, .5) / 4.
    m = fit(TINY, order=2, smoothing="add-k", k=0.5)
    np.testing.assert_allclose(m.next_distribution([B]), [0.375, 0.125, 0.375, 0.125], rtol=1e-12)
    np.testing.assert_allclose(m.next_distribution([D]), [0.25] * 4, rtol=1e-12)
    # Laplace (k = 1) unigram: (2+1, 2+1, 1+1, 0+1) / (5 + 4).
    np.testing.assert_allclose(fit(TINY, order=1, smoothing="add-k").next_distribution([]),
                               np.array([3, 3, 2, 1]) / 9, rtol=1e-12)


def test_katz_by_hand():
    # D = 0.5. Unigrams: (c - 0.5)/5 -> a .3, b .3, c .1; reserved 0.5 * 3/5 = .3 goes to d (uniform floor).
    # Context a: P(b|a) = (2 - .5)/2 = .75; reserved .25 spread over a, c, d in proportion to P1 (.3, .1, .3).
    m = fit(TINY, order=2, smoothing="katz", discount=0.5)
    np.testing.assert_allclose(m.next_distribution([]), [0.3, 0.3, 0.1, 0.3], rtol=1e-12)
    np.testing.assert_allclose(m.next_distribution([A]), [0.25 * 3 / 7, 0.75, 0.25 / 7, 0.25 * 3 / 7], rtol=1e-12)
    # A context followed by every token has nothing to back off to: its counts are used undiscounted.
    full = fit([A, A, A, B, A, C], vocab_size=3, order=2, smoothing="katz", discount=0.5)
    np.testing.assert_allclose(full.next_distribution([A]), [0.5, 0.25, 0.25], rtol=1e-12)
    assert full.explain([A])["backoff_mass"] == pytest.approx(0.0)


def test_stupid_backoff_is_normalised():
    # alpha 0.4. Unigram scores .4, .4, .2 and 0.4 * 1/4 for d; normalised by 1.1.
    # Context a: score 1 for b, 0.4 * P1 for the rest (P1 sums to .7/1.1 over a, c, d); Z = 1 + 0.4 * .7/1.1.
    m = fit(TINY, order=2, smoothing="stupid-backoff", backoff_alpha=0.4)
    p1 = np.array([0.4, 0.4, 0.2, 0.1]) / 1.1
    np.testing.assert_allclose(m.next_distribution([]), p1, rtol=1e-12)
    z = 1 + 0.4 * 0.7 / 1.1
    np.testing.assert_allclose(m.next_distribution([A]), [0.4 * p1[0] / z, 1 / z, 0.4 * p1[2] / z, 0.4 * p1[3] / z],
                               rtol=1e-12)


def test_mle_by_hand_and_infinite_on_unseen():
    m = fit(TINY, order=2, smoothing="mle")
    # P(a) = 2/5 (first token, no context), P(b|a) = 1, P(a|b) = 1/2, P(b|a) = 1, P(c|b) = 1/2.
    assert m.evaluate(TINY) == pytest.approx(-(math.log(0.4) + 2 * math.log(0.5)) / 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.evaluate([A, B, B, A]) == math.inf      # (b,b) never seen
        assert m.evaluate([D]) == math.inf               # d never seen at all
    assert m.explain([A])["backoff_mass"] == 0.0


def test_short_training_text_and_start_of_sequence():
    m = fit([A, B], order=4, smoothing="kneser-ney")
    for ctx in ([], [A], [A, B], [A, B, C], [D, D, D]):
        assert m.next_distribution(ctx).sum() == pytest.approx(1.0)
    assert math.isfinite(m.evaluate([A, B, C, D, A, B]))


def test_fit_iter_progress_and_num_params():
    m = NGramLM(NGramConfig(vocab_size=4, order=3))
    progress = list(m.fit_iter(np.array(TINY)))
    assert progress == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    # distinct n-grams of "a b a b c": 3 unigrams, 3 bigrams, 3 trigrams
    assert m.num_params() == 9
    assert m.flops_per_token() == 0.0


def test_checkpoint_round_trip(tmp_path, char_ids):
    V, train, val = char_ids
    cfg = NGramConfig(vocab_size=V, order=4, smoothing="katz")
    model = NGramLM(cfg).fit(train)
    save_checkpoint(tmp_path, {"model": cfg.to_dict()}, {"ngram": model.state_arrays()})
    arrays = load_group(tmp_path, "ngram", as_torch=False, dtypes=("I64",))
    again = NGramLM.from_arrays(NGramConfig.from_dict(cfg.to_dict()), arrays)
    assert again.evaluate(val) == model.evaluate(val)
    np.testing.assert_array_equal(again.next_distribution(val[:3]), model.next_distribution(val[:3]))
    # the same counts under another smoothing need no recount
    kn = NGramLM.from_arrays(NGramConfig(vocab_size=V, order=4, smoothing="kneser-ney"), arrays)
    assert kn.evaluate(val) == NGramLM(NGramConfig(vocab_size=V, order=4)).fit(train).evaluate(val)
    with pytest.raises(CheckpointError, match="do not fit a vocabulary of 3"):
        NGramLM.from_arrays(NGramConfig(vocab_size=3, order=4), arrays)
    del arrays["suffix_2"]
    with pytest.raises(CheckpointError, match="missing array 'suffix_2'"):
        NGramLM.from_arrays(cfg, arrays)


@pytest.mark.parametrize("bad,message", [
    ({"order": 0}, "order must be an integer from 1 to 6"),
    ({"order": 7}, "order must be an integer from 1 to 6"),
    ({"smoothing": "witten-bell"}, "unknown smoothing 'witten-bell'; choose one of mle, add-k"),
    ({"k": 0.0}, "k > 0"),
    ({"discount": 1.0}, "discount must be between 0 and 1"),
    ({"backoff_alpha": 0.0}, "backoff_alpha"),
    ({"lambdas": (0.5, 0.5)}, "one weight per order"),
    ({"lambdas": (0.2, 0.2, 0.2)}, "sum to 1"),
    ({"lambdas": (0.0, 0.5, 0.5)}, "positive unigram weight"),
    ({"lambdas": "a,b,c"}, "lambdas must be 3 numbers"),
])
def test_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        NGramConfig(**{"vocab_size": 10, "order": 3, **bad})


def test_config_dict_round_trip_and_string_lambdas():
    cfg = NGramConfig.from_dict({"vocab_size": 10, "order": 3, "smoothing": "interpolation",
                                 "lambdas": "0.2,0.3,0.5"})
    assert cfg.lambdas == (0.2, 0.3, 0.5)
    assert NGramConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown NGramConfig setting"):
        NGramConfig.from_dict({"vocab_size": 10, "ordr": 3})


def test_user_errors():
    m = NGramLM(NGramConfig(vocab_size=4, order=2))
    with pytest.raises(TrainingError, match="not been trained"):
        m.next_distribution([A])
    with pytest.raises(ConfigError, match="token id 9 is outside the model's vocabulary"):
        m.fit(np.array([A, B, 9]))
    next(m.fit_iter(np.array(TINY)))  # counting abandoned after the first order
    with pytest.raises(TrainingError, match="not been trained"):
        m.evaluate([A, B])
    m.fit(np.array(TINY))
    with pytest.raises(ConfigError, match="token id -1"):
        m.next_distribution([-1])


def test_kneser_ney_on_shakespeare_is_finite_and_beats_lower_orders(shakespeare_text):
    tok = build_tokenizer("char", shakespeare_text)
    train, val = split_text(shakespeare_text)
    train_ids, val_ids = np.array(tok.encode(train)), np.array(tok.encode(val))
    losses = [NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=n)).fit(train_ids).evaluate(val_ids)
              for n in (1, 3)]
    assert all(math.isfinite(x) for x in losses)
    assert losses[1] < losses[0] < math.log(tok.vocab_size)
