"""Side-by-side decoding (engine/decode_compare.py): the figures against hand and torch computation, columns run
together equal columns run alone, and the KV cache check sees a correct cache as ~0 and a broken one as large."""
import json

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.decode import DecodeConfig, complete
from engine.decode_compare import (ColumnRecord, check_cache, column_config, distinct_n, figures, forced_logits,
                                   interleave, parse_column, repeated_share, run_columns, token_logprobs,
                                   token_pieces)
from engine.errors import ConfigError
from engine.models import build_model
from engine.models.transformer import GPT, GPTConfig, KVCache
from engine.tokenizers import build_tokenizer
from engine.tokenizers.char import CharTokenizer

from tests.engine.test_decode import BLOCK, make_model, next_logits, tokens

SPECS = ["greedy", "sample:temperature=0.8,top_p=0.7", "sample:top_k=2,min_p=0.2,repetition_penalty=1.3",
         "beam:width=3,length_penalty=1"]


@pytest.fixture
def tok():
    return CharTokenizer("abc\n")


def test_parse_column_specs_and_refusals():
    assert parse_column("greedy") == {"strategy": "greedy"}
    assert parse_column("sample:temperature=0.8, top-p=0.9") == {"strategy": "sample", "temperature": 0.8,
                                                                 "top_p": 0.9}
    assert parse_column("beam:width=4,length_penalty=1") == {"strategy": "beam", "beam_width": 4,
                                                             "length_penalty": 1.0}
    for bad, says in (("nucleus", "strategy must be one of"), ("greedy:temperature=2", "greedy takes"),
                      ("beam:width=2.5", "whole number"), ("sample:top_p", "not key=value"),
                      ("sample:top_p=lots", "must be a number")):
        with pytest.raises(ConfigError, match=says):
            parse_column(bad)
    with pytest.raises(ConfigError, match="top_p must be in"):
        column_config("sample:top_p=1.5")


def test_distinct_and_repeated_share_by_hand():
    ids = [1, 2, 1, 2, 3, 1, 2, 1, 2]
    # bigrams 12 21 12 23 31 12 21 12: {12, 21, 23, 31} -> 4/8
    assert distinct_n(ids, 2) == 4 / 8
    # trigrams 121 212 123 231 312 121 212: 5 distinct of 7
    assert distinct_n(ids, 3) == 5 / 7
    # 4-grams 1212 2123 1231 2312 3121 1212: 5 distinct of 6 -> one repeats
    assert repeated_share(ids, 4) == pytest.approx(1 / 6)
    assert distinct_n([1], 2) is None and repeated_share([1, 2, 3], 4) is None
    f = figures([5, 5, 5], [np.log(0.5), np.log(0.25), np.log(0.25)], [0.1, 0.0, 0.2])
    assert f["mean_logprob"] == pytest.approx((np.log(0.5) + 2 * np.log(0.25)) / 3)
    assert f["mean_cut_mass"] == pytest.approx(0.1) and f["distinct_2"] == 0.5 and f["repeated_4gram_share"] is None


@pytest.mark.parametrize("family", ["ngram", "lstm", "gpt"])
def test_mean_logprob_is_the_models_own_distribution(family, tok):
    """Forced logits equal the obvious per-position forward (torch, no cache, GPT cropped to its window), and the
    mean log-prob equals the sampled events' raw probabilities, whatever penalty, temperature and truncation did."""
    model = make_model(family, tok)
    cfg = column_config("sample:temperature=1.7,top_p=0.8,repetition_penalty=1.4", max_new_tokens=3 * BLOCK, seed=4)
    text, events = complete(model, tok, "ab", cfg)
    ids = tokens(events)
    logits = forced_logits(model, tok, "ab", ids)
    ctx = tok.encode("ab")
    for t, row in enumerate(logits):
        np.testing.assert_allclose(row, next_logits(model, ctx + ids[:t]), atol=1e-9)
    lp = token_logprobs(model, tok, "ab", ids)
    ref = torch.log_softmax(torch.tensor(logits), dim=-1)[torch.arange(len(ids)), torch.tensor(ids)].numpy()
    np.testing.assert_allclose(lp, ref, atol=1e-12)
    np.testing.assert_allclose(lp, np.log([e.raw_prob for e in events[:-1]]), atol=1e-9)


def test_cut_mass_against_torch_truncation(tok):
    """The mean mass cut, recomputed with torch: softmax(logits / T), sorted, the nucleus kept."""
    model = make_model("gpt", tok)
    T, p = 1.6, 0.75
    reports = run_columns(model, tok, "ab", [f"sample:temperature={T},top_p={p}"], max_new_tokens=20, seed=2)
    ids = reports[0]["token_ids"]
    cuts = []
    for row in torch.tensor(forced_logits(model, tok, "ab", ids)):
        probs = torch.softmax(row / T, -1).sort(descending=True).values
        keep = int((torch.cumsum(probs, 0) < p).sum()) + 1   # the smallest prefix holding at least p
        cuts.append(float(probs[keep:].sum()))
    assert reports[0]["mean_cut_mass"] == pytest.approx(np.mean(cuts), abs=1e-12)
    assert 0 < reports[0]["mean_cut_mass"] < 1
    assert reports[0]["mean_logprob"] == pytest.approx(float(token_logprobs(model, tok, "ab", ids).mean()))


