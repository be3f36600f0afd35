"""Past models of a run, for scrubbing the loss curve: during training the weights are kept at log-spaced steps
(1, 2, 3, 5, 8, 12, ... each about 1.5 times the last) and at every evaluation, at most MAX_SNAPSHOTS per run, as
safetensors files in a folder of the run (`snapshots/step-000000123.safetensors`).

When a new snapshot would exceed the cap, the one whose removal leaves the most even spacing in log(step) goes:
the kept steps stay spread from the first steps (where the model changes fastest) to the latest. The first and
the newest are never dropped. Files are written to a temporary name and renamed, so a reader never sees half of
one; only weights are kept (no optimizer state), a few hundred KB for the small models this is for."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch

from .errors import CheckpointError
from .models import build_model

__all__ = ["MAX_SNAPSHOTS", "SnapshotKeeper", "LOG_RATIO"]

MAX_SNAPSHOTS = 32
LOG_RATIO = 1.5          # the next log-spaced step is at least this multiple of the last one kept for spacing
_NAME = re.compile(r"^step-(\d{9})\.safetensors$")


class SnapshotKeeper:
    """Keeps one run's snapshots in `folder` (created). Not thread-safe: the training thread calls offer(); the
    GUI thread only reads `steps()` (a copy) and loads files, which are complete once listed."""

    def __init__(self, folder, max_snapshots: int = MAX_SNAPSHOTS):
        if max_snapshots < 2:
            raise ValueError("keep at least 2 snapshots")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max = max_snapshots
        self._steps: list[int] = sorted(int(m.group(1)) for p in self.folder.iterdir()
                                        if (m := _NAME.match(p.name)))
        self._next_log = 1

    def due(self, step: int, evaluated: bool) -> bool:
        """Whether the weights after `step` completed steps should be kept: at every evaluation, and at the
        log-spaced steps."""
        if step < 1 or step in self._steps:
            return False
        return evaluated or step >= self._next_log

    def offer(self, step: int, evaluated: bool, model: torch.nn.Module) -> bool:
        """Keep `model`'s weights for `step` if due (see `due`); returns whether a file was written. The caller
        holds whatever lock keeps the weights still while they are copied."""
        if not self.due(step, evaluated):
            return False
        if step >= self._next_log:
            self._next_log = max(step + 1, math.ceil(step * LOG_RATIO))
        from safetensors.torch import save_file
        tensors = {}
        seen = set()
        for name, t in model.state_dict().items():
            t = t.detach().to("cpu", torch.float32)
            tensors[name] = t.clone() if t.data_ptr() in seen else t.contiguous()   # tied weights copied apart
            seen.add(t.data_ptr())
        path = self.path(step)
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp))
        os.replace(tmp, path)
        self._steps.append(step)
        self._steps.sort()
        while len(self._steps) > self.max:
            self._drop(self._least_needed())
        return True

    def steps(self) -> list[int]:
        return list(self._steps)

    def path(self, step: int) -> Path:
        return self.folder / f"step-{step:09d}.safetensors"

    def disk_bytes(self) -> int:
        total = 0
        for s in self._steps:
            try:
                total += self.path(s).stat().st_size
            except OSError:
                pass
        return total

    def _least_needed(self) -> int:
        """The kept step (not the first or the newest) whose neighbours are closest together in log(step)."""
        logs = [math.log(s) for s in self._steps]
        best, best_gap = self._steps[1], math.inf
        for i in range(1, len(self._steps) - 1):
            gap = logs[i + 1] - logs[i - 1]
            if gap < best_gap:
                best, best_gap = self._steps[i], gap
        return best

    def _drop(self, step: int) -> None:
        self._steps.remove(step)
        try:
            self.path(step).unlink()
        except OSError:
            pass

    def load(self, step: int, family: str, model_config: dict):
        """The model as it was after `step` (CPU, eval mode). CheckpointError when that step is not kept or its
        file does not fit the config."""
        if step not in self._steps:
            raise CheckpointError(f"no snapshot of step {step} is kept")
        from safetensors.torch import load_file
        from .train_state import load_model_tensors
        try:
            tensors = load_file(str(self.path(step)))
        except (OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"the snapshot of step {step} cannot be read: {e}") from None
        model = build_model(family, model_config)
        load_model_tensors(model, tensors)
        return model.eval()
