"""Training from a prepared folder (`train --data DIR`): the memory-mapped splits give the same windows, losses and
validation figures as the same corpus in memory with the same seed; such a run saves, resumes and loads into
sample / tape / inspect like any other."""
import numpy as np
import pytest
import torch

from engine import api
from engine.autodiff.report import tape_report
from engine.cli import main
from engine.data import eval_batches, load_prepared, sample_windows
from engine.decode import DecodeConfig, generate
from engine.errors import CheckpointError, ConfigError
from engine.inside.report import inspect_report
from engine.prepare import prepare

SMALL = {"n_layer": "1", "n_embd": "32", "n_head": "2", "block_size": "32", "batch_size": "8",
         "eval_interval": "5", "steps_per_yield": "5", "warmup_steps": "2"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prep")
    text = open(__file__, encoding="utf-8").read() * 6       # ~40 KB of varied characters
    path = folder / "c.txt"
    path.write_text(text, encoding="utf-8")
    prepare(str(path), "char", folder / "data")
    return path, folder / "data"


def test_memmap_and_in_memory_windows_are_the_same_draws(corpus):
    _, folder = corpus
    data = load_prepared(folder)
    assert isinstance(data.train, np.memmap)
    in_memory = np.array(data.train, dtype=np.int64)
    a, b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(3):
        x_map, x_mem = sample_windows(data.train, a, 16, 32), sample_windows(in_memory, b, 16, 32)
        assert x_map.dtype == torch.int64 and x_map.shape == (16, 33)
        assert torch.equal(x_map, x_mem)
    # and they are nanoGPT's draw: randint(n - T, (B, 1)) start positions, T + 1 consecutive tokens from each
    g = torch.Generator().manual_seed(3)
    ix = torch.randint(len(in_memory) - 32, (4, 1), generator=g)
    want = torch.from_numpy(in_memory)[ix + torch.arange(33)]
    assert torch.equal(sample_windows(data.train, torch.Generator().manual_seed(3), 4, 32), want)


def test_eval_plan_covers_every_predicted_token_once(corpus):
    data = load_prepared(corpus[1])
    plan, scored, scope = eval_batches(data.val, 32, 5)
    covered = np.concatenate([s[:, None] + np.arange(length) for s, length in plan for s in [s]], axis=None)
    assert scope == "whole split" and scored == len(data.val) - 1
    assert np.array_equal(np.sort(covered), np.arange(len(data.val) - 1))
    plan, scored, scope = eval_batches(data.val, 32, 5, windows=7)
    assert scope == "7 windows" and scored == 7 * 32 and sum(len(s) for s, _ in plan) == 7


def _reports(spec):
    run = api.start_run(spec)
    return run, [(r.step, r.train_loss, r.val_loss) for r in run.reports()]


def test_data_run_trains_exactly_as_the_in_memory_run(corpus):
    path, folder = corpus
    common = dict(family="transformer", preset="tiny-cpu-transformer", overrides=SMALL, max_steps=15, device="cpu",
                  seed=11)
    mem_run, in_memory = _reports(api.RunSpec(corpus=str(path), tokenizer="char", **common))
    data_run, mapped = _reports(api.RunSpec(data=str(folder), **common))
    assert isinstance(data_run.train_ids, np.memmap) and not isinstance(mem_run.train_ids, np.memmap)
    assert len(mapped) == len(in_memory) and mapped[-1][0] == 15
    assert mapped == in_memory                  # every report's train loss and validation loss, bit for bit
    assert data_run.summary()["val_bpc"] == mem_run.summary()["val_bpc"]
    assert data_run.summary()["train_chars"] == mem_run.summary()["train_chars"]
    # a different seed draws other windows: the comparison above can tell them apart
    _, other = _reports(api.RunSpec(data=str(folder), **dict(common, seed=12)))
    assert other[0][1] != mapped[0][1]


def test_data_run_saves_resumes_and_loads_everywhere(corpus, tmp_path):
    _, folder = corpus
    spec = dict(data=str(folder), family="transformer", preset="tiny-cpu-transformer", overrides=SMALL,
                device="cpu", seed=5)
    whole, straight = _reports(api.RunSpec(max_steps=20, **spec))
    first = api.start_run(api.RunSpec(max_steps=20, **spec))
    for r in first.reports():
        if r.step >= 10:
            first.stop()          # stopped at step 10 of the same 20-step schedule
    assert first.last_report.step == 10
    first.save(tmp_path / "ck")
    meta = api.load_checkpoint(tmp_path / "ck").meta
    assert meta["spec"]["data"] == str(folder.resolve()) and meta["spec"]["corpus"].endswith("c.txt")
    resumed = api.resume_run(str(tmp_path / "ck"), max_steps=20, device="cpu")
    after = [(r.step, r.train_loss, r.val_loss) for r in resumed.reports()]
    assert after[-1] == straight[-1]            # resuming continues as if never interrupted
    resumed.save(tmp_path / "ck")

    handle = api.load_checkpoint(tmp_path / "ck")
    text = [e.final_text for e in generate(handle.model, handle.tokenizer, "def ",
                                            DecodeConfig(max_new_tokens=5, seed=1)) if e.done][0]
    assert isinstance(text, str) and len(text) >= 1
    assert tape_report(tmp_path / "ck", "def x")["nodes"] > 0
    assert "logit_lens" in inspect_report(tmp_path / "ck", "def x", "last")


def test_resume_refuses_a_changed_prepared_folder_or_another_one(corpus, tmp_path):
    path, folder = corpus
    spec = api.RunSpec(data=str(folder), family="transformer", preset="tiny-cpu-transformer", overrides=SMALL,
                       max_steps=5, device="cpu")
    run = api.start_run(spec)
    list(run.reports())
    run.save(tmp_path / "ck")
    with pytest.raises(ConfigError, match="data"):
        api.resume_run(str(tmp_path / "ck"), max_steps=10, expect={"data": str(tmp_path)})
    changed = tmp_path / "changed"
    prepare(str(path), "word", changed)
    ck = api.load_checkpoint(tmp_path / "ck").meta
    with pytest.raises(CheckpointError, match="changed since the checkpoint was saved"):
        api.Run(api.RunSpec(**dict(ck["spec"], data=str(changed), max_steps=10)), _resume_dir=str(tmp_path / "ck"),
                _tokenizer=run.tokenizer)


def test_cli_train_data_and_resume(capsys, corpus, tmp_path):
    _, folder = corpus
    args = ["--model", "lstm", "--preset", "tiny-cpu-lstm", "--set", "n_embd=16", "--set", "n_hidden=32",
            "--set", "eval_interval=3", "--device", "cpu", "--out", str(tmp_path / "r")]
    assert main(["train", "--data", str(folder), "--max-steps", "3", *args]) == 0, capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--data", str(folder), "--max-steps", "6",
                 "--out", str(tmp_path / "r")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert '"step": 6' in out and '"corpus": "c.txt"' in out


def test_ngram_trains_from_a_small_prepared_folder_and_refuses_a_huge_one(corpus, monkeypatch):
    _, folder = corpus
    run = api.start_run(api.RunSpec(data=str(folder), family="ngram", overrides={"order": "3"}))
    final = list(run.reports())[-1]
    assert final.event == "done" and 0 < final.val_loss < 5
    monkeypatch.setattr(api, "NGRAM_MAX_TOKENS", 100)
    with pytest.raises(ConfigError, match="an n-gram is counted in memory"):
        api.start_run(api.RunSpec(data=str(folder), family="ngram"))


def test_resume_refuses_the_same_folder_prepared_again_with_other_data(capsys, corpus, tmp_path):
    """The folder a run trained from, prepared again with another split or corpus: a resume refuses it (CLI and
    resume_spec, which the window calls before starting); the same prepare again resumes."""
    path, _ = corpus
    folder = tmp_path / "d"
    prepare(str(path), "char", folder)
    args = ["--model", "lstm", "--preset", "tiny-cpu-lstm", "--set", "n_embd=16", "--set", "n_hidden=32",
            "--set", "eval_interval=3", "--device", "cpu", "--out", str(tmp_path / "r")]
    assert main(["train", "--data", str(folder), "--max-steps", "3", *args]) == 0, capsys.readouterr().err
    saved = api.load_checkpoint(tmp_path / "r").meta["spec"]
    assert saved["data_fingerprint"] and saved["data"] == str(folder.resolve())
    prepare(str(path), "char", folder)                        # the same data again: still the run's
    api.resume_spec(str(tmp_path / "r"), max_steps=6)
    other = tmp_path / "other.txt"
    other.write_text(path.read_text(encoding="utf-8")[::-1], encoding="utf-8")   # same size and characters
    for corpus_path, vf in ((str(path), 0.3), (str(other), 0.1)):
        assert main(["prepare", "--corpus", corpus_path, "--val-fraction", str(vf), "--out", str(folder),
                     "--quiet"]) == 0
        capsys.readouterr()
        with pytest.raises(CheckpointError, match="changed since the checkpoint was saved"):
            api.resume_spec(str(tmp_path / "r"), max_steps=6)
        assert main(["train", "--resume", str(tmp_path / "r"), "--max-steps", "6", "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "changed since the checkpoint was saved" in err and f"{vf}" in err