@pytest.mark.parametrize("family", ["ngram", "gru", "gpt"])
def test_columns_run_together_equal_columns_run_alone(family, tok):
    model = make_model(family, tok)
    cfgs = [column_config(s, max_new_tokens=2 * BLOCK, seed=7) for s in SPECS]
    records = [ColumnRecord(c) for c in cfgs]
    order = []
    for i, event, seconds in interleave(model, tok, "ab", cfgs):
        records[i].add(event, seconds)
        order.append(i)
    assert order[:8] == [0, 1, 2, 3, 0, 1, 2, 3]     # they advance in turn, not one after the other
    for cfg, rec in zip(cfgs, records):
        alone_text, alone = complete(model, tok, "ab", cfg)
        assert rec.final.final_text == alone_text
        assert [e.token_id for e in rec.events] == [e.token_id for e in alone[:-1]]
        assert tok.decode(rec.token_ids()) == alone_text
    reports = run_columns(model, tok, "ab", SPECS, max_new_tokens=2 * BLOCK, seed=7)
    assert [r["column"] for r in reports] == ["greedy", "sample:temperature=0.8,top_p=0.7",
                                              "sample:top_k=2,min_p=0.2,repetition_penalty=1.3",
                                              "beam:width=3,length_penalty=1"]
    for r in reports:
        assert "".join(r["tokens"]) == r["text"] and len(r["tokens"]) == len(r["token_ids"])
    assert reports[0]["mean_cut_mass"] == 0.0 and reports[3]["mean_cut_mass"] == 0.0


def test_too_many_columns_refused(tok):
    with pytest.raises(ConfigError, match="1 to 6 columns"):
        next(interleave(make_model("ngram", tok), tok, "ab", [DecodeConfig()] * 7))


def test_token_pieces_are_clipped_at_a_stop_string(small_text):
    tok = build_tokenizer("char", small_text)
    ids = tok.encode("the king and")
    assert token_pieces(tok, "T", ids) == list("the king and")
    assert token_pieces(tok, "T", ids, "the ki") == list("the ki") + [""] * 6


def _f32_gpt(tok, block=BLOCK):
    """Weights large enough for logits of order 1-10 (a fresh init's are ~0.01), kept in float32 as trained."""
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block, n_layer=2, n_head=2, n_embd=16))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def test_cache_check_is_float_rounding_past_the_window(tok):
    model = _f32_gpt(tok)
    ids = tokens(complete(model, tok, "abc", DecodeConfig(seed=1, max_new_tokens=3 * BLOCK))[1])
    check = check_cache(model, tok, "abc", ids)
    assert check.positions == 3 * BLOCK and check.context == BLOCK
    assert check.past_window == 3 + 3 * BLOCK - 1 - BLOCK    # contexts of 9 .. 26 tokens slid the window
    assert check.max_abs_diff < 1e-5 and check.same_argmax
    assert "past the 8-token window" in check.summary()


def test_cache_check_catches_a_broken_kv_cache(tok, monkeypatch):
    """A cache that keeps stale keys (here: every cached step loses the first position's keys) must show up."""
    model = _f32_gpt(tok, block=32)
    ids = tokens(complete(model, tok, "abc", DecodeConfig(seed=1, max_new_tokens=20))[1])
    assert check_cache(model, tok, "abc", ids).max_abs_diff < 1e-5
    original = type(model).forward_cached

    def stale(self, idx, cache: KVCache):
        out = original(self, idx, cache)
        for k in cache.k:
            k[:, :, 0] = 0.0
        return out
    monkeypatch.setattr(type(model), "forward_cached", stale)
    assert check_cache(model, tok, "abc", ids).max_abs_diff > 1e-2


def test_cache_check_catches_a_broken_rnn_state(tok, monkeypatch):
    model = make_model("lstm", tok)
    ids = tokens(complete(model, tok, "ab", DecodeConfig(seed=1, max_new_tokens=15))[1])
    assert check_cache(model, tok, "ab", ids).max_abs_diff < 1e-12
    original = type(model).reorder_state
    monkeypatch.setattr(type(model), "reorder_state",
                        staticmethod(lambda state, index: tuple(s * 0.5 for s in original(state, index))
                                     if isinstance(state, tuple) else original(state, index) * 0.5))
    assert check_cache(model, tok, "ab", ids).max_abs_diff > 1e-2


