"""The live loss plot: raw and smoothed train loss, validation points, and a second plot for grad norm and learning
rate. Reports only append to growing numpy buffers; a QTimer redraws at most 10 times a second by calling setData
on persistent curves, and each curve is min/max downsampled to about two points per pixel of the visible range, so
a 100k-step run redraws as cheaply as a short one and a single loss spike stays visible."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QMenu, QSlider,
                               QToolButton, QVBoxLayout, QWidget)

from app.training.loss_series import (Series, ema_debiased, minmax_downsample, robust_y_range, unit_factor,
                                      visible_slice)
from engine.history import scope_windows

from app.training.run_history import RunHistory
from app.training.run_list import RunList
from app.training.plot_axes import PlotAxis, scope_label
from app.training.plot_export import PlotExport
from app.training.scrubbing import Scrubbing

# Each redraw and paint of the two plots costs 10-30 ms of the GUI thread, holding the GIL, which the training
# thread then waits for. At most ~10 Hz and 5% of the GUI thread's time (a curve that moves 3-10 times a second
# still reads as live): on the shared 2-core machine, idle on the Loss tab with tiny-cpu-transformer training,
# this (with one paint per redraw) trained 41-43 steps/s where 33 ms / 15% trained 21-33, and the 5 ms probe's
# p99 lateness was 16-21 ms instead of 25-38 ms (three runs each, pairwise).
REDRAW_MS = 100         # fastest redraw: ≤ 10 Hz
SLOWEST_MS = 500        # slowest redraw, when drawing is expensive (a large window on a slow machine)
DRAW_DUTY = 0.05        # at most this fraction of the GUI thread's time goes to drawing the plots
X_AXES = {"step": ("step", "step"), "tokens": ("tokens", "tokens"), "time": ("elapsed", "wall time (s)")}
TRAIN_COLS = ("step", "tokens", "elapsed", "loss", "lr", "grad_norm")
VAL_COLS = ("step", "tokens", "elapsed", "loss", "bpc", "windows")   # windows: 0 whole split, N windows, NaN unknown
Y_UNITS = ("nats/token", "bits/char")
HOVER_HINT = "hover over the plots for exact values"


class _TimedGraphics(pg.GraphicsLayoutWidget):
    """Remembers how long its last paint took, so the plot can slow its redraw rate when painting is costly."""
    paint_s = 0.0

    def paintEvent(self, event) -> None:
        t0 = time.perf_counter()
        super().paintEvent(event)
        self.paint_s = time.perf_counter() - t0


class LossPlot(Scrubbing, PlotExport, QWidget):
    step_chosen = Signal(int)   # the scrub marker was dropped on a kept step; -1: back to the newest model
    samples_over_time_clicked = Signal()
    """Feed it batches of StepReports with `add_reports`; it draws on its own timer."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.train = Series(TRAIN_COLS)
        # added to every report's step: a fine-tuning run's curve continues after its parent's last step on the
        # step axis (engine.finetune.parent_record); clear() sets it back to 0
        self.step_offset = 0
        self.train_chars_per_token: float | None = None   # set_train_chars_per_token
        self.val = Series(VAL_COLS)
        self._smooth = np.empty(0)
        self._ema_state = (0.0, 0.0, None)
        self._dirty = False
        self._y_fit = True        # the loss axis follows the curves (robust_y_range) until the user zooms
        self.y_clipped = False    # a curve is cut off at the top (a diverged run)

        self.x_axis = QComboBox()
        self.x_axis.addItems(list(X_AXES))
        self.x_axis.setToolTip("What the horizontal axis counts: optimizer steps, tokens seen, or seconds of training.")
        self.y_unit = QComboBox()
        self.y_unit.addItems(list(Y_UNITS))
        self.y_unit.setToolTip("Loss per token in nats, or in bits per character: losses per token of different "
                               "tokenizers (char, word, BPE) do not compare, bits per character do, with one "
                               "caveat: a word model's figure is optimistic, since spaces and the spelling of "
                               "<unk> words cost it nothing. A run's train loss is converted with its train split's "
                               "characters per token (for a checkpoint saved before that was recorded: its "
                               "validation split's, known from its first evaluation on).")
        self.log_y = QCheckBox("log y")
        self.log_y.setToolTip("Logarithmic loss axis: late, small improvements stay visible next to the early drop.")
        self.smoothing = QSlider(Qt.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(80)
        self.smoothing.setFixedWidth(120)
        self.smoothing.setToolTip("EMA smoothing of the train loss, per training step (0 = none, 0.99 = heavy), so "
                                  "runs logged every step and every 10 steps smooth alike; the raw curve stays drawn "
                                  "underneath.")
        self.smoothing_label = QLabel()
        self.readout = QLabel(HOVER_HINT)
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.readout.setWordWrap(True)     # with earlier runs it grows long; wrapping keeps the window's width
        export = QToolButton(text="Export")
        export.setPopupMode(QToolButton.InstantPopup)
        menu = QMenu("Export loss plot", export)
        menu.addAction("PNG image…", lambda: self._export_dialog("png"))
        menu.addAction("SVG image…", lambda: self._export_dialog("svg"))
        menu.addAction("CSV data…", lambda: self._export_dialog("csv"))
        export.setMenu(menu)
        self.export_menu = menu   # the window's File menu shows the same menu
        export.setToolTip("Save the plots as PNG or SVG, or all recorded points as CSV.")
        self.latest = QToolButton(text="Newest model")
        self.latest.setToolTip("Put the scrub marker back on the newest model: the Sample and Graph tabs follow the "
                               "run again instead of a past step.")
        self.latest.clicked.connect(self.back_to_newest)
        self.latest.setEnabled(False)
        self.over_time = QToolButton(text="Samples over time…")
        self.over_time.setToolTip("The same prompt and seed sampled from every kept past model, one row per step.")
        self.over_time.clicked.connect(self.samples_over_time_clicked)
        self.over_time.setEnabled(False)
        self.kept_label = QLabel()
        self.kept_label.setToolTip("Past models kept for scrubbing: drag the marker on the loss curve to a kept "
                                   "step and the Sample and Graph tabs use the model as it was then.")
        self.compare = QToolButton()
        self.compare.setPopupMode(QToolButton.InstantPopup)
        self.compare.setToolTip("Earlier runs stay on the plot, dashed, each in its own colour, so a change of model "
                                "or setting can be judged against them.")
        menu = QMenu(self.compare)
        self.show_earlier = menu.addAction("Show earlier runs")
        self.show_earlier.setCheckable(True)
        self.show_earlier.setChecked(True)
        self.show_earlier.toggled.connect(self._on_show_earlier)
        menu.addAction("Forget earlier runs", self.forget_earlier_runs)
        self.compare.setMenu(menu)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("x axis"))
        bar.addWidget(self.x_axis)
        bar.addWidget(QLabel("y"))
        bar.addWidget(self.y_unit)
        bar.addWidget(self.log_y)
        bar.addSpacing(12)
        bar.addWidget(QLabel("smoothing"))
        bar.addWidget(self.smoothing)
        bar.addWidget(self.smoothing_label)
        bar.addStretch(1)
        bar.addWidget(self.compare)
        bar.addWidget(export)

        self.graphics = _TimedGraphics()
        self.graphics.setBackground("w")
        self.loss_plot = self.graphics.addPlot(row=0, col=0, axisItems={"left": PlotAxis("left"),
                                                                        "bottom": PlotAxis("bottom")})
        self.loss_plot.setLabel("left", "loss (nats/token)")
        self.loss_plot.showGrid(x=False, y=False, alpha=0.25)
        # a light box behind the legend, so curves passing under it do not run through its text
        self.loss_plot.addLegend(offset=(-10, 10), brush=(255, 255, 255, 215), pen=(200, 200, 200))
        self.raw_curve = self.loss_plot.plot(pen=pg.mkPen((31, 119, 180, 70), width=1), name="this run: train (raw)")
        self.smooth_curve = self.loss_plot.plot(pen=pg.mkPen((31, 119, 180), width=2),
                                                name="this run: train (smoothed)")
        self.val_curve = self.loss_plot.plot(pen=None, symbol="o", symbolSize=7, symbolBrush=(214, 39, 40),
                                             symbolPen="w", name="this run: validation, whole split")
        # evaluations during training on N fixed windows (eval_windows): hollow, told apart from the whole split;
        # in the legend only once there is one
        self.val_win_curve = self.loss_plot.plot(pen=None, symbol="o", symbolSize=7, symbolBrush=(255, 255, 255),
                                                 symbolPen=pg.mkPen((214, 39, 40), width=1.5))
        self._win_legend = ""
        self.history = RunHistory(self.loss_plot)
        self._update_compare_button()
        self.aux_plot = self.graphics.addPlot(row=1, col=0, axisItems={"left": PlotAxis("left"),
                                                                       "bottom": PlotAxis("bottom")})
        self.aux_plot.setXLink(self.loss_plot)
        self.aux_plot.showGrid(x=False, y=False, alpha=0.25)
        self.aux_plot.setLabel("left", "grad norm", color="#2ca02c")
        self.aux_plot.showAxis("right")
        self.aux_plot.setLabel("right", "learning rate", color="#9467bd")
        self.aux_plot.getAxis("right").enableAutoSIPrefix(False)
        self.grad_curve = self.aux_plot.plot(pen=pg.mkPen((44, 160, 44), width=1))
        self.lr_view = pg.ViewBox()
        self.aux_plot.scene().addItem(self.lr_view)
        self.aux_plot.getAxis("right").linkToView(self.lr_view)
        self.lr_view.setXLink(self.aux_plot)
        self.lr_curve = pg.PlotDataItem(pen=pg.mkPen((148, 103, 189), width=2))
        self.lr_view.addItem(self.lr_curve)
        self.aux_plot.vb.sigResized.connect(lambda: self.lr_view.setGeometry(self.aux_plot.vb.sceneBoundingRect()))
        # equal axis widths on both sides keep the two plots' x axes aligned under the crosshair
        self.loss_plot.showAxis("right")
        self.loss_plot.getAxis("right").setStyle(showValues=False)
        for plot in (self.loss_plot, self.aux_plot):
            plot.getAxis("left").plain_numbers(compact=False)   # grad norms of 0.2-0.8 read as such, not "x0.001"
            plot.getAxis("left").setWidth(64)
            plot.getAxis("right").setWidth(64)
        self._auto_ranges()
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 1)
        self.crosshair = [pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((120, 120, 120), style=Qt.DashLine))
                          for _ in range(2)]
        for line in self.crosshair:
            line.hide()   # until the mouse is over a plot
        self.loss_plot.addItem(self.crosshair[0], ignoreBounds=True)
        self.aux_plot.addItem(self.crosshair[1], ignoreBounds=True)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse)
        # the scrub marker: drag it along the curve to pick a past model (it snaps to the kept steps)
        self.kept_steps: list[int] = []
        self.marker = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((60, 60, 60), width=2),
                                      hoverPen=pg.mkPen((0, 0, 0), width=3),
                                      label="model at step {value:.0f}", labelOpts={"position": 0.04,
                                                                                   "color": (40, 40, 40),
                                                                                   "fill": (255, 255, 255, 200)})
        self.marker.setZValue(5)
        self.marker.hide()
        self.loss_plot.addItem(self.marker, ignoreBounds=True)
        self.marker.sigPositionChanged.connect(self._snap_marker)
        self.marker.sigPositionChangeFinished.connect(self._on_marker_dropped)
        self.chosen_step: int | None = None     # the past step the tabs use (None: the newest model)
        self.hint = pg.TextItem("Press Start: the train loss appears here as the model learns.",
                                color=(110, 110, 110), anchor=(0.5, 0.5))
        self.loss_plot.addItem(self.hint, ignoreBounds=True)
        self.hint.setPos(0.5, 0.5)

        self.run_list = RunList(self.history)
        self.run_list.changed.connect(self._on_runs_changed)
        plots = QHBoxLayout()
        plots.addWidget(self.graphics, 1)
        plots.addWidget(self.run_list)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addLayout(plots, 1)
        scrub = QHBoxLayout()        # under the plots: the main bar must fit a 1280-pixel window
        scrub.addWidget(self.kept_label)
        scrub.addWidget(self.latest)
        scrub.addWidget(self.over_time)
        scrub.addStretch(1)
        layout.addLayout(scrub)
        layout.addWidget(self.readout)

        self.x_axis.currentTextChanged.connect(self._on_axis_changed)
        self.log_y.toggled.connect(self._on_log_toggled)
        self.y_unit.currentTextChanged.connect(self._on_y_unit)
        self.smoothing.valueChanged.connect(self._on_smoothing_changed)
        self.loss_plot.sigXRangeChanged.connect(self._mark_dirty)
        self.loss_plot.vb.sigRangeChangedManually.connect(self._on_user_range)
        self._on_axis_changed(self.x_axis.currentText())
        self._on_y_unit(self.y_unit.currentText())
        self._on_smoothing_changed(self.smoothing.value())
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.redraw_if_dirty)
        self.timer.start()

    def remember_in(self, settings) -> None:
        """Restore the x axis, unit and log-y choices from `settings` (a QSettings) and save each change there,
        so the plot opens as the user left it. Unknown or damaged values are ignored."""
        self._settings = settings
        x, unit = settings.value("loss_plot/x_axis"), settings.value("loss_plot/unit")
        log = settings.value("loss_plot/log_y")
        if x in X_AXES:
            self.x_axis.setCurrentText(x)
        if unit in Y_UNITS:
            self.y_unit.setCurrentText(unit)
        if log in ("true", "false", True, False):
            self.log_y.setChecked(log in ("true", True))
        self.x_axis.currentTextChanged.connect(lambda v: settings.setValue("loss_plot/x_axis", v))
        self.y_unit.currentTextChanged.connect(lambda v: settings.setValue("loss_plot/unit", v))
        self.log_y.toggled.connect(lambda on: settings.setValue("loss_plot/log_y", "true" if on else "false"))

    # -- data ------------------------------------------------------------------------------------------------
    def add_reports(self, reports) -> None:
        """Append; never draws (the timer does). Non-finite train losses (the n-gram counting pass reports NaN)
        are not train points; their evals still are validation points."""
        start = self.train.n
        for r in reports:
            step = r.step + self.step_offset
            if math.isfinite(r.train_loss) and r.event in ("step", "eval", "done"):
                if self.train.n == 0 or step > self.train["step"][-1]:
                    self.train.append(step=step, tokens=r.tokens, elapsed=r.elapsed_s, loss=r.train_loss,
                                      lr=r.lr, grad_norm=r.grad_norm)
            if r.val_loss is not None and math.isfinite(r.val_loss):
                windows = scope_windows(r.val_scope)
                self.val.append(step=step, tokens=r.tokens, elapsed=r.elapsed_s, loss=r.val_loss,
                                bpc=math.nan if r.val_bpc is None else r.val_bpc,
                                windows=math.nan if windows is None else windows)
        if self.train.n > start:
            new, self._ema_state = ema_debiased(self.train["loss"][start:], self._beta(), self._ema_state,
                                                 self.train["step"][start:])
            self._smooth = np.concatenate([self._smooth[:start], new])
        self._dirty = True

    def clear(self) -> None:
        self.step_offset = 0
        self.kept_steps, self.chosen_step = [], None
        self.marker.hide()
        self.kept_label.setText("")
        self.latest.setEnabled(False)
        self.over_time.setEnabled(False)
        self.train_chars_per_token = None
        self.train.clear()
        self.val.clear()
        self._smooth = np.empty(0)
        self._ema_state = (0.0, 0.0, None)
        for line in self.crosshair:
            line.hide()
        self.readout.setText(HOVER_HINT)
        self._auto_ranges()
        self._dirty = True

    def _auto_ranges(self) -> None:
        """Also turns the diverged-run clipping (_fit_y) back on. The loss plot alone decides the shared x range (its curves include the earlier runs); the aux plot
        and the lr axis only follow it in x. Autoranging them in x too made them set the linked loss plot to the
        current run's steps, which switched its own autorange off and cut longer earlier runs off."""
        self._y_fit = True
        self.loss_plot.enableAutoRange()
        self.aux_plot.enableAutoRange(axis="y")
        self.aux_plot.disableAutoRange(axis="x")
        self.lr_view.enableAutoRange(axis="y")
        self.lr_view.disableAutoRange(axis="x")

    def keep_as_earlier_run(self, spec: dict, note: str = "") -> None:
        """Keep the run on screen (its RunSpec as a dict names it) as an earlier run, drawn faintly from now on;
        then `clear` for the next one."""
        cols = ("step", "tokens", "elapsed", "loss")
        if self.history.keep(spec, note, {c: self.train[c] for c in cols}, {c: self.val[c] for c in VAL_COLS},
                             train_bpc_factor=self.train_bpc_factor()):
            self._on_runs_changed()

    def show_parent(self, parent: dict | None) -> None:
        """For a fine-tuned checkpoint (`parent`: its meta["parent"], engine.finetune.parent_record): keep the
        parent's saved curve as an earlier run, at its place on the step axis, and start this run's curve after
        it. Call after clear() and before adding the checkpoint's own history; None does nothing."""
        if not parent:
            return
        from engine.history import LossHistory
        start = int(parent.get("offset", 0))
        self.step_offset = start
        self.add_reports(LossHistory.from_dict(parent.get("history")).reports(int(parent.get("step", 0))))
        corpus = str(parent.get("corpus", ""))
        self.keep_as_earlier_run({"corpus": corpus, "family": "parent"},
                                 f"{Path(str(parent.get('checkpoint', ''))).name}, {corpus}")
        self.clear()
        self.step_offset = start + int(parent.get("step", 0))

    def forget_earlier_runs(self) -> None:
        self.history.forget()
        self._on_runs_changed()

    @Slot()
    def _on_runs_changed(self) -> None:
        self._update_compare_button()
        if hasattr(self, "run_list") and len(self.history.runs) != self.run_list.list.count():
            self.run_list.refresh()
        self._dirty = True

    def set_train_chars_per_token(self, chars_per_token: float | None) -> None:
        """Characters per token of the current run's train split (train text length / train tokens), which
        converts its train loss to bits/char; None: unknown (an older checkpoint), the validation split's
        figure is used instead."""
        self.train_chars_per_token = chars_per_token if chars_per_token and chars_per_token > 0 else None
        self._dirty = True

    def train_bpc_factor(self) -> float | None:
        """Bits per character per nat per token of the train split: 1 / (chars per token × ln 2)."""
        cpt = self.train_chars_per_token
        return 1.0 / (cpt * math.log(2)) if cpt else None

    def _on_show_earlier(self, on: bool) -> None:
        self.history.set_visible(on)
        self._dirty = True

    def _update_compare_button(self) -> None:
        n = len(self.history.runs)
        self.compare.setText(f"Earlier runs ({n})")
        self.compare.setEnabled(n > 0)

    def _beta(self) -> float:
        return self.smoothing.value() / 100.0

    # -- drawing ---------------------------------------------------------------------------------------------
    @Slot()
    def _mark_dirty(self, *_) -> None:
        self._dirty = True

    @Slot()
    def redraw_if_dirty(self) -> None:
        """Redraw if anything changed, then space the next redraw so that drawing (our setData calls plus Qt's
        paint of the plots) stays under DRAW_DUTY of the GUI thread: painting holds the GIL, so every millisecond
        spent here is also taken from the training thread's Python."""
        if not self._dirty:
            return
        self._dirty = False
        t0 = time.perf_counter()
        self.redraw()
        cost_ms = 1000 * (time.perf_counter() - t0 + self.graphics.paint_s)
        self.timer.setInterval(int(min(max(REDRAW_MS, cost_ms / DRAW_DUTY), SLOWEST_MS)))

    def redraw(self) -> None:
        xcol = X_AXES[self.x_axis.currentText()][0]
        width = max(self.loss_plot.vb.width(), 200)
        max_points = int(2 * width)
        tx = self.train[xcol]
        (lo, hi) = self.loss_plot.vb.viewRange()[0]
        auto = self.loss_plot.vb.autoRangeEnabled()[0]
        view = slice(0, len(tx)) if auto or len(tx) == 0 else visible_slice(tx, lo, hi)
        k = self._train_factor()
        if k is None:     # bits/char before this run's first evaluation: no factor yet, nothing to draw
            tx, view, k = tx[:0], slice(0, 0), 1.0
        self.raw_curve.setData(*minmax_downsample(tx[view], k * self.train["loss"][view], max_points))
        self.smooth_curve.setData(*minmax_downsample(tx[view], k * self._smooth[view], max_points))
        tx = self.train[xcol]
        view = slice(0, len(tx)) if auto or len(tx) == 0 else visible_slice(tx, lo, hi)
        self.grad_curve.setData(*minmax_downsample(tx[view], self.train["grad_norm"][view], max_points))
        self.lr_curve.setData(*minmax_downsample(tx[view], self.train["lr"][view], max_points))
        vy = self.val["bpc" if self.y_unit.currentText() == "bits/char" else "loss"]
        windowed = self.val["windows"] > 0           # NaN (scope not recorded) counts with the whole split
        self.val_curve.setData(self.val[xcol][~windowed], vy[~windowed])
        self.val_win_curve.setData(self.val[xcol][windowed], vy[windowed])
        self._name_windowed(sorted({int(w) for w in self.val["windows"][windowed]}))
        self.history.redraw(xcol, self._beta(), self.y_unit.currentText())
        self._fit_y()
        self.hint.setVisible(self.train.n == 0 and self.val.n == 0 and not self.history.runs)
        # pyqtgraph fits an autoranged view when the scene is about to paint; the new range then marks the axes
        # for repainting from inside that paint, so every redraw painted the plots twice (about 15 ms each on a
        # 2-core machine). Fitting now makes the next paint the only one.
        self.graphics.scene().prepareForPaint()

    def _name_windowed(self, counts: list[int]) -> None:
        """The legend entry of the windowed validation points: "N windows" (or the counts, should a resumed run
        have changed eval_windows), present only while there are such points."""
        name = (f"this run: validation, {', '.join(f'{c:,}' for c in counts)} windows "
                f"(the last: whole split)") if counts else ""
        if name == self._win_legend:
            return
        legend = self.loss_plot.legend
        if self._win_legend:
            legend.removeItem(self.val_win_curve)
        if name:
            legend.addItem(self.val_win_curve, name)
        self._win_legend = name

    def _fit_y(self) -> None:
        """Unless the user zoomed or panned the loss axis, keep every curve's own range in view but cut off a
        curve where it climbs far above its start (a diverged run), so it does not squash the others
        (loss_series.robust_y_range); without such a curve pyqtgraph's autorange is left to do its job."""
        vb = self.loss_plot.vb
        if vb.autoRangeEnabled()[1]:
            self._y_fit = True      # the autorange button or a reset: fitting is on again
        if not self._y_fit:
            return
        curves = [c.getData()[1] for c in (self.raw_curve, self.smooth_curve, self.val_curve)]
        for run in self.history.shown():
            curves += [run.curve.getData()[1], run.points.getData()[1]]
        curves = [c for c in curves if c is not None]
        log = self.log_y.isChecked()
        if log:
            curves = [c[c > 0] for c in curves]
        fit = robust_y_range(curves)
        clipped = bool(fit and fit[2])
        if clipped != self.y_clipped:
            self.y_clipped = clipped
            self._set_y_label()
        if not self.y_clipped:
            if not vb.autoRangeEnabled()[1]:
                vb.enableAutoRange(axis="y")
            return
        lo, hi = (math.log10(fit[0]), math.log10(fit[1])) if log else fit[:2]
        pad = 0.05 * (hi - lo) or 0.1
        if vb.viewRange()[1] != [lo - pad, hi + pad]:
            self.loss_plot.setYRange(lo - pad, hi + pad, padding=0)   # turns pyqtgraph's y autorange off

    @Slot()
    def _on_user_range(self, *_) -> None:
        self._y_fit = False         # the user zoomed or panned: their range stays

    def _train_factor(self) -> float | None:
        """What the train loss is multiplied by for the chosen unit: in bits/char the train split's own
        characters per token when known, else the validation split's (from the latest evaluation)."""
        unit = self.y_unit.currentText()
        if unit == "bits/char" and self.train_bpc_factor():
            return self.train_bpc_factor()
        return unit_factor(self.val, unit)

    def displayed_points(self) -> tuple[np.ndarray, np.ndarray]:
        """What the raw train curve shows right now (after downsampling)."""
        x, y = self.raw_curve.getOriginalDataset()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    @Slot(str)
    def _on_axis_changed(self, name: str) -> None:
        if hasattr(self, "marker"):
            self._show_marker(bool(self.kept_steps) and name == "step")
        label = X_AXES[name][1]
        self.aux_plot.setLabel("bottom", label)
        for plot in (self.loss_plot, self.aux_plot):
            plot.getAxis("bottom").plain_numbers(compact=name == "tokens")     # 140k, 2.5M; never "(x0.001)"
        self.loss_plot.enableAutoRange()
        self._dirty = True

    @Slot(bool)
    def _on_log_toggled(self, on: bool) -> None:
        self.loss_plot.setLogMode(y=on)
        self._on_y_unit(self.y_unit.currentText())

    @Slot(str)
    def _set_y_label(self) -> None:
        unit = self.y_unit.currentText()
        label = f"loss ({unit}, log scale)" if self.log_y.isChecked() else f"loss ({unit})"
        self.loss_plot.setLabel("left", label + (" · a diverged curve is cut off" if self.y_clipped else ""))

    def _on_y_unit(self, unit: str) -> None:
        self._set_y_label()
        self._y_fit = True
        self.loss_plot.enableAutoRange()
        self._dirty = True

    @Slot(int)
    def _on_smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"{value / 100:.2f}")
        self._smooth, self._ema_state = ema_debiased(self.train["loss"], self._beta(), steps=self.train["step"])
        self._dirty = True

    def _on_mouse(self, pos) -> None:
        if not self.loss_plot.sceneBoundingRect().contains(pos) and \
                not self.aux_plot.sceneBoundingRect().contains(pos):
            return
        x = self.loss_plot.vb.mapSceneToView(pos).x()
        for line in self.crosshair:
            line.setPos(x)
            line.show()
        self.readout.setText(self.describe_at(x))

    def describe_at(self, x: float) -> str:
        """Exact values of the recorded point nearest to x (not the downsampled one)."""
        xcol, unit = X_AXES[self.x_axis.currentText()][0], self.y_unit.currentText()
        tx = self.train[xcol]
        earlier = self.history.describe_at(x, xcol, unit)
        if len(tx) == 0:
            return f"earlier runs: {earlier}" if earlier else "no train points yet"
        i = int(np.clip(np.searchsorted(tx, x), 0, len(tx) - 1))
        if i > 0 and abs(tx[i - 1] - x) < abs(tx[i] - x):
            i -= 1
        t, k = self.train, self._train_factor()
        loss = (f"loss {k * t['loss'][i]:.4f} · smoothed {k * self._smooth[i]:.4f} {unit}" if k is not None
                else f"loss: {unit} from this run's first evaluation on")
        text = (f"step {int(t['step'][i]):,} · tokens {int(t['tokens'][i]):,} · time {t['elapsed'][i]:.1f} s · "
                f"{loss} · grad norm {t['grad_norm'][i]:.3g} · lr {t['lr'][i]:.3g}")
        if self.val.n:
            j = int(np.argmin(np.abs(self.val[xcol] - x)))
            loss, bpc = self.val["loss"][j], self.val["bpc"][j]
            text += f" · val {loss:.4f} nats/token" + (f", {bpc:.3f} bits/char" if math.isfinite(bpc) else "")
            scope = scope_label(self.val["windows"][j])
            text += f" ({scope + ', ' if scope else ''}step {int(self.val['step'][j]):,})"
        return f"{text} | earlier runs: {earlier}" if earlier else text
