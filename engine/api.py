"""The facade the CLI and the GUI use: describe a run as plain data (RunSpec), start it, iterate its reports, save
it, take CPU snapshots of its weights, load checkpoints. Runs and checkpoints go through here; the panels also use
the engine modules whose objects they show (decode.generate, the autodiff Stepper, corpus loading), never the
trainer or a model's internals."""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import checkpoint as ckpt
from .corpus import BUILTIN_PREFIX, load_corpus, split_text
from .device import SHRINK, format_bytes, is_out_of_memory, memory_problem
from .errors import CheckpointError, ConfigError, CorpusError, PlaygroundError, TrainingError
from .models import FAMILIES, build_model
from .settings import (DEFAULT_PRESET, NGRAM_DEFAULTS, all_settings, coerce as _coerce, estimate, full_config,
                       list_presets, resolve_config, validate_config)
from .checkpoint_schema import MAX_SEED
from .finetune import parent_record
from .tokenizers import build_for_corpus, tokenizer_from_dict
from .train_state import load_model_tensors, state_shapes

__all__ = ["RunSpec", "ModelHandle", "Run", "start_run", "resume_run", "resume_spec", "finetune_run", "finetune_spec", "past_models", "PastModels", "load_checkpoint",
           "prepare_corpus", "prepare_output_dir", "default_run_dir", "RESUMABLE", "NEURAL", "DEFAULT_PRESET",
           # the training form's helpers, from engine.settings
           "list_presets", "resolve_config", "validate_config", "estimate", "all_settings", "full_config"]

NEURAL = ("rnn", "lstm", "gru", "transformer")
NGRAM_MAX_TOKENS = 50_000_000   # an n-gram's counting holds int64 arrays of the whole split: at most what the 50 MB
                                # in-memory corpus limit allows (a char token is at least one byte)


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
    data: str | None = None                  # a folder `main.py prepare` wrote: train from its token files
                                             # (memory-mapped) instead of reading `corpus`; it fixes the corpus,
                                             # tokenizer and split (engine.data.prepared_corpus)
    data_fingerprint: str | None = None      # engine.data.fingerprint of that folder when the run started: a
                                             # resume refuses a folder whose data is no longer the same


@dataclass
class ModelHandle:
    """A model ready for sampling or the tape: on the CPU, in eval mode, detached from any running training."""
    family: str
    model: Any
    tokenizer: Any
    meta: dict


def absolute_paths(spec: RunSpec) -> RunSpec:
    """A copy of spec whose corpus path (a file or folder, not builtin:NAME) and data folder are absolute: joined
    to the current folder as given, not normalised, so symlinks and ".." mean what they meant when it was read. A
    run's checkpoint records its spec, and a relative path there would only be found again from the folder the run
    was started in: resume, fine-tune and export from anywhere else failed with "no such file"."""
    def absolute(path: str) -> str:   # joined, not normalised: "link/../x" must stay what the OS makes of it
        return os.path.join(os.getcwd(), os.path.expanduser(path))
    corpus = spec.corpus
    if isinstance(corpus, str) and corpus and not corpus.startswith(BUILTIN_PREFIX):
        corpus = absolute(corpus)
    return replace(spec, corpus=corpus, data=absolute(spec.data) if spec.data else spec.data)


