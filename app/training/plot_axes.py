"""The Loss tab's axes: plain (not SI-prefixed) tick numbers, log-axis ticks that stay readable, the scope of an
evaluation in words, and the train split's characters per token from a run summary."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from engine.history import scope_text


def compact_number(v: float) -> str:
    """140000 -> "140k", 2500000 -> "2.5M": token counts stay short on the axis without a "(x1e6)" label."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.4g}{suffix}"
    return f"{v:g}"


def scope_label(windows: float) -> str:
    """What a validation point covers, from the plot's windows column: "whole split", "N windows", or "" when
    the point was recorded before scopes were (NaN)."""
    return "" if math.isnan(windows) else scope_text(int(windows))


class PlotAxis(pg.AxisItem):
    """An axis with three fixes over pyqtgraph's: `compact` tick labels (140k instead of 140000), in log mode
    linear-looking ticks when the range is under a decade (pyqtgraph would label only 2 of 2.1..4.6, say), and
    plain numbers (no SI prefix) that stay plain."""

    compact = False

    def plain_numbers(self, compact: bool) -> None:
        """No SI prefix. pyqtgraph 0.14's enableAutoSIPrefix(False) still computes a prefix from the current range
        and keeps it (after a sub-second time axis, step ticks read 1000× too big), so the scale is reset here."""
        self.compact = compact
        self.autoSIPrefix = False
        self.autoSIPrefixScale, self.labelUnitPrefix = 1.0, ""
        self._updateLabel()
        self.picture = None      # the tick labels change: redraw them
        self.update()

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        if maxVal - minVal >= 1:
            return super().logTickValues(minVal, maxVal, size, stdTicks)
        lo, hi = 10 ** minVal, 10 ** maxVal
        levels = []
        for spacing, offset in self.tickSpacing(lo, hi, size)[:2]:
            first = math.ceil((lo - offset) / spacing) * spacing + offset
            values = np.arange(first, hi + spacing * 1e-9, spacing)
            levels.append((None, np.log10(values[values > 0]).tolist()))
        return levels

    def logTickStrings(self, values, scale, spacing):
        return [f"{10 ** v:.3g}" for v in values]

    def tickStrings(self, values, scale, spacing):
        if self.compact and not self.logMode:
            return [compact_number(v * scale) for v in values]
        return super().tickStrings(values, scale, spacing)


def chars_per_token(summary: dict) -> float | None:
    """The train split's characters per token from a run's summary (engine.api.Run.summary), None when it does
    not say (a checkpoint saved before train_chars was recorded)."""
    chars, tokens = summary.get("train_chars"), summary.get("train_tokens")
    if isinstance(chars, int) and isinstance(tokens, int) and chars > 0 and tokens > 0:
        return chars / tokens
    return None
