"""One column of the side-by-side view: a strategy with its own knobs, its text with token boundaries, its figures.

The figures (engine/decode_compare.py says exactly how each is computed):
- log p / token: the mean log-probability of the column's tokens under the model's own, unmodified distribution
  (higher = text the model finds more likely; greedy and beam search aim for it, sampling trades it for variety);
- mass cut: the mean share of probability that truncation (top-k, top-p, min-p) removed before each draw;
- distinct-2 / -3: the share of token pairs / triples that are different from each other (1 = no repeats);
- repeated 4-grams: the share of 4-token sequences that already occurred earlier in the text (loops show up here).
While a column streams they are worked out from its events (beam search's log p only at the end); at the end the
worker recomputes log p by running the model over the column's tokens."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from engine.decode import DecodeConfig
from engine.decode_compare import ColumnRecord, live_figures

from app.common.token_view import SampleView
from app.sample.knobs import KNOBS, STRATEGY_HELP

FIGURE_HELP = {
    "logp": "mean log-probability per token under the model's own distribution (no penalty, temperature or "
            "truncation), in nats: closer to 0 = text the model finds more likely",
    "cut": "mean share of probability mass that truncation (top-k, top-p, min-p) removed before each draw; greedy "
           "and beam search do not truncate",
    "distinct": "distinct-2 and distinct-3: distinct token pairs / triples divided by all of them (1 = no repeats)",
    "rep": "share of 4-token sequences that repeat one earlier in the text (a loop shows up as a high share)",
}


def _num(x, fmt: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


class CompareColumn(QFrame):
    """`config(**shared)` gives its DecodeConfig; `start`, `add_events` and `finish` show a run; `kept` columns are
    skipped by the next run and keep their text."""

    remove_requested = Signal(object)        # self
    token_clicked = Signal(object, int)      # self, token index

    def __init__(self, strategy: str = "sample", values: dict | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.StyledPanel)
        self.setMinimumWidth(180)
        self.strategy = QComboBox()
        for name in ("greedy", "sample", "beam"):
            self.strategy.addItem(name, name)
            self.strategy.setItemData(self.strategy.count() - 1, STRATEGY_HELP[name], Qt.ToolTipRole)
        self.keep = QCheckBox("keep")
        self.keep.setToolTip("keep this column's text and figures while the others are run again")
        self.keep.toggled.connect(self._on_keep)
        self.remove = QToolButton()
        self.remove.setText("×")
        self.remove.setToolTip("remove this column")
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self))
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.strategy, 1)
        head.addWidget(self.keep)
        head.addWidget(self.remove)
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setVerticalSpacing(2)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.knobs: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for k in KNOBS:
            w = QSpinBox() if k.decimals == 0 else QDoubleSpinBox()
            if k.decimals:
                w.setDecimals(k.decimals)
            w.setRange(k.lo, k.hi)
            w.setSingleStep(k.step)
            w.setValue(k.default)
            if k.field == "top_k":
                w.setSpecialValueText("off")
            w.setToolTip(k.help)
            label = QLabel(k.label.replace("repetition penalty", "rep. penalty"))
            label.setToolTip(k.help)
            self.knobs[k.field] = w
            self.form.addRow(label, w)
        self.view = SampleView()
        self.view.setMinimumHeight(48)
        self.view.document().setDefaultFont(self._small_font())
        self.view.token_clicked.connect(lambda i: self.token_clicked.emit(self, i))
        self.figures = QLabel()
        self.figures.setTextFormat(Qt.RichText)
        self.figures.setWordWrap(True)
        self.figures.setToolTip("\n".join(f"• {t}" for t in FIGURE_HELP.values()))
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #666; font-size: 11px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(head)
        layout.addLayout(self.form)
        layout.addWidget(self.figures)   # above the text: when the window is short, the text scrolls, not these
        layout.addWidget(self.note)
        layout.addWidget(self.view, 1)
        self.strategy.currentIndexChanged.connect(self._on_strategy)
        self.strategy.setCurrentIndex(self.strategy.findData(strategy))
        for name, v in (values or {}).items():
            self.knobs[name].setValue(v)
        self._on_strategy()
        self.record: ColumnRecord | None = None
        self.report: dict | None = None
        self.ran_with = ""          # "prompt … seed …" of the text on display, for the kept note
        self._show_figures({})

    def _small_font(self):
        font = self.view.document().defaultFont()
        font.setPointSize(10)
        return font

    @property
    def strategy_name(self) -> str:
        return self.strategy.currentData()

    def _on_strategy(self) -> None:
        """Show only the knobs this strategy uses (a column is narrow)."""
        s = self.strategy_name
        self.strategy.setToolTip(STRATEGY_HELP[s])
        for row, k in enumerate(KNOBS):
            self.form.setRowVisible(row, s in k.applies)

    def _on_keep(self, kept: bool) -> None:
        for w in [self.strategy, *self.knobs.values()]:
            w.setEnabled(not kept)
        self._restyle()

    def set_focused(self, focused: bool) -> None:
        """The column whose distribution the chart shows gets a blue edge (a kept one keeps its green)."""
        self._focused = focused
        self._restyle()

    def _restyle(self) -> None:
        color = "#2e9d47" if self.kept else ("#3f7fd9" if getattr(self, "_focused", False) else "")
        self.setStyleSheet(f"CompareColumn {{ border: 2px solid {color}; }}" if color else "")

    @property
    def kept(self) -> bool:
        return self.keep.isChecked()

    def config(self, **shared) -> DecodeConfig:
        """This column's DecodeConfig with the shared settings (ConfigError for a bad value)."""
        s = self.strategy_name
        own = {k.field: (int(round(self.knobs[k.field].value())) if k.decimals == 0 else self.knobs[k.field].value())
               for k in KNOBS if s in k.applies}
        if s != "sample":
            shared = {**shared, "seed": None}
        return DecodeConfig(strategy=s, **shared, **own)

    # -- a run ---------------------------------------------------------------------------------------------------
    def start(self, tokenizer, prompt: str, cfg: DecodeConfig, ran_with: str) -> None:
        self.record, self.report, self.ran_with = ColumnRecord(cfg), None, ran_with
        self.view.start(tokenizer, prompt, cfg)
        self.note.setText("running…")
        self._show_figures({})

    def clear(self) -> None:
        """Nothing on display (the run that was asked for could not start)."""
        self.record, self.report, self.ran_with = None, None, ""
        self.view.start(None, "", DecodeConfig())
        self.note.clear()
        self._show_figures({})

    def add_events(self, items: list) -> None:
        """items: (event, seconds) of this column, in order."""
        for event, seconds in items:
            self.record.add(event, seconds)
        self.view.add_events([e for e, _ in items])
        self._show_figures(live_figures(self.record))

    def finish(self, report: dict | None, error: str = "") -> None:
        """The worker's column_report (None when the run failed or was stopped before the figures)."""
        self.report = report
        if report is not None:
            self._show_figures(report)
            speed = report["tokens_per_s"]
            self.note.setText(f"{report['steps']} steps, {_num(speed, ',.0f')} tok/s · finished: "
                              f"{report['finish_reason'].replace('_', ' ')}")
        else:
            self.note.setText(error or "stopped")

    def show_kept_note(self, now: str) -> None:
        """A kept column ran with another prompt or seed than the run just started: say so."""
        if self.ran_with and self.ran_with != now:
            self.note.setText(f"kept from {self.ran_with}")

    def _show_figures(self, f: dict) -> None:
        rows = (("log p / token", _num(f.get("mean_logprob"), ".3f"), FIGURE_HELP["logp"]),
                ("mass cut", _num(f.get("mean_cut_mass"), ".1%"), FIGURE_HELP["cut"]),
                ("distinct-2 / 3", f"{_num(f.get('distinct_2'), '.2f')} / {_num(f.get('distinct_3'), '.2f')}",
                 FIGURE_HELP["distinct"]),
                ("repeated 4-grams", _num(f.get("repeated_4gram_share"), ".1%"), FIGURE_HELP["rep"]))
        cells = "".join(f'<tr><td style="color:#555">{name}</td><td align="right"><b>{value}</b></td></tr>'
                        for name, value, _ in rows)
        self.figures.setText(f'<table width="100%" cellspacing="0" cellpadding="1">{cells}</table>')

    def figure_values(self) -> dict:
        """What the figures show, for tests: the final report's when done, else the live ones."""
        if self.report is not None:
            return self.report
        return live_figures(self.record) if self.record is not None else {}