def prepare_corpus(spec: RunSpec, tokenizer=None, *, fine_tune: bool = False, map_unknown: str | None = None):
    """Load, tokenize and split the corpus (shared by runs and by the GUI's corpus summary). A resumed run passes
    its checkpoint's tokenizer: token ids must keep meaning what the weights learned, even if the file changed.
    A fine-tuning run (fine_tune=True) passes its parent's tokenizer for another corpus: what it cannot encode is
    a ConfigError naming it, or, with map_unknown, becomes that token (engine.finetune)."""
    corpus = load_corpus(spec.corpus, max_bytes=spec.max_corpus_bytes, on_bad_utf8=spec.on_bad_utf8)
    train_text, val_text = split_text(corpus.text, spec.val_fraction)
    tok_opts = {k: _coerce(v) for k, v in spec.tokenizer_options.items()}
    if fine_tune:
        from .finetune import describe_unencodable, encode_mapped, unencodable
        missing = unencodable(tokenizer, corpus.text)
        if missing and map_unknown is None:
            raise ConfigError(describe_unencodable(tokenizer, missing, corpus.name))
        train_ids = encode_mapped(tokenizer, train_text, map_unknown)
        val_ids = encode_mapped(tokenizer, val_text, map_unknown)
    elif tokenizer is None:
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

    def __init__(self, spec: RunSpec, *, _resume_dir: str | None = None, _tokenizer=None,
                 _init_from: tuple[str, dict] | None = None, _map_unknown: str | None = None,
                 _init_weights: dict | None = None):
        """_resume_dir: continue that checkpoint's run. _init_from: (folder, meta) of the checkpoint whose weights
        a fine-tuning run starts from (with _tokenizer its tokenizer; _map_unknown see prepare_corpus);
        _init_weights: those weights already read (a model trained elsewhere, engine.pretrained)."""
        if spec.family not in FAMILIES:
            raise ConfigError(f"unknown model {spec.family!r}; choose one of {', '.join(FAMILIES)}")
        if spec.family == "ngram" and spec.preset:
            raise ConfigError(f"presets are for neural models; an n-gram takes --set order=N smoothing=NAME "
                              f"(got preset {spec.preset!r})")
        _check_spec_values(spec)
        self.spec = spec = absolute_paths(spec)
        self.t_start = time.perf_counter()
        if spec.data:
            if _init_from is not None:
                raise ConfigError("a fine-tuning run reads its corpus as text (--corpus), not a prepared folder")
            from .data import prepared_corpus
            (self.corpus, self.tokenizer, self.train_chars, self.val_chars, self.val_text,
             self.train_ids, self.val_ids) = prepared_corpus(spec, _tokenizer)
            if spec.family == "ngram" and len(self.train_ids) > NGRAM_MAX_TOKENS:
                raise ConfigError(f"an n-gram is counted in memory (tens of bytes per training token): this "
                                  f"prepared corpus has {len(self.train_ids):,} training tokens, over the "
                                  f"{NGRAM_MAX_TOKENS:,} a corpus in memory can have; train a neural model on it")
        else:
            (self.corpus, self.tokenizer, train_text, self.val_text,
             self.train_ids, self.val_ids) = prepare_corpus(spec, _tokenizer, fine_tune=_init_from is not None,
                                                            map_unknown=_map_unknown)
            self.train_chars, self.val_chars = len(train_text), len(self.val_text)
        self.parent = None if _init_from is None else parent_record(*_init_from)
        self._notes: list[str] = []   # said once, with the resume warnings (run.warnings())
        if _init_from is not None and _map_unknown is not None:
            from .finetune import unencodable
            missing = unencodable(self.tokenizer, self.corpus.text)
            if missing:   # a share of the corpus became one token: it changes what is learned and the val loss
                what = "character" if self.tokenizer.kind == "char" else "word"
                self._notes.append(f"{sum(missing.values()):,} occurrence(s) of {len(missing)} {what}(s) the "
                                   f"tokenizer cannot encode were mapped to {_map_unknown!r}")
        if _resume_dir is not None:
            was = (ckpt.load_meta(_resume_dir).get("summary") or {}).get("train_tokens")
            if isinstance(was, int) and was != len(self.train_ids):   # the saved data position is in another stream
                self._notes.append(
                    f"the corpus now gives {len(self.train_ids):,} training tokens, {was:,} when the checkpoint was "
                    f"saved: it changed (or was read differently: Windows line endings count as one character "
                    f"since 2026-12-01), so batches from here on are not those the run would have drawn")
        self._snapshots = None   # keep_snapshots
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
            if _init_from is not None:   # the parent's architecture, whatever the preset says today
                model_cfg = dict(_init_from[1]["model"])
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
                if _init_weights is not None:
                    load_model_tensors(self.model, _init_weights)
                elif _init_from is not None:
                    load_model_tensors(self.model, ckpt.load_group(_init_from[0], "model", meta=_init_from[1],
                                                                   expect=state_shapes(self.model)))
                if _resume_dir is not None:
                    self.trainer = Trainer.resume_from(_resume_dir, self.model, self.train_ids, self.val_ids,
                                                       cfg, val_chars=self.val_chars, tokenizer=self.tokenizer)
                else:
                    self.trainer = Trainer(self.model, self.train_ids, self.val_ids, cfg,
                                           val_chars=self.val_chars, tokenizer=self.tokenizer)
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
            if self._snapshots is not None and self.trainer is not None and r.event in ("step", "eval", "done"):
                with self._lock:   # between updates: the weights are those of r.step
                    self._snapshots.offer(r.step, r.val_loss is not None, self.trainer.raw_model)
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

    def needs_final_evaluation(self) -> bool:
        """True when a neural run ended (stopped, or an evaluation cut short) without validating its last step."""
        last = self.last_report
        return (self.trainer is not None and last is not None and last.event == "done" and last.val_loss is None
                and not last.message.startswith("out of memory"))

    def final_evaluation(self, cancel=None):
        """The whole-split validation a stopped run skipped (Trainer.final_evaluation): an event="eval"
        StepReport, or None when `cancel()` turned true first. Call it after reports() has ended; save() and
        snapshot() may run meanwhile on another thread."""
        if not self.needs_final_evaluation():
            return None
        rep = self.trainer.final_evaluation(cancel)
        if rep is not None:
            self.last_report = rep
        return rep

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
        return val_loss * len(self.val_ids) / (self.val_chars * math.log(2))

    # -- results -------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        r = self.last_report
        out = {
            "model": self.spec.family, "tokenizer": self.tokenizer.kind, "vocab_size": self.tokenizer.vocab_size,
            "corpus": self.corpus.name, "train_tokens": int(len(self.train_ids)), "val_tokens": int(len(self.val_ids)),
            "train_chars": self.train_chars,   # with train_tokens: the train split's characters per token
            "params": int(self.model.num_params()),
            "device": "CPU (numpy counting)" if self.trainer is None else self.trainer.device_label,
        }
        if self.trainer is not None:
            out["preset"] = self.spec.preset or DEFAULT_PRESET[self.spec.family]
            t = self.trainer
            out.update(batch_size=t.cfg.batch_size, grad_accum=t.cfg.grad_accum, world_size=t.world_size,
                       global_batch=t.global_batch, precision=t.precision_label)
        if r is not None:
            out["step"] = r.step
            out["tokens_per_s"] = round(r.tokens_per_s, 1)
            last_eval = getattr(self.trainer, "last_eval", None) if self.trainer is not None else r
            if last_eval is not None and last_eval.val_loss is not None:
                out.update(val_loss=last_eval.val_loss, val_bpc=last_eval.val_bpc, val_ppl=last_eval.val_ppl,
                           val_scope=last_eval.val_scope or "whole split", val_step=last_eval.step)
        if self.tokenizer.kind == "word":
            from .data import count_equal
            unk = count_equal(self.val_ids, self.tokenizer.stoi["<unk>"]) / max(len(self.val_ids), 1)
            out["val_bpc_note"] = (f"word tokens: spaces are not predicted and {unk:.1%} of validation words are "
                                   f"<unk>, whose spelling costs nothing, so bpc is optimistic next to char/BPE "
                                   f"models")
        return out

    def meta(self) -> dict:
        out = {"family": self.spec.family, "tokenizer": self.tokenizer.to_dict(), "spec": asdict(self.spec),
               "summary": self.summary()}
        if self.parent is not None:
            out["parent"] = self.parent
        return out

    def save(self, out_dir) -> Path:
        """Write a complete checkpoint (atomic). Safe to call after an error: the last good weights are saved."""
        out = ckpt.prepare_dir(out_dir)
        with self._lock:
            if self.trainer is None:
                meta = dict(self.meta(), model=self.model.config.to_dict())
                return ckpt.save_checkpoint(out, meta, {"ngram": self.model.state_arrays()})
            return self.trainer.save(out, self.meta())

    def warnings(self) -> list[str]:
        """What a resume had to start afresh (an optimizer or random state that did not fit), and what a
        fine-tune mapped to its replacement token, one line each."""
        return self._notes + list(getattr(self.trainer, "resume_warnings", None) or [])

    def keep_snapshots(self, folder) -> None:
        """From now on keep past models in `folder` (engine.snapshots: log-spaced steps and every evaluation, at
        most 32), for scrubbing the loss curve. Neural runs only; call before iterating reports()."""
        from .snapshots import SnapshotKeeper
        if self.trainer is not None:
            self._snapshots = SnapshotKeeper(folder)

    def snapshot_steps(self) -> list[int]:
        """The steps whose models are kept (ascending); empty without keep_snapshots."""
        return self._snapshots.steps() if self._snapshots is not None else []

    def snapshot_disk_bytes(self) -> int:
        return self._snapshots.disk_bytes() if self._snapshots is not None else 0

    def snapshot_at(self, step: int) -> ModelHandle:
        """The model as it was after `step` (one of snapshot_steps()), on the CPU; meta["snapshot_step"] names
        the step. CheckpointError when it is not kept."""
        if self._snapshots is None:
            raise CheckpointError("this run keeps no past models")
        model = self._snapshots.load(step, self.spec.family, self.trainer.raw_model.config.to_dict())
        return ModelHandle(self.spec.family, model, self.tokenizer, dict(self.meta(), snapshot_step=step))

    def samples_over_time(self, prompt: str, seed: int, max_new_tokens: int = 80,
                          temperature: float = 1.0) -> list[tuple[int, str]]:
        """(step, text) for every kept step, oldest first: the same prompt sampled with the same seed from each
        past model, so the rows differ only by what training changed. ConfigError/TokenizerError for a bad
        prompt or setting; CheckpointError when a snapshot cannot be read."""
        return _samples_over_time(self, prompt, seed, max_new_tokens, temperature)

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


