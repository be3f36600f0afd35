"""Earlier runs on the loss plot, for comparison: when a new run starts (or a checkpoint is loaded) the run on
screen is kept as a faint smoothed train curve plus its validation points, each earlier run in its own colour.
They are listed beside the plot (app/training/run_list.py), not in the legend over the curves, and each can be
hidden or removed there; none is ever dropped silently. Only a thinned copy is kept (at most KEEP_POINTS train
points), so any number of long runs costs little memory and no redraw time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from app.training.loss_series import ema_debiased, minmax_downsample, unit_factor
from engine.api import all_settings
from engine.errors import PlaygroundError

KEEP_POINTS = 4000     # train points kept per earlier run (min/max thinned, so spikes survive)
# tab10 without the current run's blue and red, then lighter shades: ten runs before a colour repeats
COLORS = ((255, 127, 14), (140, 86, 75), (23, 190, 207), (188, 189, 34), (227, 119, 194), (127, 127, 127),
          (44, 160, 44), (148, 103, 189), (255, 187, 120), (152, 223, 138))


def _thin(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Copies of about KEEP_POINTS rows, chosen by min/max of the loss so the curve's shape and spikes survive."""
    n = len(columns["loss"])
    if n <= KEEP_POINTS:
        return {k: v.copy() for k, v in columns.items()}
    idx = np.arange(n, dtype=np.float64)
    kept, _ = minmax_downsample(idx, columns["loss"], KEEP_POINTS)
    rows = np.unique(kept.astype(np.int64))
    return {k: v[rows].copy() for k, v in columns.items()}


@dataclass
class PastRun:
    label: str
    color: tuple[int, int, int]
    train: dict[str, np.ndarray]      # step, tokens, elapsed, loss: thinned copies
    val: dict[str, np.ndarray]        # step, tokens, elapsed, loss, bpc: every validation point
    curve: pg.PlotDataItem
    points: pg.PlotDataItem
    spec: dict                        # the run's RunSpec as a dict, for the next run's "as #n but ..." name
    note: str                         # "" for a fresh run; "checkpoint NAME" / "checkpoint NAME, resumed"
    baseline: pg.InfiniteLine | None = None   # a run without train points (an n-gram): its val loss across the plot
    drawn: tuple = ()                 # (x column, smoothing, y unit) the curve was last drawn with
    train_bpc_factor: float | None = None   # bits/char per nat/token of its train split (None: use validation's)
    hidden: bool = False              # hidden by the user in the run list


class RunHistory:
    """Owns the earlier runs' plot items on `plot` (a pyqtgraph PlotItem with a legend)."""

    def __init__(self, plot: pg.PlotItem):
        self.plot = plot
        self.runs: list[PastRun] = []
        self.visible = True
        self._count = 0               # runs ever kept, for their numbers and colours

    def keep(self, spec: dict, note: str, train: dict[str, np.ndarray], val: dict[str, np.ndarray],
             train_bpc_factor: float | None = None) -> PastRun | None:
        """Add a finished (or abandoned) run: its RunSpec as a dict, a note for its name ("checkpoint ck", set for
        a checkpoint or a resumed one), and its points as columns step, tokens, elapsed, loss (copied). A run with
        no points at all is not kept. A fresh run is named by what differs from the run kept before it; one with a
        note (a checkpoint's history, perhaps resumed) by what differs from its preset, since "as #n but" would
        claim a kinship it does not have."""
        if len(train["loss"]) == 0 and len(val["loss"]) == 0:
            return None
        self._count += 1
        color = COLORS[(self._count - 1) % len(COLORS)]
        before = self.runs[-1] if self.runs and not note and not self.runs[-1].note else None
        name = f"#{self._count} " + describe_run(spec, before.spec if before else None,
                                                 before.label.split()[0] if before else "")
        name += f" ({note})" if note else ""
        curve = pg.PlotDataItem(pen=pg.mkPen(color + (170,), width=1.5, style=Qt.DashLine))   # no legend row
        points = pg.PlotDataItem(pen=None, symbol="t", symbolSize=7, symbolBrush=color, symbolPen="w")
        run = PastRun(name, color, _thin(train), {k: v.copy() for k, v in val.items()}, curve, points, spec, note,
                      train_bpc_factor=train_bpc_factor)
        for item in (curve, points):
            item.setZValue(-1)          # under the current run
            item.setVisible(self.visible)
            self.plot.addItem(item)
        if len(train["loss"]) == 0:
            # counted, not trained (an n-gram): one evaluation, whose "step" is the order. Its loss is drawn as a
            # level across the plot, the baseline the neural curves are to beat; the point alone was easy to miss
            # and put on the tokens axis far to the right. A transparent point at x = 0 keeps the level inside
            # the autoranged view (the line itself does not count).
            run.baseline = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(color, width=1.5, style=Qt.DashLine))
            run.baseline.setZValue(-1)
            run.baseline.setVisible(self.visible)
            self.plot.addItem(run.baseline, ignoreBounds=True)
            points.setSymbolBrush((0, 0, 0, 0))
            points.setSymbolPen(None)
        self.runs.append(run)
        return run

    def forget(self) -> None:
        for run in self.runs:
            self._drop(run)
        self.runs = []

    def remove(self, run: PastRun) -> None:
        """Take one earlier run off the plot and out of the list."""
        self._drop(run)
        self.runs.remove(run)

    def set_visible(self, on: bool) -> None:
        """Show or hide all earlier runs at once (a run the user hid stays hidden)."""
        self.visible = on
        for run in self.runs:
            self._show(run)

    def set_run_visible(self, run: PastRun, on: bool) -> None:
        run.hidden = not on
        self._show(run)

    def _show(self, run: PastRun) -> None:
        on = self.visible and not run.hidden
        for item in (run.curve, run.points, run.baseline):
            if item is not None:
                item.setVisible(on)
        run.drawn = ()          # redrawn next frame: a baseline stays hidden where its unit is unknown

    def shown(self) -> list[PastRun]:
        return [r for r in self.runs if self.visible and not r.hidden]

    def redraw(self, xcol: str, beta: float, unit: str = "nats/token") -> None:
        """Earlier runs are smoothed with the current run's smoothing and shown in its unit, so curves compare like
        for like. A run is redrawn only when the x axis, the smoothing or the unit changed since its last drawing:
        the live plot calls this on every frame."""
        for run in self.runs:
            if run.drawn != (xcol, beta, unit):
                k = unit_factor(run.val, unit)
                k_train = run.train_bpc_factor if unit == "bits/char" and run.train_bpc_factor else k
                if k is None:     # no evaluation, so no characters-per-token figure: not drawn in bits/char
                    run.curve.setData([], [])
                    run.points.setData([], [])
                elif run.baseline is not None:
                    run.baseline.setPos(k * run.val["loss"][-1])
                    run.points.setData([0.0], [k * run.val["loss"][-1]])
                else:
                    smooth, _ = ema_debiased(run.train["loss"], beta, steps=run.train["step"])
                    run.curve.setData(run.train[xcol], k_train * smooth)
                    run.points.setData(run.val[xcol], k * run.val["loss"])
                if run.baseline is not None:
                    run.baseline.setVisible(self.visible and not run.hidden and k is not None)
                run.drawn = (xcol, beta, unit)

    def describe_at(self, x: float, xcol: str, unit: str = "nats/token") -> str:
        """Each visible earlier run's validation loss nearest to x, in the plot's unit, for the readout."""
        parts = []
        for run in self.shown():
            vx = run.val[xcol]
            if len(vx):
                j = int(np.argmin(np.abs(vx - x)))
                value = run.val["bpc" if unit == "bits/char" else "loss"][j]
                if np.isfinite(value):
                    parts.append(f"{run.label.split()[0]} val {value:.4f}")
        return f"{' · '.join(parts)} {unit}" if parts else ""

    def _drop(self, run: PastRun) -> None:
        for item in (run.curve, run.points, run.baseline):
            if item is not None:
                self.plot.removeItem(item)


