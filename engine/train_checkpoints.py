"""The Trainer's checkpoints (mixed into engine.train.Trainer): save() writes the weights, AdamW's moments, the
step, the loss history and the random states, load_state() reads them back, each part checked before use, so a
resumed run continues as if never interrupted. Under torchrun the window samplers of every process are gathered
to rank 0 at each evaluation and at the end (the points where checkpoints are written), so a checkpoint holds
them all and a launch with another number of processes continues those it shares (engine.distributed)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from . import checkpoint, distributed
from .errors import CheckpointError
from .history import LossHistory
from .models import build_model
from .train_state import (check_compatible, checked_optimizer_state, checked_rng_state, flatten_optimizer,
                          load_model_tensors, model_tensors, state_shapes)

__all__ = ["TrainerCheckpoints", "stream_key"]

log = logging.getLogger(__name__)


BF16_LABEL, FP32_LABEL = "bf16 autocast (float32 weights)", "float32"   # Trainer.precision_label's two values
SETTING_OF = {BF16_LABEL: "bf16", FP32_LABEL: "fp32"}   # the precision setting that gives each on any machine


def saved_precision(meta: dict) -> str | None:
    """What a checkpoint's run trained in, BF16_LABEL or FP32_LABEL: its meta's "precision" (saved since
    2026-11-30), or for an older checkpoint what its settings meant then: "bf16" / "fp32", or "auto" = bf16 for a
    transformer on CUDA only (its "device" is a GPU's name, not "CPU (...)" or "Apple MPS"). None when unknown."""
    label = meta.get("precision")
    if label in (BF16_LABEL, FP32_LABEL):
        return label
    setting = (meta.get("train") or {}).get("precision", "auto")
    if setting in ("bf16", "fp32"):
        return BF16_LABEL if setting == "bf16" else FP32_LABEL
    device = meta.get("device")
    if setting != "auto" or not isinstance(device, str) or not device:
        return None
    gpu = not device.startswith("CPU") and device != "Apple MPS"
    return BF16_LABEL if gpu and meta.get("family") == "transformer" else FP32_LABEL


def stream_key(stream: int) -> str:
    """The name of window-sampling stream `stream`'s state in a checkpoint's rng group: "batch" for stream 0 (the
    one sampler of a single-process run), "batchJ" for the others."""
    return "batch" if stream == 0 else f"batch{stream}"


class TrainerCheckpoints:
    def save(self, out_dir, meta_extra: dict | None = None) -> Path:
        """Weights, optimizer moments, step and RNG states; resuming continues as if never interrupted."""
        opt_tensors, opt_layout = flatten_optimizer(self.optimizer.state_dict())
        rng = {"cpu": torch.get_rng_state()}
        streams = {j: g.get_state() for j, g in zip(self.streams, self._gens)}
        if self._gathered_streams is not None and self._gathered_streams[0] == self.step:
            streams = self._gathered_streams[1]   # every process's samplers, as they were at this step
        rng.update({stream_key(j): state for j, state in streams.items()})
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        last = self.last_report
        meta = {"family": self.model.family, "model": self.model.config.to_dict(),
                "train": self.cfg.to_dict(), "step": self.step, "tokens": self.tokens,
                "elapsed_s": last.elapsed_s if last else self._elapsed_before,
                "optimizer": opt_layout, "device": self.device_label, "precision": self.precision_label,
                "tokenizer": self.tokenizer.to_dict() if self.tokenizer is not None else None,
                "world_size": self.world_size,
                "metrics": {"train_loss": last.train_loss, "val_loss": last.val_loss, "val_bpc": last.val_bpc}
                if last else {}, "history": self.history.up_to(self.step).to_dict()}
        meta.update(meta_extra or {})
        groups = {"model": model_tensors(self.model), "optimizer": opt_tensors, "rng": rng}
        return checkpoint.save_checkpoint(out_dir, meta, groups)

    def _warn_if_precision_changed(self, meta: dict) -> None:
        was = saved_precision(meta)
        if was is not None and was != self.precision_label:
            self._warn(f"the run trained in {was} and continues in {self.precision_label} (precision "
                       f"{self.cfg.precision} on this machine; --set precision={SETTING_OF[was]} keeps the saved one)")

    def load_state(self, ckpt_dir) -> dict:
        """Load a checkpoint of this same model into this trainer (weights, optimizer, step, RNG), each checked
        before it is used. Weights that do not fit raise CheckpointError; an optimizer or random state that does
        not fit is replaced by a fresh one, with a warning in `resume_warnings` (shown in the first report)."""
        meta = checkpoint.load_meta(ckpt_dir)
        check_compatible(meta, self.model)
        load_model_tensors(self.model, checkpoint.load_group(ckpt_dir, "model", meta=meta,
                                                             expect=state_shapes(self.model)))
        step = int(meta["step"])
        self._warn_if_precision_changed(meta)
        try:
            self.optimizer.load_state_dict(checked_optimizer_state(ckpt_dir, meta, self.optimizer))
        except (CheckpointError, ValueError, KeyError, RuntimeError) as e:
            self.optimizer.state.clear()
            self._warn(f"the saved optimizer state cannot be used ({e}); AdamW's moments start fresh at step "
                       f"{step}")
        try:
            rng = checked_rng_state(ckpt_dir, meta)
            if self.dist is None or self.dist.is_main:
                torch.set_rng_state(rng["cpu"])
            self._load_streams(rng, step)
            if "cuda" in rng and self.device.type == "cuda" and self.dist is None:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        except (CheckpointError, RuntimeError, ValueError) as e:
            torch.manual_seed(self.cfg.seed + step)
            for g, j in zip(self._gens, self.streams):
                g.manual_seed(distributed.stream_seed(self.cfg.seed, j) + step)
            self._warn(f"the saved random state cannot be used ({e}); batches are drawn from a fresh seed "
                       f"({self.cfg.seed} + step {step})")
        saved_world = meta.get("world_size", 1)
        if type(saved_world) is int and saved_world != self.world_size and (self.dist is None or self.dist.is_main):
            was = meta["train"].get("batch_size", 0) * meta["train"].get("grad_accum", 1) * saved_world
            if was != self.global_batch:   # grad_accum may make up for the process count: then nothing changed
                self._warn(f"the checkpoint was written by {saved_world} process(es) and resumes on "
                           f"{self.world_size}: the global batch is now {self.global_batch:,} windows per step (it "
                           f"was {was:,}; --set grad_accum=K keeps it)")
        self.step, self.tokens = step, int(meta.get("tokens", 0))
        self._elapsed_before = float(meta.get("elapsed_s", 0.0))
        self.history = LossHistory.from_dict(meta.get("history")).up_to(self.step)
        return meta

    def _load_streams(self, rng: dict, step: int) -> None:
        """Set this process's window samplers from a checkpoint's random states: each stream it saved continues
        where it was; a stream the saving launch did not have (more processes or micro-batches now) starts from
        its own seed moved on by the step, with a note. A state of the other kind of device (a CUDA generator's
        state is 16 bytes, the CPU's 5056) also starts afresh."""
        other_device = False
        for g, j in zip(self._gens, self.streams):
            state = rng.get(stream_key(j))
            if state is not None and state.numel() == g.get_state().numel():
                g.set_state(state)
            else:
                g.manual_seed(distributed.stream_seed(self.cfg.seed, j) + step)
                other_device = other_device or state is not None
        if self.dist is not None and not self.dist.is_main:
            return   # rank 0 speaks for the launch, about every process's streams
        missing = [j for j in range(self.world_size * self.cfg.grad_accum) if stream_key(j) not in rng]
        if missing:
            self._warn(f"window-sampling stream(s) {', '.join(map(str, missing))} start from a fresh seed: the "
                       f"checkpoint was saved with fewer processes × grad_accum")
        if other_device:
            log.warning("batch sampling restarts from a fresh seed: the checkpoint was saved on another device")

    def _gather_streams(self) -> None:
        """Collect every process's window-sampler states (a collective: all processes call it at the same
        step), so rank 0's checkpoint of this step holds them all and a resume continues every stream."""
        local = {j: g.get_state() for j, g in zip(self.streams, self._gens)}
        merged = {}
        for states in self.dist.gather_objects(local):
            merged.update(states)
        self._gathered_streams = (self.step, merged)


    @classmethod
    def resume_from(cls, ckpt_dir, model, train_ids, val_ids, cfg=None, *, val_chars: int,
                    tokenizer=None):
        """A trainer continuing a saved run. model None: rebuilt from the checkpoint's config (otherwise it must
        match it); cfg None: the saved TrainConfig (pass one to run longer or on another device)."""
        meta = checkpoint.load_meta(ckpt_dir)
        if model is None:
            model = build_model(meta["family"], meta["model"])
        from .train import TrainConfig
        cfg = cfg or TrainConfig.from_dict(meta["train"])
        trainer = cls(model, train_ids, val_ids, cfg, val_chars=val_chars, tokenizer=tokenizer)
        trainer.load_state(ckpt_dir)
        return trainer
