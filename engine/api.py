"""The facade the CLI and the GUI use: describe a run as plain data (RunSpec), start it, iterate its reports, save
it, take CPU snapshots of its weights, load checkpoints. Runs and checkpoints go through here; the panels also use
the engine modules whose objects they show (decode.generate, the autodiff Stepper, corpus loading), never the
trainer or a model's internals."""
from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import checkpoint as ckpt
from .corpus import load_corpus, split_text
from .device import SHRINK, format_bytes, is_out_of_memory, memory_problem
from .errors import CheckpointError, ConfigError, CorpusError, PlaygroundError, TrainingError
from .models import FAMILIES, build_model
from .settings import (DEFAULT_PRESET, NGRAM_DEFAULTS, all_settings, coerce as _coerce, estimate, list_presets,
                       resolve_config, validate_config)
from .tokenizers import build_for_corpus, tokenizer_from_dict

__all__ = ["RunSpec", "ModelHandle", "Run", "start_run", "resume_run", "resume_spec", "load_checkpoint",
           "prepare_corpus", "prepare_output_dir", "default_run_dir", "RESUMABLE", "NEURAL", "DEFAULT_PRESET",
           # the training form's helpers, from engine.settings
           "list_presets", "resolve_config", "validate_config", "estimate", "all_settings"]

NEURAL = ("rnn", "lstm", "gru", "transformer")


@dataclass
class RunSpec:
    """Everything needed to start a run, as plain data (the GUI builds one from its form)."""
    corpus: str = "builtin:python-docs"      # path, folder or builtin:NAME
    tokenizer: str = "char"                  # char | word | bpe
    tokenizer_options: dict = field(default_factory=dict)  # e.g. {"vocab_size": "512"}
    family: str = "transformer"              # one of FAMILIES
    preset: str | None = None                # neural presets; None = the family's tiny CPU preset
    overrides: dict = field(default_factory=dict)  # key -> value (strings from the CLI, typed from the GUI)
    device: str = "auto"                     # auto | cpu | cuda | mps
    seed: int = 1337                         # seeds data order and initialisation
    val_fraction: float = 0.1                # the last fraction of the text is validation
    max_steps: int | None = None             # overrides the preset's step count
    max_corpus_bytes: int = 50_000_000       # corpora larger than this are refused
    on_bad_utf8: str = "error"               # error | replace


@dataclass
class ModelHandle:
    """A model ready for sampling or the tape: on the CPU, in eval mode, detached from any running training."""
    family: str
    model: Any
    tokenizer: Any
    meta: dict


def prepare_corpus(spec: RunSpec, tokenizer=None):
    """Load, tokenize and split the corpus (shared by runs and by the GUI's corpus summary). A resumed run passes
    its checkpoint's tokenizer: token ids must keep meaning what the weights learned, even if the file changed."""
    corpus = load_corpus(spec.corpus, max_bytes=spec.max_corpus_bytes, on_bad_utf8=spec.on_bad_utf8)
    train_text, val_text = split_text(corpus.text, spec.val_fraction)
    tok_opts = {k: _coerce(v) for k, v in spec.tokenizer_options.items()}
    if tokenizer is None:
        tokenizer = build_for_corpus(spec.tokenizer, corpus.text, train_text, **tok_opts)
        train_ids = np.asarray(tokenizer.encode(train_text), dtype=np.int64)
        val_ids = np.asarray(tokenizer.encode(val_text), dtype=np.int64)
    else:
        try:
            train_ids = np.asarray(tokenizer.encode(train_text), dtype=np.int64)
            val_ids = np.asarray(tokenizer.encode(val_text), dtype=np.int64)
        except PlaygroundError as e:
            raise CheckpointError(f"the corpus {corpus.name} changed since the checkpoint was saved: {e}") from None
    if len(val_ids) < 2:
        raise CorpusError(f"the validation split has {len(val_ids)} tokens; the corpus is too short "
                          f"(or val_fraction {spec.val_fraction} too small)")
    return corpus, tokenizer, train_text, val_text, train_ids, val_ids


