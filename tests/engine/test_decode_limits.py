"""Faults of issue 17, each with its kind: extreme temperatures and repetition penalties behave as their limits
(never NaN), a refused prompt prints nothing on stdout, and text that is not Unicode (a lone surrogate) gets
`error:` and exit 2 at every entry point that takes text."""
import json
import math

import numpy as np
import pytest

from engine.cli import main
from engine.decode import DecodeConfig, _distribution, complete
from engine.errors import ConfigError, TokenizerError
from engine.models.ngram import NGramConfig, NGramLM
from engine.tokenizers import KINDS, build_tokenizer

LONE = "ab\udcffc"


def _logits(V=6):
    with np.errstate(divide="ignore"):
        return np.log(np.array([0.1, 0.4, 0.0, 0.4, 0.1, 0.0][:V]))   # an unsmoothed model: zeros -> -inf


@pytest.mark.parametrize("temperature", [5e-324, 1e-310, 1e-200, 1e-30, 0.5, 1.0, 1e30, 1e300, 1.7e308, math.inf])
def test_every_positive_temperature_gives_a_distribution(temperature):
    d = _distribution(_logits(), np.zeros(6, bool), DecodeConfig(temperature=temperature))
    for p in (d.tempered, d.final):
        assert np.all(np.isfinite(p)) and abs(p.sum() - 1) < 1e-12
        assert p[2] == p[5] == 0.0        # zero probability stays zero, even at T = inf


def test_temperature_limits():
    seen = np.zeros(6, bool)
    cold = _distribution(_logits(), seen, DecodeConfig(temperature=1e-310)).tempered
    np.testing.assert_allclose(cold, [0, 0.5, 0, 0.5, 0, 0])            # greedy, the two tied best share
    hot = _distribution(_logits(), seen, DecodeConfig(temperature=math.inf)).tempered
    np.testing.assert_allclose(hot, [0.25, 0.25, 0, 0.25, 0.25, 0])      # uniform over the support
    near = _distribution(_logits(), seen, DecodeConfig(temperature=1e300)).tempered
    np.testing.assert_allclose(near, hot, atol=1e-12)


@pytest.mark.parametrize("penalty", [5e-324, 1e-310, 1e-3, 2.0, 1e300, 1.7e308])
def test_every_positive_repetition_penalty_gives_a_distribution(penalty):
    logits = np.array([2.0, 3.0, -1.0, 0.0, 1.0, -np.inf])
    seen = np.array([True, True, True, True, False, False])
    d = _distribution(logits, seen, DecodeConfig(repetition_penalty=penalty, temperature=0.7))
    assert np.all(np.isfinite(d.final)) and abs(d.final.sum() - 1) < 1e-12 and d.final[5] == 0
    if penalty < 1e-300:   # x / penalty overflows: in the limit the largest seen positive logit takes all
        np.testing.assert_allclose(d.tempered, [0, 1, 0, 0, 0, 0])


def test_nan_temperature_is_still_refused():
    with pytest.raises(ConfigError):
        DecodeConfig(temperature=math.nan)
    with pytest.raises(ConfigError):
        DecodeConfig(temperature=-math.inf)


@pytest.fixture(scope="module")
def ngram(tmp_path_factory):
    """An unsmoothed char trigram and a BPE and a word bigram, saved as checkpoints."""
    import random
    words = "the king and queen walk to the castle where a knight waits for news of the war".split()
    rng = random.Random(3)
    root = tmp_path_factory.mktemp("ck")
    corpus = root / "c.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words) for _ in range(9)) for _ in range(300)) + "\n")
    out = {}
    for tok, smoothing in (("char", "mle"), ("bpe", "kneser-ney"), ("word", "kneser-ney")):
        assert main(["train", "--corpus", str(corpus), "--tokenizer", tok, "--model", "ngram", "--quiet",
                     "--set", "order=3", "--set", f"smoothing={smoothing}", "--out", str(root / tok)]) == 0
        out[tok] = str(root / tok)
    return out


@pytest.mark.parametrize("temperature", ["1e-310", "inf", "5e-324", "1e308"])
def test_cli_extreme_temperature_on_unsmoothed_ngram(ngram, capsys, temperature):
    capsys.readouterr()
    assert main(["sample", "--checkpoint", ngram["char"], "--prompt", "the", "--temperature", temperature,
                 "--max-new-tokens", "30", "--json", "--seed", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(math.isfinite(t["prob"]) and 0 < t["prob"] <= 1 for t in out["tokens"])
    if temperature in ("1e-310", "5e-324"):   # as greedy
        capsys.readouterr()
        main(["sample", "--checkpoint", ngram["char"], "--prompt", "the", "--strategy", "greedy",
              "--max-new-tokens", "30", "--json"])
        assert out["text"] == json.loads(capsys.readouterr().out)["text"]


def test_refused_prompt_prints_nothing_on_stdout(ngram, capsys):
    capsys.readouterr()
    assert main(["sample", "--checkpoint", ngram["char"], "--prompt", "café", "--max-new-tokens", "5"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error:" in err and "'é'" in err


@pytest.mark.parametrize("tok", ["char", "bpe", "word"])
@pytest.mark.parametrize("flags", [[], ["--json"], ["--strategy", "beam"], ["--explain"]])
def test_lone_surrogate_prompt_is_an_error(ngram, capsys, tok, flags):
    capsys.readouterr()
    assert main(["sample", "--checkpoint", ngram[tok], "--prompt", LONE, "--max-new-tokens", "3", *flags]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error:" in err and "U+DCFF" in err


@pytest.mark.parametrize("command", ["tape", "inspect"])
def test_lone_surrogate_text_is_an_error(ngram, capsys, tmp_path, small_text, command):
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text)
    assert main(["train", "--corpus", str(corpus), "--tokenizer", "bpe", "--model", "rnn", "--preset",
                 "tiny-cpu-rnn", "--max-steps", "1", "--quiet", "--out", str(tmp_path / "rnn")]) == 0
    capsys.readouterr()
    assert main([command, "--checkpoint", str(tmp_path / "rnn"), "--text", LONE]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "U+DCFF" in err


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_tokenizer_refuses_a_lone_surrogate(kind, small_text):
    with pytest.raises(TokenizerError, match=r"U\+D800"):
        build_tokenizer(kind, small_text + " x\ud800y ")
    tok = build_tokenizer(kind, small_text)
    with pytest.raises(TokenizerError, match="character 2"):
        tok.encode(LONE)
    assert tok.decode(tok.encode("the king")) .strip() != ""   # ordinary text still works


def test_a_stop_string_with_a_lone_surrogate_is_refused(ngram, capsys):
    with pytest.raises(TokenizerError, match=r"U\+DCFF"):
        DecodeConfig(stop=("ok", LONE))
    capsys.readouterr()
    assert main(["sample", "--checkpoint", ngram["char"], "--prompt", "the", "--stop", LONE]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "U+DCFF" in err


def test_generate_with_a_lone_surrogate_raises_before_the_first_token(small_text):
    tok = build_tokenizer("bpe", small_text, vocab_size=300)
    model = NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=2)).fit(np.array(tok.encode(small_text)))
    with pytest.raises(TokenizerError):
        complete(model, tok, LONE, DecodeConfig(max_new_tokens=2))