def test_length_penalty_changes_the_answer_with_a_stop_string(small_text):
    """With a stop string, finished hypotheses have different lengths, so the length penalty decides between them:
    0 ranks by total log-prob (the short word wins), 2 divides by length² (a longer word wins)."""
    tok = build_tokenizer("char", small_text)
    model = build_model("ngram", {"vocab_size": tok.vocab_size, "order": 3}).fit(np.array(tok.encode(small_text)))
    texts = {}
    for lp in (0, 2):
        texts[lp], events = complete(model, tok, "the ", DecodeConfig(strategy="beam", beam_width=8,
                                                                        length_penalty=lp, stop=" ",
                                                                        max_new_tokens=20))
        assert events[-1].finish_reason == "stop"
    assert texts[0] != texts[2] and len(texts[2]) > len(texts[0])
    # without a stop string every hypothesis ends at max tokens, all of one length: the penalty cannot matter
    same = {complete(model, tok, "the ", DecodeConfig(strategy="beam", beam_width=8, length_penalty=lp,
                                                      max_new_tokens=12))[0] for lp in (0, 2)}
    assert len(same) == 1


# ---------------------------------------------------------------- the CLI

@pytest.fixture(scope="module")
def gpt_checkpoint(tmp_path_factory):
    from engine import api
    d = tmp_path_factory.mktemp("ck")
    (d / "c.txt").write_text("the cat sat on the mat. the dog sat on the log. " * 60, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(d / "c.txt"), preset="tiny-cpu-transformer", device="cpu",
                                    overrides={"n_layer": "1", "n_embd": "32", "block_size": "16",
                                               "eval_interval": "50"}, max_steps=20))
    list(run.reports())
    return str(run.save(d / "gpt"))


def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_compare_prints_one_json_line_per_column(capsys, gpt_checkpoint):
    rc, out, err = _cli(capsys, "sample", "--checkpoint", gpt_checkpoint, "--prompt", "the c", "--seed", "3",
                        "--max-new-tokens", "24", "--compare", "greedy", "--compare",
                        "sample:temperature=0.8,top_p=0.9", "--compare", "beam:width=4,length_penalty=1",
                        "--check-cache")
    assert rc == 0, err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["column"] for r in lines] == ["greedy", "sample:temperature=0.8,top_p=0.9",
                                            "beam:width=4,length_penalty=1"]
    for r in lines:
        assert r["prompt"] == "the c" and "".join(r["tokens"]) == r["text"]
        assert {"mean_logprob", "mean_cut_mass", "distinct_2", "distinct_3", "repeated_4gram_share",
                "tokens_per_s", "finish_reason"} <= set(r)
        assert r["mean_logprob"] < 0 and 0 <= r["distinct_2"] <= 1
        assert r["cache_check"]["max_abs_dlogit"] < 1e-4 and r["cache_check"]["past_window"] > 0
    # the greedy column is what `sample --strategy greedy` gives
    rc, out, _ = _cli(capsys, "sample", "--checkpoint", gpt_checkpoint, "--prompt", "the c", "--strategy", "greedy",
                      "--max-new-tokens", "24", "--json")
    assert json.loads(out)["text"] == lines[0]["text"]


def test_cli_no_cache_same_text_and_check_cache(capsys, gpt_checkpoint):
    runs = {}
    for flag in ((), ("--no-cache",)):
        rc, out, err = _cli(capsys, "sample", "--checkpoint", gpt_checkpoint, "--prompt", "the d", "--seed", "5",
                            "--max-new-tokens", "30", "--json", "--check-cache", *flag)
        assert rc == 0, err
        runs[flag] = json.loads(out)
    assert runs[()]["text"] == runs[("--no-cache",)]["text"]
    assert runs[()]["cache"] is True and runs[("--no-cache",)]["cache"] is False
    assert runs[()]["tokens_per_s"] > 0 and runs[()]["cache_check"]["max_abs_dlogit"] < 1e-4
    rc, out, err = _cli(capsys, "sample", "--checkpoint", gpt_checkpoint, "--prompt", "the d", "--seed", "5",
                        "--max-new-tokens", "30", "--check-cache")
    assert rc == 0 and out.startswith("the d") and "cache check: largest |Δ logit|" in err


def test_cli_compare_and_stop_refusals(capsys, gpt_checkpoint):
    rc, out, err = _cli(capsys, "sample", "--checkpoint", gpt_checkpoint, "--compare", "beam:top_p=0.5")
    assert rc == 2 and out == "" and err.startswith("error: column 'beam:top_p=0.5': beam takes")
    rc, out, err = _cli(capsys, "sample", "--checkpoint", gpt_checkpoint, "--compare", "greedy", "--top-p", "0.5")
    assert rc == 2 and out == "" and err.startswith("error: --top-p does not go with --compare")
    rc, out, err = _cli(capsys, "sample", "--checkpoint", gpt_checkpoint, "--prompt", "the", "--strategy", "greedy",
                        "--max-new-tokens", "40", "--stop", "zzz", "--stop", " ", "--json")
    assert rc == 0 and json.loads(out)["text"] == json.loads(out)["text"].split(" ")[0]