def _check_spec_values(spec: RunSpec) -> None:
    """ConfigError for values a run would otherwise drop or crash on: a seed outside 0..2^63-1, a vocab_size
    override (the tokenizer decides the vocabulary), max_steps given both as RunSpec.max_steps and as a different
    override."""
    if type(spec.seed) is not int or not 0 <= spec.seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number from 0 to 2^63-1, not {spec.seed!r}")
    if type(spec.max_corpus_bytes) is not int or spec.max_corpus_bytes < 1:
        raise ConfigError(f"max_corpus_bytes must be a positive whole number, not {spec.max_corpus_bytes!r}")
    for key, value in spec.overrides.items():
        name = key.rpartition(".")[2]
        if name == "vocab_size":
            raise ConfigError(f"{key}={value}: the vocabulary size comes from the tokenizer; for word or bpe set "
                              f"it with the tokenizer option vocab_size (--tok-set vocab_size=N)")
        if name == "max_steps" and spec.max_steps is not None and _coerce(str(value)) != spec.max_steps:
            raise ConfigError(f"max_steps is given twice, {spec.max_steps} (--max-steps) and {value} ({key}); "
                              f"give one")


def _ppl(loss: float) -> float:
    return math.inf if loss > 700 else math.exp(loss)


def start_run(spec: RunSpec) -> Run:
    return Run(spec)


