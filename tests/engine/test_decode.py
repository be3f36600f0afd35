"""Decoding invariants on tiny models (CPU): the strategies agree where theory says they must, beam search finds
what exhaustive search finds, cached decoding equals recomputing, samples follow the truncated distribution."""
import itertools
import random
import threading

import numpy as np
import pytest
import torch

from engine.decode import DecodeConfig, complete, generate
from engine.errors import ConfigError, PlaygroundError, TokenizerError
from engine.models.ngram import NGramConfig, NGramLM
from engine.models.rnn import RNNConfig, RNNLM
from engine.models.transformer import GPT, GPTConfig
from engine.tokenizers import build_tokenizer
from engine.tokenizers.char import CharTokenizer
from engine.tokenizers.word import WordTokenizer

FAMILIES = ("ngram", "rnn", "lstm", "gru", "gpt")
# n-gram training text: uneven random letters, chosen so no context has two equally likely next tokens
TEXT = "".join(random.Random(6).choices("abc\n", weights=[5, 3, 2, 1], k=400))
BLOCK = 8  # GPT context: tests run well past it


def _peaky(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights large enough that next-token distributions are far from uniform (no near-ties), in float64
    so cached and uncached arithmetic agree to ~1e-15 and argmax comparisons are not at the mercy of rounding."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.4)
    return model.double().eval()


def make_model(family: str, tok, pos: str = "rope", block: int = BLOCK):
    V = tok.vocab_size
    if family == "ngram":
        return NGramLM(NGramConfig(vocab_size=V, order=3, smoothing="add-k", k=0.1)).fit(np.array(tok.encode(TEXT)))
    if family == "gpt":
        return _peaky(GPT(GPTConfig(vocab_size=V, block_size=block, n_layer=2, n_head=2, n_embd=8, pos=pos)), 1)
    return _peaky(RNNLM(RNNConfig(vocab_size=V, cell=family, n_layer=2, n_embd=6, n_hidden=6)), 2)


@pytest.fixture
def tok():
    return CharTokenizer("abc\n")  # vocabulary of 4: small enough to search exhaustively


def tokens(events):
    return [e.token_id for e in events if not e.done]


def run(model, tok, prompt="ab", **kw):
    return complete(model, tok, prompt, DecodeConfig(**kw))


def next_logits(model, ids):
    """The model's next-token logits (n-gram: log-probabilities), computed the slow, obvious way: no state, no
    cache, the GPT cropped to its last block_size tokens."""
    if isinstance(model, NGramLM):
        with np.errstate(divide="ignore"):
            return np.log(model.next_distribution(ids))
    if isinstance(model, GPT):
        ids = ids[-model.config.block_size:]
    with torch.no_grad():
        return model(torch.tensor([ids]))[0][0, -1].double().numpy()


def log_softmax(x):
    return x - x.max() - np.log(np.exp(x - x.max()).sum())


def next_logprobs(model, ids):
    return log_softmax(next_logits(model, ids))


# ---------------------------------------------------------------- strategies that must equal greedy

@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_equivalents(family, tok):
    model = make_model(family, tok)
    greedy = tokens(run(model, tok, strategy="greedy", max_new_tokens=12)[1])
    # greedy really is the argmax of the model at every step
    ids = tok.encode("ab")
    for t in greedy:
        logp = next_logprobs(model, ids)
        assert t == int(np.argmax(logp)) and np.sort(logp)[-2] < logp[t] - 1e-6  # a unique argmax
        ids.append(t)
    assert tokens(run(model, tok, strategy="sample", top_k=1, seed=3, max_new_tokens=12)[1]) == greedy
    assert tokens(run(model, tok, strategy="sample", temperature=0.0, seed=3, max_new_tokens=12)[1]) == greedy
    assert tokens(run(model, tok, strategy="sample", temperature=1e-4, seed=3, max_new_tokens=12)[1]) == greedy
    beam = run(model, tok, strategy="beam", beam_width=1, max_new_tokens=12)
    assert tokens(beam[1]) == greedy
    assert beam[0] == tok.decode(greedy)


@pytest.mark.parametrize("family", FAMILIES)
def test_no_op_truncation_equals_plain_sampling(family, tok):
    model = make_model(family, tok)
    plain = tokens(run(model, tok, seed=11, max_new_tokens=20)[1])
    assert tokens(run(model, tok, seed=11, max_new_tokens=20, top_p=1.0)[1]) == plain
    assert tokens(run(model, tok, seed=11, max_new_tokens=20, top_k=tok.vocab_size)[1]) == plain
    assert tokens(run(model, tok, seed=11, max_new_tokens=20, min_p=0.0)[1]) == plain
    assert len(set(plain)) > 1  # really sampled, not stuck on one token


def test_same_seed_same_sample_and_global_rng_untouched(tok):
    model = make_model("gpt", tok)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    a = run(model, tok, seed=5, max_new_tokens=30)
    b = run(model, tok, seed=5, max_new_tokens=30)
    assert tokens(a[1]) == tokens(b[1]) and a[0] == b[0]
    assert [e.prob for e in a[1]] == [e.prob for e in b[1]]
    assert tokens(run(model, tok, seed=6, max_new_tokens=30)[1]) != tokens(a[1])
    assert (np.random.get_state()[1] == np_state).all() and torch.equal(torch.get_rng_state(), torch_state)


# ---------------------------------------------------------------- beam search against exhaustive search

def seq_logprob(model, prompt_ids, seq):
    ids, total = list(prompt_ids), 0.0
    for t in seq:
        total += next_logprobs(model, ids)[t]
        ids.append(t)
    return total


@pytest.mark.parametrize("family", FAMILIES)
def test_beam_as_wide_as_vocab_finds_most_likely_pair(family, tok):
    """With width = V every one-token prefix survives step 1, so step 2 ranks all V² sequences: beam search must
    return the exhaustive argmax. (For more tokens width = V is not exhaustive in general; see the next test.)"""
    model = make_model(family, tok)
    prompt = tok.encode("ab")
    oracle = max(itertools.product(range(4), repeat=2), key=lambda s: seq_logprob(model, prompt, s))
    text, events = run(model, tok, strategy="beam", beam_width=4, length_penalty=0.0, max_new_tokens=2)
    assert text == tok.decode(oracle)
    winner = max(events[-2].beams, key=lambda b: b.score)
    assert winner.token_ids == oracle
    assert winner.logprob == pytest.approx(seq_logprob(model, prompt, oracle), abs=1e-9)


def penalised_logprobs(model, ids, penalty):
    x = next_logits(model, ids)
    seen = np.isin(np.arange(len(x)), ids)
    return log_softmax(np.where(seen & (x > 0), x / penalty, np.where(seen, x * penalty, x)))


def reference_beam(model, prompt_ids, width, steps, V, penalty=1.0):
    """Textbook beam search: rescore every hypothesis from scratch, keep the `width` best each step."""
    live = [((), 0.0)]
    for _ in range(steps):
        cands = [(seq + (t,), lp + penalised_logprobs(model, list(prompt_ids) + list(seq), penalty)[t])
                 for seq, lp in live for t in range(V)]
        live = sorted(cands, key=lambda c: -c[1])[:width]
    return live


@pytest.mark.parametrize("family,block", [(f, BLOCK) for f in FAMILIES] + [("gpt", 4 * BLOCK)])
@pytest.mark.parametrize("use_cache,penalty", [(True, 1.0), (False, 1.0), (True, 1.6)])
def test_batched_beam_equals_textbook_beam(family, block, use_cache, penalty, tok):
    """Batched rows with reordered state (and, with the short GPT block, the window sliding) must keep exactly the
    hypotheses a from-scratch beam search keeps, with the same log-probabilities."""
    model = make_model(family, tok, block=block)
    steps, shuffled = 7, False
    for prompt in ("c\nb", "cab\nc"):
        want = reference_beam(model, tok.encode(prompt), 3, steps, 4, penalty)
        events = run(model, tok, prompt, strategy="beam", beam_width=3, length_penalty=0.0, max_new_tokens=steps,
                     use_cache=use_cache, repetition_penalty=penalty)[1]
        finished = events[-2].beams
        assert [b.token_ids for b in finished] == [s for s, _ in want]
        assert [b.logprob for b in finished] == pytest.approx([lp for _, lp in want], abs=1e-9)
        assert events[-1].finish_reason == "max_tokens" and events[-1].final_text == tok.decode(want[0][0])
        parents = [[b.parent for b in e.beams if b.alive] for e in events[:-2]]
        shuffled |= any(p != sorted(p) for p in parents)
    assert shuffled  # some step reordered the rows out of order, so the state reorder was really exercised


def test_beam_events_describe_a_tree(tok):
    model = make_model("lstm", tok)
    events = run(model, tok, strategy="beam", beam_width=2, length_penalty=1.0, max_new_tokens=5)[1]
    prev_live = [()]
    for ev in events[:-1]:
        live = [b for b in ev.beams if b.alive]
        for b in ev.beams + ev.pruned:
            assert b.token_ids[:-1] == prev_live[b.parent]  # every hypothesis extends a live parent
            assert b.text == tok.decode(b.token_ids)
            assert b.score == pytest.approx(b.logprob / len(b.token_ids))
        assert [b.logprob for b in live] == sorted((b.logprob for b in live), reverse=True)
        assert all(p.finish == "pruned" for p in ev.pruned)
        assert ev.token_id == live[0].token_ids[-1] if live else True
        prev_live = [b.token_ids for b in live]
    assert len(events[-2].pruned) > 0
    assert events[-1].final_text == max(events[-2].beams, key=lambda b: b.score).text


def test_length_penalty_changes_which_finished_beam_wins():
    """A stop string finishes hypotheses early. With alpha 0 the shortest wins on raw log-probability (here the
    empty text: every extra factor is below 1); a larger alpha ranks by logprob / len**alpha and a longer text wins."""
    tok = CharTokenizer("abc\n")
    model = make_model("gru", tok)
    winners = []
    for alpha in (0.0, 1.0, 2.0):
        events = run(model, tok, strategy="beam", beam_width=3, length_penalty=alpha, max_new_tokens=20, stop="c")[1]
        finished = [b for e in events[:-1] for b in e.beams if not b.alive]
        best = max(finished, key=lambda b: b.logprob / len(b.token_ids) ** alpha)
        assert events[-1].final_text == best.text and events[-1].finish_reason == "stop"
        assert all("c" not in b.text for b in finished)
        done_so_far = np.cumsum([sum(not b.alive for b in e.beams) for e in events[:-1]])
        assert done_so_far[-1] >= 3 > done_so_far[-2]  # stopped as soon as beam_width hypotheses finished
        winners.append(best.text)
    assert winners[0] == "" and winners[1] != ""


# ---------------------------------------------------------------- cached decoding equals recomputing

@pytest.mark.parametrize("pos", ["rope", "learned"])
@pytest.mark.parametrize("kw", [dict(strategy="greedy"), dict(seed=2), dict(seed=4, top_p=0.8, temperature=0.7)])
def test_kv_cache_equals_uncached_past_the_window(pos, kw, tok):
    model = make_model("gpt", tok, pos)
    cached = run(model, tok, "abc", max_new_tokens=3 * BLOCK, **kw)[1]
    plain = run(model, tok, "abc", max_new_tokens=3 * BLOCK, use_cache=False, **kw)[1]
    assert tokens(cached) == tokens(plain)
    # both equal the model's own forward on (at most) the last block_size tokens at every step
    ids = tok.encode("abc")
    for ev in cached[:-1]:
        assert ev.raw_prob == pytest.approx(np.exp(next_logprobs(model, ids)[ev.token_id]), rel=1e-9)
        ids.append(ev.token_id)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_rnn_state_carrying_equals_rerunning_prefix(family, tok):
    model = make_model(family, tok)
    carried = run(model, tok, "ab\nca", seed=9, max_new_tokens=25)[1]
    rerun = run(model, tok, "ab\nca", seed=9, max_new_tokens=25, use_cache=False)[1]
    assert tokens(carried) == tokens(rerun)
    assert [e.raw_prob for e in carried[:-1]] == pytest.approx([e.raw_prob for e in rerun[:-1]], rel=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_decoding_matches_cpu(tok):
    cpu = make_model("gpt", tok)
    gpu = make_model("gpt", tok).cuda()
    for kw in (dict(strategy="greedy"), dict(seed=1), dict(strategy="beam", beam_width=3)):
        assert tokens(run(gpu, tok, max_new_tokens=2 * BLOCK, **kw)[1]) == \
            tokens(run(cpu, tok, max_new_tokens=2 * BLOCK, **kw)[1])


# ---------------------------------------------------------------- the sampled distribution

UNIGRAM = "a" * 40 + "b" * 25 + "c" * 15 + "d" * 10 + "e" * 6 + "f" * 4


def expected(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0):
    """Truncated distribution computed independently, straight from the definitions."""
    p = np.array([40, 25, 15, 10, 6, 4], float) ** (1.0 / temperature)
    p /= p.sum()  # already sorted, most likely first
    keep = np.ones(6, bool)
    if top_k:
        keep[top_k:] = False
    if top_p < 1:
        q = np.where(keep, p, 0) / p[keep].sum()
        n = next(i + 1 for i in range(6) if q[:i + 1].sum() >= top_p)
        keep[n:] = False
    keep &= p >= min_p * p[0]
    return np.where(keep, p, 0) / p[keep].sum()


@pytest.mark.parametrize("kw", [dict(top_k=3), dict(top_p=0.7), dict(top_p=0.7, temperature=0.5),
                                dict(min_p=0.2), dict(top_k=5, top_p=0.9, temperature=1.5)])
def test_sample_frequencies_follow_truncated_distribution(kw):
    """An order-1 n-gram makes every token an independent draw, so one long generation is a frequency test."""
    tok = CharTokenizer.train(UNIGRAM)
    model = NGramLM(NGramConfig(vocab_size=6, order=1, smoothing="mle")).fit(np.array(tok.encode(UNIGRAM)))
    n = 3000
    events = run(model, tok, "a", seed=123, max_new_tokens=n, **kw)[1][:-1]
    q = expected(**kw)
    counts = np.bincount(tokens(events), minlength=6)
    assert (counts[q == 0] == 0).all()
    kept = q > 0
    chi2 = (((counts - n * q)[kept]) ** 2 / (n * q[kept])).sum()
    assert chi2 < 20.5  # the 0.999 quantile of chi-square with 5 degrees of freedom (at most 5 here)
    ev = events[0]
    assert ev.n_kept == kept.sum()
    assert ev.kept_mass + ev.cut_top_k + ev.cut_top_p + ev.cut_min_p == pytest.approx(1.0)
    assert ev.topk_probs == pytest.approx(q)  # top_n covers the whole vocabulary, best first
    assert ev.prob == pytest.approx(q[ev.token_id])
    assert ev.topk_raw_probs == pytest.approx([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])


def test_truncation_info(tok):
    tok = CharTokenizer.train(UNIGRAM)
    model = NGramLM(NGramConfig(vocab_size=6, order=1, smoothing="mle")).fit(np.array(tok.encode(UNIGRAM)))
    ev = run(model, tok, "a", seed=0, max_new_tokens=1, top_k=4, top_p=0.8, min_p=0.5, top_n=3)[1][0]
    # top-k drops e, f (0.10); top-p keeps a, b, c of the rest (0.65/0.90 < 0.8 <= 0.80/0.90), dropping d (0.10);
    # min-p drops c (0.15 < 0.5 × 0.4)
    assert (ev.cut_top_k, ev.cut_top_p, ev.cut_min_p) == pytest.approx((0.10, 0.10, 0.15))
    assert ev.kept_mass == pytest.approx(0.65) and ev.n_kept == 2
    assert list(ev.topk_ids) == [0, 1, 2] and ev.topk_probs == pytest.approx([0.4 / 0.65, 0.25 / 0.65, 0.0])
    assert ev.token_id in (0, 1) and ev.rank == ev.token_id


def test_repetition_penalty_is_ctrl(tok):
    tok = CharTokenizer.train(UNIGRAM)
    model = NGramLM(NGramConfig(vocab_size=6, order=1, smoothing="mle")).fit(np.array(tok.encode(UNIGRAM)))
    ev = run(model, tok, "ab", seed=0, max_new_tokens=1, repetition_penalty=2.0, temperature=0.5)[1][0]
    logp = np.log([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    logp[:2] *= 2.0  # seen tokens (a, b from the prompt); log-probabilities are negative, so multiplied
    want = np.exp(logp / 0.5) / np.exp(logp / 0.5).sum()
    assert np.sort(ev.topk_tempered_probs) == pytest.approx(np.sort(want))
    # a neural model's positive logits are divided instead
    gpt = make_model("gpt", CharTokenizer("abc\n"))
    ev = run(gpt, CharTokenizer("abc\n"), "a", max_new_tokens=1, strategy="greedy", repetition_penalty=3.0)[1][0]
    with torch.no_grad():
        logits = gpt(torch.tensor([[0]]))[0][0, -1].numpy()
    logits[0] = logits[0] / 3.0 if logits[0] > 0 else logits[0] * 3.0
    assert ev.token_id == int(np.argmax(logits))
    assert ev.prob == pytest.approx(np.exp(logits).max() / np.exp(logits).sum())


# ---------------------------------------------------------------- stopping, text, errors

def test_stop_string_ends_generation_and_is_cut(tok):
    model = make_model("ngram", tok)
    full = run(model, tok, seed=1, max_new_tokens=40)[0]
    assert "\n" in full
    text, events = run(model, tok, seed=1, max_new_tokens=40, stop="\n")
    assert text == full[:full.index("\n")]
    assert events[-1].finish_reason == "stop" and "".join(e.text for e in events) == text


def test_streamed_text_never_shows_a_stop_string_it_later_cuts():
    """With stop "\n\n", the first newline must be held back: once the second arrives it is not part of the text."""
    tok = build_tokenizer("char", "abc\n")
    model = NGramLM(NGramConfig(order=2, smoothing="add-k", k=0.01, vocab_size=tok.vocab_size))
    model.fit(np.array(tok.encode("abc\n\n" * 50)))
    text, events = complete(model, tok, "a", DecodeConfig(strategy="greedy", max_new_tokens=10, stop="\n\n"))
    assert text == "bc" and events[-1].finish_reason == "stop"
    assert "".join(e.text for e in events) == "bc"
    assert all("\n" not in e.text for e in events)


def test_stop_flag_between_tokens(tok):
    model = make_model("lstm", tok)
    flag = threading.Event()
    seen = []
    for ev in generate(model, tok, "ab", DecodeConfig(seed=1, max_new_tokens=50), stop_flag=flag):
        seen.append(ev)
        if len(seen) == 3:
            flag.set()
    assert len(seen) == 4 and seen[-1].done and seen[-1].finish_reason == "stopped"
    assert seen[-1].final_text == "".join(e.text for e in seen[:3]) + seen[-1].text
    calls = iter([False, False, True])
    events = complete(model, tok, "ab", DecodeConfig(strategy="beam", max_new_tokens=50), lambda: next(calls))[1]
    assert len(events) == 3 and events[-1].finish_reason == "stopped"


def test_word_tokens_join_like_the_full_text():
    text = "The king walks . The queen sings , and the knight waits .\n" * 5
    tok = WordTokenizer.train(text)
    model = NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=2, smoothing="add-k")).fit(np.array(tok.encode(text)))
    out, events = complete(model, tok, "The king", DecodeConfig(seed=0, max_new_tokens=15))
    assert "".join(e.text for e in events) == out
    assert "The king" + out == tok.decode(tok.encode("The king") + tokens(events))
    assert out.startswith(" ")  # the join between prompt and continuation


@pytest.mark.parametrize("strategy", ["sample", "beam"])
def test_a_word_prompt_ending_in_a_space_keeps_one_space(strategy):
    """"The " encodes as "The": the continuation's joining space came on top of the typed one ("The  king")."""
    text = "The king walks . The queen sings , and the knight waits .\n" * 5
    tok = WordTokenizer.train(text)
    model = NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=2, smoothing="add-k")).fit(np.array(tok.encode(text)))
    cfg = DecodeConfig(strategy=strategy, seed=0, max_new_tokens=6, beam_width=2)
    spaced, events = complete(model, tok, "The ", cfg)
    plain, _ = complete(model, tok, "The", cfg)
    assert plain.startswith(" ") and spaced == plain[1:]
    assert not spaced.startswith(" ")
    if strategy == "sample":   # a beam's events follow whichever hypothesis leads, so they need not add up
        assert "".join(e.text for e in events) == spaced
    assert complete(model, tok, "The \n", cfg)[0] == complete(model, tok, "The\n", cfg)[0]   # a newline: no join


