"""Resuming from the command line and the API: what may change (training settings, applied to the resumed run)
and what may not (model, corpus, tokenizer: refused by name unless equal to the checkpoint's)."""
import json

import pytest

from engine import api
from engine.checkpoint import load_meta
from engine.cli import main
from engine.errors import ConfigError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 6-step one-layer transformer checkpoint and its corpus."""
    d = tmp_path_factory.mktemp("resume")
    corpus = d / "c.txt"
    corpus.write_text("the cat sat on the mat. the dog sat on the log. " * 60, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(corpus), preset="tiny-cpu-transformer", device="cpu", max_steps=6,
                                    overrides={"n_layer": "1", "n_embd": "32", "eval_interval": "50"}))
    list(run.reports())
    return run.save(d / "ck"), corpus


def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("args,named", [
    (["--model", "lstm"], "model lstm (the checkpoint's: transformer)"),
    (["--corpus", "builtin:python-code"], "corpus builtin:python-code"),
    (["--tokenizer", "bpe"], "tokenizer bpe (the checkpoint's: char)"),
    (["--preset", "nanogpt-cpu"], "preset nanogpt-cpu (the checkpoint's: tiny-cpu-transformer)"),
    (["--set", "n_layer=4"], "n_layer=4 (the checkpoint's: 1)"),
    (["--set", "block_size=32"], "train.block_size sets the training windows only"),
    (["--tok-set", "vocab_size=300"], "tokenizer_options"),
    (["--seed", "7"], "random state"),
    (["--set", "n_layer=4", "--model", "gru"], "model gru"),
])
def test_resume_refuses_what_defines_the_model_or_data(capsys, saved, tmp_path, args, named):
    ck, _ = saved
    rc, out, err = _cli(capsys, "train", "--resume", str(ck), "--max-steps", "8", "--device", "cpu",
                        "--out", str(tmp_path / "o"), *args)
    assert rc == 2 and out == ""
    assert err.startswith("error: cannot resume with ") and err.count("\n") == 1
    assert named in err and "a resumed run keeps the checkpoint's model, corpus and tokenizer" in err
    assert not (tmp_path / "o").exists()


def test_resume_accepts_options_equal_to_the_checkpoints(capsys, saved, tmp_path, monkeypatch):
    ck, corpus = saved
    monkeypatch.chdir(corpus.parent)   # the same file under another spelling of its path
    rc, out, err = _cli(capsys, "train", "--resume", str(ck), "--max-steps", "7", "--device", "cpu", "--quiet",
                        "--model", "transformer", "--corpus", "./c.txt", "--tokenizer", "char",
                        "--preset", "tiny-cpu-transformer", "--set", "n_layer=1", "--out", str(tmp_path / "o"))
    assert rc == 0, err
    assert json.loads(out)["step"] == 7


def test_resume_applies_new_training_settings(saved, tmp_path):
    ck, _ = saved
    over = {"lr": "0.01", "min_lr": "0.001", "warmup_steps": "0", "weight_decay": "0.5", "beta1": "0.8",
            "beta2": "0.95", "grad_clip": "0.5", "batch_size": "4", "train.block_size": "16", "eval_interval": "3",
            "steps_per_yield": "1"}
    run = api.resume_run(str(ck), max_steps=10, device="cpu", overrides=over)
    cfg = run.trainer.cfg
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.block_size, cfg.max_steps) == (0.01, 0.5, 4, 16, 10)
    assert run.trainer.raw_model.config.block_size == 64        # the model's context is the checkpoint's
    reports = list(run.reports())
    assert [r.step for r in reports if r.event == "eval"] == [9]   # every 3 steps from here, 1 step per report
    assert reports[-1].step == 10
    groups = run.trainer.optimizer.param_groups
    assert groups[0]["lr"] == pytest.approx(cfg.lr_at(9))        # the new schedule drives the optimizer
    assert [g["betas"] for g in groups] == [(0.8, 0.95)] * 2
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]
    assert reports[-1].tokens - reports[0].tokens == (10 - reports[0].step) * 4 * 16
    run.save(tmp_path / "again")
    meta = load_meta(tmp_path / "again")
    assert meta["train"]["lr"] == 0.01 and meta["step"] == 10
    again = api.resume_run(str(tmp_path / "again"), max_steps=11, device="cpu")   # the changes are kept
    assert again.trainer.cfg.batch_size == 4 and again.trainer.optimizer.param_groups[0]["weight_decay"] == 0.5


def test_resume_refuses_windows_longer_than_the_models_context(saved):
    with pytest.raises(ConfigError, match="exceeds the model's block_size 64"):
        api.resume_run(str(saved[0]), max_steps=8, device="cpu", overrides={"train.block_size": "128"})


def test_set_max_steps_counts_like_the_option(saved):
    assert api.resume_run(str(saved[0]), device="cpu", overrides={"max_steps": "9"}).trainer.cfg.max_steps == 9


@pytest.mark.parametrize("max_steps", [3, 6])
def test_resume_at_or_past_max_steps_is_an_error(capsys, saved, tmp_path, max_steps):
    ck, _ = saved
    with pytest.raises(ConfigError, match="already at step 6; max_steps must be above that"):
        api.resume_run(str(ck), max_steps=max_steps, device="cpu")
    rc, out, err = _cli(capsys, "train", "--resume", str(ck), "--max-steps", str(max_steps), "--device", "cpu",
                        "--out", str(tmp_path / "o"))
    assert rc == 2 and out == "" and "already at step 6" in err
    assert not (tmp_path / "o").exists()


def test_resuming_a_finished_run_without_max_steps_says_the_limit_is_its_own(saved):
    ck, _ = saved
    with pytest.raises(ConfigError, match=r"not 6 \(its own; give a larger one\)"):
        api.resume_run(str(ck), device="cpu")


def test_a_resume_warning_is_said_once(capsys, caplog, tmp_path):
    """A checkpoint of 2 processes resumed on 1: the global-batch warning is printed once as `warning:`, not also
    as a WARNING log line."""
    import json
    import logging

    from engine.cli import main
    out = tmp_path / "r"
    args = ["--model", "lstm", "--preset", "tiny-cpu-lstm", "--set", "n_embd=8", "--set", "n_hidden=16",
            "--set", "block_size=16", "--set", "batch_size=4", "--device", "cpu", "--out", str(out)]
    assert main(["train", "--max-steps", "2", *args]) == 0
    meta = json.loads((out / "meta.json").read_text())
    meta["world_size"] = 2
    (out / "meta.json").write_text(json.dumps(meta))
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(["train", "--resume", str(out), "--max-steps", "3", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "written by 2 process(es)" in line and not line.startswith("step")]
    assert said == [line for line in err.splitlines() if line.startswith("warning: the checkpoint was written by 2")]
    assert len(said) == 1   # (the first step's line also carries it, as the window's first report does)
    assert not [r for r in caplog.records if "written by 2" in r.getMessage()]


def test_a_changed_corpus_is_said_on_resume(tmp_path):
    """Resume keeps the checkpoint's tokenizer and data position; when the corpus gives another number of training
    tokens (edited, or a Windows file saved before \\r\\n was read as \\n) those batches are from another stream."""
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"the cat sat on the mat.\r\nthe dog sat on the log.\r\n" * 60)
    spec = api.RunSpec(corpus=str(corpus), preset="tiny-cpu-transformer", device="cpu", max_steps=4,
                       overrides={"n_layer": "1", "n_embd": "32", "eval_interval": "50"})
    run = api.start_run(spec)
    list(run.reports())
    ck = run.save(tmp_path / "ck")
    assert not [w for w in api.resume_run(str(ck), max_steps=6, device="cpu").warnings() if "corpus now" in w]
    meta = load_meta(ck)
    meta["summary"]["train_tokens"] += 54    # any other count: an edited corpus, or one read differently before
    (ck / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    [said] = [w for w in api.resume_run(str(ck), max_steps=6, device="cpu").warnings() if "corpus now" in w]
    n = run.summary()["train_tokens"]
    assert said.startswith(f"the corpus now gives {n:,} training tokens, {n + 54:,} when the checkpoint was saved")


def test_a_relative_path_through_a_symlink_names_the_file_it_was_read_from(tmp_path, monkeypatch):
    """os.path.abspath removes "link/.." as text, where the OS follows the link first: another file."""
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere" / "x.txt").write_text("the real corpus", encoding="utf-8")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "x.txt").write_text("another file", encoding="utf-8")
    (tmp_path / "work" / "link").symlink_to(tmp_path / "elsewhere" / "sub")
    monkeypatch.chdir(tmp_path / "work")
    spec = api.absolute_paths(api.RunSpec(corpus="link/../x.txt"))
    assert spec.corpus.startswith("/") and open(spec.corpus).read() == "the real corpus"