# not named in the legend: no bearing on the curve's shape, or (max_steps) plain to see from its length
QUIET = {"vocab_size", "steps_per_yield", "eval_batch_size", "device", "cell", "max_steps"}


def describe_run(spec: dict, before: dict | None = None, before_name: str = "") -> str:
    """A legend name for a run: family, preset, tokenizer when not char, and the settings (up to four, the
    model's first) that differ from the preset's; or, when `before` (the previous run's spec, named
    `before_name`) has the same family, preset and tokenizer, the settings that differ from that run's, which is
    what a user changed between two runs they compare."""
    family, preset = spec.get("family", "?"), spec.get("preset")
    parts = [family] + ([preset] if preset else [])
    if spec.get("tokenizer", "char") != "char":
        parts.append(spec["tokenizer"])
    same = before is not None and all(before.get(k) == spec.get(k) for k in ("family", "preset", "tokenizer"))
    try:
        used = _settings(spec)
        base = _settings(before) if same else _settings(dict(spec, overrides={}))
    except (PlaygroundError, KeyError, TypeError, ValueError):
        return " · ".join(parts)
    changed = [f"{k}={_shown(k, used[k])}" for k in used if k not in QUIET and used[k] != base.get(k)]
    if same:     # what else a user changes between two runs of one model: the data, its split, the seed
        changed = _run_changes(spec, before) + changed
    if len(changed) > 4:
        changed = changed[:4] + [f"+{len(changed) - 4} more"]
    if family == "ngram" and not same:      # the n-gram's defining settings, always
        changed = [f"order {used.get('order')}", str(used.get("smoothing"))]
    if same:
        return " · ".join(parts + [f"as {before_name} but {', '.join(changed)}" if changed else f"as {before_name}"])
    return " · ".join(parts + ([", ".join(changed)] if changed else []))


# what a setting left unset (None) means, in the legend's words
UNSET = {"n_kv_head": "n_head", "lambdas": "default"}


def _shown(key: str, value) -> str:
    """A setting's value as a legend shows it: floats short, and an unset value as what it means ("n_kv_head=
    n_head", not "n_kv_head=None")."""
    if value is None:
        return UNSET.get(key, "unset")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(_shown(key, v) for v in value)
    return str(value)


def _run_changes(spec: dict, before: dict) -> list[str]:
    """The RunSpec fields outside the model and train configs that differ: corpus (by its short name), tokenizer
    options (vocab size, lower-casing), validation fraction and seed."""
    out = []
    if spec.get("corpus") != before.get("corpus"):
        out.append(f"corpus={Path(str(spec.get('corpus'))).name.removeprefix('builtin:')}")
    old, new = before.get("tokenizer_options") or {}, spec.get("tokenizer_options") or {}
    out += [f"{k}={new.get(k, '-')}" for k in sorted(set(old) | set(new)) if str(old.get(k)) != str(new.get(k))]
    out += [f"{k}={spec.get(k)}" for k in ("val_fraction", "seed") if spec.get(k) != before.get(k)]
    return out


def _settings(spec: dict) -> dict:
    return all_settings(spec["family"], spec.get("preset"), spec.get("overrides") or {})
