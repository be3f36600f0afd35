"""engine/threads.py: the thread count chosen from the work's size and the idle cores, and set only for as long
as the work runs (the process's count is put back after a run, a sample, an early stop or an error)."""
import argparse
import threading

import pytest
import torch

from engine import threads
from engine.models import build_model
from engine.threads import Recheck, choose_threads, free_cores, inference_threads, torch_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_small_work_gets_one_thread_without_probing():
    def probe():
        raise AssertionError("small work must not probe the cores")
    assert choose_threads(5e6, probe) == 1
    assert choose_threads(threads.MIN_FLOPS_PER_THREAD, probe) == 1


def test_large_work_gets_the_idle_cores_capped_by_its_size():
    assert choose_threads(4e9, lambda: 2) == 2
    assert choose_threads(4e9, lambda: 1) == 1          # a busy second core: one thread
    assert choose_threads(4e9, lambda: 16) == 4         # at most one thread per MIN_FLOPS_PER_THREAD
    assert choose_threads(float("nan"), lambda: 2) == 1


def test_free_cores_is_within_the_usable_cores():
    n = free_cores(0.01)
    assert 1 <= n <= threads.usable_cores()


def test_free_cores_reads_idle_ticks(monkeypatch):
    samples = iter([{0: (100, 1000), 1: (100, 1000)}, {0: (190, 1100), 1: (110, 1100)}])   # cpu0 90% idle, cpu1 10%
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    assert free_cores(0) == 1
    samples = iter([{0: (100, 1000), 1: (100, 1000)}, {0: (190, 1100), 1: (180, 1100)}])   # both idle
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    assert free_cores(0) == 2


def test_recheck_never_exceeds_the_callers_ceiling():
    assert Recheck(4e9, 1, probe=lambda: 2).choose() == 1     # the window lowered torch to 1 thread on purpose
    r = Recheck(4e9, 2, probe=lambda: 2)
    assert r.choose() == 2 and not r.due()
    r.last -= Recheck.RECHECK_S
    assert r.due()


def test_a_whole_window_re_run_is_large_work_sooner_than_a_training_step():
    """bench/threads_ab.py: the 0.80M model's 64-token window re-run (~0.1 GFLOP) is faster on 2 idle cores;
    a cached step of the 10.7M nanogpt-char shape (~0.02 GFLOP) is not, nor is anything on a busy machine."""
    small = build_model("transformer", dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    big = build_model("transformer", dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384))
    window = threads.MIN_WINDOW_FLOPS_PER_THREAD
    assert choose_threads(threads.decode_flops(small, 64), lambda: 2, window) == 2
    assert choose_threads(threads.decode_flops(small, 64), lambda: 1, window) == 1
    assert choose_threads(threads.decode_flops(small, 64), lambda: 2) == 1        # a training step's rule
    assert choose_threads(threads.decode_flops(big), lambda: 2, window) == 1      # one cached token


def test_one_look_at_the_cpus_serves_every_decoding_started_soon_after(monkeypatch):
    looks = []
    monkeypatch.setattr(threads, "free_cores", lambda probe_s=0: looks.append(1) or 2)
    assert [threads.recent_free_cores() for _ in range(5)] == [2] * 5 and len(looks) == 1
    assert threads.recent_free_cores(max_age_s=0) == 2 and len(looks) == 2      # an old answer is looked at again
    monkeypatch.setattr(threads, "free_cores", lambda probe_s=0: looks.append(1) or 1)
    assert threads.recent_free_cores() == 1 and len(looks) == 3                 # another probe: not its answer


def test_inference_threads_by_model_size():
    small = build_model("transformer", dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    assert inference_threads(small) == 1                   # the 0.80M model: about 0.1 GFLOP per full window
    assert inference_threads(object()) is None             # not a torch model: leave torch alone


def test_torch_threads_restores_the_count(restore_threads):
    torch.set_num_threads(2)
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with torch_threads(None):
        assert torch.get_num_threads() == 2


def test_cli_sample_restores_the_count(restore_threads, tmp_path, monkeypatch):
    from engine import api, cli
    torch.set_num_threads(2)
    seen = []

    class Handle:
        model = build_model("transformer", dict(vocab_size=65, block_size=64, n_layer=1, n_head=1, n_embd=8))

    monkeypatch.setattr(api, "load_checkpoint", lambda path, **sources: Handle())
    monkeypatch.setattr(cli, "_sample_loaded", lambda args, handle: seen.append(torch.get_num_threads()) or 0)
    assert cli._sample(argparse.Namespace(checkpoint="x", tokenizer_file=None, meta=None)) == 0
    assert seen == [1] and torch.get_num_threads() == 2


def test_a_worker_threads_scope_leaves_the_main_threads_count(restore_threads):
    torch.set_num_threads(2)
    inside = []

    def work():
        with torch_threads(1):
            inside.append(torch.get_num_threads())
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert inside == [1] and torch.get_num_threads() == 2


def test_a_run_gives_back_a_second_thread_when_the_cores_get_busy(restore_threads, monkeypatch, small_text):
    from engine.train import Trainer, TrainConfig
    chars = sorted(set(small_text))
    ids = [chars.index(c) for c in small_text]
    idle = [2]
    monkeypatch.setattr(threads, "MIN_FLOPS_PER_THREAD", 1.0)       # the tiny model counts as large work here
    monkeypatch.setattr(threads, "free_cores", lambda probe_s=0: idle[0])
    monkeypatch.setattr(Recheck, "RECHECK_S", 0.0)                  # look again after every report
    torch.set_num_threads(2)
    model = build_model("transformer", dict(vocab_size=len(chars), block_size=16, n_layer=1, n_head=2, n_embd=16))
    t = Trainer(model, ids[:2000], ids[2000:2400], TrainConfig(max_steps=30, batch_size=2, block_size=16,
                                                               steps_per_yield=5, eval_interval=1000, device="cpu"),
                val_chars=400)
    assert t.threads == 2
    during = []
    for i, _ in enumerate(t.reports()):
        during.append(torch.get_num_threads())
        if i == 1:
            idle[0] = 1                                                # another process took the second core
    assert during[:2] == [2, 2] and during[-1] == 1
    assert torch.get_num_threads() == 2                                # and the caller's count is back


def test_decoding_takes_more_threads_only_for_whole_window_re_runs(restore_threads, monkeypatch):
    from engine.decode import DecodeConfig, complete
    from engine.tokenizers.char import CharTokenizer
    tok = CharTokenizer("abcdefgh")
    model = build_model("transformer", dict(vocab_size=8, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    monkeypatch.setattr(threads, "MIN_WINDOW_FLOPS_PER_THREAD", 1.0)   # the tiny model counts as large work here
    monkeypatch.setattr(threads, "free_cores", lambda probe_s=0: 2)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    calls = {"cached": [], "window": []}
    cached, last = type(model).forward_cached, type(model).last_logits
    def record(kind, fn):
        def wrapped(self, *a):
            calls[kind].append(torch.get_num_threads())
            return fn(self, *a)
        return wrapped
    monkeypatch.setattr(type(model), "forward_cached", record("cached", cached))
    monkeypatch.setattr(type(model), "last_logits", record("window", last))
    torch.set_num_threads(1)
    complete(model, tok, "ab", DecodeConfig(seed=0, max_new_tokens=12))
    assert set(calls["cached"]) == {1}                  # a cached step: the caller's one thread
    assert calls["window"] and set(calls["window"]) == {2}   # past the 8-token window: the idle second core
    assert torch.get_num_threads() == 1
