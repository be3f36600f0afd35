"""The training panel: corpus, tokenizer, model family with only that family's hyperparameters, training knobs,
device and seed, and under them the Run box (run_box.py). It turns the form into an `api.RunSpec`; the model
config is validated by the engine's own config classes as you type, and the fields a ConfigError names are marked,
so the rules live in one place (the engine) and Start stays disabled until the form describes a model that can be
built.
The fields themselves (specs, widgets, reading and marking them) are in model_form.py."""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QFrame, QGroupBox, QLabel, QScrollArea,
                               QSizePolicy, QSpinBox, QStackedWidget, QVBoxLayout, QWidget)

from engine import api
from engine import device as devices
from engine.device import format_bytes, resolve_device
from engine.errors import PlaygroundError
from engine.models import FAMILIES

from app.training.corpus_box import CorpusBox
from app.training.run_box import RUNNING, RunBox
from app.training.model_form import (FORMS, TRAIN, Knob, build_page, form_of, labelled, mark_invalid,
                                     override_text, read_values, set_value, show_smoothing_rows, value_problem)

DEVICES = ("auto", "cuda", "mps", "cpu")
WARN_COLOR = "#b35c00"   # orange: allowed, but probably not what the user wants
ESTIMATE_TIP = "Parameter count of this configuration and a rough training-memory estimate."
NEAR_FULL = 0.8   # an estimate above this fraction of the available memory is shown as a warning


