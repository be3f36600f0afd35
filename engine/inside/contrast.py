"""A ready BPTT comparison: train, on the spot, the recurrent model that contrasts with the one being looked at
(a tanh RNN beside an LSTM or GRU, an LSTM beside a tanh RNN) with the same tokenizer and width, so the vanishing
gradients of the plain recurrence and the gated cell's longer memory are seen side by side on one text in one
click. Qt-free; the Inside tab runs it on a worker thread."""
from __future__ import annotations

from threading import Event
from typing import Callable

from engine.errors import ConfigError

CONTRAST_STEPS = 300      # enough for the LSTM's forget gates to open on characters (a few seconds on a CPU)


def contrast_family(family: str) -> str:
    """The family to train beside `family`: "rnn" for an LSTM or GRU, "lstm" for a tanh RNN.
    Raises ConfigError for a model without recurrence (its gradients do not flow through time)."""
    if family in ("lstm", "gru"):
        return "rnn"
    if family == "rnn":
        return "lstm"
    raise ConfigError(f"a {family} has no recurrence: the BPTT comparison is for RNN, LSTM and GRU models")


def train_contrast(model, tokenizer, text: str, *, steps: int = CONTRAST_STEPS, seed: int = 0,
                   cancel: Event | None = None, progress: Callable[[int, int], None] | None = None):
    """Train the contrasting family (see contrast_family) on `text` with `tokenizer`, as wide as `model`
    (n_embd, n_hidden, n_layer), for `steps` AdamW steps of 32 windows of 64 tokens, and return
    (family, ModelHandle on the CPU in eval mode, final validation loss in nats/token). The last 10% of the text
    is its validation split; characters a char tokenizer cannot encode are left out. `progress(step, steps)` is called after each report; setting `cancel` stops early
    (the partly trained model is returned). Raises ConfigError when the text is too short to train on."""
    from engine.api import ModelHandle
    from engine.models import build_model
    from engine.train import Trainer, TrainConfig

    family = contrast_family(model.family)
    if tokenizer.kind == "char":     # a corpus other than the checkpoint's: train on the characters it knows
        text = "".join(ch for ch in text if ch in tokenizer.stoi)
    ids = tokenizer.encode(text)
    split = int(len(ids) * 0.9)
    block = min(64, max(8, split // 4))
    if split - block < 8 or len(ids) - split < 2:
        raise ConfigError(f"the text is too short to train a comparison model on ({len(ids)} tokens)")
    c = model.config
    other = build_model(family, {"vocab_size": tokenizer.vocab_size, "n_layer": c.n_layer, "n_embd": c.n_embd,
                                 "n_hidden": c.n_hidden, "block_size": block, "dropout": 0.0})
    lr = 5e-3 if family == "lstm" else 3e-3          # the tiny-cpu-lstm / tiny-cpu-rnn presets' peak rates
    cfg = TrainConfig(max_steps=steps, batch_size=32, block_size=block, lr=lr, min_lr=lr / 10,
                      warmup_steps=min(20, steps // 5), weight_decay=0.0, grad_clip=1.0,
                      eval_interval=steps, eval_windows=64, steps_per_yield=10, device="cpu", seed=seed)
    torch_seed(seed)
    trainer = Trainer(other, ids[:split], ids[split:], cfg, val_chars=max(1, len(text) - len(text) * 9 // 10),
                      tokenizer=tokenizer)
    val = float("nan")
    for report in trainer.reports():
        if cancel is not None and cancel.is_set():
            trainer.stop()
        if progress is not None:
            progress(report.step, steps)
        if report.val_loss is not None:
            val = report.val_loss
        if report.event in ("done", "error"):
            if report.event == "error":
                raise ConfigError(report.message)
            break
    net = trainer.raw_model.cpu().eval()
    return family, ModelHandle(family, net, tokenizer, {"steps": trainer.step}), val


def torch_seed(seed: int) -> None:
    import torch
    torch.manual_seed(seed)
