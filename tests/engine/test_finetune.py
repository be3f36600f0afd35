"""Fine-tuning: a new run on another corpus from a checkpoint's weights, with its tokenizer kept; what the
tokenizer cannot encode is named (or mapped to a replacement token); the checkpoint records its parent."""
import json

import pytest
import torch

from engine import api, checkpoint
from engine.cli import main
from engine.errors import CheckpointError, ConfigError
from engine.finetune import unencodable

TINY = {"n_layer": "1", "n_embd": "16", "n_head": "2", "block_size": "16", "batch_size": "4", "eval_interval": "5"}


@pytest.fixture
def parent(tmp_path, small_text):
    """A char transformer trained 6 steps on small_text, saved."""
    corpus = tmp_path / "a.txt"
    corpus.write_text(small_text, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(corpus), preset="tiny-cpu-transformer", overrides=dict(TINY),
                                    device="cpu", max_steps=6))
    list(run.reports())
    return run.save(tmp_path / "parent")


@pytest.fixture
def other(tmp_path, small_text):
    """Another corpus: the same words reversed, plus two characters the parent never saw ('Z' three times, '@')."""
    text = " ".join(reversed(small_text.split(" "))) + " Z@ ZZ\n"
    p = tmp_path / "b.txt"
    p.write_text(text, encoding="utf-8")
    return p


def test_unknown_characters_are_named_with_counts(parent, other):
    with pytest.raises(ConfigError) as e:
        api.finetune_run(str(parent), str(other), device="cpu")
    msg = str(e.value)
    assert "cannot encode 2 character(s) of b.txt" in msg and "'Z' ×3" in msg and "'@' ×1" in msg
    assert "--map-unknown" in msg
    with pytest.raises(ConfigError, match="replacement token '#' is not in"):
        api.finetune_run(str(parent), str(other), device="cpu", map_unknown="#")


def test_finetune_starts_from_the_parents_weights_and_records_it(parent, other, tmp_path):
    parent_weights = api.load_checkpoint(parent).model.state_dict()
    run = api.finetune_run(str(parent), str(other), device="cpu", map_unknown=" ", max_steps=4)
    for k, v in run.model.state_dict().items():
        assert torch.equal(v.cpu(), parent_weights[k]), k
    assert run.tokenizer.to_dict() == api.load_checkpoint(parent).tokenizer.to_dict()
    assert run.spec.corpus == str(other)
    # the mapped characters became spaces
    space = run.tokenizer.stoi[" "]
    assert (run.val_ids == space).sum() > 0 and len(run.train_ids) + len(run.val_ids) == len(other.read_text())
    assert run.warnings() == ["4 occurrence(s) of 2 character(s) the tokenizer cannot encode were mapped to ' '"]
    reports = list(run.reports())
    assert reports[-1].step == 4
    out = run.save(tmp_path / "child")
    meta = checkpoint.load_meta(out)
    assert meta["step"] == 4
    assert meta["parent"]["checkpoint"] == str(parent) and meta["parent"]["step"] == 6
    assert meta["parent"]["offset"] == 0 and meta["parent"]["history"]["rows"][-1][0] == 6
    # a fine-tune of the fine-tune starts its curve after both
    grand = api.finetune_run(str(out), str(other), device="cpu", map_unknown=" ", max_steps=2)
    assert grand.parent["offset"] == 6 and grand.parent["step"] == 4


def test_finetune_keeps_the_model(parent, other):
    with pytest.raises(ConfigError, match="keeps the checkpoint's model"):
        api.finetune_run(str(parent), str(other), device="cpu", overrides={"n_embd": "32"})
    run = api.finetune_run(str(parent), str(other), device="cpu", map_unknown=" ", overrides={"lr": "1e-4", "min_lr": "1e-5"},
                           max_steps=2)
    assert run.trainer.cfg.lr == 1e-4 and run.trainer.cfg.max_steps == 2


def test_word_tokenizer_names_unknown_words(tmp_path, small_text):
    corpus = tmp_path / "a.txt"
    corpus.write_text(small_text, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(corpus), tokenizer="word", preset="tiny-cpu-transformer",
                                    overrides=dict(TINY), device="cpu", max_steps=2))
    list(run.reports())
    ck = run.save(tmp_path / "w")
    assert unencodable(run.tokenizer, "the king dragon dragon") == {"dragon": 2}
    other = tmp_path / "b.txt"
    other.write_text(small_text + "the dragon sleeps\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cannot encode 2 word\(s\).*'dragon' ×1"):
        api.finetune_run(str(ck), str(other), device="cpu")
    mapped = api.finetune_run(str(ck), str(other), device="cpu", map_unknown="<unk>", max_steps=1)
    assert (mapped.val_ids == 0).sum() >= 2


def test_cli_init_from(parent, other, tmp_path, capsys):
    out = tmp_path / "ft"
    rc = main(["train", "--init-from", str(parent), "--corpus", str(other), "--max-steps", "3", "--device", "cpu",
               "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "'Z' ×3" in err
    rc = main(["train", "--init-from", str(parent), "--corpus", str(other), "--max-steps", "3", "--device", "cpu",
               "--map-unknown", " ", "--quiet", "--out", str(out)])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and res["step"] == 3 and checkpoint.load_meta(out)["parent"]["step"] == 6
    for bad, match in ((["--tokenizer", "word"], "keeps the checkpoint's model and tokenizer"),
                       (["--resume", str(parent)], "not both")):
        rc = main(["train", "--init-from", str(parent), "--corpus", str(other), *bad, "--out", str(tmp_path / "x")])
        assert rc == 2 and match in capsys.readouterr().err
    rc = main(["train", "--map-unknown", " ", "--out", str(tmp_path / "y")])
    assert rc == 2 and "--map-unknown applies to fine-tuning" in capsys.readouterr().err


def test_a_damaged_parent_record_is_refused(parent, other, tmp_path):
    run = api.finetune_run(str(parent), str(other), device="cpu", map_unknown=" ", max_steps=1)
    list(run.reports())
    out = run.save(tmp_path / "child")
    meta = json.loads((out / "meta.json").read_text())
    meta["parent"]["step"] = -3
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="parent"):
        checkpoint.load_meta(out)
