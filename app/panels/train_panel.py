"""The training panel: corpus, tokenizer, model family with only that family's hyperparameters, training knobs,
device and seed, the run buttons and progress. It turns the form into an `api.RunSpec`; the model config is
validated by the engine's own config classes as you type, and the fields a ConfigError names are marked, so the
rules live in one place (the engine) and Start stays disabled until the form describes a model that can be built."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QStandardItemModel, QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGridLayout,
                               QGroupBox, QLabel, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QStackedWidget, QVBoxLayout, QWidget)

from engine import api
from engine.device import resolve_device
from engine.errors import PlaygroundError
from engine.models import FAMILIES, RNN_CELLS, config_class

from .corpus_box import CorpusBox


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
RNN = (
    Knob("n_layer", "int", "Stacked recurrent layers; each reads the hidden states of the one below.", 1, 64),
    Knob("n_embd", "int", "Width of the token embedding fed to the first layer.", 1, 65536),
    Knob("n_hidden", "int", "Width of each layer's hidden state, the model's memory of the past.", 1, 65536),
    Knob("block_size", "int", "Steps of backpropagation through time: how far back gradients flow.", 1, 65536),
    Knob("dropout", "float", "Fraction of activations zeroed during training to fight overfitting.", 0, 0.99),
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
    Knob("dropout", "float", "Fraction of activations zeroed during training to fight overfitting.", 0, 0.99),
    Knob("tie_weights", "bool", "Share the token embedding matrix with the output layer (fewer parameters)."),
)
TRAIN = (
    Knob("max_steps", "int", "Optimizer steps to run before the run ends.", 1, 10_000_000),
    Knob("batch_size", "int", "Sequences per step; larger is smoother but slower per step.", 1, 65536),
    Knob("lr", "float", "Peak learning rate of AdamW after warmup.", 0, 10),
    Knob("min_lr", "float", "Learning rate the cosine schedule decays to at the last step.", 0, 10),
    Knob("warmup_steps", "int", "Steps over which the learning rate ramps up linearly from zero.", 0, 10_000_000),
    Knob("weight_decay", "float", "AdamW decoupled weight decay on the weight matrices.", 0, 10),
    Knob("grad_clip", "float", "Clip the gradient's global norm to this (0 = no clipping).", 0, 1000),
    Knob("eval_interval", "int", "Steps between validation-loss evaluations.", 1, 10_000_000),
)
FORMS = {"ngram": NGRAM, "rnn": RNN, "transformer": TRANSFORMER}
DEVICES = ("auto", "cuda", "mps", "cpu")


def form_of(family: str) -> str:
    return "rnn" if family in RNN_CELLS else family


class FloatBox(QDoubleSpinBox):
    """A float field that shows 0.003 and 3e-05 rather than 0.003000 and 0.000030 (fixed decimals)."""

    def __init__(self):
        super().__init__()
        self.setDecimals(12)
        self.setStepType(QDoubleSpinBox.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        ok = re.fullmatch(r"[0-9]*\.?[0-9]*(e-?[0-9]*)?", text.strip(), re.IGNORECASE) is not None
        return (QValidator.Acceptable if _is_float(text) else QValidator.Intermediate if ok
                else QValidator.Invalid), text, pos


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _make_widget(knob: Knob) -> QWidget:
    if knob.kind == "int":
        w = QSpinBox()
        w.setRange(int(knob.lo), int(knob.hi))
        w.setSpecialValueText(knob.special)
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


def _get(w: QWidget):
    if isinstance(w, QSpinBox):
        return None if w.specialValueText() and w.value() == w.minimum() else w.value()
    if isinstance(w, QDoubleSpinBox):
        return w.value()
    if isinstance(w, QCheckBox):
        return w.isChecked()
    return w.currentText()


def _set(w: QWidget, value) -> None:
    if isinstance(w, QSpinBox):
        w.setValue(w.minimum() if value is None else int(value))
    elif isinstance(w, QDoubleSpinBox):
        w.setValue(float(value))
    elif isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif w.findText(str(value)) >= 0:
        w.setCurrentText(str(value))


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


class TrainPanel(QWidget):
    start_clicked = Signal()
    pause_clicked = Signal()
    resume_clicked = Signal()
    stop_clicked = Signal()
    save_clicked = Signal()
    load_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.corpus_box = CorpusBox()
        self.fields: dict[str, dict[str, QWidget]] = {}
        self.problem = ""                # why Start is disabled ("" when the form is valid)
        self._running = False
        self._check_timer = QTimer(self, singleShot=True, interval=120)
        self._check_timer.timeout.connect(self.check)

        # tokenizer
        tok = QGroupBox("Tokenizer")
        self.tok_form = QFormLayout(tok)
        self.tokenizer = QComboBox()
        self.tokenizer.addItems(["char", "word", "bpe"])
        self.tokenizer.setToolTip("How text becomes token ids: one per character, per word, or learned BPE merges.")
        self.word_cap = QSpinBox(minimum=0, maximum=1_000_000, value=5000, specialValueText="no cap")
        self.word_cap.setToolTip("Keep only the most frequent words; the rest become <unk>.")
        self.word_lower = QCheckBox()
        self.word_lower.setToolTip("Lowercase the text first, so 'The' and 'the' are one token.")
        self.bpe_vocab = QSpinBox(minimum=256, maximum=200_000, value=512)
        self.bpe_vocab.setToolTip("Size of the byte-level BPE vocabulary: 256 bytes plus learned merges.")
        self.tok_form.addRow(self._label("kind", self.tokenizer), self.tokenizer)
        self.tok_form.addRow(self._label("vocab cap", self.word_cap), self.word_cap)
        self.tok_form.addRow(self._label("lowercase", self.word_lower), self.word_lower)
        self.tok_form.addRow(self._label("vocab size", self.bpe_vocab), self.bpe_vocab)

        # model
        model = QGroupBox("Model")
        model_layout = QVBoxLayout(model)
        self.model_top = top = QFormLayout()
        self.family = QComboBox()
        self.family.addItems(list(FAMILIES))
        self.family.setToolTip("Model family: counting n-grams, recurrent nets (RNN/LSTM/GRU) or a Transformer.")
        self.preset = QComboBox()
        self.preset.setToolTip("A named starting configuration from resources/presets; edits below override it.")
        top.addRow(self._label("family", self.family), self.family)
        top.addRow(self._label("preset", self.preset), self.preset)
        model_layout.addLayout(top)
        self.pages = QStackedWidget()
        self.page_index = {}
        for form_name, knobs in FORMS.items():
            self.page_index[form_name] = self.pages.addWidget(self._form_page(form_name, knobs))
        model_layout.addWidget(self.pages)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.estimate.setToolTip("Parameter count of this configuration and a rough training-memory estimate.")
        model_layout.addWidget(self.estimate)

        self.train_box = QGroupBox("Training")
        self.train_box.setLayout(QVBoxLayout())
        self.train_box.layout().addWidget(self._form_page("train", TRAIN))
        other = QFormLayout()
        self.device = QComboBox()
        self.device.setToolTip("Where to train: auto picks CUDA, then Apple MPS, then the CPU.")
        self._fill_devices()
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=1337)
        self.seed.setToolTip("Seeds initialisation and batch order: the same seed gives the same run.")
        other.addRow(self._label("device", self.device), self.device)
        other.addRow(self._label("seed", self.seed), self.seed)
        self.train_box.layout().addLayout(other)

        # run controls
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.save_button = QPushButton("Save checkpoint…")
        self.load_button = QPushButton("Load checkpoint…")
        for b, tip in ((self.start_button, "Build the model and train it with these settings."),
                       (self.pause_button, "Pause after the current step; the model can be saved or sampled."),
                       (self.resume_button, "Continue a paused run."),
                       (self.stop_button, "End the run after the current step (it can still be saved)."),
                       (self.save_button, "Write the run's model, optimizer and settings to a folder."),
                       (self.load_button, "Open a saved checkpoint for sampling and the graph view.")):
            b.setToolTip(tip)
        self.start_button.setObjectName("startButton")
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setToolTip("Steps done out of max_steps, and the estimated time left.")
        self.speed = QLabel(" ")
        self.message = QLabel()
        self.message.setObjectName("runMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        buttons = QGridLayout()
        for i, b in enumerate((self.start_button, self.pause_button, self.resume_button, self.stop_button)):
            buttons.addWidget(b, 0, i)
        buttons.addWidget(self.save_button, 1, 0, 1, 2)
        buttons.addWidget(self.load_button, 1, 2, 1, 2)
        run_box = QGroupBox("Run")
        run_layout = QVBoxLayout(run_box)
        run_layout.addLayout(buttons)
        run_layout.addWidget(self.progress)
        run_layout.addWidget(self.speed)
        run_layout.addWidget(self.message)

        # the settings scroll; the run controls stay in view below them
        form = QWidget()
        form_layout = QVBoxLayout(form)
        for w in (self.corpus_box, tok, model, self.train_box):
            form_layout.addWidget(w)
        form_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(form.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addWidget(run_box)

        self.start_button.clicked.connect(self.start_clicked)
        self.pause_button.clicked.connect(self.pause_clicked)
        self.resume_button.clicked.connect(self.resume_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        self.save_button.clicked.connect(self.save_clicked)
        self.load_button.clicked.connect(self.load_clicked)
        self.tokenizer.currentTextChanged.connect(self._on_tokenizer)
        self.family.currentTextChanged.connect(self._on_family)
        self.preset.currentTextChanged.connect(self._on_preset)
        self.corpus_box.loaded.connect(self.schedule_check)
        for w in (self.word_cap, self.bpe_vocab):
            w.valueChanged.connect(self.schedule_check)
        self._on_tokenizer(self.tokenizer.currentText())
        self._on_family(self.family.currentText())
        self.set_state("idle", can_save=False)

    # -- building the form -----------------------------------------------------------------------------------
    def _label(self, text: str, w: QWidget) -> QLabel:
        label = QLabel(text)
        label.setToolTip(w.toolTip())
        return label

    def _form_page(self, form_name: str, knobs: tuple[Knob, ...]) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.fields[form_name] = {}
        for knob in knobs:
            w = _make_widget(knob)
            self.fields[form_name][knob.name] = w
            form.addRow(self._label(knob.name, w), w)
            signal = {"int": "valueChanged", "float": "valueChanged", "bool": "toggled"}.get(knob.kind,
                                                                                              "currentTextChanged")
            getattr(w, signal).connect(self.schedule_check)
        if form_name == "ngram":
            self.ngram_form = form
            self.fields["ngram"]["smoothing"].currentTextChanged.connect(self._on_smoothing)
        return page

    def _fill_devices(self) -> None:
        import torch
        model: QStandardItemModel = self.device.model()
        available = {"auto": "", "cpu": "",
                     "cuda": "" if torch.cuda.is_available() else "torch sees no CUDA GPU on this machine",
                     "mps": "" if torch.backends.mps.is_available() else "Apple MPS is not available here"}
        for name in DEVICES:
            self.device.addItem(name)
            item = model.item(self.device.count() - 1)
            if available[name]:
                item.setEnabled(False)
                item.setToolTip(f"Unavailable: {available[name]}")

    @Slot(str)
    def _on_tokenizer(self, kind: str) -> None:
        self.tok_form.setRowVisible(self.word_cap, kind == "word")
        self.tok_form.setRowVisible(self.word_lower, kind == "word")
        self.tok_form.setRowVisible(self.bpe_vocab, kind == "bpe")
        self.schedule_check()

    @Slot(str)
    def _on_smoothing(self, smoothing: str) -> None:
        for name, methods in NGRAM_SHOWN.items():
            self.ngram_form.setRowVisible(self.fields["ngram"][name], smoothing in methods)

    @Slot(str)
    def _on_family(self, family: str) -> None:
        index = self.page_index[form_of(family)]
        for i in range(self.pages.count()):   # a stacked widget is as tall as its tallest page unless told not to
            policy = QSizePolicy.Preferred if i == index else QSizePolicy.Ignored
            self.pages.widget(i).setSizePolicy(policy, policy)
        self.pages.setCurrentIndex(index)
        self.pages.adjustSize()
        self.train_box.setVisible(family != "ngram")
        self.model_top.setRowVisible(self.preset, family != "ngram")
        self.preset.blockSignals(True)
        self.preset.clear()
        if family == "ngram":
            for name, value in ngram_defaults().items():
                if name in self.fields["ngram"]:
                    _set(self.fields["ngram"][name], value)
            self._on_smoothing(self.fields["ngram"]["smoothing"].currentText())
        else:
            self.preset.addItems(api.list_presets(family))
            self.preset.setCurrentText(api.DEFAULT_PRESET[family])
        self.preset.blockSignals(False)
        if family != "ngram":
            self._on_preset(self.preset.currentText())
        self.schedule_check()

    @Slot(str)
    def _on_preset(self, name: str) -> None:
        """Fill the form from the preset (the engine's resolution of it, so defaults live in one place)."""
        if not name:
            return
        family = self.family.currentText()
        model, train = api.resolve_config(family, name, {}, vocab_size=1)
        fields = self.fields[form_of(family)]
        for key, value in {**model, **train}.items():
            target = fields.get(key) or self.fields["train"].get(key)
            if target is not None:
                _set(target, value)
        self.schedule_check()

    # -- reading the form ------------------------------------------------------------------------------------
    def model_values(self) -> dict:
        family = self.family.currentText()
        values = {k: _get(w) for k, w in self.fields[form_of(family)].items()}
        if family == "ngram":
            smoothing = values["smoothing"]
            values = {k: v for k, v in values.items() if k not in NGRAM_SHOWN or smoothing in NGRAM_SHOWN[k]}
        return values

    def train_values(self) -> dict:
        return {k: _get(w) for k, w in self.fields["train"].items()}

    def tokenizer_options(self) -> dict:
        kind = self.tokenizer.currentText()
        if kind == "word":
            cap = self.word_cap.value()
            return {"lowercase": self.word_lower.isChecked(), **({"vocab_size": cap} if cap else {})}
        return {"vocab_size": self.bpe_vocab.value()} if kind == "bpe" else {}

    def spec(self) -> api.RunSpec:
        """Every visible field goes in as an override (as text, the way `apply_overrides` parses `--set`), on top
        of the chosen preset, so what the form shows is what trains."""
        family = self.family.currentText()
        neural = family != "ngram"
        overrides = self.model_values()
        max_steps = None
        if neural:
            train = self.train_values()
            max_steps = train.pop("max_steps")
            overrides.update(train)
            if resolve_device(self.device.currentText()).type != "cuda":
                # one step per report, so Pause and Stop act after the current step; on CUDA the preset's
                # batching of steps between host syncs is kept (it is what makes small models fast there)
                overrides["steps_per_yield"] = 1
        return api.RunSpec(corpus=self.corpus_box.spec(), tokenizer=self.tokenizer.currentText(),
                           tokenizer_options=self.tokenizer_options(), family=family,
                           preset=self.preset.currentText() if neural else None,
                           overrides={k: _text(v) for k, v in overrides.items()},
                           device=self.device.currentText(), seed=self.seed.value(), max_steps=max_steps)

    def vocab_guess(self) -> int:
        """The vocabulary the tokenizer will build, for the estimate only (the real one needs the tokenizer)."""
        kind = self.tokenizer.currentText()
        if kind == "bpe":
            return self.bpe_vocab.value()
        if kind == "word":
            return self.word_cap.value() or 20_000
        return max(self.corpus_box.vocab_chars, 2)

    # -- validation and estimate -----------------------------------------------------------------------------
    @Slot()
    def schedule_check(self, *_) -> None:
        self._check_timer.start()

    @Slot()
    def check(self) -> str:
        """Resolve the form into the model and train configs exactly as a run would (preset, then every field),
        let the engine's config classes judge them, mark each field a reason names, update the estimate and
        Start. Returns the problem ("" when none)."""
        family = self.family.currentText()
        vocab = self.vocab_guess()
        problems, estimate = [], ""
        try:
            spec = self.spec()
            model, train = api.resolve_config(family, spec.preset, spec.overrides, vocab)
            if spec.max_steps is not None:
                train["max_steps"] = spec.max_steps
            problems = [reason for _, reason in api.validate_config(family, model, train)]
            if not problems:
                train_tokens = int(len(self.corpus_box.corpus.text) * 0.9) if self.corpus_box.corpus else 0
                e = api.estimate(family, model, train, vocab, train_tokens)
                what = "count-table entries at most" if family == "ngram" else "parameters"
                estimate = (f"<b>{e['params']:,}</b> {what} · ≈ {_bytes(e['memory_bytes'])} to train"
                            + ("" if family == "ngram" else " (weights, grads, AdamW, one batch of activations)"))
        except PlaygroundError as e:
            problems = [str(e)]
        if self.corpus_box.corpus is None:
            problems.append("load a corpus first")
        problem = "; ".join(problems)
        for name, w in {**self.fields["train"], **self.fields[form_of(family)]}.items():
            bad = re.search(rf"\b{re.escape(name)}\b", problem) is not None
            w.setProperty("invalid", bad)
            w.setStyleSheet("border: 2px solid #d32f2f;" if bad else "")
            w.setToolTip(f"{w.property('tip')}\n\nProblem: {problem}" if bad else w.property("tip"))
        self.problem = problem
        self.estimate.setText(f"<span style='color:#b00020'>{problem}</span>" if problem else estimate)
        self._update_start()
        return problem

    # -- run state -------------------------------------------------------------------------------------------
    def set_state(self, state: str, *, can_save: bool) -> None:
        """state: idle | preparing | running | paused | stopping | done | stopped | error."""
        self._running = state in ("preparing", "running", "paused", "stopping")
        ngram = self.family.currentText() == "ngram"
        self.pause_button.setEnabled(state == "running" and not ngram)
        self.resume_button.setEnabled(state == "paused")
        self.stop_button.setEnabled(state in ("preparing", "running", "paused"))
        self.save_button.setEnabled(can_save and state in ("paused", "done", "stopped", "error"))
        self.load_button.setEnabled(not self._running)
        for w in (self.corpus_box, self.tokenizer, self.family, self.preset, self.pages, self.train_box,
                  self.tok_form.parentWidget()):
            w.setEnabled(not self._running)
        self._update_start()

    def _update_start(self) -> None:
        self.start_button.setEnabled(not self._running and not self.problem)
        self.start_button.setToolTip(f"Cannot start: {self.problem}" if self.problem
                                     else "Build the model and train it with these settings.")

    def show_report(self, r) -> None:
        self.progress.setMaximum(max(r.max_steps, 1))
        self.progress.setValue(min(r.step, r.max_steps))
        eta = "" if r.eta_s is None else f" · ETA {format_duration(r.eta_s)}"
        unit = "order" if self.family.currentText() == "ngram" else "step"   # n-grams count one order at a time
        self.progress.setFormat(f"{unit} {r.step:,} / {r.max_steps:,} (%p%){eta}")
        line = f"{r.tokens_per_s:,.0f} tokens/s · {r.tokens:,} tokens · {format_duration(r.elapsed_s)} elapsed"
        if r.message:
            line += f" · {r.message}"
        self.speed.setText(line)

    # -- settings --------------------------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"tokenizer": self.tokenizer.currentText(), "word_cap": self.word_cap.value(),
                "word_lower": self.word_lower.isChecked(), "bpe_vocab": self.bpe_vocab.value(),
                "family": self.family.currentText(), "preset": self.preset.currentText(),
                "model": self.model_values(), "train": self.train_values(),
                "device": self.device.currentText(), "seed": self.seed.value()}

    def apply_settings(self, s: dict) -> None:
        """Restore `settings()` output; unknown or stale entries are skipped (presets and fields change)."""
        self.tokenizer.setCurrentText(s.get("tokenizer", "char"))
        self.word_cap.setValue(int(s.get("word_cap", self.word_cap.value())))
        self.word_lower.setChecked(bool(s.get("word_lower", False)))
        self.bpe_vocab.setValue(int(s.get("bpe_vocab", self.bpe_vocab.value())))
        if s.get("family") in FAMILIES:
            self.family.setCurrentText(s["family"])
        if self.preset.findText(s.get("preset", "")) >= 0:
            self.preset.setCurrentText(s["preset"])
        for form_name, key in ((form_of(self.family.currentText()), "model"), ("train", "train")):
            for name, value in s.get(key, {}).items():
                if name in self.fields[form_name]:
                    _set(self.fields[form_name][name], value)
        index = self.device.findText(s.get("device", "auto"))
        if index >= 0 and self.device.model().item(index).isEnabled():
            self.device.setCurrentIndex(index)
        self.seed.setValue(int(s.get("seed", self.seed.value())))
        self.check()


def ngram_defaults() -> dict:
    """The n-gram config's own field defaults, then what a run uses when the form says nothing."""
    fields = dataclasses.fields(config_class("ngram"))
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    model, _ = api.resolve_config("ngram", None, {}, vocab_size=1)
    return {**defaults, **model}


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