class Run:
    """One training run of any family. `reports()` yields StepReports; pause/resume/stop are thread-safe."""

    def __init__(self, spec: RunSpec, *, _resume_dir: str | None = None, _tokenizer=None):
        if spec.family not in FAMILIES:
            raise ConfigError(f"unknown model {spec.family!r}; choose one of {', '.join(FAMILIES)}")
        if spec.family == "ngram" and spec.preset:
            raise ConfigError(f"presets are for neural models; an n-gram takes --set order=N smoothing=NAME "
                              f"(got preset {spec.preset!r})")
        self.spec = spec
        self.t_start = time.perf_counter()
        (self.corpus, self.tokenizer, self.train_text, self.val_text,
         self.train_ids, self.val_ids) = prepare_corpus(spec, _tokenizer)
        self.last_report = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        if spec.family == "ngram":
            from .models.ngram import NGramConfig, NGramLM
            cfg = dict(NGRAM_DEFAULTS)
            cfg.update({k: _coerce(v) for k, v in spec.overrides.items()})
            cfg["vocab_size"] = self.tokenizer.vocab_size
            self.model = NGramLM(NGramConfig.from_dict(cfg))
            self.trainer = None
        else:
            from .presets import apply_overrides, load_preset
            from .train import Trainer, TrainConfig
            preset = load_preset(spec.preset or DEFAULT_PRESET[spec.family], spec.family)
            preset = apply_overrides(preset, {k: v for k, v in spec.overrides.items()})
            model_cfg = dict(preset["model"], vocab_size=self.tokenizer.vocab_size)
            train_cfg = dict(preset["train"], device=spec.device, seed=spec.seed)
            if spec.max_steps is not None:
                train_cfg["max_steps"] = spec.max_steps
            self.preset = preset
            cfg = TrainConfig.from_dict(train_cfg)
            need = estimate(spec.family, model_cfg, train_cfg, self.tokenizer.vocab_size)["memory_bytes"]
            problem = memory_problem(need, spec.device)
            if problem:
                raise TrainingError(problem)
            out_of_memory = False
            try:
                torch.manual_seed(spec.seed)  # the initial weights, not only the batches, follow the run's seed
                self.model = build_model(spec.family, model_cfg)
                if _resume_dir is not None:
                    self.trainer = Trainer.resume_from(_resume_dir, self.model, self.train_ids, self.val_ids,
                                                       cfg, val_chars=len(self.val_text), tokenizer=self.tokenizer)
                else:
                    self.trainer = Trainer(self.model, self.train_ids, self.val_ids, cfg,
                                           val_chars=len(self.val_text), tokenizer=self.tokenizer)
            except (MemoryError, RuntimeError) as e:   # torch's out-of-memory errors are RuntimeErrors
                if not is_out_of_memory(e):
                    raise
                out_of_memory = True
            if out_of_memory:   # raised outside the handler, whose traceback holds what was allocated
                raise TrainingError(f"out of memory while building the model and optimizer (training estimate "
                                    f"{format_bytes(need)}): {SHRINK}")
            self.trainer.update_lock = self._lock

    # -- control -------------------------------------------------------------------------------------------
    def reports(self) -> Iterator:
        """Yield the run's StepReports. Weight updates happen under the run's lock (the trainer takes it per
        optimizer step), so a snapshot from another thread never sees half an update and never waits for a whole
        report or a validation pass. Pausing is handled here, between steps: one report with
        event="paused", then the generator blocks (lock released, so save/snapshot work) until resume or stop."""
        source = self._ngram_reports() if self.trainer is None else self.trainer.reports()
        while True:
            last = self.last_report
            finishing = last is not None and (last.event == "done" or last.step >= last.max_steps)
            if not self._running.is_set() and not self._stop.is_set() and not finishing:
                if last is not None and last.event != "paused":
                    yield replace(last, event="paused", message="paused")
                self._running.wait()
            with self._lock if self.trainer is None else contextlib.nullcontext():
                r = next(source, None)   # an n-gram fills its tables in place; a trainer locks each update
            if r is None:
                return
            if self.trainer is not None and self.trainer.paused:
                # A pause the trainer holds (asked for mid-report, or its own after an out-of-memory step) is
                # taken over here, so the generator waits outside the lock and the user can still save.
                self.trainer.resume()
                self._running.clear()
            self.last_report = r
            yield r

    def pause(self) -> None:
        """Takes effect after the current step (the trainer stops a multi-step report early)."""
        self._running.clear()
        if self.trainer is not None:
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()
        self._running.set()

    def stop(self) -> None:
        """Takes effect between steps; a paused run wakes up to finish."""
        self._stop.set()
        if self.trainer is not None:
            self.trainer.stop()
        self._running.set()

    def _ngram_reports(self) -> Iterator:
        """The counting pass as reports (one per order), then the evaluation over the whole validation split.
        Counting a few MB takes about a second (bench/ngram_build.py), so a stop request lets it finish."""
        from .train import StepReport
        t0 = time.perf_counter()
        n = self.model.config.order
        for frac in self.model.fit_iter(self.train_ids):
            el = time.perf_counter() - t0
            step = int(round(frac * n))
            yield StepReport(step=step, max_steps=n, tokens=int(frac * len(self.train_ids)), train_loss=math.nan,
                             lr=0.0, grad_norm=0.0, tokens_per_s=frac * len(self.train_ids) / max(el, 1e-9),
                             elapsed_s=el, eta_s=el / max(frac, 1e-9) - el, message="counting n-grams")
        val_loss = self.model.evaluate(self.val_ids)
        el = time.perf_counter() - t0
        yield StepReport(step=n, max_steps=n, tokens=len(self.train_ids), train_loss=math.nan, lr=0.0,
                         grad_norm=0.0, tokens_per_s=len(self.train_ids) / max(el, 1e-9), elapsed_s=el, eta_s=0.0,
                         val_loss=val_loss, val_bpc=self._bpc(val_loss), val_ppl=_ppl(val_loss), event="done",
                         message="finished")

    def _bpc(self, val_loss: float) -> float:
        return val_loss * len(self.val_ids) / (len(self.val_text) * math.log(2))

    # -- results -------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        r = self.last_report
        out = {
            "model": self.spec.family, "tokenizer": self.tokenizer.kind, "vocab_size": self.tokenizer.vocab_size,
            "corpus": self.corpus.name, "train_tokens": int(len(self.train_ids)), "val_tokens": int(len(self.val_ids)),
            "params": int(self.model.num_params()),
            "device": "CPU (numpy counting)" if self.trainer is None else self.trainer.device_label,
        }
        if self.trainer is not None:
            out["preset"] = self.spec.preset or DEFAULT_PRESET[self.spec.family]
        if r is not None:
            out["step"] = r.step
            out["tokens_per_s"] = round(r.tokens_per_s, 1)
            last_eval = getattr(self.trainer, "last_eval", None) if self.trainer is not None else r
            if last_eval is not None and last_eval.val_loss is not None:
                out.update(val_loss=last_eval.val_loss, val_bpc=last_eval.val_bpc, val_ppl=last_eval.val_ppl)
        if self.tokenizer.kind == "word":
            unk = float(np.mean(self.val_ids == self.tokenizer.stoi["<unk>"])) if len(self.val_ids) else 0.0
            out["val_bpc_note"] = (f"word tokens: spaces are not predicted and {unk:.1%} of validation words are "
                                   f"<unk>, whose spelling costs nothing, so bpc is optimistic next to char/BPE "
                                   f"models")
        return out

    def meta(self) -> dict:
        return {"family": self.spec.family, "tokenizer": self.tokenizer.to_dict(), "spec": asdict(self.spec),
                "summary": self.summary()}

    def save(self, out_dir) -> Path:
        """Write a complete checkpoint (atomic). Safe to call after an error: the last good weights are saved."""
        out = ckpt.prepare_dir(out_dir)
        with self._lock:
            if self.trainer is None:
                meta = dict(self.meta(), model=self.model.config.to_dict())
                return ckpt.save_checkpoint(out, meta, {"ngram": self.model.state_arrays()})
            return self.trainer.save(out, self.meta())

    def snapshot(self) -> ModelHandle:
        """A CPU copy of the current weights, for sampling or the tape viewer while training continues."""
        with self._lock:
            if self.trainer is None:
                model = self.model
            else:
                live = self.trainer.raw_model
                model = build_model(self.spec.family, live.config.to_dict())
                model.load_state_dict({k: v.detach().to("cpu", torch.float32, copy=True)
                                       for k, v in live.state_dict().items()})
                model.eval()
            meta = self.meta()
        return ModelHandle(self.spec.family, model, self.tokenizer, meta)


