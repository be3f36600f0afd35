"""One step of undo for the trainer: the weights and AdamW state from before the latest optimizer update.

Why: when step X's loss or gradient norm is non-finite, the weights the model holds then (those of step X-1) are the
ones that produced it, so a run resumed from them with a lower lr fails again on its first step. The last weights
whose loss and gradients were finite are those of step X-2, before the update that led to the bad ones. Keeping
them costs one copy of the weights and of AdamW's two moments (3 × the parameter bytes) on the training device, and
one device-side copy per step (no host sync: on CUDA the `good` flag stays on the device)."""
from __future__ import annotations

import torch

__all__ = ["Rollback"]


class Rollback:
    def __init__(self, optimizer: torch.optim.Optimizer):
        self.opt = optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self._weights: list[torch.Tensor] | None = None
        self._state: list[torch.Tensor] | None = None   # copies of every tensor in optimizer.state, param order
        self._kept: torch.Tensor | int = -1              # the completed-step count the weight copies belong to
        self._state_kept: torch.Tensor | int = -1        # ... and the optimizer state copies (-1: none)

    def _live_state(self) -> list[torch.Tensor]:
        out = []
        for p in self.params:
            st = self.opt.state.get(p, {})
            out.extend(st[k] for k in sorted(st) if isinstance(st[k], torch.Tensor))
        return out

    @torch.no_grad()
    def keep(self, step: int, good: torch.Tensor | None = None) -> None:
        """Call just before the optimizer update that follows `step` completed steps. good: None when this step's
        loss and gradients are known to be finite; else a 0-d float tensor (1.0 finite, 0.0 not, sticky), and
        the copies only change while it is 1."""
        live_w = [p.detach() for p in self.params]
        live_s = self._live_state()
        if self._weights is None:
            # the first call comes before any update of this trainer, so these weights are good either way
            self._weights = [w.clone() for w in live_w]
            self._kept = self._step_value(step, None, -1, good)
        else:
            self._copy(self._weights, live_w, good)
            self._kept = self._step_value(step, good, self._kept, good)
        if not live_s:
            return
        if self._state is None or len(self._state) != len(live_s):
            # AdamW creates its state at its first update: from here on it is copied too
            self._state = [s.clone() for s in live_s]
            self._state_kept = self._step_value(step, good, -1, good)
        else:
            self._copy(self._state, live_s, good)
            self._state_kept = self._step_value(step, good, self._state_kept, good)

    @staticmethod
    def _copy(dst: list[torch.Tensor], src: list[torch.Tensor], good: torch.Tensor | None) -> None:
        if good is None:
            torch._foreach_copy_(dst, src)
        else:
            ok = good > 0
            for b, t in zip(dst, src):
                b.copy_(torch.where(ok, t, b))

    @staticmethod
    def _step_value(step: int, good, old, like):
        """`step` where good (None: surely good), else `old`; a device tensor when `like` is one."""
        if like is None:
            return step if good is None else old
        old_t = old if isinstance(old, torch.Tensor) else torch.full((), old, dtype=torch.long, device=like.device)
        if good is None:
            return torch.full_like(old_t, step)
        return torch.where(good > 0, torch.full_like(old_t, step), old_t)

    @torch.no_grad()
    def restore(self) -> int | None:
        """Put the kept weights and optimizer state back; returns the step count they belong to, or None when
        nothing was kept (no update happened in this trainer). The optimizer state is cleared instead when none
        was kept for that step (AdamW had not updated yet)."""
        if self._weights is None:
            return None
        kept = int(self._kept)
        for p, w in zip(self.params, self._weights):
            p.copy_(w)
        live_s = self._live_state()
        if self._state is not None and int(self._state_kept) == kept and len(live_s) == len(self._state):
            for s, b in zip(live_s, self._state):
                s.copy_(b)
        else:
            self.opt.state.clear()
        return kept
