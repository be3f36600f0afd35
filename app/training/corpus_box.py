"""The corpus part of the training panel: built-in corpora, Open file / Open folder, a recent list, a summary
(characters, distinct characters, train/val split) and a preview. A corpus that fails to load shows the engine's
one-line reason here and the previous corpus stays selected, so a bad file never leaves the app without text.
A file or folder of the recent list that is gone is dropped from it, saying so. "replace bad bytes" reads bytes
that are not UTF-8 as U+FFFD instead of refusing the file; the corpus in use remembers how it was read, and a run
reads it the same way.

Loading runs on a worker thread (app/common/workers.py): reading, decoding, splitting and counting a file near the 50 MB
limit takes ~0.4 s from a warm cache on a 2-core CPU (longer from a slow disk), which would freeze the window. The previous corpus stays in use (and Start stays off) until the new
one has loaded; a request made while another is loading waits for it and then replaces it, so only the newest
request is ever shown, and at most one corpus is being read at a time (a 50 MB text costs about 50-200 MB)."""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from html import escape

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPlainTextEdit, QProgressBar, QPushButton, QWidget)

from engine.corpus import BUILTIN_CORPORA, BUILTIN_PREFIX, VAL_FRACTION, Corpus, load_corpus, split_text
from engine.errors import BadUtf8Error, CorpusTooLarge, PlaygroundError
from engine.tokenizers.word import TOKEN_RE

from app.common.token_view import PREVIEW_CHARS
from app.common.workers import error_message, start_worker
from app.training.prepare_box import PreparePanel, breakable
from app.training.prepare_offer import MAX_RECENT, PrepareOffer

log = logging.getLogger(__name__)

SET_CHUNK = 1 << 18   # characters per set.update: each call holds the GIL for ~2 ms, not ~0.3 s for 50 MB
WORD_COUNT_CHARS = 10_000_000   # distinct words are counted for train splits up to this size
_SPACE = re.compile(r"\s")
MAX_SKIPPED_SHOWN = 5   # skipped files named in the summary; the tooltip lists them all
REPLACE_TIP = "Read bytes that are not valid UTF-8 as U+FFFD (�) instead of refusing the file."


@dataclass(frozen=True)
class LoadedCorpus:
    corpus: Corpus
    train_chars: int    # length of the train split
    val_text: str       # the validation split, kept so it is never recomputed
    vocab_chars: int    # distinct characters
    vocab_words: tuple[int, int] | None = None   # distinct word tokens in the train split, as is and lower-cased


MAX_CORPUS_BYTES = 50_000_000   # held in memory up to this size (RunSpec's default); larger ones are prepared


def read_corpus(spec: str, on_bad_utf8: str = "error", max_bytes: int = MAX_CORPUS_BYTES) -> LoadedCorpus:
    """Everything about a corpus that costs time in proportion to its size, done once (on the loader thread).
    on_bad_utf8: "error" or "replace", as engine.corpus.load_corpus takes it."""
    corpus = load_corpus(spec, on_bad_utf8=on_bad_utf8, max_bytes=max_bytes)
    train, val = split_text(corpus.text, VAL_FRACTION)
    chars: set[str] = set()
    for i in range(0, len(corpus.text), SET_CHUNK):   # in slices, so the GUI thread gets the GIL in between
        chars.update(corpus.text[i:i + SET_CHUNK])
    return LoadedCorpus(corpus, len(train), val, len(chars), _distinct_words(train))


def _distinct_words(train: str) -> tuple[int, int] | None:
    """What a word tokenizer without a cap would learn from this train split (the form's estimate uses it);
    None past WORD_COUNT_CHARS, where counting would add seconds to the load and the estimate guesses instead."""
    if len(train) > WORD_COUNT_CHARS:
        return None
    words: set[str] = set()
    i = 0
    while i < len(train):     # slices end at whitespace, which no token spans, so the count is exact
        cut = _SPACE.search(train, min(i + SET_CHUNK, len(train)))
        j = cut.start() + 1 if cut else len(train)
        words.update(TOKEN_RE.findall(train, i, j))
        i = j
    return len(words), len({w.lower() for w in words})


