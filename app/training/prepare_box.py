"""The corpus box's offer for a corpus over the in-memory limit: prepare it once into token files on disk
(engine/prepare.py, as `main.py prepare` does) and train from them. A row with the reason, a Prepare button naming
the tokenizer it will use, and, while preparing, a progress bar and Cancel. The work runs on its own thread
(app/common/workers.py); the engine reports progress through a callback and checks a cancel flag after every chunk
of ~8 MB, so Cancel takes effect once the chunk in hand is done (a fraction of a second for char tokens, a few
seconds for word or BPE tokens) and leaves nothing behind. Every text here wraps, a long path anywhere, so no
message widens the panel."""
from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QPushButton, QWidget

from engine.errors import BadUtf8Error, PlaygroundError

from app.common.workers import error_message, start_worker

log = logging.getLogger(__name__)

STEPS = 1000   # the progress bar's resolution
# how fast a prepare goes, MB of text a second, measured 2026-11-30 on the project's shared 2-core machine (main.py
# prepare on 50-200 MB texts): char 31-46, word 1.7-2.0, BPE 0.24. The offer's estimate uses the low ends.
SPEED_MB_S = {"char": (31, 46), "word": (1.7, 2.0), "bpe": (0.24, 0.24)}
ZWSP = "\u200b"   # a zero-width space: where a line may break inside a word
LONG_RUN = 24     # characters of a run without spaces after which a break is allowed


def breakable(text: str) -> str:
    """`text` with zero-width spaces after each / and \\ and inside every run of more than LONG_RUN characters
    without a space, so a word-wrapping QLabel can break a long path anywhere instead of widening its panel."""
    out = []
    for word in text.split(" "):
        word = word.replace("/", "/" + ZWSP).replace("\\", "\\" + ZWSP)
        pieces = word.split(ZWSP)
        word = ZWSP.join(ZWSP.join(p[i:i + LONG_RUN] for i in range(0, len(p), LONG_RUN)) or p for p in pieces)
        out.append(word)
    return " ".join(out)


def plain(text: str) -> str:
    """breakable()'s text as it was (for tooltips and tests)."""
    return text.replace(ZWSP, "")


def speed_note(kind: str, size_bytes: int | None) -> str:
    """The offer's words on how long a prepare takes with `kind` tokens (SPEED_MB_S)."""
    lo, hi = SPEED_MB_S.get(kind, SPEED_MB_S["bpe"])
    rate = f"about {lo:g}–{hi:g} MB/s" if hi != lo else f"about {lo:g} MB/s"
    if not size_bytes:
        return f"{kind} tokens are prepared at {rate} on a 2-core CPU"
    seconds = size_bytes / 1e6 / lo
    took = (f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{seconds / 60:.0f} minutes" if seconds >= 90
            else "a second" if seconds < 1.5 else f"{seconds:.0f} seconds")
    return f"{kind} tokens are prepared at {rate} on a 2-core CPU: up to about {took} for this corpus"


class PrepareWorker(QObject):
    """engine.prepare.prepare on its own thread; progress as (fraction, stage), the result as meta.json's dict."""
    progress = Signal(float, str)
    done = Signal(object)
    failed = Signal(str, str)    # the reason ("" when it was cancelled) and "bad_utf8" when bytes were not UTF-8
    finished = Signal()

    def __init__(self, spec: str, kind: str, options: dict, out, on_bad_utf8: str):
        super().__init__()
        self.spec, self.kind, self.options, self.out, self.on_bad_utf8 = spec, kind, options, out, on_bad_utf8
        self.cancel_flag = threading.Event()

    @Slot()
    def run(self) -> None:
        from engine.prepare import Cancelled, prepare
        try:
            meta = prepare(self.spec, self.kind, self.out, tokenizer_options=self.options,
                           on_bad_utf8=self.on_bad_utf8, progress=self.progress.emit,
                           cancel=self.cancel_flag.is_set)
            self.done.emit(dict(meta, out=str(self.out)))
        except Cancelled:
            self.failed.emit("", "")   # "" = cancelled
        except Exception as e:  # noqa: BLE001 — shown in the box; the window keeps running
            if not isinstance(e, PlaygroundError):
                log.exception("preparing %s failed", self.spec)
            self.failed.emit(error_message(e), "bad_utf8" if isinstance(e, BadUtf8Error) else "")
        finally:
            self.finished.emit()