def test_bpe_stream_holds_back_split_characters():
    """Byte-level BPE tokens can end inside a multi-byte character; streamed text must never show a '\ufffd'
    that a later token turns into a real character, and the pieces must add up to the final text."""
    text = "héllo wörld — naïve café 日本語のテキスト\n" * 30
    tok = build_tokenizer("bpe", text, vocab_size=300)
    model = NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=2, smoothing="add-k", k=0.01))
    model.fit(np.array(tok.encode(text)))
    out, events = complete(model, tok, "héllo", DecodeConfig(seed=0, max_new_tokens=40, temperature=1.5))
    streamed = ""
    for e in events[:-1]:
        streamed += e.text
        assert e.final_text == ""
    assert streamed + events[-1].text == out
    ids, prompt = tokens(events), tok.encode("héllo")
    assert any(tok.decode(prompt + ids[:k]).endswith("\ufffd") for k in range(1, len(ids)))  # it did happen


def test_empty_prompt(tok):
    for family in FAMILIES:  # the vocabulary has a newline: every family starts from it, kept out of the text
        text, events = run(make_model(family, tok), tok, "", seed=0, max_new_tokens=5)
        assert len(tokens(events)) == 5 and text == tok.decode(tokens(events))
    no_newline = CharTokenizer("abc")
    with pytest.raises(ConfigError, match="type a prompt"):
        generate(make_model("gpt", no_newline), no_newline, "", DecodeConfig())
    ngram = NGramLM(NGramConfig(vocab_size=3, order=2)).fit(np.array(no_newline.encode("abcabcab")))
    assert len(tokens(run(ngram, no_newline, "", seed=0, max_new_tokens=4)[1])) == 4


