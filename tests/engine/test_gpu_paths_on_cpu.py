"""The trainer's GPU code paths, run on the CPU where torch allows it: torch.compile (traced by dynamo with the
aot_eager backend, so no C compiler is needed and a trace takes a second), bf16 autocast, the fused sync-free AdamW
loop, checkpoints that cross devices and optimizer implementations, out-of-memory recovery, and decoding/validation
without float64 on the device (MPS has none). The tests parametrized over "cuda" run only on a GPU machine
(bench/gpu_check.sh runs this file there)."""
import contextlib
import dataclasses
import functools
import math
import warnings
import weakref

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from engine.checkpoint import load_group, load_meta, save_checkpoint
from engine.decode import DecodeConfig, generate
from engine.device import cpu_has_native_bf16
from engine.models import build_model
from engine.tokenizers.char import CharTokenizer
from engine.train import TrainConfig, Trainer
from engine.train_state import load_model_from_checkpoint

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
MODELS = {"transformer": dict(block_size=16, n_layer=1, n_head=2, n_embd=16),
          "learned": dict(block_size=16, n_layer=1, n_head=2, n_embd=16, pos="learned"),
          "lstm": dict(n_layer=1, n_embd=8, n_hidden=16)}


@pytest.fixture
def data(small_text):
    tok = CharTokenizer("".join(sorted(set(small_text))))
    ids = tok.encode(small_text)
    n = int(len(ids) * 0.9)
    return dict(tok=tok, train=ids[:n], val=ids[n:], val_chars=len(small_text) - n)


def make(data, model="transformer", sync_free=None, **train_kw):
    torch.manual_seed(0)
    family = "lstm" if model == "lstm" else "transformer"
    net = build_model(family, dict(MODELS[model], vocab_size=data["tok"].vocab_size))
    cfg = dict(max_steps=16, batch_size=4, block_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=2, eval_interval=1000,
               steps_per_yield=4, device="cpu")
    cfg.update(train_kw)
    return Trainer(net, data["train"], data["val"], TrainConfig(**cfg), val_chars=data["val_chars"],
                   tokenizer=data["tok"], sync_free=sync_free)


def losses(trainer) -> list[float]:
    return [r.train_loss for r in trainer.reports() if r.event in ("step", "eval")]


@pytest.fixture
def eager_compile(monkeypatch):
    """torch.compile traced by dynamo and AOT autograd as on a GPU, run eagerly; any recompile is an error."""
    torch._dynamo.reset()
    counters.clear()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    with torch._dynamo.config.patch(error_on_recompile=True):
        yield
    torch._dynamo.reset()


