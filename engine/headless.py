"""What a headless `train` leaves in its run folder (the --out folder) while it trains, so a window can follow it:
`metrics.jsonl` (engine.metrics_log) with every report, the checkpoint itself, rewritten at each evaluation during
training (not only at the end), so the model of the latest evaluation can be loaded while the run goes on, and
with --keep-snapshots the past models in `snapshots/` (engine.snapshots), as a window run keeps them. Under
torchrun only rank 0 makes one (engine.cli)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from .checkpoint import remove_path
from .errors import PlaygroundError
from .metrics_log import MetricsLog

__all__ = ["RunOutput"]

log = logging.getLogger(__name__)


class RunOutput:
    """The run folder of one headless run: `run` (engine.api.Run), `out_dir` (prepared by
    api.prepare_output_dir). `resumed`: a resumed run appends to the folder's metrics.jsonl and keeps its
    snapshots; a new one starts both anew."""

    def __init__(self, run, out_dir, *, resumed: bool, keep_snapshots: bool = False):
        self.run, self.out_dir = run, Path(out_dir)
        self.neural = run.trainer is not None
        if not resumed:   # past models a run killed before its first save left here are not this run's
            _remove(self.out_dir / "snapshots")
        if keep_snapshots and self.neural:
            run.keep_snapshots(self.out_dir / "snapshots")   # carried over by each checkpoint save
        self._save_failed = False
        self.log = MetricsLog(self.out_dir, fresh=not resumed)
        info = run.summary()
        start = {k: info.get(k) for k in ("model", "tokenizer", "vocab_size", "corpus", "params", "device",
                                           "train_tokens", "val_tokens", "preset", "batch_size", "grad_accum",
                                           "world_size", "global_batch", "precision") if k in info}
        if self.neural:
            cfg = run.trainer.cfg
            start.update(step=run.trainer.step, max_steps=cfg.max_steps, block_size=cfg.block_size,
                         eval_interval=cfg.eval_interval, eval_windows=cfg.eval_windows,
                         eval_scope=f"{cfg.eval_windows} windows" if cfg.eval_windows else "whole split")
        self.log.write("start", checkpoint=str(self.out_dir), **start)

    @property
    def batch_line(self) -> str:
        """The global batch, for the progress output ("" for an n-gram, which has no batches)."""
        if not self.neural:
            return ""
        t = self.run.trainer
        cfg = t.cfg
        return (f"global batch {t.global_batch:,} windows ({t.global_batch * cfg.block_size:,} tokens) per step = "
                f"batch_size {cfg.batch_size} × grad_accum {cfg.grad_accum} × {t.world_size} process"
                f"{'es' if t.world_size > 1 else ''}")

    def report(self, r) -> None:
        """Log a report; after an evaluation during training, rewrite the checkpoint and log that it was."""
        self.log.report(r)
        if self.neural and r.event == "eval" and r.step < r.max_steps and not self._save_failed:
            try:
                path = self.run.save(self.out_dir)
            except PlaygroundError as e:   # the final save tries again, and elsewhere if it must
                self._save_failed = True
                print(f"warning: could not write the checkpoint at step {r.step}: {e}", file=sys.stderr)
                return
            self.log.write("checkpoint", step=r.step, path=str(path), val_loss=r.val_loss,
                           val_scope=r.val_scope)

    def end(self, status: int, error: str | None = None) -> None:
        """The run is over: the final checkpoint (if written), the exit status and, when it failed, why (a
        follower shows it: a torchrun launch whose peer died must not look alive)."""
        ckpt = (self.out_dir / "meta.json").is_file()
        step = self.run.last_report.step if self.run.last_report is not None else 0
        if ckpt:
            self.log.write("checkpoint", step=step, path=str(self.out_dir), final=True)
        self.log.write("end", status=status, step=step, **({"error": error} if error else {}))



def _remove(path: Path) -> None:
    """checkpoint.remove_path, as a PlaygroundError naming the earlier run's file."""
    try:
        remove_path(path)
    except OSError as e:
        raise PlaygroundError(f"cannot remove the earlier run's {path}: {e.strerror or e}") from None