class CorpusLoader(QObject):
    """Reads one corpus on its own thread (started by app.common.workers.start_worker)."""
    done = Signal(object)      # a LoadedCorpus
    failed = Signal(str, str)  # a one-line reason; "bad_utf8" ("replace bad bytes" cures it), "too_large" or ""
    finished = Signal()        # always last

    def __init__(self, spec: str, on_bad_utf8: str = "error", max_bytes: int = MAX_CORPUS_BYTES):
        super().__init__()
        self.spec = spec
        self.on_bad_utf8 = on_bad_utf8
        self.max_bytes = max_bytes

    @Slot()
    def run(self) -> None:
        try:
            self.done.emit(read_corpus(self.spec, self.on_bad_utf8, self.max_bytes))
        except Exception as e:  # noqa: BLE001 — a bad file (or a bug) is shown in the box, never kills the thread
            if not isinstance(e, PlaygroundError):
                log.exception("loading %s failed", self.spec)
            kind = "bad_utf8" if isinstance(e, BadUtf8Error) else "too_large" if isinstance(e, CorpusTooLarge) else ""
            self.failed.emit(error_message(e), kind)
        finally:
            self.finished.emit()


class CorpusBox(PrepareOffer, QGroupBox):
    loaded = Signal(object)          # the new Corpus
    failed = Signal(str, str)        # (spec, one-line reason) of a load that failed; the previous corpus stays
    loading_changed = Signal(bool)   # a load started (True) or ended, loaded or failed (False)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Corpus", parent)
        self.corpus: Corpus | None = None
        self.vocab_chars = 0           # distinct characters of the loaded corpus
        self.vocab_words: tuple[int, int] | None = None   # distinct words of its train split (cased, lower)
        self._val_text = ""
        self._read_as = "error"        # how the corpus in use was read: "error" (strict UTF-8) or "replace"
        self._bad_utf8 = ""            # the last spec refused for bad UTF-8, retried when replacing is ticked
        self._gone = ""                # which recent entries set_recent dropped, said until a load has finished
        self._recent: list[str] = []
        self._wanted: tuple[str, str | None] | None = None   # (spec, fallback) of the newest unanswered request
        self._thread: QThread | None = None
        self._loader: CorpusLoader | None = None
        self.max_bytes = MAX_CORPUS_BYTES     # larger corpora are offered the prepare path (prepare_box.py)
        self.prepared_root = None             # where prepared folders go; None: engine.prepare.prepared_root()
        self.tokenizer_choice = lambda: ("char", {})   # (kind, options) a prepare uses; the training form sets it
        self._data = None                     # the engine.data.PreparedData in use, when the corpus is prepared
        self._too_large = ""                  # the spec the prepare offer is for
        self.prepare_panel = PreparePanel()

        self.choice = QComboBox()
        self.choice.setToolTip("The text the model learns from: a built-in corpus or one you opened recently.")
        self.choice.setMinimumContentsLength(18)
        self.choice.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.open_file_button = open_file = QPushButton("Open file…")   # the File menu mirrors both buttons
        open_file.setToolTip("Load a UTF-8 .txt file (you can also drop files onto the window).")
        self.open_folder_button = open_folder = QPushButton("Open folder…")
        open_folder.setToolTip("Load every text file in a folder, concatenated in sorted path order.")
        self.replace_bad = QCheckBox("replace bad bytes")
        self.replace_bad.setToolTip(REPLACE_TIP)
        self.loading = QWidget()
        self.loading_label = QLabel()
        self.loading_label.setTextFormat(Qt.PlainText)
        busy = QProgressBar(minimum=0, maximum=0, textVisible=False)   # 0..0: Qt's "busy" animation
        busy.setFixedSize(60, 10)
        loading_row = QHBoxLayout(self.loading)
        loading_row.setContentsMargins(0, 0, 0, 0)
        loading_row.addWidget(busy)
        loading_row.addWidget(self.loading_label, 1)
        self.loading.hide()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error = QLabel()
        self.error.setObjectName("errorLabel")
        self.error.setTextFormat(Qt.PlainText)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")
        self.error.hide()
        self.preview = QPlainTextEdit(readOnly=True)
        self.preview.setToolTip("The start of the corpus, exactly as the tokenizer will see it.")
        self.preview.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.preview.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.preview.setFixedHeight(110)

        buttons = QHBoxLayout()
        buttons.addWidget(open_file)
        buttons.addWidget(open_folder)
        grid = QGridLayout(self)
        grid.addWidget(self.choice, 0, 0)
        grid.addLayout(buttons, 1, 0)
        grid.addWidget(self.replace_bad, 2, 0)
        grid.addWidget(self.loading, 3, 0)
        grid.addWidget(self.error, 4, 0)
        grid.addWidget(self.prepare_panel, 5, 0)
        grid.addWidget(self.summary, 6, 0)
        grid.addWidget(self.preview, 7, 0)
        self.prepare_panel.start_requested.connect(self._start_prepare)
        self.prepare_panel.prepared.connect(self._on_prepared)

        open_file.clicked.connect(self._open_file)
        open_folder.clicked.connect(self._open_folder)
        self.choice.activated.connect(self._on_choice)
        self.replace_bad.toggled.connect(self._on_replace_toggled)
        self._fill_choices()

    # -- state -----------------------------------------------------------------------------------------------
    def spec(self) -> str:
        """The corpus in use (during a load still the previous one: the one a run started now would get)."""
        return self.corpus.source if self.corpus is not None else ""

    def on_bad_utf8(self) -> str:
        """How the corpus in use was read ("error" or "replace"), for the RunSpec: a run reads it the same way."""
        return self._read_as

    def recent(self) -> list[str]:
        return list(self._recent)

    def set_recent(self, paths: list[str]) -> None:
        """The remembered recent list, without the files and folders that are gone (saying which)."""
        paths = [p for p in paths if p and not p.startswith(BUILTIN_PREFIX)][:MAX_RECENT]
        self._recent = [p for p in paths if os.path.exists(p)]
        self._fill_choices()
        gone = [p for p in paths if p not in self._recent]
        if gone:   # shown now and kept past the load that follows (the window's first corpus), then forgotten
            self._gone = f"Removed from the recent list, no longer on disk: {', '.join(map(_short, gone))}"
            self.error.setText(breakable(self._gone))
            self.error.setToolTip("\n".join(gone))
            self.error.show()

    def validation_text(self) -> str:
        return self._val_text

    def is_loading(self) -> bool:
        return self._wanted is not None

    # -- loading ---------------------------------------------------------------------------------------------
    def load(self, spec: str, fallback: str | None = None, on_bad_utf8: str | None = None) -> None:
        """Start loading `spec` in the background; `loaded` or `failed` tells how it went. On failure the reason
        is shown and the previous corpus stays, or `fallback` is loaded instead (the app's first corpus when the
        remembered one is gone). A newer request replaces this one if it comes before this one has loaded.
        on_bad_utf8 ("error" | "replace", a checkpoint's own way of reading its corpus) sets the "replace bad
        bytes" box first; None reads as the box says."""
        if on_bad_utf8 is not None:
            self.replace_bad.blockSignals(True)
            self.replace_bad.setChecked(on_bad_utf8 == "replace")
            self.replace_bad.blockSignals(False)
        self._wanted = (spec, fallback)
        self._drop_offer()              # a new corpus replaces the offer and a prepare in progress (result dropped)
        self.loading_label.setText(f"loading {_short(spec)}…")
        self.loading_label.setToolTip(spec)
        self.loading.show()
        if self._thread is None:
            self._start(spec)
        self.loading_changed.emit(True)

    def _start(self, spec: str) -> None:
        self._loader = CorpusLoader(spec, "replace" if self.replace_bad.isChecked() else "error", self.max_bytes)
        self._loader.done.connect(self._on_done, Qt.QueuedConnection)        # bound slots of this GUI-thread
        self._loader.failed.connect(self._on_failed, Qt.QueuedConnection)    # widget: Qt runs them here
        self._loader.finished.connect(self._on_finished, Qt.QueuedConnection)
        self._thread = start_worker(self._loader, "corpus")

    def _superseded(self) -> bool:
        """A newer request came while this loader ran: its answer is dropped, the newer one starts next."""
        return self._wanted is None or self._wanted[0] != self._loader.spec

    @Slot(object)
    def _on_done(self, result: LoadedCorpus) -> None:
        if self._superseded():
            return
        self._wanted = None
        corpus = result.corpus
        if self._gone:
            self._gone = ""
        else:
            self.clear_error()
        self.corpus, self.vocab_chars, self._val_text = corpus, result.vocab_chars, result.val_text
        self._data = None
        self._read_as, self._bad_utf8 = self._loader.on_bad_utf8, ""
        self.vocab_words = result.vocab_words
        if not corpus.source.startswith(BUILTIN_PREFIX):
            self._recent = [corpus.source] + [p for p in self._recent if p != corpus.source]
            del self._recent[MAX_RECENT:]
        self._fill_choices()
        skipped = ""
        if corpus.skipped:   # a folder's binary, empty or unreadable files: named, not silently left out
            shown = ", ".join(f"{rel} ({why})" for rel, why in corpus.skipped[:MAX_SKIPPED_SHOWN])
            more = len(corpus.skipped) - MAX_SKIPPED_SHOWN
            skipped = (f"<br>skipped {len(corpus.skipped):,} file(s): {escape(shown)}"
                       + (f" and {more:,} more (see the tooltip)" if more > 0 else ""))
        self.summary.setText(
            f"<b>{escape(breakable(corpus.name))}</b><br>{len(corpus.text):,} characters, {self.vocab_chars:,} distinct<br>"
            f"train {result.train_chars:,} · validation {len(result.val_text):,} (the last {VAL_FRACTION:.0%})"
            + skipped)
        self.summary.setToolTip(corpus.source + "".join(f"\nskipped {rel}: {why}" for rel, why in corpus.skipped))
        self.preview.setPlainText(corpus.text[:PREVIEW_CHARS])
        self.loading.hide()
        self.loading_changed.emit(False)
        self.loaded.emit(corpus)

    @Slot(str, str)
    def _on_failed(self, message: str, why: str) -> None:
        if self._superseded():
            return
        bad_utf8 = why == "bad_utf8"
        spec, fallback = self._wanted
        if why == "too_large" and self._offer_prepare(spec, message):
            return
        self._bad_utf8 = spec if bad_utf8 else ""
        if bad_utf8:
            message += ". Tick “replace bad bytes” to read such bytes as U+FFFD (�)"
        elif spec in self._recent and not os.path.exists(spec):
            self._recent.remove(spec)
            message += " (removed from the recent list)"
        self.error.setText(breakable(f"Could not load {spec}: {message}"))
        self.error.setToolTip(f"Could not load {spec}: {message}")
        self.error.show()
        self._fill_choices()   # put the combo back on the corpus still in use
        if fallback and fallback != spec:
            self._wanted = (fallback, None)   # started by _on_finished, once this loader's thread has ended
            self.loading_label.setText(f"loading {_short(fallback)}…")
            self.loading_label.setToolTip(fallback)
        else:
            self._wanted = None
            self.loading.hide()
            self.loading_changed.emit(False)
        self.failed.emit(spec, message)

    @Slot()
    def _on_finished(self) -> None:
        if self._thread is None:   # already waited for by shutdown()
            return
        self._thread.wait()
        self._thread = self._loader = None
        if self._wanted is not None:
            self._start(self._wanted[0])

    def shutdown(self) -> None:
        """Wait for a running load to end (the main window calls this on close; a load cannot be interrupted) and
        cancel a prepare."""
        self.prepare_panel.shutdown()
        self._wanted = None
        if self._thread is not None:
            self._thread.wait()
            self._thread = self._loader = None

    @Slot(bool)
    def _on_replace_toggled(self, _: bool) -> None:
        """Read again as the box now says: the file just refused for bad UTF-8, else the file in use. Under the
        prepare offer nothing is read: the next Prepare reads as the box says, and an old failure is cleared."""
        if self._too_large:
            if not self.prepare_panel.is_running() and self.prepare_panel.message().startswith("Could not prepare"):
                self.prepare_panel.set_message("")
            return
        if self._bad_utf8:
            self.load(self._bad_utf8)
        elif self.corpus is not None and not self.corpus.source.startswith(BUILTIN_PREFIX):
            self.load(self.corpus.source)

    def clear_error(self) -> None:
        """Forget the last failed load's reason (a run starting, or a good load, makes it old news)."""
        self.error.clear()
        self.error.hide()

    def _fill_choices(self) -> None:
        self.choice.blockSignals(True)
        self.choice.clear()
        for name, description in BUILTIN_CORPORA.items():
            self.choice.addItem(f"built-in: {name}", BUILTIN_PREFIX + name)
            self.choice.setItemData(self.choice.count() - 1, description, Qt.ToolTipRole)
        if self._recent:
            self.choice.insertSeparator(self.choice.count())
        for path in self._recent:
            self.choice.addItem(_short(path), path)
            self.choice.setItemData(self.choice.count() - 1, path, Qt.ToolTipRole)
        if self._too_large and self.choice.findData(self._too_large) < 0:   # offered Prepare: not a corpus yet
            self.choice.addItem(f"{_short(self._too_large)} (not prepared)", self._too_large)
            self.choice.setItemData(self.choice.count() - 1, self._too_large, Qt.ToolTipRole)
        index = self.choice.findData(self._too_large or self.spec())
        self.choice.setCurrentIndex(max(index, 0))
        self.choice.blockSignals(False)

    @Slot(int)
    def _on_choice(self, index: int) -> None:
        spec = self.choice.itemData(index)
        if spec and self._too_large:
            if spec == self._too_large:
                return
            if spec == self.spec():   # back to the corpus in use
                self._drop_offer()
                self._fill_choices()
                self.loading_changed.emit(False)
                return
        if spec and spec != self.spec():
            self.load(spec)
        elif spec and self.is_loading():   # back to the corpus in use: the pending load's answer is dropped
            self._wanted = None
            self.loading.hide()
            self.loading_changed.emit(False)

    @Slot()
    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a text file", "", "Text files (*.txt *.md *.py);;All files (*)")
        if path:
            self.load(path)

    @Slot()
    def _open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of text files")
        if path:
            self.load(path)


def _short(spec: str) -> str:
    """A file's or folder's name, or the built-in spec as it is."""
    return spec.rstrip("/").rsplit("/", 1)[-1] or spec