def load_checkpoint(ckpt_dir, *, tokenizer_file=None, meta_file=None) -> ModelHandle:
    """The checkpoint's model (CPU, eval mode), tokenizer and meta. Every file is checked before it is used
    (engine.checkpoint, engine.checkpoint_schema): any problem is one CheckpointError, and nothing is built from
    a file that fails. `ckpt_dir` may also be a model trained elsewhere (engine.pretrained): a Hugging Face GPT-2
    folder or a nanoGPT ckpt.pt, whose meta then has `pretrained` and no run spec; tokenizer_file and meta_file
    name its tokenizer where it does not bring one (for this program's checkpoints they are refused)."""
    from . import pretrained
    if pretrained.kind_of(ckpt_dir) is not None:
        model, tokenizer, meta = pretrained.load_pretrained(ckpt_dir, tokenizer_file=tokenizer_file,
                                                            meta_file=meta_file)
        return ModelHandle("transformer", model, tokenizer, meta)
    if tokenizer_file or meta_file:
        raise CheckpointError(f"{ckpt_dir}: --tokenizer-file and --meta are for a GPT-2 folder or a nanoGPT "
                              f"ckpt.pt; a checkpoint of this program carries its tokenizer")
    if str(ckpt_dir).strip():
        ckpt.recover(ckpt_dir)   # before saying it is missing: a save killed between its two renames
    if str(ckpt_dir).strip() and not Path(ckpt_dir).exists():
        raise CheckpointError(f"{ckpt_dir} does not exist: name a checkpoint folder, a GPT-2 folder (with "
                              f"config.json) or a nanoGPT ckpt.pt; {pretrained.common.HF_CACHE_HINT}")
    meta = ckpt.load_meta(ckpt_dir)
    family = meta["family"]
    try:
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
    except PlaygroundError as e:
        raise CheckpointError(f"{ckpt_dir}: its tokenizer cannot be rebuilt: {e}") from None
    if family == "ngram":
        from .models.ngram import NGramConfig, NGramLM
        arrays = ckpt.load_group(ckpt_dir, "ngram", as_torch=False, meta=meta, dtypes=("I64",))
        if any(a.ndim != 1 for a in arrays.values()) or any(
                (a < 1).any() for k, a in arrays.items() if k.startswith("counts_")):
            raise CheckpointError(f"{ckpt_dir}: the n-gram counts are damaged (not positive, or not 1-D)")
        model = NGramLM.from_arrays(NGramConfig.from_dict(meta["model"]), arrays)
    else:
        from .train_state import load_model_from_checkpoint
        model, _ = load_model_from_checkpoint(ckpt_dir, meta=meta)
    return ModelHandle(family, model, tokenizer, meta)


