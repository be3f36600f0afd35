"""The facade the GUI and CLI share: seeding, resuming, pausing, snapshots, loading, memory checks."""
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import api
from engine import device as devices
from engine.checkpoint import load_meta
from engine.errors import CheckpointError, ConfigError


def _spec(path, **kw):
    base = dict(corpus=str(path), family="transformer", preset="tiny-cpu-transformer", device="cpu",
                overrides={"n_layer": "1", "eval_interval": "50"}, max_steps=4)
    base.update(kw)
    return api.RunSpec(**base)


@pytest.fixture
def corpus_file(tmp_path, small_text):
    p = tmp_path / "c.txt"
    p.write_text(small_text, encoding="utf-8")
    return p


def test_same_seed_same_initial_weights_and_curve(corpus_file):
    runs = [api.start_run(_spec(corpus_file, seed=5)) for _ in range(2)]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)
    losses = [[r.train_loss for r in run.reports()] for run in runs]
    assert losses[0] == losses[1]
    other = api.start_run(_spec(corpus_file, seed=6))
    assert not torch.equal(next(iter(other.model.state_dict().values())),
                           next(iter(runs[0].model.state_dict().values())))


def test_resume_keeps_the_checkpoints_vocabulary_when_the_file_changed(corpus_file, tmp_path):
    run = api.start_run(_spec(corpus_file))
    list(run.reports())
    run.save(tmp_path / "ck")
    saved_vocab = load_meta(tmp_path / "ck")["tokenizer"]
    text = corpus_file.read_text()
    corpus_file.write_text(text.replace("k", "z"))      # 'z' never appeared: a rebuilt vocabulary would shift ids
    with pytest.raises(CheckpointError, match="changed since the checkpoint"):
        api.resume_run(str(tmp_path / "ck"), max_steps=6, device="cpu")
    corpus_file.write_text(text[: len(text) // 2] + text)  # same characters, different text: resumable
    resumed = api.resume_run(str(tmp_path / "ck"), max_steps=6, device="cpu")
    assert resumed.tokenizer.to_dict() == saved_vocab
    assert [r.step for r in resumed.reports()][-1] == 6


def test_ngram_refuses_a_preset(corpus_file):
    with pytest.raises(ConfigError, match="presets are for neural models"):
        api.start_run(_spec(corpus_file, family="ngram", overrides={}))


def test_pause_acts_within_a_multi_step_report(corpus_file):
    run = api.start_run(_spec(corpus_file, max_steps=400,
                              overrides={"n_layer": "1", "steps_per_yield": "50", "eval_interval": "400"}))
    gen = run.reports()
    first = next(gen)
    assert first.step == 50
    seen = []
    original = run.trainer._run_steps

    def pausing_steps(n):
        run.pause()                  # as if the user pressed Pause right as the report began
        return original(n)
    run.trainer._run_steps = pausing_steps
    r = next(gen)
    seen.append(r)
    run.trainer._run_steps = original
    assert r.step < 100, "the pause waited for the whole 50-step report"
    paused = next(gen) if r.event != "paused" else r
    assert paused.event == "paused"
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", next(gen)))
    t.start()
    t.join(0.3)
    assert t.is_alive(), "a paused run must wait for resume"
    run.resume()
    t.join(10)
    assert box["r"].step > paused.step
    run.stop()
    assert list(gen)[-1].event == "done"


def test_word_tokenizer_bpc_carries_a_note(corpus_file):
    run = api.start_run(_spec(corpus_file, family="ngram", preset=None, overrides={}, tokenizer="word",
                              tokenizer_options={"vocab_size": "10"}))
    list(run.reports())
    s = run.summary()
    assert "<unk>" in s["val_bpc_note"] and np.isfinite(s["val_bpc"])


def test_snapshot_is_an_independent_cpu_copy(corpus_file):
    run = api.start_run(_spec(corpus_file, max_steps=12,
                              overrides={"n_layer": "1", "steps_per_yield": "4", "eval_interval": "50"}))
    gen = run.reports()
    assert next(gen).step == 4
    snap = run.snapshot()
    before = {k: v.clone() for k, v in snap.model.state_dict().items()}
    list(gen)
    after = snap.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(before[k], v) for k, v in run.trainer.raw_model.state_dict().items())


def test_loading_a_file_as_checkpoint_says_so(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="is a file"):
        api.load_checkpoint(f)


def test_pause_after_the_last_step_lets_the_run_finish(corpus_file):
    run = api.start_run(_spec(corpus_file, max_steps=4,
                              overrides={"n_layer": "1", "steps_per_yield": "4", "eval_interval": "50"}))
    gen = run.reports()
    assert next(gen).step == 4
    run.pause()                       # pressed as the last step completed: nothing is left to pause
    rest = list(gen)
    assert rest and rest[-1].event == "done" and all(r.event != "paused" for r in rest)


def test_snapshot_does_not_wait_for_a_validation_pass(corpus_file):
    """The GUI takes snapshots on its own thread; a long evaluation must not freeze it."""
    run = api.start_run(_spec(corpus_file, max_steps=4,
                              overrides={"n_layer": "1", "steps_per_yield": "2", "eval_interval": "2"}))
    in_eval, release = threading.Event(), threading.Event()
    original = run.trainer.evaluate

    def slow_evaluate(*args, **kwargs):
        in_eval.set()
        release.wait(10)
        return original(*args, **kwargs)
    run.trainer.evaluate = slow_evaluate
    worker = threading.Thread(target=lambda: list(run.reports()))
    worker.start()
    assert in_eval.wait(10)
    done = threading.Event()
    threading.Thread(target=lambda: (run.snapshot(), done.set())).start()
    snapped_during_eval = done.wait(5)
    release.set()
    worker.join(20)
    assert snapped_during_eval, "snapshot() waited for the evaluation to finish"


def test_a_model_too_big_for_memory_is_refused_before_it_is_built(corpus_file, monkeypatch, capsys):
    from engine import train
    from engine.cli import main
    from engine.errors import TrainingError
    built = []
    monkeypatch.setattr(train.Trainer, "__init__", lambda *a, **k: built.append(a))
    monkeypatch.setattr(devices, "available_memory", lambda device: (2_000_000, "available RAM"))
    spec = _spec(corpus_file)
    with pytest.raises(TrainingError) as err:
        api.start_run(spec)
    model, tr = api.resolve_config("transformer", spec.preset, spec.overrides, 1)
    need = api.estimate("transformer", model, tr, api.prepare_corpus(spec)[1].vocab_size)["memory_bytes"]
    assert f"needs about {devices.format_bytes(need)}" in str(err.value)
    assert "1.9 MB of available RAM" in str(err.value) and "n_layer" in str(err.value)
    assert built == []
    assert main(["train", "--corpus", str(corpus_file), "--device", "cpu", "--max-steps", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: training this model needs about")


def test_sizes_read_in_binary_units_up_to_petabytes():
    assert devices.format_bytes(512) == "512 B" and devices.format_bytes(1536) == "1.5 KB"
    assert devices.format_bytes(3 * 1024 ** 3) == "3.0 GB" and devices.format_bytes(5 * 1024 ** 6) == "5120.0 PB"


def test_memory_problem_is_empty_when_the_estimate_fits():
    have, what = devices.available_memory("cpu")
    assert have > 0 and what == "available RAM"
    assert devices.memory_problem(have // 2, "cpu") == ""
    assert "of available RAM" in devices.memory_problem(have * 2, "cpu")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_available_memory_respects_an_address_space_limit():
    """ulimit -v caps what the process can allocate whatever the machine has free."""
    code = ("import resource, torch\nfrom engine import device as devices\n"
            "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
            "resource.setrlimit(resource.RLIMIT_AS, (used + 300_000_000, resource.getrlimit(resource.RLIMIT_AS)[1]))\n"
            "print(devices.available_memory('cpu')[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert 200_000_000 < int(out.stdout) <= 300_000_000


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] . "
                                     "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes."),
                                     torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")])
def test_running_out_of_memory_while_building_is_a_user_error(corpus_file, monkeypatch, failure):
    from engine import train
    from engine.errors import TrainingError

    def fail(*a, **k):
        raise failure
    monkeypatch.setattr(train.Trainer, "__init__", fail)
    with pytest.raises(TrainingError, match="out of memory while building the model and optimizer .*n_layer"):
        api.start_run(_spec(corpus_file))


def test_other_runtime_errors_while_building_are_not_hidden(corpus_file, monkeypatch):
    from engine import train

    def fail(*a, **k):
        raise RuntimeError("a bug")
    monkeypatch.setattr(train.Trainer, "__init__", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        api.start_run(_spec(corpus_file))


def test_estimate_takes_unlisted_settings_from_the_configs_defaults():
    """Runs call estimate() before building, so a preset or override that leaves a size to its default must work."""
    for family, sizes in (("transformer", {"n_head": 2, "n_embd": 32}), ("lstm", {})):
        e = api.estimate(family, sizes, {"batch_size": 2, "block_size": 8}, vocab_size=10)
        assert e["params"] == api.build_model(family, dict(sizes, vocab_size=10)).num_params()
        assert e["memory_bytes"] > 16 * e["params"]


@pytest.mark.parametrize("name,peak", [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
                                       ("NVIDIA H100 NVL", 835e12), ("NVIDIA H200", 989e12),
                                       ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA GeForce GTX 1080", None)])
def test_mfu_peak_is_the_cards_own(name, peak):
    """The PCIe H100 runs at lower clocks than the SXM part: crediting it 989 TFLOP/s would understate its MFU."""
    found = devices.peak_for_name(name)
    assert (found[0] if found else None) == peak


@pytest.mark.parametrize("family,cfg", [
    ("transformer", {"n_layer": 2, "n_head": 2, "n_embd": 8, "block_size": 8}),
    ("transformer", {"n_layer": 3, "n_head": 4, "n_kv_head": 2, "n_embd": 16, "block_size": 8, "bias": True,
                     "pos": "learned", "tie_weights": False}),
    ("lstm", {"n_layer": 3, "n_embd": 6, "n_hidden": 5}), ("gru", {"n_layer": 1, "n_embd": 6, "n_hidden": 6,
                                                                   "tie_weights": True}),
    ("rnn", {"n_layer": 2, "n_embd": 4, "n_hidden": 9}),
])
def test_arithmetic_parameter_count_equals_the_built_model(family, cfg):
    from engine.models import build_model, param_count
    model = build_model(family, dict(cfg, vocab_size=13))
    assert param_count(family, model.config) == model.num_params()
    assert api.estimate(family, cfg, {"batch_size": 2, "block_size": 8}, 13)["params"] == model.num_params()


def test_a_huge_config_is_judged_without_building_it():
    """A million layers would take minutes and gigabytes to build; the estimate is arithmetic."""
    e = api.estimate("transformer", {"n_layer": 1_000_000, "n_head": 6, "n_embd": 384, "block_size": 256},
                     {"batch_size": 64, "block_size": 256}, 65)
    assert e["params"] > 1_000_000 * 12 * 384 ** 2


def test_a_stopped_run_ends_without_validating_and_validates_on_request(corpus_file):
    run = api.start_run(_spec(corpus_file, max_steps=50, overrides={"n_layer": "1", "steps_per_yield": "1",
                                                                    "eval_interval": "1000"}))
    gen = run.reports()
    next(gen)
    run.stop()
    done = list(gen)[-1]
    assert done.event == "done" and done.val_loss is None and run.needs_final_evaluation()
    assert run.final_evaluation(cancel=lambda: True) is None and run.needs_final_evaluation()
    rep = run.final_evaluation()
    assert rep.event == "eval" and rep.step == done.step and np.isfinite(rep.val_loss)
    assert rep.val_scope == "whole split"                      # the history says what the figure covers
    assert run.summary()["val_loss"] == rep.val_loss and not run.needs_final_evaluation()
