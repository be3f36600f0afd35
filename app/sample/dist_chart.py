"""The next-token distribution at one decoding step, as a bar chart.

Bars are the most probable candidates after repetition penalty and temperature, token labels on the x axis.
Candidates that survived truncation (top-k, top-p, min-p) are blue, the ones cut away are grey, and the token actually
taken has an orange outline. A red dash on each bar marks the model's own probability, so the effect of temperature
is visible as the gap between dash and bar top. A caption above says how much probability mass truncation removed,
because that number, not the bar heights, is what the truncation knobs change."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.common.token_view import token_label

KEPT_BRUSH = pg.mkBrush("#3f7fd9")
CUT_BRUSH = pg.mkBrush("#c4c4c4")
CHOSEN_PEN = pg.mkPen("#ff8c00", width=3)
RAW_PEN = pg.mkPen("#b00020", width=2)
LABEL_CHARS = 8  # longer tokens (words, BPE merges) are shortened on the axis; the tooltip-free chart stays legible


def axis_label(token: str, max_chars: int = LABEL_CHARS) -> str:
    """A token as an axis label: whitespace made visible as the text view draws it (a newline is ↵ there and here,
    whether it comes as a character or as the tokenizers' token_str escape "\\n"), long tokens shortened."""
    shown = token_label(token)
    return shown if len(shown) <= max_chars else shown[:max(max_chars - 1, 1)] + "…"


def _share(x: float) -> str:
    """A removed probability share as a percentage; float rounding can leave it a hair below zero ("-0.0%")."""
    return f"{max(0.0, x):.1%}"


class DistChart(QWidget):
    """Caption + bar chart. `show_step` replaces what is drawn; `clear_chart` empties it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.caption = QLabel("Click a generated token to see the distribution it was drawn from.")
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.PlainText)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(y=True, alpha=0.25)
        self.plot.setLabel("left", "probability")
        mono = self._mono = QFont("DejaVu Sans Mono", 10)  # has ␣ and ↵, which label whitespace tokens
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setTextPen("#333333")
            axis.setPen("#888888")
            axis.enableAutoSIPrefix(False)
            axis.setStyle(tickFont=mono)
        self.plot.getAxis("bottom").setHeight(30)  # room for the tick font; the default clips its lower half
        # the labels are shortened to the width of a bar, so they follow the plot area's own size: the widget's
        # resizeEvent comes before pyqtgraph lays the plot out (and not at all while another tab hides the chart)
        self.plot.getViewBox().sigResized.connect(self._update_ticks)
        self.kept_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=KEPT_BRUSH, pen=pg.mkPen(None))
        self.cut_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=CUT_BRUSH, pen=pg.mkPen(None))
        self.chosen_bar = pg.BarGraphItem(x=[], height=[], width=0.7, brush=pg.mkBrush(None), pen=CHOSEN_PEN)
        self.raw_marks = pg.PlotDataItem(x=[], y=[], connect="pairs", pen=RAW_PEN)  # one dash per bar
        for item in (self.kept_bars, self.cut_bars, self.chosen_bar, self.raw_marks):
            self.plot.addItem(item)
        legend = QLabel('<span style="color:#3f7fd9">■</span> kept &nbsp; '
                        '<span style="color:#a0a0a0">■</span> cut away by truncation &nbsp; '
                        '<span style="color:#ff8c00">□</span> token taken &nbsp; '
                        '<span style="color:#b00020"><b>—</b></span> model\'s own probability '
                        '(bars: after repetition penalty and temperature)')
        legend.setWordWrap(True)   # one line is ~770 px: it would set the Sample tab's minimum width
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot, 1)
        layout.addWidget(legend)
        self.labels: list[str] = []
        self.probs = np.zeros(0)
        self.kept = np.zeros(0, dtype=bool)
        self.raw = np.zeros(0)

    def show_step(self, labels: list[str], probs, kept, chosen: int | None, caption: str, raw=None) -> None:
        """labels/probs/kept (and raw, the model's own probabilities): one entry per candidate, most probable first;
        chosen: index among them or None (the token taken can be outside the top candidates when sampling)."""
        self.labels = list(labels)
        self.probs = np.asarray(probs, dtype=float)
        self.kept = np.asarray(kept, dtype=bool)
        x = np.arange(len(self.probs), dtype=float)
        self.kept_bars.setOpts(x=x[self.kept], height=self.probs[self.kept])
        self.cut_bars.setOpts(x=x[~self.kept], height=self.probs[~self.kept])
        raw = np.zeros(0) if raw is None else np.asarray(raw, dtype=float)
        self.raw = raw
        self.raw_marks.setData(x=np.column_stack([x[:len(raw)] - 0.35, x[:len(raw)] + 0.35]).ravel(),
                               y=np.repeat(raw, 2))
        if chosen is not None and 0 <= chosen < len(x):
            self.chosen_bar.setOpts(x=[x[chosen]], height=[self.probs[chosen]])
        else:
            self.chosen_bar.setOpts(x=[], height=[])
        self._update_ticks()
        top = float(max(self.probs.max(initial=0.0), raw.max(initial=0.0)))
        self.plot.setXRange(-0.6, max(len(x), 1) - 0.4, padding=0)
        self.plot.setYRange(0, top * 1.08 if top > 0 else 1.0, padding=0)
        self.caption.setText(caption)

    def show_event(self, e, tokenizer, strategy: str, chosen_id: int, note: str = "", prefix: str = "") -> None:
        """Draw one DecodeEvent: bars are the top candidates after repetition penalty and temperature, before
        truncation (so what truncation removes is still visible), coloured by whether truncation kept them."""
        ids = [int(i) for i in e.topk_ids]
        labels = [tokenizer.token_str(i) for i in ids]
        chosen = ids.index(chosen_id) if chosen_id in ids else None
        tok = axis_label(tokenizer.token_str(chosen_id), 40)
        if chosen is None:
            where = f"outside the {len(ids)} most probable shown"
        elif strategy == "sample":
            where = (f"rank {chosen + 1}, p {e.topk_tempered_probs[chosen]:.3f} before truncation, "
                     f"{e.topk_probs[chosen]:.3f} after")
        else:
            where = f"rank {chosen + 1}, p {e.topk_tempered_probs[chosen]:.3f}"
        head = f"Step {e.step}: took '{tok}' ({where})."
        if strategy == "sample":
            cut = (f"Truncation kept {e.n_kept:,} of {tokenizer.vocab_size:,} tokens, {e.kept_mass:.1%} of the "
                   f"probability mass; it cut away {_share(1 - e.kept_mass)}: top-k {_share(e.cut_top_k)}, top-p "
                   f"{_share(e.cut_top_p)}, min-p {_share(e.cut_min_p)}. The kept bars were renormalised before the "
                   f"draw.")
        elif strategy == "greedy":
            cut = "Greedy takes the tallest bar; nothing is cut away (0.0% of the mass), so no truncation applies."
        else:
            cut = ("Beam search does not truncate (0.0% of the mass cut away): it extends every kept hypothesis by "
                   "every token and keeps the best-scoring ones.")
        caption = " ".join(filter(None, (prefix + head, cut, note)))
        self.show_step(labels, e.topk_tempered_probs, e.topk_probs > 0, chosen, caption, raw=e.topk_raw_probs)

    def _update_ticks(self) -> None:
        """Shorten labels to what fits under one bar at the current width (word tokens would overlap)."""
        axis = self.plot.getAxis("bottom")
        per_bar = self.plot.getViewBox().width() / max(len(self.labels), 1)
        fits = max(int(per_bar / QFontMetrics(self._mono).horizontalAdvance("m")) - 1, 2)
        axis.setTicks([[(float(i), axis_label(t, min(fits, LABEL_CHARS))) for i, t in enumerate(self.labels)]])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_ticks()

    def clear_chart(self, caption: str) -> None:
        self.show_step([], [], [], None, caption)

    @property
    def bar_count(self) -> int:
        return len(self.probs)
