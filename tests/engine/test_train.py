"""The trainer: learning, reports, validation over the whole split, control flags, checkpoints, faults, presets."""
import copy
import math
import threading

import pytest
import torch

from engine.checkpoint import load_group
from engine.errors import CheckpointError, ConfigError
from engine.models import build_model
from engine.presets import apply_overrides, list_presets, load_preset
from engine.train import StepReport, TrainConfig, Trainer
from engine.train_state import load_model_from_checkpoint

GPT_CFG = dict(block_size=16, n_layer=1, n_head=2, n_embd=16)


@pytest.fixture
def data(small_text):
    chars = sorted(set(small_text))
    ids = [chars.index(c) for c in small_text]
    n = int(len(ids) * 0.9)
    return dict(vocab=len(chars), train=ids[:n], val=ids[n:], val_chars=len(small_text) - n)


def make(data, family="transformer", model_seed=0, sync_free=None, model_kw=None, **train_kw):
    torch.manual_seed(model_seed)
    model_cfg = dict(GPT_CFG) if family == "transformer" else dict(n_layer=1, n_embd=8, n_hidden=16)
    model_cfg.update(model_kw or {})
    model = build_model(family, dict(model_cfg, vocab_size=data["vocab"]))
    cfg = dict(max_steps=30, batch_size=4, block_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=5, eval_interval=1000,
               steps_per_yield=5, device="cpu")
    cfg.update(train_kw)
    return Trainer(model, data["train"], data["val"], TrainConfig(**cfg), val_chars=data["val_chars"],
                   sync_free=sync_free)


@pytest.mark.parametrize("family", ["transformer", "lstm"])
def test_training_lowers_loss_and_reports_plain_data(seed, data, family):
    reports = list(make(data, family, max_steps=60, lr=1e-2, eval_interval=30).reports())
    assert [r.step for r in reports] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 60]
    assert [r.event for r in reports].count("eval") == 1 and reports[5].event == "eval"
    assert reports[-1].event == "done" and reports[-1].message == "finished"
    assert reports[-1].val_loss < reports[5].val_loss < math.log(data["vocab"])
    assert reports[-3].train_loss < 0.8 * reports[0].train_loss
    for r in reports:
        for v in vars(r).values():
            assert v is None or isinstance(v, (int, float, str))
    assert reports[-1].tokens == 60 * 4 * 16
    assert reports[0].message.startswith("training on CPU")
    assert reports[0].message.endswith("no MFU (share of peak speed used): no peak speed on record for this device")
    assert reports[-1].mfu is None  # no honest peak for a CPU
    assert reports[-1].val_ppl == pytest.approx(math.exp(reports[-1].val_loss))


def test_validation_covers_every_token(seed, data):
    trainer = make(data, block_size=16, precision="fp32")   # compared with a float32 forward below
    val = torch.tensor(data["val"])
    assert (len(val) - 1) % 16  # the last window is a short one
    model = trainer.model.eval()
    nats = 0.0
    with torch.no_grad():
        for s in range(0, len(val) - 1, 16):
            x, y = val[s:min(s + 16, len(val) - 1)], val[s + 1:s + 17]
            nats += torch.nn.functional.cross_entropy(model(x[None])[0][0], y, reduction="sum").item()
    loss, bpc, ppl = trainer.evaluate()
    assert loss == pytest.approx(nats / (len(val) - 1), rel=1e-6)
    n = len(val) - 1
    assert bpc == pytest.approx(nats / (data["val_chars"] * n / (n + 1) * math.log(2)), rel=1e-6)
    assert ppl == pytest.approx(math.exp(loss))
    assert trainer.model.training  # evaluation puts the model back in training mode


def test_same_seed_same_curve(seed, data):
    def curve(seed_):
        return [r.train_loss for r in make(data, steps_per_yield=1, max_steps=12, seed=seed_,
                                          model_kw={"dropout": 0.1}).reports()]
    assert curve(5) == curve(5)
    assert curve(5) != curve(6)


