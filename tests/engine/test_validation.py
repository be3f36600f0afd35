"""Validation is total: every float setting refuses NaN and infinities (range checks written as comparisons let
NaN through), and every bad command-line value ends as one `error:` line with exit status 2, never a traceback."""
import math

import pytest

from engine.cli import main
from engine.decode import DecodeConfig
from engine.errors import ConfigError
from engine.models import build_model
from engine.train import TrainConfig

NON_FINITE = ["nan", "inf", "-inf", "1e999"]
TRAIN_FLOATS = ["lr", "min_lr", "weight_decay", "grad_clip", "beta1", "beta2"]
GPT_FLOATS = ["dropout", "rope_base"]
RNN_FLOATS = ["dropout"]
NGRAM_FLOATS = ["k", "discount", "backoff_alpha", "lambdas"]
SAMPLE_FLOATS = ["--temperature", "--top-p", "--min-p", "--repetition-penalty", "--length-penalty"]


def cli(capsys, *argv) -> tuple[int, str]:
    try:
        rc = main(list(argv))
    except SystemExit as e:       # argparse's own refusals
        rc = e.code
    return rc, capsys.readouterr().err


def assert_one_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2 and "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("v") / "c.txt"
    p.write_text("the cat sat on the mat. the dog sat on the log. " * 60, encoding="utf-8")
    return str(p)


@pytest.fixture(scope="module")
def ngram_checkpoint(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "kn"
    assert main(["train", "--corpus", corpus, "--model", "ngram", "--quiet", "--out", str(out)]) == 0
    return str(out)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", TRAIN_FLOATS)
def test_train_config_refuses_non_finite_floats(key, value):
    with pytest.raises(ConfigError, match=f"{key} must be a finite number"):
        TrainConfig(**{key: float(value)})


def test_nan_grad_clip_no_longer_turns_clipping_off():
    """`grad_clip < 0` is false for NaN, and the trainer clips only when grad_clip > 0: NaN meant no clipping."""
    with pytest.raises(ConfigError, match="grad_clip must be a finite number, not nan"):
        TrainConfig(grad_clip=math.nan)


@pytest.mark.parametrize("family, key", [("transformer", k) for k in GPT_FLOATS] + [("lstm", k) for k in RNN_FLOATS]
                         + [("ngram", k) for k in ("k", "discount", "backoff_alpha")])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_model_configs_refuse_non_finite_floats(family, key, value):
    with pytest.raises(ConfigError, match=key):
        build_model(family, {"vocab_size": 10, key: value})


@pytest.mark.parametrize("key", ["temperature", "top_p", "min_p", "repetition_penalty", "length_penalty"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_decode_config_refuses_non_finite_floats(key, value):
    if key == "temperature" and value == math.inf:   # the uniform limit, a setting with a meaning (issue 17)
        assert DecodeConfig(temperature=value).temperature == math.inf
        return
    with pytest.raises(ConfigError, match=key):
        DecodeConfig(**{key: value})


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("key", TRAIN_FLOATS + GPT_FLOATS)
def test_cli_set_of_a_non_finite_float_is_one_error_line(capsys, corpus, tmp_path, key, value):
    rc, err = cli(capsys, "train", "--corpus", corpus, "--device", "cpu", "--max-steps", "1", "--quiet",
                  "--set", f"{key}={value}", "--out", str(tmp_path / "o"))
    assert_one_error(rc, err, key)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("key", NGRAM_FLOATS)
def test_cli_set_of_a_non_finite_n_gram_float_is_one_error_line(capsys, corpus, tmp_path, key, value):
    setting = f"lambdas=0.5,0.2,{value}" if key == "lambdas" else f"{key}={value}"
    rc, err = cli(capsys, "train", "--corpus", corpus, "--model", "ngram", "--quiet", "--set", setting,
                  "--out", str(tmp_path / "o"))
    assert_one_error(rc, err, key)


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("option", SAMPLE_FLOATS)
def test_cli_sample_non_finite_float_is_one_error_line(capsys, ngram_checkpoint, option, value):
    if option == "--temperature" and value in ("inf", "1e999"):   # uniform over the tokens the model allows
        assert cli(capsys, "sample", "--checkpoint", ngram_checkpoint, "--max-new-tokens", "3",
                   f"{option}={value}")[0] == 0
        return
    rc, err = cli(capsys, "sample", "--checkpoint", ngram_checkpoint, "--max-new-tokens", "3", f"{option}={value}")
    assert_one_error(rc, err, option.strip("-").replace("-", "_"))


@pytest.mark.parametrize("argv, needle", [
    (["train", "--max-steps", "nan"], "argument --max-steps: must be a whole number, not 'nan'"),
    (["train", "--val-fraction", "x"], "argument --val-fraction"),
    (["train", "--tokenizer"], "argument --tokenizer: expected one argument"),
    (["sample", "--checkpoint", "c", "--strategy", "best"], "argument --strategy: invalid choice: 'best'"),
    (["sample", "--checkpoint", "c", "--top-k", "1.5"], "argument --top-k"),
    (["tape", "--text", "hi"], "the following arguments are required: --checkpoint"),
    (["serve"], "argument command: invalid choice: 'serve'"),
])
def test_argparse_refusals_are_one_error_line(capsys, argv, needle):
    rc, err = cli(capsys, *argv)
    assert_one_error(rc, err, needle)
    assert err.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("argv, needle", [
    (["--val-fraction", "nan"], "--val-fraction"),
    (["--val-fraction", "inf"], "--val-fraction"),
    (["--max-steps", "0"], "--max-steps"),
    (["--tokenizer", "bpe", "--tok-set", "vocab_size=99999999999999999999999"], "vocab_size"),
    (["--tokenizer", "word", "--tok-set", "vocab_size=nan"], "vocab_size"),
])
def test_other_bad_train_values_are_one_error_line(capsys, corpus, tmp_path, argv, needle):
    rc, err = cli(capsys, "train", "--corpus", corpus, "--device", "cpu", "--quiet", "--out", str(tmp_path / "o"),
                  *argv)
    assert_one_error(rc, err, needle)


@pytest.mark.parametrize("value", ["-1", "-99999999999999999999"])
def test_sample_negative_seed_is_one_error_line(capsys, ngram_checkpoint, value):
    rc, err = cli(capsys, "sample", "--checkpoint", ngram_checkpoint, "--max-new-tokens", "3", f"--seed={value}")
    assert_one_error(rc, err, "seed")
