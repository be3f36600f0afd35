"""The hyperparameter form of each model family and of training: which fields exist (with range and tooltip), the
widget for each, reading and writing their values, and marking the fields a config error names. It knows nothing
about runs; the training panel decides which page shows and turns the values into a RunSpec."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Callable

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget

from engine.models import RNN_CELLS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Knob:
    """One form field: its config key, widget kind, range or choices, and a one-sentence tooltip."""
    name: str
    kind: str                       # "int" | "float" | "bool" | "choice"
    tip: str
    lo: float = 0
    hi: float = 1_000_000
    choices: tuple[str, ...] = ()
    special: str = ""               # int spin box text shown at `lo` (meaning "none")
    special_is_none: bool = True    # the value at `lo` reads as None (else as `lo`, which the special text names)


NGRAM = (
    Knob("order", "int", "How many tokens the model looks at: the last order-1 tokens predict the next one.", 1, 6),
    Knob("smoothing", "choice", "How probability mass is given to n-grams never seen in training.",
         choices=("kneser-ney", "interpolation", "katz", "stupid-backoff", "add-k", "mle")),
    Knob("k", "float", "Add-k: pretend every n-gram was seen k more times (interpolation uses it for unigrams).",
         0.0, 100.0),
    Knob("discount", "float", "Absolute discount taken from every seen count and given to backed-off orders.", 0, 1),
    Knob("backoff_alpha", "float", "Stupid backoff: the fixed factor applied each time a shorter context is used.",
         0, 1),
)
NGRAM_SHOWN = {"k": ("add-k", "interpolation"), "discount": ("kneser-ney", "katz"), "backoff_alpha": ("stupid-backoff",)}
DROPOUT = Knob("dropout", "float", "Fraction of activations zeroed during training to fight overfitting.", 0, 0.99)
RNN = (
    Knob("n_layer", "int", "Stacked recurrent layers; each reads the hidden states of the one below.", 1, 64),
    Knob("n_embd", "int", "Width of the token embedding fed to the first layer.", 1, 65536),
    Knob("n_hidden", "int", "Width of each layer's hidden state, the model's memory of the past.", 1, 65536),
    Knob("block_size", "int", "Steps of backpropagation through time: how far back gradients flow.", 1, 65536),
    DROPOUT,
    Knob("tie_weights", "bool", "Share the embedding matrix with the output layer (needs n_hidden == n_embd)."),
)
TRANSFORMER = (
    Knob("n_layer", "int", "Transformer blocks (attention + MLP) stacked on the residual stream.", 1, 256),
    Knob("n_head", "int", "Attention heads per block; n_embd must be divisible by it.", 1, 256),
    Knob("n_kv_head", "int", "Key/value heads shared by groups of query heads (GQA); must divide n_head.", 0, 256,
         special="= n_head"),
    Knob("n_embd", "int", "Width of the residual stream, the size of every token's vector.", 1, 65536),
    Knob("block_size", "int", "Longest context the model attends over, in tokens.", 1, 65536),
    Knob("pos", "choice", "How positions are encoded: rotary (RoPE), learned table, or fixed sinusoids.",
         choices=("rope", "learned", "sinusoidal")),
    DROPOUT,
    Knob("tie_weights", "bool", "Share the token embedding matrix with the output layer (fewer parameters)."),
)
TRAIN = (
    Knob("max_steps", "int", "Optimizer steps to run before the run ends.", 1, 10_000_000),
    Knob("batch_size", "int", "Sequences per step; larger is smoother but slower per step.", 1, 65536),
    Knob("grad_accum", "int", "Gradient accumulation: micro-batches of batch_size summed into each optimizer "
         "step, so a step sees batch_size × grad_accum sequences at the memory cost of one batch.", 1, 65536),
    Knob("lr", "float", "Peak learning rate of AdamW after warmup.", 0, 10),
    Knob("min_lr", "float", "Learning rate the cosine schedule decays to at the last step.", 0, 10),
    Knob("warmup_steps", "int", "Steps over which the learning rate ramps up linearly from zero.", 0, 10_000_000),
    Knob("weight_decay", "float", "AdamW decoupled weight decay on the weight matrices.", 0, 10),
    Knob("grad_clip", "float", "Clip the gradient's global norm to this (0 = no clipping).", 0, 1000),
    Knob("eval_interval", "int", "Steps between validation-loss evaluations.", 1, 10_000_000),
    Knob("eval_windows", "int", "Validation windows each evaluation during training scores (evenly spaced, the same "
         "ones every time), instead of the whole split; the run's last evaluation is always the whole split.",
         0, 10_000_000, special="whole split", special_is_none=False),
)
FORMS = {"ngram": NGRAM, "rnn": RNN, "transformer": TRANSFORMER}


def form_of(family: str) -> str:
    return "rnn" if family in RNN_CELLS else family


class FloatBox(QDoubleSpinBox):
    """A float field that shows 0.003 and 3e-05 rather than 0.003000 and 0.000030 (fixed decimals). What is typed
    takes effect when editing ends (Return, or focus leaving), not keystroke by keystroke: typing "1e999" into lr
    passed through "1", which then stayed as lr = 1.0 once the rest was refused."""

    def __init__(self):
        super().__init__()
        self.setDecimals(12)
        self.setStepType(QDoubleSpinBox.AdaptiveDecimalStepType)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        """Digits, a point and an exponent may be typed; only a finite number within the range is accepted (as
        Qt's own spin boxes do; an unfinished one reverts when editing ends). Python's float() also reads "nan",
        "inf" and "1e999" (infinite): those would reach the engine as non-finite settings."""
        ok = re.fullmatch(r"[0-9]*\.?[0-9]*(e-?[0-9]*)?", text.strip(), re.IGNORECASE) is not None
        return (QValidator.Acceptable if ok and self._in_range(text) else QValidator.Intermediate if ok
                else QValidator.Invalid), text, pos

    def _in_range(self, text: str) -> bool:
        try:
            value = float(text)
        except ValueError:
            return False
        return math.isfinite(value) and self.minimum() <= value <= self.maximum()


def labelled(text: str, w: QWidget) -> QLabel:
    """A row label carrying its field's tooltip, so hovering either explains the field."""
    label = QLabel(text)
    label.setToolTip(w.toolTip())
    return label


def _make_widget(knob: Knob) -> QWidget:
    if knob.kind == "int":
        w = QSpinBox()
        w.setRange(int(knob.lo), int(knob.hi))
        w.setSpecialValueText(knob.special)
        w.setProperty("special_is_none", knob.special_is_none)
        w.setGroupSeparatorShown(True)
    elif knob.kind == "float":
        w = FloatBox()
        w.setRange(knob.lo, knob.hi)
    elif knob.kind == "bool":
        w = QCheckBox()
    else:
        w = QComboBox()
        w.addItems(list(knob.choices))
    w.setToolTip(knob.tip)
    w.setProperty("tip", knob.tip)
    return w


def build_page(knobs: tuple[Knob, ...], on_change: Callable) -> tuple[QWidget, QFormLayout, dict[str, QWidget]]:
    """One form page: a labelled widget per knob, each calling `on_change` when edited."""
    page = QWidget()
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    fields = {}
    for knob in knobs:
        w = _make_widget(knob)
        fields[knob.name] = w
        form.addRow(labelled(knob.name, w), w)
        signal = {"int": "valueChanged", "float": "valueChanged", "bool": "toggled"}.get(knob.kind,
                                                                                          "currentTextChanged")
        getattr(w, signal).connect(on_change)
    return page, form, fields


def show_smoothing_rows(form: QFormLayout, fields: dict[str, QWidget], smoothing: str) -> None:
    """Show only the n-gram knobs the chosen smoothing method uses."""
    for name, methods in NGRAM_SHOWN.items():
        form.setRowVisible(fields[name], smoothing in methods)


def get_value(w: QWidget):
    if isinstance(w, QSpinBox):
        none = w.specialValueText() and w.property("special_is_none") is not False
        return None if none and w.value() == w.minimum() else w.value()
    if isinstance(w, QDoubleSpinBox):
        w.interpretText()   # a number typed but not yet entered (F5 straight after typing) counts, as it shows
        return w.value()
    if isinstance(w, QCheckBox):
        return w.isChecked()
    return w.currentText()


def value_problem(w: QWidget, value) -> str:
    """Why `value` cannot go into the field `w` ("" when it can): the wrong type, not finite, or outside the
    field's range. Values read from a file (saved settings, a checkpoint) are checked with this first, since a
    spin box given 2^40 raises OverflowError and one given 1e30 cannot hold it."""
    if isinstance(w, QSpinBox):
        if value is None and w.specialValueText():
            return ""
        if type(value) is not int:
            return f"{value!r} is not a whole number"
        if not w.minimum() <= value <= w.maximum():
            return f"{value:,} is outside {w.minimum():,}..{w.maximum():,}"
        return ""
    if isinstance(w, QDoubleSpinBox):
        if type(value) not in (int, float):
            return f"{value!r} is not a number"
        if not (w.minimum() <= value <= w.maximum()):   # also refuses nan
            return f"{value} is outside {w.minimum():g}..{w.maximum():g}"
        return ""
    if isinstance(w, QCheckBox):
        return "" if type(value) is bool else f"{value!r} is not true/false"
    if not isinstance(value, str) or w.findText(value) < 0:
        return f"{value!r} is not one of the choices"
    return ""


def set_value(w: QWidget, value) -> None:
    if isinstance(w, QSpinBox):
        w.setValue(w.minimum() if value is None else int(value))
    elif isinstance(w, QDoubleSpinBox):
        if math.isfinite(float(value)):   # Qt would clamp NaN and inf to the range's end without a word
            w.setValue(float(value))
        else:
            log.warning("ignoring the non-finite value %r for a number field", value)
    elif isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif w.findText(str(value)) >= 0:
        w.setCurrentText(str(value))


def read_values(form_name: str, fields: dict[str, QWidget]) -> dict:
    """The page's values; on the n-gram page only the knobs its smoothing method uses."""
    values = {k: get_value(w) for k, w in fields.items()}
    if form_name == "ngram":
        smoothing = values["smoothing"]
        values = {k: v for k, v in values.items() if k not in NGRAM_SHOWN or smoothing in NGRAM_SHOWN[k]}
    return values


def override_text(value) -> str:
    """A field value as `--set` text, the form `apply_overrides` parses."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def mark_invalid(fields: dict[str, QWidget], problem: str) -> None:
    """Outline in red, and explain in the tooltip, every field whose name the problem text mentions."""
    for name, w in fields.items():
        bad = re.search(rf"\b{re.escape(name)}\b", problem) is not None
        w.setProperty("invalid", bad)
        w.setStyleSheet("border: 2px solid #d32f2f;" if bad else "")
        w.setToolTip(f"{w.property('tip')}\n\nProblem: {problem}" if bad else w.property("tip"))


def checkpoint_settings(meta: dict) -> dict:
    """A checkpoint's meta.json as `TrainPanel.settings()` output, so `apply_settings` shows what it was trained
    with: the run spec for tokenizer, family, preset and seed, the resolved configs for the fields."""
    spec = meta.get("spec", {})
    options = spec.get("tokenizer_options", {})
    # a model trained elsewhere has no run spec: its tokenizer and vocabulary are the meta's own
    kind = spec.get("tokenizer", (meta.get("tokenizer") or {}).get("kind", "char"))
    cap = options.get("vocab_size", None if spec else (meta.get("model") or {}).get("vocab_size"))
    out = {"tokenizer": kind, "family": meta.get("family", spec.get("family")), "preset": spec.get("preset") or "",
           "model": meta.get("model", {}), "train": meta.get("train", {}), "device": spec.get("device", "auto"),
           "seed": spec.get("seed", 1337)}
    if kind == "word":
        out.update(word_cap=_whole(cap or 0), word_lower=str(options.get("lowercase", False)).lower() == "true")
    elif kind == "bpe" and cap is not None:
        out["bpe_vocab"] = _whole(cap)
    return out


def _whole(value):
    """An option stored as text ("512") as an int; anything else as it is, for value_problem to name."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return value


def checkpoint_eval_line(meta: dict) -> str:
    """The evaluation a checkpoint was saved with, as one line of the run message ("" when it has none)."""
    s = meta.get("summary", {})

    def number(key: str) -> float:   # meta.json is checked for types, but a figure may be missing or null
        value = s.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")
    if not isinstance(s.get("val_loss"), (int, float)):
        return ""
    scope = s.get("val_scope") if isinstance(s.get("val_scope"), str) else ""
    return (f"validation loss {number('val_loss'):.4f} nats/token, {number('val_bpc'):.3f} bits/char, "
            f"perplexity {number('val_ppl'):,.2f} when saved" + (f" ({scope})" if scope else ""))