def test_pause_blocks_until_resume_and_stop_finishes(seed, data):
    trainer = make(data, max_steps=40)
    gen = trainer.reports()
    assert next(gen).step == 5
    trainer.pause()
    paused = next(gen)
    assert paused.event == "paused" and paused.step == 5 and "paused" in paused.message
    timer = threading.Timer(0.05, trainer.resume)  # the GUI thread resuming while the worker waits
    timer.start()
    assert next(gen).step == 10  # blocked in wait() until resume, then ran the next steps
    timer.join()
    trainer.stop()
    final = next(gen)
    assert final.event == "done" and final.step == 10
    assert final.val_loss is None   # a stop ends the run at once; the validation pass is left for later
    assert "stopped" in final.message
    assert next(gen, None) is None
    evaluated = trainer.final_evaluation()
    assert evaluated.event == "eval" and evaluated.step == 10 and evaluated.val_loss is not None
    assert trainer.last_eval is evaluated and trainer.history.rows[-1][6] == evaluated.val_loss


def test_a_cancelled_evaluation_returns_none_and_a_stop_cuts_one_short(seed, data, monkeypatch):
    trainer = make(data, max_steps=10)
    gen = trainer.reports()
    next(gen)
    checks = []
    assert trainer.final_evaluation(cancel=lambda: checks.append(1) or True) is None and checks == [1]
    assert trainer.last_eval is None
    # a stop that arrives during the last step's evaluation cuts it short: the run ends without a finished pass
    real = trainer.evaluate

    def stop_then_evaluate(cancel=None):
        trainer.stop()
        return real(cancel=cancel)
    monkeypatch.setattr(trainer, "evaluate", stop_then_evaluate)
    rest = list(gen)
    assert [r.event for r in rest] == ["step", "done"] and rest[-1].step == 10
    assert all(r.val_loss is None for r in rest)


def test_stop_wakes_a_paused_generator(seed, data):
    trainer = make(data)
    gen = trainer.reports()
    next(gen)
    trainer.pause()
    assert next(gen).event == "paused"
    threading.Timer(0.05, trainer.stop).start()
    assert next(gen).event == "done"


def test_stop_is_honoured_between_steps_inside_a_report(seed, data, monkeypatch):
    trainer = make(data, steps_per_yield=10)
    real = trainer._forward_backward
    calls = []

    def stop_on_third(*args):
        calls.append(1)
        if len(calls) == 3:
            trainer.stop()  # as the GUI thread would, while the worker is mid-report
        return real(*args)
    monkeypatch.setattr(trainer, "_forward_backward", stop_on_third)
    reports = list(trainer.reports())
    assert [(r.step, r.event) for r in reports] == [(3, "step"), (3, "done")]


@pytest.mark.parametrize("family", ["transformer", "gru"])
def test_resumed_run_continues_identically(seed, data, tmp_path, family):
    kw = dict(steps_per_yield=1, max_steps=16, model_kw={"dropout": 0.2})
    straight = [r.train_loss for r in make(data, family, **kw).reports()][:16]
    first = make(data, family, **kw)
    gen = first.reports()
    for _ in range(8):
        next(gen)
    first.save(tmp_path / "ckpt", {"note": "halfway"})
    resumed = Trainer.resume_from(tmp_path / "ckpt", None, data["train"], data["val"], val_chars=data["val_chars"])
    assert resumed.step == 8 and resumed.tokens == 8 * 4 * 16
    rest = [r.train_loss for r in resumed.reports()][:8]
    assert rest == straight[8:]  # bit-identical: weights, AdamW moments, batch and dropout RNG all restored


def test_checkpoint_of_another_architecture_is_refused(seed, data, tmp_path):
    trainer = make(data)
    next(trainer.reports())
    trainer.save(tmp_path / "c")
    other = build_model("transformer", dict(GPT_CFG, n_embd=32, vocab_size=data["vocab"]))
    with pytest.raises(CheckpointError, match="n_embd=16 .here 32."):
        Trainer.resume_from(tmp_path / "c", other, data["train"], data["val"], val_chars=data["val_chars"])
    lstm = build_model("lstm", dict(vocab_size=data["vocab"]))
    with pytest.raises(CheckpointError, match="transformer"):
        Trainer.resume_from(tmp_path / "c", lstm, data["train"], data["val"], val_chars=data["val_chars"])


