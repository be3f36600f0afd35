"""Fine-tuning a model trained elsewhere: the run spec api.finetune_spec gives it, since it brings no run of its
own (no corpus, preset or training settings)."""
from __future__ import annotations

from ..errors import ConfigError

# A model trained elsewhere is fine-tuned with the default transformer preset's training settings, but a tenth of
# its learning rate: the preset's 3e-3 suits a model learning from scratch and would first undo what a trained
# model knows (nanoGPT's own GPT-2 fine-tuning recipe uses 3e-5); --set lr=... chooses.
PRETRAINED_FINETUNE = {"lr": "3e-4", "min_lr": "3e-5"}


def pretrained_spec(meta: dict, corpus: str, *, max_steps=None, device="auto", overrides=None, seed=None,
                    val_fraction=None, max_corpus_bytes=None, on_bad_utf8=None):
    """The RunSpec of fine-tuning a model trained elsewhere (meta from engine.pretrained): its tokenizer kind,
    the transformer family, the default preset's training settings with PRETRAINED_FINETUNE unless overridden.
    Model settings in `overrides` are refused (the weights fix the architecture). ConfigError."""
    from ..api import DEFAULT_PRESET, RunSpec
    from ..presets import apply_overrides, load_preset
    overrides = dict(overrides or {})
    train = load_preset(DEFAULT_PRESET["transformer"], "transformer")["train"]
    base = {"family": "transformer", "model": dict(meta["model"]), "train": dict(train)}
    conflicts = []
    for key, value in overrides.items():
        if apply_overrides(base, {key: str(value)})["model"] != base["model"]:
            conflicts.append(f"{key}={value} (the model's: {base['model'].get(key.rpartition('.')[2])})")
    if conflicts:
        raise ConfigError(f"cannot fine-tune with {', '.join(conflicts)}: a fine-tuning run keeps the model")
    named = {k.rpartition(".")[2] for k in overrides}
    # the architecture as model.* settings, so the run's own checkpoints resume with it (the vocabulary size
    # comes from the tokenizer)
    arch = {f"model.{k}": "none" if v is None else str(v) for k, v in meta["model"].items() if k != "vocab_size"}
    defaults = {k: v for k, v in PRETRAINED_FINETUNE.items() if k not in named}
    if "block_size" not in named:   # training windows no longer than the model's context
        defaults["train.block_size"] = str(min(int(train["block_size"]), int(meta["model"]["block_size"])))
    spec = RunSpec(corpus=corpus, tokenizer=meta["tokenizer"]["kind"], family="transformer", device=device,
                   overrides={**arch, **defaults, **overrides}, max_steps=max_steps)
    for key, value in (("seed", seed), ("val_fraction", val_fraction), ("max_corpus_bytes", max_corpus_bytes),
                       ("on_bad_utf8", on_bad_utf8)):
        if value is not None:
            setattr(spec, key, value)
    return spec