def _ppl(loss: float) -> float:
    return math.inf if loss > 700 else math.exp(loss)


def start_run(spec: RunSpec) -> Run:
    return Run(spec)


# Training settings a resumed run may change: they steer the optimizer and the loop, not what the weights mean.
# batch_size and train.block_size change the batches drawn from here on (a transformer's windows can be no longer
# than its context); the lr schedule is recomputed from the new settings at the saved step.
RESUMABLE = ("max_steps", "batch_size", "block_size", "lr", "min_lr", "warmup_steps", "weight_decay", "grad_clip",
             "beta1", "beta2", "eval_interval", "eval_windows", "eval_batch_size", "steps_per_yield", "precision", "compile",
             "threads")


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
    meta = ckpt.load_meta(ckpt_dir)
    if meta.get("family") == "ngram":
        raise CheckpointError("an n-gram model is built in one counting pass; there is nothing to resume")
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
        max_steps = int(_coerce(str(value))) if max_steps is None else max_steps
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


def _spec_conflicts(spec: RunSpec, expect: dict) -> list[str]:
    """'name asked (the checkpoint's: saved)' for each RunSpec field the caller asked for that the run differs in."""
    out = []
    for key, asked in expect.items():
        if key not in RunSpec.__dataclass_fields__:
            raise ConfigError(f"unknown run setting {key!r}")
        saved = getattr(spec, key)
        if key == "preset":
            saved = saved or DEFAULT_PRESET[spec.family]
        if key == "corpus":
            same = asked == saved or (not str(asked).startswith("builtin:")
                                      and Path(asked).resolve() == Path(saved).resolve())
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


def load_checkpoint(ckpt_dir) -> ModelHandle:
    meta = ckpt.load_meta(ckpt_dir)
    family = meta.get("family")
    if family not in FAMILIES:
        raise CheckpointError(f"{ckpt_dir} holds an unknown model family {family!r}")
    tokenizer = tokenizer_from_dict(meta["tokenizer"])
    if family == "ngram":
        from .models.ngram import NGramConfig, NGramLM
        model = NGramLM.from_arrays(NGramConfig.from_dict(meta["model"]),
                                    ckpt.load_group(ckpt_dir, "ngram", as_torch=False))
    else:
        from .train_state import load_model_from_checkpoint
        model, _ = load_model_from_checkpoint(ckpt_dir)
    return ModelHandle(family, model, tokenizer, meta)


def prepare_output_dir(path) -> Path:
    return ckpt.prepare_dir(path)


def default_run_dir(run: Run) -> Path:
    return Path("runs") / f"{run.spec.family}-{time.strftime('%Y%m%d-%H%M%S')}"