def test_load_model_from_checkpoint_keeps_tied_weights(seed, data, tmp_path):
    trainer = make(data)
    next(trainer.reports())
    trainer.save(tmp_path / "c")
    model, meta = load_model_from_checkpoint(tmp_path / "c")
    assert meta["step"] == 5 and meta["family"] == "transformer"
    assert model.lm_head.weight is model.wte.weight
    for (name, a), b in zip(trainer.model.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    fresh = build_model("transformer", dict(meta["model"]))
    fresh.load_state_dict(load_group(tmp_path / "c", "model"))  # a plain strict load works too


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
                                                "allocate memory: you tried to allocate 2147483648 bytes.")])
def test_out_of_memory_pauses_with_last_good_weights(seed, data, tmp_path, monkeypatch, error):
    trainer = make(data, max_steps=15)
    gen = trainer.reports()
    next(gen)
    good = copy.deepcopy(trainer.model.state_dict())
    real = trainer._forward_backward
    calls = []

    def flaky(*args):
        calls.append(1)
        if len(calls) == 1:
            raise error
        return real(*args)
    monkeypatch.setattr(trainer, "_forward_backward", flaky)
    err = next(gen)
    assert err.event == "error" and err.step == 5 and "batch_size" in err.message
    assert trainer.paused
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(v, good[k], rtol=0, atol=0)
    trainer.save(tmp_path / "after-oom")  # the last good step can be saved
    assert next(gen).event == "paused"
    trainer.resume()
    assert [r.step for r in gen] == [10, 15, 15]


def test_an_error_that_is_not_out_of_memory_is_not_mistaken_for_one(seed, data, monkeypatch):
    trainer = make(data, max_steps=15)
    gen = trainer.reports()
    next(gen)
    monkeypatch.setattr(trainer, "_forward_backward", lambda *a: (_ for _ in ()).throw(RuntimeError("shape bug")))
    with pytest.raises(RuntimeError, match="shape bug"):
        next(gen)


@pytest.mark.parametrize("sync_free", [False, True])
def test_nan_loss_stops_at_that_step_with_finite_weights(seed, data, monkeypatch, sync_free):
    reference = make(data, steps_per_yield=1, max_steps=20)
    snapshots = {r.step: copy.deepcopy(reference.model.state_dict()) for r in reference.reports()}
    trainer = make(data, max_steps=20, sync_free=sync_free)
    real_forward = trainer.model.forward
    calls = []

    def poisoned(idx, targets=None):
        calls.append(1)
        logits, loss = real_forward(idx, targets)
        return logits, loss * math.nan if len(calls) == 7 else loss
    monkeypatch.setattr(trainer.model, "forward", poisoned)
    reports = list(trainer.reports())
    assert [r.event for r in reports] == ["step", "error"]
    # step 7's loss came from the weights of step 6, so those are not kept: step 5's were the last whose loss
    # and gradients were finite
    assert reports[-1].message.startswith("the loss became nan at step 7; stopped with the weights of step 5")
    assert reports[-1].step == 5 and trainer.step == 5 and trainer.tokens == 5 * 4 * 16
    for k, v in trainer.model.state_dict().items():
        assert torch.isfinite(v).all()
        torch.testing.assert_close(v, snapshots[5][k], rtol=0, atol=1e-6)


@pytest.mark.parametrize("sync_free", [False, True])
def test_an_infinite_gradient_norm_is_named_as_such(seed, data, monkeypatch, sync_free):
    trainer = make(data, max_steps=20, sync_free=sync_free)
    real = trainer._forward_backward
    calls = []

    def inf_norm(x, y, params):
        calls.append(1)
        loss, norm = real(x, y, params)
        return loss, norm * math.inf if len(calls) == 4 else norm
    monkeypatch.setattr(trainer, "_forward_backward", inf_norm)
    last = list(trainer.reports())[-1]
    assert last.event == "error"
    assert last.message.startswith("the gradient norm became inf (the loss was finite, ")
    assert "at step 4; stopped with the weights of step 2" in last.message and trainer.step == 2


