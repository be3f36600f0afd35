"""The decoding knobs as the Sample tab shows them: a slider with an exact spin box, and for each numeric DecodeConfig
setting its range, the strategies it applies to and, for the others, why it does not apply (a greyed control with no
reason is a puzzle). The one-strategy panel and each side-by-side column use the same table, and both views the
same model-source handling (UsesModelSource, model_line)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSlider, QSpinBox, QWidget


class SliderSpin(QWidget):
    """A slider for feel and a spin box for exact values, kept in sync (the slider moves in `step` increments)."""

    def __init__(self, lo: float, hi: float, step: float, value: float, decimals: int, special: str = ""):
        super().__init__()
        self.cast = int if decimals == 0 else float
        self.lo, self.step = lo, step
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, round((hi - lo) / step))
        self.spin = QSpinBox() if decimals == 0 else QDoubleSpinBox()
        if decimals:
            self.spin.setDecimals(decimals)
        self.spin.setRange(self.cast(lo), self.cast(hi))
        self.spin.setSingleStep(self.cast(step))
        self.spin.setSpecialValueText(special)  # shown at the minimum, e.g. top-k 0 = "off"
        self.spin.setFixedWidth(72)
        self.slider.valueChanged.connect(lambda i: self.spin.setValue(self.cast(round(self.lo + i * self.step, 6))))
        self.spin.valueChanged.connect(self._spin_moved)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.setValue(value)

    def _spin_moved(self, v: float) -> None:
        self.slider.blockSignals(True)  # the spin box holds the exact value; the slider only follows it
        self.slider.setValue(round((v - self.lo) / self.step))
        self.slider.blockSignals(False)

    def value(self) -> float:
        return self.spin.value()

    def setValue(self, v: float) -> None:
        self.spin.setValue(self.cast(v))
        self._spin_moved(self.spin.value())


@dataclass(frozen=True)
class Knob:
    """One numeric setting: its DecodeConfig field, range, and which strategies it applies to (and why not)."""
    field: str
    label: str
    lo: float
    hi: float
    step: float
    default: float
    decimals: int
    applies: tuple[str, ...]
    help: str


TRUNCATION_OFF = {"greedy": "greedy always takes the most probable token; truncation does not apply",
                  "beam": "beam search ranks hypotheses by the model's own probabilities; truncation does not apply"}
WHY_NOT = {
    "temperature": {"greedy": "greedy always takes the most probable token; temperature never changes which one it is",
                    "beam": "beam search ranks hypotheses by the model's own probabilities; temperature does not apply"},
    "top_k": TRUNCATION_OFF, "top_p": TRUNCATION_OFF, "min_p": TRUNCATION_OFF,
    "beam_width": {s: "only beam search keeps several hypotheses" for s in ("greedy", "sample")},
    "length_penalty": {s: "only beam search compares finished hypotheses of different lengths"
                       for s in ("greedy", "sample")},
    "seed": {"greedy": "greedy is deterministic: there is no randomness to seed",
             "beam": "beam search is deterministic: there is no randomness to seed"},
}
KNOBS = (
    Knob("temperature", "temperature", 0.0, 3.0, 0.05, 1.0, 2, ("sample",),
         "divides the logits: below 1 sharpens the distribution, above 1 flattens it; 0 = greedy"),
    Knob("top_k", "top-k", 0, 200, 1, 0, 0, ("sample",), "keep only the k most probable tokens; 0 = off"),
    Knob("top_p", "top-p", 0.01, 1.0, 0.01, 1.0, 2, ("sample",),
         "keep the smallest set of most probable tokens holding this much probability (nucleus); 1 = off"),
    Knob("min_p", "min-p", 0.0, 1.0, 0.01, 0.0, 2, ("sample",),
         "drop tokens less probable than min-p × the most probable one; 0 = off"),
    Knob("repetition_penalty", "repetition penalty", 0.5, 3.0, 0.05, 1.0, 2, ("greedy", "sample", "beam"),
         "makes tokens already in the text less likely (CTRL: logits divided/multiplied by it); 1 = off"),
    Knob("beam_width", "beam width", 1, 16, 1, 4, 0, ("beam",), "hypotheses kept at every step"),
    Knob("length_penalty", "length penalty", -1.0, 3.0, 0.1, 1.0, 1, ("beam",),
         "finished hypotheses are ranked by log-prob / length^this; 0 = raw log-prob (favours short texts)"),
)
STRATEGY_HELP = {"greedy": "always take the most probable next token",
                 "sample": "draw the next token at random from the (tempered, truncated) distribution",
                 "beam": "keep the best few partial texts at every step; return the best finished one"}


def model_line(now: str, output_from: str | None) -> str:
    """The Sample tab's model label: the model the next run will use and, when the output on screen came from
    another one (a checkpoint loaded or a past step chosen since), which model that was. A model still training
    counts as the same model (its description carries the step, which moves on)."""
    line = f"Model: {now}"
    if output_from and _identity(output_from) != _identity(now):
        line += f"  ·  the output below came from {output_from}: run again for this model"
    return line


def _identity(description: str) -> str:
    return description.split(", step")[0].removesuffix(" (training)")


class UsesModelSource:
    """What the Sample tab's two views (one strategy, side by side) share about the model they decode from and
    the run: expects `source` (a ModelSource), `model_label`, `message`, `cache` (CacheControls), `_handle`,
    `_worker` and `_thread`."""

    def _on_source_changed(self) -> None:
        """Drop the cached snapshot (the next run takes a fresh one) and say which model that will be, and which
        model the output on screen came from when that is another one."""
        self._handle = None
        self.model_label.setText(model_line(self.source.describe(), getattr(self, "_output_model", None)))
        self.cache.forget()

    def _model(self):
        """A snapshot, fresh when training is going on (the weights move every step), else cached."""
        if self._handle is None or self.source.is_training():
            self._handle = self.source.snapshot()
        return self._handle

    @property
    def running(self) -> bool:
        return self._thread is not None

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020; font-weight: bold;" if error else "color: #444;")
        self.message.setText(text)

    def stop_decoding(self) -> None:
        """Stop the run and wait for its thread (the worker ends after its current token) and for a cache check:
        what the view's shutdown does first."""
        if self._worker is not None:
            self._worker.stop()
        if self._thread is not None:
            self._thread.wait()
        self.cache.wait()
