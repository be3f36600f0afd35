"""Continuing a saved run: resume it (the same model, corpus and tokenizer, some training settings changed) or
fine-tune a copy on another corpus (its weights and tokenizer, the form's or the CLI's training settings; a model
trained elsewhere too, engine/pretrained). The specs are checked without building anything, so a refusal is
reported before a worker starts. engine.api re-exports the entry points."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from . import checkpoint as ckpt
from .api import Run, RunSpec, load_checkpoint
from .errors import CheckpointError, ConfigError
from .settings import DEFAULT_PRESET, coerce as _coerce, resolve_config
from .tokenizers import tokenizer_from_dict

# Training settings a resumed run may change: they steer the optimizer and the loop, not what the weights mean.
# batch_size and train.block_size change the batches drawn from here on (a transformer's windows can be no longer
# than its context); the lr schedule is recomputed from the new settings at the saved step.
RESUMABLE = ("max_steps", "batch_size", "grad_accum", "block_size", "lr", "min_lr", "warmup_steps", "weight_decay",
             "grad_clip", "beta1", "beta2", "eval_interval", "eval_windows", "eval_batch_size", "steps_per_yield",
             "precision", "compile", "threads")


def resume_run(ckpt_dir: str, *, max_steps: int | None = None, device: str = "auto", overrides: dict | None = None,
               expect: dict | None = None) -> Run:
    """Continue a saved neural run up to max_steps (None: the saved run's), with weights, AdamW moments, step and
    RNG as saved. `overrides` (key -> value, as RunSpec.overrides) may change the RESUMABLE training settings from
    here on: the warmup + cosine schedule is recomputed for them, so after a finished run the lr rises again to the
    cosine value at the saved step of the longer schedule. Model settings in `overrides` and the RunSpec fields in
    `expect` (e.g. {"family": "lstm", "corpus": ...}, what the caller was asked for) must equal the checkpoint's:
    a ConfigError names every one that differs."""
    spec = resume_spec(ckpt_dir, max_steps=max_steps, device=device, overrides=overrides, expect=expect)
    meta = ckpt.load_meta(ckpt_dir)
    return Run(spec, _resume_dir=ckpt_dir, _tokenizer=tokenizer_from_dict(meta["tokenizer"]))


def resume_spec(ckpt_dir: str, *, max_steps: int | None = None, device: str = "auto", overrides: dict | None = None,
                expect: dict | None = None) -> RunSpec:
    """The RunSpec resume_run would train, after its checks (ConfigError, CheckpointError), without building
    anything: cheap enough for the GUI thread, so a refused resume is reported before a worker starts."""
    from . import pretrained
    if pretrained.kind_of(ckpt_dir) is not None:
        raise CheckpointError(f"{ckpt_dir} was trained elsewhere: there is no run here to resume; fine-tune it on "
                              f"a corpus instead (train --init-from, or Fine-tune in the window)")
    meta = ckpt.load_meta(ckpt_dir)
    if meta.get("family") == "ngram":
        raise CheckpointError("an n-gram model is built in one counting pass; there is nothing to resume")
    if "spec" not in meta:
        raise CheckpointError(f"{ckpt_dir} has no run spec in meta.json (corpus, tokenizer, seed), so it cannot "
                              f"be resumed; it can still be loaded for sampling")
    spec = RunSpec(**meta["spec"])
    overrides = dict(overrides or {})
    conflicts = _spec_conflicts(spec, expect or {}) + _setting_conflicts(meta, overrides)
    if conflicts:
        why = "a resumed run keeps the checkpoint's model, corpus and tokenizer"
        if any(c.startswith(("seed", "train.seed")) for c in conflicts):
            why += " (and its random state)"
        raise ConfigError(f"cannot resume with {', '.join(conflicts)}: {why}")
    for key in [k for k in overrides if k.rpartition(".")[2] == "max_steps"]:
        value = overrides.pop(key)   # the RunSpec's max_steps would otherwise win over it
        steps = _coerce(str(value))
        if type(steps) is not int:
            raise ConfigError(f"{key}={value}: max_steps must be a whole number")
        if max_steps is not None and steps != max_steps:
            raise ConfigError(f"max_steps is given twice, {max_steps} and {value} ({key}); give one")
        max_steps = steps
    if spec.data and spec.data_fingerprint:   # before any worker starts: the folder still holds the run's data
        from .data import check_fingerprint
        check_fingerprint(spec.data, None, spec.data_fingerprint)
    spec.overrides = {**spec.overrides, **overrides}
    spec.device = device
    if max_steps is not None:
        spec.max_steps = max_steps
    step = int(meta["step"])
    target = spec.max_steps or resolve_config(spec.family, spec.preset, spec.overrides, 1)[1]["max_steps"]
    if target <= step:
        given = "" if max_steps is not None else " (its own; give a larger one)"
        raise ConfigError(f"the checkpoint is already at step {step}; max_steps must be above that, not "
                          f"{target}{given}")
    return spec


def finetune_spec(ckpt_dir: str, corpus: str, *, max_steps: int | None = None, device: str = "auto",
                  overrides: dict | None = None, seed: int | None = None, val_fraction: float | None = None,
                  max_corpus_bytes: int | None = None, on_bad_utf8: str | None = None, meta: dict | None = None,
                  sources: dict | None = None) -> tuple[RunSpec, dict]:
    """(RunSpec, checkpoint meta) of a fine-tuning run, after its checks, without reading the corpus: the parent's
    spec with the new corpus; model settings in `overrides` are refused (the weights fix the architecture),
    training settings (lr, max_steps, ...) apply. max_steps counts the new run's own steps (default: the
    parent's run length). ConfigError, CheckpointError. A model trained elsewhere (engine.pretrained: pass `meta`,
    its handle's, or it is read whole with `sources`, load_checkpoint's keywords) has no run spec: see
    engine.pretrained.finetune."""
    from . import pretrained
    if pretrained.kind_of(ckpt_dir) is not None:
        from .pretrained.finetune import pretrained_spec
        if meta is None:
            meta = load_checkpoint(ckpt_dir, **(sources or {})).meta
        return pretrained_spec(meta, corpus, max_steps=max_steps, device=device, overrides=overrides, seed=seed,
                                val_fraction=val_fraction, max_corpus_bytes=max_corpus_bytes,
                                on_bad_utf8=on_bad_utf8), meta
    meta = ckpt.load_meta(ckpt_dir)
    if meta.get("family") == "ngram":
        raise CheckpointError("an n-gram model is counted, not trained: count a new one on the other corpus")
    if "spec" not in meta or meta.get("tokenizer") is None:
        raise CheckpointError(f"{ckpt_dir} has no run spec or tokenizer in meta.json, so a run cannot start "
                              f"from it")
    overrides = dict(overrides or {})
    conflicts = [c for c in _setting_conflicts(meta, overrides)]
    if conflicts:
        raise ConfigError(f"cannot fine-tune with {', '.join(conflicts)}: a fine-tuning run keeps the "
                          f"checkpoint's model")
    parent = RunSpec(**meta["spec"])
    spec = replace(parent, corpus=corpus, device=device, overrides={**parent.overrides, **overrides},
                   max_steps=max_steps if max_steps is not None else parent.max_steps)
    for key, value in (("seed", seed), ("val_fraction", val_fraction), ("max_corpus_bytes", max_corpus_bytes),
                       ("on_bad_utf8", on_bad_utf8)):
        if value is not None:
            setattr(spec, key, value)
    return spec, meta


def finetune_run(ckpt_dir: str, corpus: str, *, map_unknown: str | None = None, tokenizer_file=None,
                 meta_file=None, **kw) -> Run:
    """A new run on `corpus` starting from the checkpoint's weights, with its tokenizer kept and a fresh AdamW,
    schedule and step count (keyword arguments as finetune_spec). Characters or words the tokenizer cannot
    encode are a ConfigError naming them unless `map_unknown` names a token to map them to. The run's
    checkpoints record the parent (meta["parent"], engine.finetune.parent_record). `ckpt_dir` may be a model
    trained elsewhere (engine.pretrained), with tokenizer_file / meta_file as load_checkpoint takes them."""
    from . import pretrained
    if pretrained.kind_of(ckpt_dir) is not None:
        handle = load_checkpoint(ckpt_dir, tokenizer_file=tokenizer_file, meta_file=meta_file)
        spec, meta = finetune_spec(ckpt_dir, corpus, meta=handle.meta, **kw)
        return Run(spec, _tokenizer=handle.tokenizer, _init_from=(str(ckpt_dir), meta), _map_unknown=map_unknown,
                   _init_weights=handle.model.state_dict())
    if tokenizer_file or meta_file:
        raise CheckpointError(f"{ckpt_dir}: --tokenizer-file and --meta are for a GPT-2 folder or a nanoGPT "
                              f"ckpt.pt; a checkpoint of this program carries its tokenizer")
    spec, meta = finetune_spec(ckpt_dir, corpus, **kw)
    return Run(spec, _tokenizer=tokenizer_from_dict(meta["tokenizer"]), _init_from=(str(ckpt_dir), meta),
               _map_unknown=map_unknown)


def _spec_conflicts(spec: RunSpec, expect: dict) -> list[str]:
    """'name asked (the checkpoint's: saved)' for each RunSpec field the caller asked for that the run differs in."""
    out = []
    for key, asked in expect.items():
        if key not in RunSpec.__dataclass_fields__:
            raise ConfigError(f"unknown run setting {key!r}")
        saved = getattr(spec, key)
        if key == "preset":
            saved = saved or DEFAULT_PRESET[spec.family]
        if key in ("corpus", "data") and asked and saved:
            same = asked == saved or (not str(asked).startswith("builtin:")
                                      and Path(asked).expanduser().resolve() == Path(saved).expanduser().resolve())
        elif key == "tokenizer_options":
            same = {k: _coerce(v) for k, v in asked.items()} == {k: _coerce(v) for k, v in saved.items()}
        else:
            same = _coerce(asked) == _coerce(saved)
        if not same:
            out.append(f"{'model' if key == 'family' else key} {asked} (the checkpoint's: {saved})")
    return out


def _setting_conflicts(meta: dict, overrides: dict) -> list[str]:
    """'key=value (the checkpoint's: saved)' for each override that changes the model, or a training setting
    outside RESUMABLE; an unknown key is a ConfigError as in a new run."""
    from .presets import apply_overrides
    base = {"family": meta["family"], "model": dict(meta["model"]), "train": dict(meta["train"])}
    out = []
    for key, value in overrides.items():
        changed = apply_overrides(base, {key: str(value)})
        name = key.rpartition(".")[2]
        if changed["model"] != base["model"]:
            hint = "; train.block_size sets the training windows only" if name == "block_size" else ""
            out.append(f"{key}={value} (the checkpoint's: {base['model'][name]}{hint})")
        elif changed["train"] != base["train"] and name not in RESUMABLE:
            out.append(f"{key}={value} (the checkpoint's: {base['train'][name]})")
    return out