def test_after_a_divergence_a_resume_with_a_lower_lr_goes_on(seed, data, tmp_path):
    """lr 1e4 without clipping blows the weights up; the kept weights are the last finite ones, so the same
    checkpoint resumed with lr 1e-3 trains on instead of failing at its first step."""
    blown = make(data, max_steps=200, lr=1e4, min_lr=0.0, warmup_steps=0, grad_clip=0.0, steps_per_yield=1)
    reports = list(blown.reports())
    assert reports[-1].event == "error", "lr 1e4 should diverge"
    bad = int(reports[-1].message.split(" at step ")[1].split(";")[0])
    assert blown.step == bad - 2 >= 0
    blown.save(tmp_path / "ck")
    model = build_model("transformer", dict(GPT_CFG, vocab_size=data["vocab"]))
    cfg = TrainConfig(max_steps=blown.step + 20, batch_size=4, block_size=16, lr=1e-3, min_lr=1e-4, warmup_steps=0,
                      eval_interval=1000, steps_per_yield=5, device="cpu")
    again = Trainer.resume_from(tmp_path / "ck", model, data["train"], data["val"], cfg, val_chars=data["val_chars"])
    more = list(again.reports())
    assert [r.event for r in more if r.event == "error"] == []
    assert more[-1].step == blown.step + 20 and math.isfinite(more[-1].val_loss)


def test_sync_free_mode_matches_the_plain_loop(seed, data):
    plain = [r.train_loss for r in make(data, max_steps=10, sync_free=False).reports()]
    fused = [r.train_loss for r in make(data, max_steps=10, sync_free=True).reports()]
    assert fused == pytest.approx(plain, rel=1e-4)


@pytest.mark.parametrize("kw,match", [
    (dict(lr=0.0), "lr"), (dict(lr=-1.0), "lr"), (dict(batch_size=0), "batch_size"), (dict(max_steps=0), "max_steps"),
    (dict(min_lr=1.0), "min_lr"), (dict(beta2=1.0), "beta"), (dict(precision="fp8"), "precision"),
    (dict(device="tpu"), "device"), (dict(family="lstm", block_size=100_000), "train split"), (dict(block_size=32), "block_size 16"),
    (dict(model_kw={"n_head": 3}), "divisible"), (dict(model_kw={"n_kv_head": 3, "n_head": 2}), "divide"),
    (dict(model_kw={"dropout": 1.0}), "dropout"), (dict(model_kw={"dropout": -0.1}), "dropout"),
])
def test_bad_hyperparameters_rejected_before_work(data, kw, match):
    with pytest.raises(ConfigError, match=match):
        make(data, **kw)


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    cfg = TrainConfig(max_steps=100, warmup_steps=10, lr=1.0, min_lr=0.1)
    lrs = [cfg.lr_at(s) for s in range(100)]
    assert lrs[:10] == sorted(lrs[:10]) and lrs[0] < 0.2
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[10:] == sorted(lrs[10:], reverse=True)
    assert cfg.lr_at(100) == pytest.approx(0.1)


def test_presets_load_and_validate():
    names = list_presets()
    for want in ("tiny-cpu-rnn", "tiny-cpu-lstm", "tiny-cpu-gru", "tiny-cpu-transformer", "char-rnn-lstm",
                 "nanogpt-char", "nanogpt-cpu", "fast-gpu-char", "fast-cpu-char"):
        assert want in names
    for name in names:
        p = load_preset(name)
        assert p["description"] and p["model"]["block_size"] >= p["train"]["block_size"]
    nano = load_preset("nanogpt-char")
    assert (nano["model"]["n_layer"], nano["model"]["n_head"], nano["model"]["n_embd"]) == (6, 6, 384)
    assert nano["train"]["lr"] == 1e-3 and nano["train"]["max_steps"] == 5000 and nano["model"]["dropout"] == 0.2
    with pytest.raises(ConfigError, match="nanogpt-char"):
        load_preset("no-such-preset")


def test_overrides_are_typed_and_checked():
    p = load_preset("tiny-cpu-transformer")
    out = apply_overrides(p, {"lr": "2e-3", "n_layer": "3", "compile": "true", "block_size": "32",
                              "model.n_kv_head": "1", "train.seed": "7", "model.pos": "sinusoidal"})
    assert out["train"]["lr"] == 2e-3 and out["model"]["n_layer"] == 3 and out["train"]["compile"] is True
    assert out["model"]["block_size"] == out["train"]["block_size"] == 32
    assert out["model"]["n_kv_head"] == 1 and out["train"]["seed"] == 7 and out["model"]["pos"] == "sinusoidal"
    assert p["train"]["lr"] == 3e-3  # the preset itself is untouched
    assert apply_overrides(p, {"n_kv_head": "none"})["model"]["n_kv_head"] is None
    with pytest.raises(ConfigError, match="unknown setting 'n_layers'"):
        apply_overrides(p, {"n_layers": "3"})
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(p, {"n_layer": "three"})
    with pytest.raises(ConfigError, match="unknown setting"):
        apply_overrides(p, {"train.n_layer": "3"})