class TrainPanel(QWidget):
    start_clicked = Signal()
    pause_clicked = Signal()
    resume_clicked = Signal()
    stop_clicked = Signal()
    save_clicked = Signal()
    load_clicked = Signal()
    finetune_clicked = Signal()
    export_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.corpus_box = CorpusBox()
        self.fields: dict[str, dict[str, QWidget]] = {}
        self.problem = ""                # why Start is disabled ("" when the form is valid)
        self._running = False
        self._check_timer = QTimer(self, singleShot=True, interval=120)
        self._check_timer.timeout.connect(self.check)

        # tokenizer
        self.tok_box = tok = QGroupBox("Tokenizer")
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
        self.tok_form.addRow(labelled("kind", self.tokenizer), self.tokenizer)
        self.tok_form.addRow(labelled("vocab cap", self.word_cap), self.word_cap)
        self.tok_form.addRow(labelled("lowercase", self.word_lower), self.word_lower)
        self.tok_form.addRow(labelled("vocab size", self.bpe_vocab), self.bpe_vocab)

        # model
        self.model_box = model = QGroupBox("Model")
        model_layout = QVBoxLayout(model)
        self.model_top = top = QFormLayout()
        self.family = QComboBox()
        self.family.addItems(list(FAMILIES))
        self.family.setToolTip("Model family: counting n-grams, recurrent nets (RNN/LSTM/GRU) or a Transformer.")
        self.preset = QComboBox()
        self.preset.setToolTip("A named starting configuration from resources/presets; edits below override it.")
        top.addRow(labelled("family", self.family), self.family)
        top.addRow(labelled("preset", self.preset), self.preset)
        model_layout.addLayout(top)
        self.pages = QStackedWidget()
        self.page_index = {}
        for form_name, knobs in FORMS.items():
            self.page_index[form_name] = self.pages.addWidget(self._form_page(form_name, knobs))
        model_layout.addWidget(self.pages)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.estimate.setToolTip(ESTIMATE_TIP)
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
        other.addRow(labelled("device", self.device), self.device)
        other.addRow(labelled("seed", self.seed), self.seed)
        self.train_box.layout().addLayout(other)

        # run controls, with the widgets others use as this panel's own (panel.start_button, panel.speed, ...)
        self.run_box = run_box = RunBox()
        for name in ("start_button", "pause_button", "resume_button", "stop_button", "save_button", "load_button",
                     "finetune_button", "export_button", "progress", "speed", "message"):
            setattr(self, name, getattr(run_box, name))

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
        self.finetune_button.clicked.connect(self.finetune_clicked)
        self.export_button.clicked.connect(self.export_clicked)
        self.tokenizer.currentTextChanged.connect(self._on_tokenizer)
        self.tokenizer.currentTextChanged.connect(lambda _: self.corpus_box.tokenizer_changed())
        self.family.currentTextChanged.connect(self._on_family)
        self.preset.currentTextChanged.connect(self._on_preset)
        self.family.textActivated.connect(self._refill_by_user)   # only the user's own choices, not restores
        self.preset.textActivated.connect(self._refill_by_user)
        self.device.currentTextChanged.connect(self.schedule_check)   # the memory check depends on the device
        self.corpus_box.loaded.connect(self._lock_tokenizer)
        self.corpus_box.loaded.connect(self.check)   # at once: the window may have been waiting for its first corpus
        self.corpus_box.tokenizer_choice = lambda: (self.tokenizer.currentText(), self.tokenizer_options())
        self.corpus_box.loading_changed.connect(self._update_start)   # at once: no Start while a corpus loads
        self.corpus_box.prepare_panel.running_changed.connect(self._update_start)   # nor while one is prepared
        for w in (self.word_cap, self.bpe_vocab):
            w.valueChanged.connect(self.schedule_check)
        self.word_lower.toggled.connect(self.schedule_check)   # lower-casing merges words: a smaller vocabulary
        self._on_tokenizer(self.tokenizer.currentText())
        self._on_family(self.family.currentText())
        self.set_state("idle", can_save=False)

    # -- building the form -----------------------------------------------------------------------------------
    def _form_page(self, form_name: str, knobs: tuple[Knob, ...]) -> QWidget:
        page, form, self.fields[form_name] = build_page(knobs, self.schedule_check)
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
        show_smoothing_rows(self.ngram_form, self.fields["ngram"], smoothing)

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
            self._fill_form(family, None)
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
        if name:
            self._fill_form(self.family.currentText(), name)
            self.schedule_check()

    def _fill_form(self, family: str, preset: str | None) -> None:
        """Write every field of the family's page and of the training page: the preset's value where it has one,
        else the config class's default (the engine's resolution, so defaults live in one place). Every field, so
        a value typed before (n_kv_head, say, which no preset names) cannot outlive the choice unseen."""
        model, train = api.full_config(family, preset, {}, vocab_size=1)
        pages = [(self.fields[form_of(family)], model)] + ([] if family == "ngram" else [(self.fields["train"], train)])
        for fields, values in pages:
            missing = set(fields) - set(values)
            if missing:   # a form field the config class does not have: a programming error, not a user's
                raise KeyError(f"form fields {sorted(missing)} are not {family} settings")
            for key, w in fields.items():
                set_value(w, values[key])

    @Slot(str)
    def _refill_by_user(self, _: str) -> None:
        """The user chose a family or preset, perhaps the one already shown (which changes no text, so the
        currentTextChanged handlers did not run): refill the form from it, and say so, since edits the user made a
        moment ago are gone, max_steps and lr included."""
        family = self.family.currentText()
        if self.sender() is self.family:
            self._on_family(family)
        else:
            self._on_preset(self.preset.currentText())
        source = ("the n-gram model's default settings" if family == "ngram"
                  else f"the settings of preset {escape(self.preset.currentText())} for {escape(family)}")
        self.message.setText(f"The form now holds {source} (your earlier edits to the fields were replaced).")

    # -- reading the form ------------------------------------------------------------------------------------
    def model_values(self) -> dict:
        form_name = form_of(self.family.currentText())
        return read_values(form_name, self.fields[form_name])

    def train_values(self) -> dict:
        return read_values("train", self.fields["train"])

    @Slot()
    def _lock_tokenizer(self, *_) -> None:
        """A prepared corpus was tokenized when it was prepared: its tokenizer is shown and cannot be changed."""
        prepared = self.corpus_box.prepared_meta()
        if prepared is not None:
            self.tokenizer.setCurrentText(prepared["tokenizer"])
        widgets = (self.tokenizer, self.word_cap, self.word_lower, self.bpe_vocab)
        if not hasattr(self, "_tokenizer_tips"):
            self._tokenizer_tips = [w.toolTip() for w in widgets]
        tip = "Fixed by the prepared token files; prepare the text again to use another tokenizer."
        for w, normal in zip(widgets, self._tokenizer_tips):
            w.setEnabled(prepared is None)
            w.setToolTip(tip if prepared is not None else normal)

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
        prepared = self.corpus_box.prepared_meta()   # a prepared corpus fixes its tokenizer
        return api.RunSpec(corpus=self.corpus_box.spec(), tokenizer=self.tokenizer.currentText(),
                           tokenizer_options=self.tokenizer_options() if prepared is None
                           else dict(prepared.get("tokenizer_options") or {}),
                           data=self.corpus_box.data_folder(), family=family,
                           preset=self.preset.currentText() if neural else None,
                           overrides={k: override_text(v) for k, v in overrides.items()},
                           device=self.device.currentText(), seed=self.seed.value(), max_steps=max_steps,
                           on_bad_utf8=self.corpus_box.on_bad_utf8())

    def vocab_guess(self) -> int:
        """The vocabulary the tokenizer will build, for the estimate only (the real one needs the tokenizer)."""
        kind = self.tokenizer.currentText()
        prepared = self.corpus_box.prepared_meta()
        if prepared is not None:
            return int(prepared["vocab_size"])
        if kind == "bpe":
            return self.bpe_vocab.value()
        if kind == "word":
            counted = self.corpus_box.vocab_words
            cap = self.word_cap.value() or 1 << 62
            if counted is None:
                return min(cap, 20_000)
            return min(cap, counted[1 if self.word_lower.isChecked() else 0] + 1)   # + <unk>
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
        problems, estimate, warning = [], "", ""
        try:
            spec = self.spec()
            model, train = api.resolve_config(family, spec.preset, spec.overrides, vocab)
            if spec.max_steps is not None:
                train["max_steps"] = spec.max_steps
            problems = [reason for _, reason in api.validate_config(family, model, train)]
            train_tokens = self.corpus_box.train_tokens_hint()
            window = train.get("block_size", 0)
            if self.corpus_box.corpus is not None and family != "ngram" and window >= train_tokens:
                # a token is at least one character, so this corpus cannot give one window whatever the tokenizer
                problems.append(f"the corpus is too short for one training window: block_size {window} needs a "
                                f"train split longer than {window} tokens; it has {train_tokens:,} "
                                f"character{'' if train_tokens == 1 else 's'}")
            if not problems:
                e = api.estimate(family, model, train, vocab, train_tokens)
                what = "count-table entries at most" if family == "ngram" else "parameters"
                estimate = (f"<b>{e['params']:,}</b> {what} · ≈ {format_bytes(e['memory_bytes'])} to train"
                            + ("" if family == "ngram" else " (weights, grads, AdamW, one batch of activations)"))
                too_big = devices.memory_problem(e["memory_bytes"], self.device.currentText())
                if too_big:   # the run would fail while building or swap the machine to a halt: refused
                    problems.append(too_big)
                else:
                    warning = self._memory_warning(e["memory_bytes"])
        except PlaygroundError as e:
            problems = [str(e)]
        if self.corpus_box.corpus is None:
            problems.append("load a corpus first")
        problem = "; ".join(problems)
        mark_invalid({**self.fields["train"], **self.fields[form_of(family)]}, problem)
        self.problem = problem
        if problem:
            # the estimate stays above the reason when there is one (a model refused for its size: how big it is)
            estimate = (f"{estimate}<br>" if estimate else "") + f"<span style='color:#b00020'>{escape(problem)}</span>"
        elif warning:
            estimate = f"<span style='color:{WARN_COLOR}'>{estimate} ⚠</span>"
        self.estimate.setText(estimate)
        self.estimate.setToolTip(warning or ESTIMATE_TIP)
        self._update_start()
        return problem

    def _memory_warning(self, needed: int) -> str:
        """Why the estimate is shown in orange ("" when it fits with room to spare): above NEAR_FULL of the memory
        available, other programs or a fragmenting allocator can still make the run fail."""
        have = devices.available_memory(self.device.currentText())
        if have is None or needed <= NEAR_FULL * have[0]:
            return ""
        return (f"The estimate ({format_bytes(needed)}) is close to the {format_bytes(have[0])} of {have[1]}: training may "
                f"run out of memory. Try a smaller block_size, batch_size or model.")

    # -- run state -------------------------------------------------------------------------------------------
    def set_state(self, state: str, *, can_save: bool, can_continue: bool = False,
                  has_checkpoint: bool = False) -> None:
        """state: idle | preparing | running | paused | stopping | validating (the run has ended, its final
        validation pass runs; it can be saved, and Stop skips the pass) | done | stopped | error | loaded (a
        checkpoint was loaded; `can_continue`: it can be trained further, which Resume then does).
        has_checkpoint: a checkpoint folder holds the model shown (loaded, or the ended run saved as it is), which
        Fine-tune and Export act on. The form is locked while a run is on."""
        self._running = state in RUNNING
        self.run_box.set_state(state, ngram=self.family.currentText() == "ngram", can_save=can_save,
                               can_continue=can_continue, has_checkpoint=has_checkpoint)
        for w in (self.corpus_box, self.tok_box, self.model_box, self.train_box):
            w.setEnabled(not self._running)   # whole groups: titles and row labels grey out with the fields
        self._update_start()

    @Slot()
    def _update_start(self) -> None:
        """Start, and the line saying why it is disabled: a problem with the form, or the corpus still loading,
        being prepared, or over the in-memory limit."""
        box = self.corpus_box
        why = self.problem or ("the corpus is still loading" if box.is_loading() else
                               "the chosen corpus is being prepared; Start waits for it" if box.prepare_panel.is_running()
                               else "the chosen corpus is over the in-memory limit: Prepare it first (or choose "
                                    "another corpus)" if box.awaiting_prepare() else "")
        waiting = not self.problem and (box.is_loading() or box.prepare_panel.is_running())   # passes by itself
        self.run_box.show_start(self._running, why, waiting)

    def set_speed(self, text: str) -> None:
        """The speed line from outside a report (see RunBox.set_speed)."""
        self.run_box.set_speed(text)

    def show_report(self, r, eta: bool = True) -> None:
        """A training report on the progress bar and the speed line (see RunBox.show_report)."""
        self.run_box.show_report(r, "order" if self.family.currentText() == "ngram" else "step", eta)

    # -- settings --------------------------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"tokenizer": self.tokenizer.currentText(), "word_cap": self.word_cap.value(),
                "word_lower": self.word_lower.isChecked(), "bpe_vocab": self.bpe_vocab.value(),
                "family": self.family.currentText(), "preset": self.preset.currentText(),
                "model": self.model_values(), "train": self.train_values(),
                "device": self.device.currentText(), "seed": self.seed.value()}

    def apply_settings(self, s: dict) -> list[str]:
        """Restore `settings()` output, one entry at a time. Unknown or stale names (presets and fields change)
        are skipped; a value of the wrong type or outside its field's range leaves the field as it is and is
        returned as "name: why", so a caller can reset that entry and say so. Never raises for bad data."""
        if not isinstance(s, dict):
            return [f"the saved settings are a {type(s).__name__}, not an object"]
        bad: list[str] = []

        def put(name: str, widget, value) -> None:
            problem = value_problem(widget, value)
            if problem:
                bad.append(f"{name}: {problem}")
            else:
                set_value(widget, value)

        for name, widget in (("tokenizer", self.tokenizer), ("word_cap", self.word_cap),
                             ("word_lower", self.word_lower), ("bpe_vocab", self.bpe_vocab)):
            if name in s:
                put(name, widget, s[name])
        if s.get("family") in FAMILIES:
            self.family.setCurrentText(s["family"])
        preset = s.get("preset", "")
        if isinstance(preset, str) and self.preset.findText(preset) >= 0:
            self.preset.setCurrentText(preset)
        for form_name, key in ((form_of(self.family.currentText()), "model"), ("train", "train")):
            values = s.get(key, {})
            if not isinstance(values, dict):
                bad.append(f"{key}: a {type(values).__name__}, not an object")
                continue
            for name, value in values.items():
                if name in self.fields[form_name]:
                    put(f"{key}.{name}", self.fields[form_name][name], value)
        device = s.get("device", "auto")
        index = self.device.findText(device) if isinstance(device, str) else -1
        if index >= 0 and self.device.model().item(index).isEnabled():
            self.device.setCurrentIndex(index)
        if "seed" in s:
            put("seed", self.seed, s["seed"])
        self.check()
        return bad

