"""A run's loss history, kept small enough to travel in a checkpoint's meta.json: one row per report (step,
tokens, elapsed time, train loss, learning rate, grad norm, and where an evaluation ran its validation loss, bits
per character and scope: val_windows 0 for the whole split, N for N windows, null when not recorded), so a loaded
checkpoint shows the curve it was trained along and a resumed run's plot carries on from it."""
from __future__ import annotations

import math

COLUMNS = ("step", "tokens", "elapsed_s", "train_loss", "lr", "grad_norm", "val_loss", "val_bpc", "val_windows")
MAX_ROWS = 2000     # past this, rows without an evaluation are halved by min/max (about 100 KB of JSON at most)


class LossHistory:
    def __init__(self, rows: list[list] | None = None):
        self.rows: list[list] = rows or []

    def add(self, report) -> None:
        """Record a StepReport. A report for a step already recorded (the eval or done report that follows the
        step's own) only fills in the validation loss; non-finite train losses are kept as None."""
        val = report.val_loss if report.val_loss is not None and math.isfinite(report.val_loss) else None
        bpc = report.val_bpc if val is not None and report.val_bpc is not None else None
        windows = scope_windows(report.val_scope) if val is not None else None
        if self.rows and report.step <= self.rows[-1][0]:
            if val is not None and report.step == self.rows[-1][0]:
                self.rows[-1][6:9] = [val, bpc, windows]
            return
        loss = report.train_loss if math.isfinite(report.train_loss) else None
        grad = report.grad_norm if math.isfinite(report.grad_norm) else None
        self.rows.append([report.step, report.tokens, round(report.elapsed_s, 3), loss, report.lr, grad, val, bpc,
                          windows])
        if len(self.rows) > MAX_ROWS:
            self._thin()

    def _thin(self) -> None:
        """Halve the rows without an evaluation by min/max, as the live plot does (app/training/loss_series.py):
        each run of four consecutive plain rows keeps its lowest and its highest train loss (a non-finite loss,
        stored as None, counts as highest), in step order, so a one-report spike or dip survives every thinning.
        Every evaluation, the first row and the newest are kept."""
        kept, group = [], []

        def flush():
            if len(group) <= 2:
                kept.extend(group)
            else:
                loss = [math.inf if r[3] is None else r[3] for r in group]
                lo = min(range(len(group)), key=loss.__getitem__)
                hi = max(range(len(group)), key=loss.__getitem__)
                kept.extend(group[i] for i in sorted({lo, hi}))
            group.clear()

        for i, row in enumerate(self.rows):
            if row[6] is not None or i in (0, len(self.rows) - 1):
                flush()
                kept.append(row)
            else:
                group.append(row)
                if len(group) == 4:
                    flush()
        flush()
        self.rows = kept

    def up_to(self, step: int) -> LossHistory:
        """The rows of steps ≤ step (a checkpoint's history stops at its own step)."""
        return LossHistory([list(r) for r in self.rows if r[0] <= step])

    def to_dict(self) -> dict:
        return {"columns": list(COLUMNS), "rows": self.rows}

    @classmethod
    def from_dict(cls, d: dict | None) -> LossHistory:
        """Rows in this version's column order; a column the saved history lacks (one saved before it was added)
        is None. Empty for checkpoints saved before histories were kept, or with an unknown layout."""
        saved = list((d or {}).get("columns", []))
        if len(saved) < 7 or saved != list(COLUMNS[:len(saved)]):
            return cls()
        return cls([list(r) + [None] * (len(COLUMNS) - len(r)) for r in d.get("rows", []) if len(r) == len(saved)])

    def reports(self, max_steps: int) -> list:
        """The rows as StepReports (event "eval" where a validation loss was recorded), to replay into a plot."""
        from .train import StepReport
        nan = math.nan
        return [StepReport(step=int(s), max_steps=max_steps, tokens=int(tok), elapsed_s=float(el),
                           train_loss=nan if loss is None else float(loss), lr=float(lr),
                           grad_norm=nan if grad is None else float(grad), tokens_per_s=0.0, eta_s=None,
                           val_loss=val, val_bpc=bpc, event="eval" if val is not None else "step",
                           val_scope=scope_text(win) if val is not None else "")
                for s, tok, el, loss, lr, grad, val, bpc, win in self.rows]


def scope_windows(scope: str) -> int | None:
    """A StepReport's val_scope as a number: 0 for "whole split", N for "N windows", None when unknown."""
    if scope == "whole split":
        return 0
    head = scope.split(" ")[0] if scope.endswith(" windows") else ""
    return int(head) if head.isdigit() else None


def scope_text(windows) -> str:
    """The inverse of scope_windows ("" for None: an evaluation recorded before its scope was)."""
    if windows is None:
        return ""
    return "whole split" if windows == 0 else f"{int(windows)} windows"