class PreparePanel(QWidget):
    """The offer and the progress of one prepare. `start_requested` asks the corpus box to start (it knows the
    corpus, the tokenizer the form has chosen and where prepared folders go)."""
    start_requested = Signal()
    prepared = Signal(object)     # meta.json's dict with "out": the folder
    failed = Signal(str)
    running_changed = Signal(bool)   # a prepare started (True) or its thread ended (False)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.PlainText)
        self.prepare_button = QPushButton("Prepare")
        self.prepare_button.setToolTip("Tokenize the corpus once, streaming it in chunks, into token files on disk; "
                                       "training then reads windows from them (memory-mapped), so any size fits.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop preparing; nothing is kept.")
        self.bar = QProgressBar(minimum=0, maximum=STEPS)
        self.bar.setFormat("%p%")
        self.stage = QLabel()
        self.stage.setTextFormat(Qt.PlainText)
        self.stage.setWordWrap(True)
        self.stage.setTextInteractionFlags(Qt.TextSelectableByMouse)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.label, 0, 0, 1, 3)
        grid.addWidget(self.bar, 1, 0)
        grid.addWidget(self.prepare_button, 1, 1)
        grid.addWidget(self.cancel_button, 1, 2)
        grid.addWidget(self.stage, 2, 0, 1, 3)
        grid.setColumnStretch(0, 1)
        self._thread: QThread | None = None
        self._worker: PrepareWorker | None = None
        self._reason, self._size = "", None
        self.prepare_button.clicked.connect(self.start_requested)
        self.cancel_button.clicked.connect(self.cancel)
        self._show_running(False)
        self.hide()

    def offer(self, reason: str, kind: str, size_bytes: int | None = None) -> None:
        """Show why the corpus cannot be loaded into memory and what Prepare will do with `kind` tokens (the
        form's tokenizer; size_bytes: the corpus's size, for the time it takes)."""
        self._reason, self._size = reason, size_bytes
        self.set_kind(kind)
        self.set_message("")
        self.bar.setValue(0)
        self._show_running(False)
        self.show()

    def set_kind(self, kind: str) -> None:
        """The tokenizer Prepare will use changed (the form's choice): the text and the button say so."""
        text = (f"{self._reason}. Too large to hold in memory, it can be prepared once as {kind} token files on disk "
                f"(streamed; {speed_note(kind, self._size)}) and trained from them. Start waits until it is "
                f"prepared.")
        self.label.setText(breakable(text))
        self.label.setToolTip(text)
        self.prepare_button.setText(f"Prepare ({kind} tokens)")

    def set_message(self, text: str) -> None:
        """The line under the bar: a stage, or why a prepare failed (wrapped; a long path breaks anywhere)."""
        self.stage.setText(breakable(text))
        self.stage.setToolTip(text if len(text) > 80 else "")

    def message(self) -> str:
        return plain(self.stage.text())

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, spec: str, kind: str, options: dict, out, on_bad_utf8: str) -> None:
        if self._thread is not None:
            return
        self._worker = PrepareWorker(spec, kind, options, out, on_bad_utf8)
        self._worker.progress.connect(self._on_progress, Qt.QueuedConnection)
        self._worker.done.connect(self._on_done, Qt.QueuedConnection)
        self._worker.failed.connect(self._on_failed, Qt.QueuedConnection)
        self._worker.finished.connect(self._on_finished, Qt.QueuedConnection)
        self.bar.setValue(0)
        self.set_message("starting…")
        self._show_running(True)
        self._thread = start_worker(self._worker, "prepare")
        self.running_changed.emit(True)

    @Slot()
    def cancel(self) -> None:
        """Ask the running prepare to stop (after its current chunk); does not wait."""
        if self._worker is not None:
            self._worker.cancel_flag.set()
            self.set_message("cancelling…")
            self.cancel_button.setEnabled(False)

    def shutdown(self) -> None:
        """Cancel and wait (the window is closing)."""
        if self._thread is not None:
            self._worker.cancel_flag.set()
            self._thread.wait()
            self._thread = self._worker = None

    def _show_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.prepare_button.setVisible(not running)

    @Slot(float, str)
    def _on_progress(self, fraction: float, stage: str) -> None:
        self.bar.setValue(int(round(fraction * STEPS)))
        self.set_message(stage)

    @Slot(object)
    def _on_done(self, meta: dict) -> None:
        self.hide()
        self.prepared.emit(meta)

    @Slot(str, str)
    def _on_failed(self, message: str, why: str) -> None:
        self._show_running(False)
        if why == "bad_utf8":
            message += ". Tick “replace bad bytes” above to read such bytes as U+FFFD (�), then Prepare again"
        self.set_message(f"Could not prepare: {message}" if message else "Cancelled: nothing was kept.")
        if message:
            self.failed.emit(message)

    @Slot()
    def _on_finished(self) -> None:
        if self._thread is not None:
            self._thread.wait()
        self._thread = self._worker = None
        self.running_changed.emit(False)


def prepared_view(folder, preview_chars: int):
    """What the corpus box shows for a prepared folder, read on the GUI thread (meta.json, the tokenizer and the
    first few thousand tokens: milliseconds): (engine.data.PreparedData, a Corpus whose text is only the start of
    the corpus, decoded, for the preview and the Tokens tab, the start of the validation text, the summary as
    HTML, distinct characters or vocabulary size). CorpusError when the folder is not a complete prepare."""
    from html import escape

    import numpy as np

    from engine.corpus import Corpus
    from engine.data import load_prepared
    data = load_prepared(folder)
    meta, tok = data.meta, data.tokenizer
    n_tokens = max(1, preview_chars // max(1, int(meta["train"]["chars_per_token"] or 1)))
    text = tok.decode(np.asarray(data.train[:n_tokens]).tolist())[:preview_chars]
    val_text = tok.decode(np.asarray(data.val[:n_tokens]).tolist())
    chars = data.train_chars + data.val_chars
    corpus = Corpus(f"{data.name} (prepared; the first {len(text):,} characters shown)", text,
                    str(meta.get("source") or data.folder),
                    tuple(tuple(s) for s in meta.get("skipped") or () if isinstance(s, list) and len(s) == 2))
    vf = float(meta.get("val_fraction", 0.1))
    summary = (f"<b>{escape(data.name)}</b> · prepared, trains from disk<br>"
               f"{chars:,} characters<br>train {len(data.train):,} · validation {len(data.val):,} tokens "
               f"(the last {vf:.0%})<br>{tok.kind} tokens, vocabulary {tok.vocab_size:,}, "
               f"{meta['train']['chars_per_token']:.2f} characters per token")
    vocab = tok.vocab_size if tok.kind == "char" else len(set(text))
    return data, corpus, val_text, summary, vocab