def _samples_over_time(source, prompt: str, seed: int, max_new_tokens: int, temperature: float):
    from .decode import DecodeConfig, generate
    cfg = DecodeConfig(strategy="sample", temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    rows = []
    for step in source.snapshot_steps():
        handle = source.snapshot_at(step)
        text = ""
        for ev in generate(handle.model, handle.tokenizer, prompt, cfg):
            if ev.done:
                text = ev.final_text
        rows.append((step, text))
    return rows


class PastModels:
    """The past models kept beside a checkpoint the window autosaved (its run folder's snapshots/, next to
    checkpoint/), so a loaded run can be scrubbed like a live one. Built by past_models()."""

    def __init__(self, keeper, handle: ModelHandle):
        self._keeper, self._handle = keeper, handle

    def snapshot_steps(self) -> list[int]:
        return self._keeper.steps()

    @property
    def folder(self) -> Path:
        """The snapshots/ folder these past models are read from."""
        return self._keeper.folder

    def snapshot_disk_bytes(self) -> int:
        return self._keeper.disk_bytes()

    def samples_over_time(self, prompt: str, seed: int, max_new_tokens: int = 80,
                          temperature: float = 1.0) -> list[tuple[int, str]]:
        """As Run.samples_over_time, for the loaded checkpoint's kept steps."""
        return _samples_over_time(self, prompt, seed, max_new_tokens, temperature)

    def snapshot_at(self, step: int) -> ModelHandle:
        """The model after `step` (CPU, eval mode) with the checkpoint's tokenizer; CheckpointError when that
        step is not kept or its file does not fit the checkpoint's model."""
        model = self._keeper.load(step, self._handle.family, self._handle.meta["model"])
        return ModelHandle(self._handle.family, model, self._handle.tokenizer,
                           dict(self._handle.meta, snapshot_step=step))


def past_models(ckpt_dir, handle: ModelHandle) -> PastModels | None:
    """The kept past models of a loaded neural checkpoint (`handle` from load_checkpoint(ckpt_dir)), or None when
    there is no snapshots/ folder with any inside it (a headless run's, `train --keep-snapshots`) or beside it (a
    window run's folder)."""
    from .snapshots import SnapshotKeeper
    folder = Path(ckpt_dir).parent / "snapshots"
    if (Path(ckpt_dir) / "snapshots").is_dir():   # a headless run's folder (train --keep-snapshots)
        folder = Path(ckpt_dir) / "snapshots"
    if handle.family == "ngram" or "pretrained" in handle.meta or not folder.is_dir():
        return None
    keeper = SnapshotKeeper(folder)
    return PastModels(keeper, handle) if keeper.steps() else None   # same interface as a Run's snapshots


def prepare_output_dir(path) -> Path:
    return ckpt.prepare_dir(path)


def default_run_dir(run: Run) -> Path:
    return Path("runs") / f"{run.spec.family}-{time.strftime('%Y%m%d-%H%M%S')}"


# continuing a saved run (resume, fine-tune) lives in engine/continue_run.py; its entry points are part of the api
from .continue_run import (RESUMABLE, finetune_run, finetune_spec, resume_run, resume_spec)  # noqa: E402,F401