def test_ngram_model_is_not_trained_here(data):
    class Counting:
        family = "ngram"
    with pytest.raises(ConfigError, match="counting"):
        Trainer(Counting(), data["train"], data["val"], TrainConfig(), val_chars=10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_reports_mfu_and_bf16(seed, data):
    reports = list(make(data, device="cuda", max_steps=20, compile=False).reports())
    assert reports[-1].event == "done" and reports[-1].val_loss < math.log(data["vocab"])
    assert reports[-1].mfu is not None and 0 < reports[-1].mfu < 1
    assert isinstance(reports[-1], StepReport) and isinstance(reports[-1].train_loss, float)


def test_final_report_gives_the_whole_runs_throughput(seed, data):
    """The done report's tokens/s is the session's (all step tokens over all step time), not the last report's,
    which can be a single step's; the summary and the CLI's JSON line print it."""
    trainer = make(data, max_steps=23, steps_per_yield=5)     # the last window is 3 steps
    reports = list(trainer.reports())
    steps = [r for r in reports if r.event in ("step", "eval")]
    tokens = [(b.step - a.step) * 4 * 16 for a, b in zip([StepReport(0, 0, 0, 0, 0, 0, 1, 0, None)] + steps, steps)]
    expected = sum(tokens) / sum(t / r.tokens_per_s for t, r in zip(tokens, steps))
    assert reports[-1].event == "done" and reports[-1].tokens_per_s == pytest.approx(expected, rel=1e-9)


def test_evaluations_during_training_may_use_fixed_windows_but_the_last_is_whole(seed, data):
    trainer = make(data, max_steps=20, eval_interval=10, eval_windows=3, precision="fp32")   # as above
    reports = [r for r in trainer.reports() if r.val_loss is not None]
    assert [(r.event, r.val_scope) for r in reports] == [("eval", "3 windows"), ("done", "whole split")]
    assert reports[-1].val_loss == pytest.approx(trainer.evaluate()[0])   # the whole split, as evaluate() alone
    assert trainer._val_scope == "whole split"
    loss, bpc, _ = trainer.evaluate(3)
    val = torch.tensor(data["val"])
    n, T = len(val) - 1, 16
    model = trainer.model.eval()
    with torch.no_grad():   # the same three windows, first and last at the split's two ends
        nats = sum(torch.nn.functional.cross_entropy(model(val[s:s + T][None])[0][0], val[s + 1:s + T + 1],
                                                     reduction="sum").item()
                   for s in torch.linspace(0, n - T, 3).long().tolist())
    assert loss == pytest.approx(nats / (3 * T), rel=1e-5)
    assert bpc / loss == pytest.approx(trainer.evaluate()[1] / trainer.evaluate()[0])   # same chars per token


def test_small_cpu_runs_train_on_one_thread_unless_told(seed, data):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert make(data).threads == 1           # a tiny model's steps: auto picks one thread
        assert make(data, threads=2).threads == 2
        assert torch.get_num_threads() == 2      # making a trainer leaves the process's setting alone
    finally:
        torch.set_num_threads(before)


def test_a_run_sets_its_threads_only_while_it_runs(seed, data):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        t = make(data, max_steps=10)
        assert {torch.get_num_threads() for _ in t.reports()} == {1}   # auto: one thread for a tiny model
        assert torch.get_num_threads() == 2
        torch.set_num_threads(3)
        t = make(data, max_steps=10, threads=1)
        during = []
        for r in t.reports():
            during.append(torch.get_num_threads())   # the generator is suspended here, inside the run's scope
        assert during and set(during) == {1}
        assert torch.get_num_threads() == 3          # put back when the run ended
        t = make(data, max_steps=1000, threads=1)
        gen = t.reports()
        next(gen)
        assert torch.get_num_threads() == 1
        gen.close()                                  # a caller that stops iterating early
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