class OpLog(TorchDispatchMode):
    """Records every aten op run inside it with the dtypes of its outputs."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append((func, {t.dtype for t in tree_leaves(out) if isinstance(t, torch.Tensor)}))
        return out

    def count(self, name: str) -> int:
        return sum(1 for f, _ in self.ops if f.__name__.startswith(name))


# ---------------------------------------------------------------- torch.compile

def test_compiled_training_is_one_graph_with_no_recompiles(data, eager_compile):
    # bf16 + fused sync-free AdamW + compile: the fast-gpu-char combination; validation runs between steps and on
    # other batch shapes, which must not recompile the training graph
    trainer = make(data, compile=True, precision="bf16", sync_free=True, eval_interval=8)
    reports = list(trainer.reports())
    assert [r.event for r in reports] == ["step", "eval", "step", "step", "done"]
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    assert all(math.isfinite(r.train_loss) for r in reports) and reports[-1].val_loss < math.log(data["tok"].vocab_size)


def test_checkpoint_of_a_compiled_fused_run_resumes_uncompiled_and_unfused(data, eager_compile, tmp_path):
    straight = losses(make(data, compile=True, sync_free=True))
    first = make(data, compile=True, sync_free=True)
    gen = first.reports()
    next(gen), next(gen)
    first.save(tmp_path / "c")
    names = list(load_group(tmp_path / "c", "model"))
    assert names and not any("_orig_mod" in n for n in names)  # the raw model is saved, not the compile wrapper
    model, _ = load_model_from_checkpoint(tmp_path / "c")
    assert model.lm_head.weight is model.wte.weight  # tying survives compile + save
    cfg = dataclasses.replace(first.cfg, compile=False)
    resumed = Trainer.resume_from(tmp_path / "c", None, data["train"], data["val"], cfg, val_chars=data["val_chars"],
                                  tokenizer=data["tok"])
    assert not resumed.sync_free and resumed.step == 8  # the CPU default: the foreach/for-loop AdamW
    assert losses(resumed) == pytest.approx(straight[2:], rel=1e-4)


# ---------------------------------------------------------------- bf16 autocast

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model,precision,expect", [
    ("transformer", "bf16", torch.bfloat16), ("lstm", "bf16", torch.bfloat16),
    ("transformer", "auto", None), ("lstm", "auto", torch.float32)])
def test_autocast_reaches_the_model_and_figures_stay_fp32(data, device, model, precision, expect):
    """`auto` means bf16 for a transformer on CUDA or on a CPU with native bf16; weights, the loss and every
    report stay fp32."""
    if expect is None:
        expect = torch.bfloat16 if device == "cuda" or cpu_has_native_bf16() else torch.float32
    trainer = make(data, model, precision=precision, device=device, max_steps=8)
    seen = []
    trainer.model.lm_head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    reports = list(trainer.reports())
    assert set(seen) == {expect}
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(type(v) is float and math.isfinite(v) for v in (reports[-1].train_loss, reports[-1].val_loss))
    trainer._autocast = contextlib.nullcontext  # the same weights validated in plain fp32
    assert reports[-1].val_loss == pytest.approx(trainer.evaluate()[0], abs=0.02)


@pytest.mark.parametrize("device", DEVICES)
def test_rope_under_bf16_autocast_hands_attention_one_dtype(data, device):
    """q and k after RoPE keep the bf16 of their projection, like v, so attention sees one dtype (the flash
    kernels take bf16 q, k, v; mixed dtypes are an error or a slow fallback)."""
    trainer = make(data, precision="bf16", device=device, max_steps=2)
    seen = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype))
        return real(q, k, v, *args, **kwargs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
        list(trainer.reports())
    # on the CPU attention runs in float32 (torch's bf16 flash-attention backward is slower there), all three
    expect = torch.bfloat16 if device == "cuda" else torch.float32
    assert seen and set(seen) == {(expect,) * 3}


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_the_cpu_follows_native_bf16(data, monkeypatch, native):
    """A CPU that multiplies bf16 in hardware trains a transformer in bf16 autocast (about 1.4x faster at
    nanogpt-cpu's shape); one that would emulate it stays float32, and the first report says which."""
    monkeypatch.setattr("engine.train.cpu_has_native_bf16", lambda: native)
    trainer = make(data, precision="auto", max_steps=4)
    seen = []
    trainer.model.lm_head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    first = next(trainer.reports())
    assert set(seen) == {torch.bfloat16 if native else torch.float32}
    assert ("bf16 autocast" in first.message) == native and (", float32;" in first.message) == (not native)


def test_a_resume_in_another_precision_says_so_and_exports_keep_the_runs(data, tmp_path, monkeypatch):
    """A run saved in bf16 and resumed where auto means float32 (or the other way) warns in its first report;
    saved_precision reads it back, also from checkpoints older than the saved "precision" field (whose auto
    meant bf16 on CUDA only), which is what exported scripts now write instead of "auto"."""
    from engine.train_checkpoints import BF16_LABEL, FP32_LABEL, saved_precision
    monkeypatch.setattr("engine.train.cpu_has_native_bf16", lambda: True)
    first = make(data, precision="auto", max_steps=4)
    list(first.reports())
    first.save(tmp_path / "c")
    assert load_meta(tmp_path / "c")["precision"] == BF16_LABEL
    monkeypatch.setattr("engine.train.cpu_has_native_bf16", lambda: False)
    cfg = dataclasses.replace(first.cfg, max_steps=8)
    resumed = Trainer.resume_from(tmp_path / "c", None, data["train"], data["val"], cfg, val_chars=data["val_chars"],
                                  tokenizer=data["tok"])
    first_report = next(resumed.reports())
    assert "trained in bf16 autocast (float32 weights) and continues in float32" in first_report.message
    assert "--set precision=bf16" in first_report.message
    old = {"family": "transformer", "train": {"precision": "auto"}}
    assert saved_precision(dict(old, device="CPU (2 threads)")) == FP32_LABEL
    assert saved_precision(dict(old, device="NVIDIA H200")) == BF16_LABEL
    assert saved_precision(dict(old, device="Apple MPS")) == FP32_LABEL
    assert saved_precision({"family": "lstm", "train": {"precision": "auto"}, "device": "NVIDIA H200"}) == FP32_LABEL
    assert saved_precision({"family": "lstm", "train": {"precision": "bf16"}}) == BF16_LABEL
    assert saved_precision({"family": "transformer", "train": {}}) is None


# ---------------------------------------------------------------- the sync-free loop

@pytest.mark.parametrize("device", DEVICES)
def test_sync_free_steps_read_nothing_back_from_the_device(data, device):
    """The number of scalar reads (.item(), float(t), bool(t)) per report must not grow with the steps in it."""
    reads = {}
    for sync_free in (True, False):
        trainer = make(data, device=device, sync_free=sync_free, max_steps=100)
        trainer._run_steps(1)  # AdamW creates its state on the first step
        for n in (2, 8):
            with OpLog() as log:
                trainer._run_steps(n)
            reads[sync_free, n] = log.count("_local_scalar_dense")
    assert reads[True, 2] == reads[True, 8] <= 3
    assert reads[False, 8] > reads[False, 2]  # the plain loop checks every step: the probe sees reads


@CUDA
def test_cuda_sync_free_steps_do_not_synchronise(data):
    trainer = make(data, device="cuda", sync_free=True, max_steps=100)
    trainer._run_steps(1)
    syncs = {}
    for n in (2, 8):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                trainer._run_steps(n)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        syncs[n] = sum("synchroniz" in str(w.message) for w in caught)
    assert syncs[2] == syncs[8]


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("sync_free", [False, True])
def test_out_of_memory_frees_the_failed_step_while_paused(data, sync_free, monkeypatch):
    trainer = make(data, sync_free=sync_free)
    gen = trainer.reports()
    next(gen)
    good = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    real, held = trainer._forward_backward, []

    def failing(x, y, params):
        activations = torch.ones(4096)
        held.append(weakref.ref(activations))
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(trainer, "_forward_backward", failing)
    err = next(gen)
    assert err.event == "error" and trainer.paused
    assert held[0]() is None  # nothing of the failed step survives while the run waits for the user
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(v, good[k], rtol=0, atol=0)
    monkeypatch.setattr(trainer, "_forward_backward", real)
    trainer.resume()
    assert [r.step for r in gen][-1] == 16


@CUDA
def test_cuda_out_of_memory_returns_the_memory(data, monkeypatch):
    trainer = make(data, device="cuda", batch_size=1024)
    gen = trainer.reports()
    next(gen)
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()

    def fails_in_backward(x, y, params):
        with trainer._autocast():
            _, loss = trainer._fwd(x, y)  # the graph holds this step's activations
        torch.empty(1 << 44, dtype=torch.uint8, device="cuda")  # 16 TiB: a genuine CUDA out-of-memory error
        return loss, loss
    monkeypatch.setattr(trainer, "_forward_backward", fails_in_backward)
    assert next(gen).event == "error"
    assert torch.cuda.max_memory_allocated() - before > (4 << 20)  # the failed step did hold megabytes
    assert torch.cuda.memory_allocated() <= before + (1 << 20)


def _swap_batch_rng(ckpt, state: torch.Tensor):
    """Rewrite the checkpoint with another batch-generator state (through save_checkpoint, so its manifest
    agrees)."""
    meta = load_meta(ckpt)
    groups = {g: load_group(ckpt, g, meta=meta, dtypes=("F32", "U8")) for g in meta["groups"]}
    groups["rng"]["batch"] = state
    save_checkpoint(ckpt, {k: v for k, v in meta.items() if k not in ("files", "groups", "format_version")}, groups)


def test_checkpoint_from_another_device_resumes(data, tmp_path):
    """A CUDA checkpoint holds a 16-byte batch-generator state, which the CPU generator cannot take."""
    first = make(data)
    next(first.reports())
    first.save(tmp_path / "c")
    _swap_batch_rng(tmp_path / "c", torch.zeros(16, dtype=torch.uint8))
    runs = [losses(Trainer.resume_from(tmp_path / "c", None, data["train"], data["val"], val_chars=data["val_chars"]))
            for _ in range(2)]
    assert len(runs[0]) == 3 and all(math.isfinite(v) for v in runs[0])
    assert runs[0] == runs[1]  # the fresh batch seed is still a function of the run's seed and step


@CUDA
@pytest.mark.parametrize("there,back", [("cuda", "cpu"), ("cpu", "cuda")])
def test_cuda_checkpoint_crosses_devices_both_ways(data, tmp_path, there, back):
    first = make(data, device=there)
    next(first.reports())
    first.save(tmp_path / "c")
    cfg = dataclasses.replace(first.cfg, device=back)
    resumed = Trainer.resume_from(tmp_path / "c", None, data["train"], data["val"], cfg, val_chars=data["val_chars"])
    assert resumed.sync_free == (back == "cuda") and resumed.step == 4
    assert all(math.isfinite(v) for v in losses(resumed))
    assert load_meta(tmp_path / "c")["step"] == 4


# ---------------------------------------------------------------- no float64 on the device (MPS has none)

@pytest.mark.parametrize("model", ["learned", "lstm"])
def test_validation_and_decoding_make_no_float64_tensor(data, model):
    trainer = make(data, model)
    with OpLog() as log:
        val_loss, _, _ = trainer.evaluate()
        events = list(generate(trainer.model.eval(), data["tok"], "The ", DecodeConfig(max_new_tokens=5, seed=0)))
    assert math.isfinite(val_loss) and events[-1].done
    assert not [f for f, dtypes in log.ops if torch.float64 in dtypes]