@pytest.mark.parametrize("kw", [dict(max_new_tokens=0), dict(max_new_tokens=-3), dict(top_p=0.0), dict(top_p=1.5),
                                dict(temperature=-0.1), dict(top_k=-1), dict(min_p=1.2), dict(beam_width=0),
                                dict(strategy="nucleus"), dict(repetition_penalty=0.0), dict(stop=[""]),
                                dict(top_n=-1), dict(length_penalty=float("nan"))])
def test_bad_settings_are_config_errors(kw):
    with pytest.raises(ConfigError):
        DecodeConfig(**kw)


def test_bad_input_at_the_call(tok):
    model = make_model("gpt", tok)
    with pytest.raises(ConfigError, match="beam_width"):
        generate(model, tok, "ab", DecodeConfig(strategy="beam", beam_width=5))
    with pytest.raises(TokenizerError):
        generate(model, tok, "abz", DecodeConfig())
    with pytest.raises(ConfigError, match="tokenizer"):
        generate(model, CharTokenizer("abcde"), "ab", DecodeConfig())


def test_diverged_model_is_a_clear_error(tok):
    model = make_model("gpt", tok)
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    for strategy in ("sample", "beam"):
        with pytest.raises(PlaygroundError, match="NaN"):
            complete(model, tok, "ab", DecodeConfig(strategy=strategy, beam_width=2))


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_stream_decoders_add_up_to_decode(kind):
    """Token by token, the pieces of a stream decoder join to exactly decode() of all the ids (random ids, so
    BPE bytes split characters and word quotes open and close at random)."""
    from engine.tokenizers.stream import stream_decoder
    text = "The king's \"men\" (all) walk, héllo wörld — 日本語のテキスト.\n" * 20
    opts = {"bpe": dict(vocab_size=300)}.get(kind, {})
    tok = build_tokenizer(kind, text, **opts)
    rng = np.random.default_rng(0)
    for _ in range(5):
        ids = rng.integers(0, tok.vocab_size, size=200).tolist()
        dec = stream_decoder(tok)
        pieces = [dec.add(i) for i in ids] + [dec.flush()]
        assert "".join(pieces) == tok.decode(ids)


def test_token_events_carry_their_piece_only(tok):
    model = make_model("gpt", tok)
    text, events = run(model, tok, "ab", seed=3, max_new_tokens=5 * BLOCK)
    assert all(e.final_text == "" for e in events[:-1]) and events[-1].final_text == text
    assert all(len(e.text) <= 1 for e in events)   # char tokens: one character each, however long the text
    assert "".join(e.text for e in events) == text == tok.decode(tokens(events))
