"""The corpus part of the training panel: built-in corpora, Open file / Open folder, a recent list, a summary
(characters, distinct characters, train/val split) and a preview. A corpus that fails to load shows the engine's
one-line reason here and the previous corpus stays selected, so a bad file never leaves the app without text."""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPlainTextEdit, QPushButton, QWidget)

from engine.corpus import BUILTIN_CORPORA, BUILTIN_PREFIX, Corpus, load_corpus, split_text
from engine.errors import PlaygroundError

MAX_RECENT = 8
PREVIEW_CHARS = 3000
VAL_FRACTION = 0.1


class CorpusBox(QGroupBox):
    loaded = Signal(object)   # the new Corpus

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Corpus", parent)
        self.corpus: Corpus | None = None
        self.vocab_chars = 0           # distinct characters of the loaded corpus
        self._recent: list[str] = []

        self.choice = QComboBox()
        self.choice.setToolTip("The text the model learns from: a built-in corpus or one you opened recently.")
        self.choice.setMinimumContentsLength(18)
        self.choice.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        open_file = QPushButton("Open file…")
        open_file.setToolTip("Load a UTF-8 .txt file (you can also drop files onto the window).")
        open_folder = QPushButton("Open folder…")
        open_folder.setToolTip("Load every text file in a folder, concatenated in sorted path order.")
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
        grid.addWidget(self.error, 2, 0)
        grid.addWidget(self.summary, 3, 0)
        grid.addWidget(self.preview, 4, 0)

        open_file.clicked.connect(self._open_file)
        open_folder.clicked.connect(self._open_folder)
        self.choice.activated.connect(self._on_choice)
        self._fill_choices()

    # -- state -----------------------------------------------------------------------------------------------
    def spec(self) -> str:
        return self.corpus.source if self.corpus is not None else ""

    def recent(self) -> list[str]:
        return list(self._recent)

    def set_recent(self, paths: list[str]) -> None:
        self._recent = [p for p in paths if p and not p.startswith(BUILTIN_PREFIX)][:MAX_RECENT]
        self._fill_choices()

    def validation_text(self) -> str:
        return split_text(self.corpus.text, VAL_FRACTION)[1] if self.corpus is not None else ""

    # -- loading ---------------------------------------------------------------------------------------------
    def load(self, spec: str) -> bool:
        """Load and show `spec`; on failure show why and keep the previous corpus."""
        try:
            corpus = load_corpus(spec)
            train, val = split_text(corpus.text, VAL_FRACTION)
        except PlaygroundError as e:
            self.error.setText(f"Could not load {spec}: {e}")
            self.error.show()
            self._fill_choices()   # put the combo back on the corpus still in use
            return False
        self.clear_error()
        self.corpus = corpus
        self.vocab_chars = len(set(corpus.text))
        if not spec.startswith(BUILTIN_PREFIX):
            self._recent = [corpus.source] + [p for p in self._recent if p != corpus.source]
            del self._recent[MAX_RECENT:]
        self._fill_choices()
        self.summary.setText(
            f"<b>{escape(corpus.name)}</b><br>{len(corpus.text):,} characters, {self.vocab_chars:,} distinct<br>"
            f"train {len(train):,} · validation {len(val):,} (the last {VAL_FRACTION:.0%})")
        self.summary.setToolTip(corpus.source)
        self.preview.setPlainText(corpus.text[:PREVIEW_CHARS])
        self.loaded.emit(corpus)
        return True

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
            self.choice.addItem(path.rsplit("/", 1)[-1] or path, path)
            self.choice.setItemData(self.choice.count() - 1, path, Qt.ToolTipRole)
        index = self.choice.findData(self.spec())
        self.choice.setCurrentIndex(max(index, 0))
        self.choice.blockSignals(False)

    @Slot(int)
    def _on_choice(self, index: int) -> None:
        spec = self.choice.itemData(index)
        if spec and spec != self.spec():
            self.load(spec)

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
