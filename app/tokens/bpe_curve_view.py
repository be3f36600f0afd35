"""BPE size against length, in the Tokens tab: characters per token and tokens in the train split against the
number of merges, and a slider that re-tokenizes the corpus start with only the first m merges.

The curve comes computed with the tab's result (engine.tokenizers.bpe_curve.length_curve, on the tab's background
job); re-tokenizing at the slider's size builds a cut tokenizer, which for a large vocabulary takes longer than a
frame, so it runs on a JobRunner too, the latest request winning."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from engine.tokenizers.bpe_curve import BYTES, MergeCuts
from engine.tokenizers.inspect import token_spans

from app.common.jobs import JobRunner

SAMPLE_CHARS = 600           # how much of the corpus start the slider re-tokenizes
CPT_PEN = pg.mkPen("#3f7fd9", width=2)
TOKENS_PEN = pg.mkPen("#d9822b", width=2)
MARK_PEN = pg.mkPen("#444444", width=1, style=Qt.DashLine)


class CountAxis(pg.AxisItem):
    """Tick labels as whole numbers with thousands separators (pyqtgraph writes 1e+06)."""

    def tickStrings(self, values, scale, spacing):
        return [f"{v * scale:,.0f}" for v in values]


def _plot(layout: pg.GraphicsLayoutWidget, row: int, left: str, pen) -> tuple[pg.PlotItem, pg.PlotDataItem]:
    axes = {"left": CountAxis("left")} if row == 1 else {}
    plot = layout.addPlot(row=row, col=0, axisItems={**axes, "bottom": CountAxis("bottom")})
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("left", left, color="#333333")
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setTextPen("#333333")
        axis.setPen("#888888")
        axis.enableAutoSIPrefix(False)
    plot.getAxis("left").setWidth(72)      # both plots' axes line up, wide enough for "1,000,000"
    return plot, plot.plot(pen=pen)


class BPECurveView(QWidget):
    """`preview` shows a text's token spans (the tab's TokenPreview: show_spans(text, spans, tips))."""

    def __init__(self, preview, parent: QWidget | None = None):
        super().__init__(parent)
        self.preview = preview
        self.curve = None
        self.cuts: MergeCuts | None = None
        self.sample = ""
        self.jobs = JobRunner(self)
        self._request = 0
        self.caption = QLabel("Each merge adds one token to the vocabulary and makes the text shorter. Top: characters "
                              "per token in the train split; bottom: its length in tokens. Drag the slider to "
                              "tokenize the corpus start with only the first merges.")
        self.caption.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.cpt_plot, self.cpt_line = _plot(self.graphics, 0, "chars / token", CPT_PEN)
        self.tok_plot, self.tok_line = _plot(self.graphics, 1, "tokens (train)", TOKENS_PEN)
        self.tok_plot.setXLink(self.cpt_plot)
        self.tok_plot.setLabel("bottom", "merges learned (vocabulary = 256 + merges)", color="#333333")
        self.marks = [pg.InfiniteLine(angle=90, movable=False, pen=MARK_PEN) for _ in range(2)]
        self.cpt_plot.addItem(self.marks[0])
        self.tok_plot.addItem(self.marks[1])
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._moved)
        self.at = QLabel()
        self.at.setTextFormat(Qt.RichText)
        self.at.setWordWrap(True)   # unwrapped, this line would set the window's minimum width
        self.sample_about = QLabel()
        self.sample_about.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("vocabulary size"))
        row.addWidget(self.slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.graphics, 3)
        layout.addLayout(row)
        layout.addWidget(self.at)
        layout.addWidget(self.preview, 2)
        layout.addWidget(self.sample_about)
        self._debounce = QTimer(self, singleShot=True, interval=60)
        self._debounce.timeout.connect(self._replay)

    def show_result(self, result) -> None:
        """Draw a TokensResult's curve (None: not a BPE result) and replay its corpus start at the full size."""
        self.curve = result.curve
        self.cuts = None
        self._request += 1          # a replay of the previous tokenizer still running must not store its cuts
        if self.curve is None:
            return
        c = self.curve
        self.cpt_line.setData(c.merges.astype(float), c.chars_per_token)
        self.tok_line.setData(c.merges.astype(float), c.tokens.astype(float))
        self.cpt_plot.setYRange(0, float(c.chars_per_token.max(initial=1.0)) * 1.08, padding=0)
        self.tok_plot.setYRange(0, float(c.tokens.max(initial=1)) * 1.05, padding=0)
        self.cpt_plot.setXRange(0, max(float(c.merges[-1]), 1.0), padding=0.02)
        self.sample = result.preview[:SAMPLE_CHARS]
        self._tokenizer = result.tokenizer
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(c.merges) - 1)
        self.slider.setValue(len(c.merges) - 1)
        self.slider.blockSignals(False)
        self.slider.setEnabled(True)
        self._moved(self.slider.value())

    def _moved(self, i: int) -> None:
        """Move the marks and say the figures now; the re-tokenized text follows once the slider rests."""
        c = self.curve
        m = int(c.merges[i])
        for mark in self.marks:
            mark.setValue(m)
        self.at.setText(f"vocabulary <b>{int(c.vocab_sizes[i]):,}</b> ({m:,} merges): "
                        f"<b>{c.chars_per_token[i]:.2f}</b> characters per token, <b>{int(c.tokens[i]):,}</b> "
                        f"tokens in the train split (bytes alone: {int(c.tokens[0]):,})")
        self._debounce.start()

    @property
    def merges(self) -> int:
        return int(self.curve.merges[self.slider.value()]) if self.curve is not None else 0

    def _replay(self) -> None:
        if self.curve is None:
            return
        m, sample, full = self.merges, self.sample, self._tokenizer
        cuts = self.cuts

        def job():
            c = cuts or MergeCuts(full)
            return c, m, token_spans(c.at(m), sample)

        self._request += 1
        request = self._request
        self.jobs.run(job, lambda r: self._replayed(request, *r), lambda msg: self.sample_about.setText(msg))

    def _replayed(self, request: int, cuts: MergeCuts, m: int, spans) -> None:
        if request != self._request or self.curve is None:
            return
        self.cuts = cuts
        full = self._tokenizer
        tips = [f"id {sp.id}   '{full.token_str(sp.id)}'" for sp in spans]
        self.preview.show_spans(self.sample, spans, tips)
        self.sample_about.setText(f"The corpus start ({len(self.sample):,} characters) in {len(spans):,} tokens at "
                                  f"vocabulary {BYTES + m:,}" + (" — bytes only: no merges" if m == 0 else "")
                                  + ". Hover a token for its id.")

    def shutdown(self) -> None:
        self.jobs.wait()
