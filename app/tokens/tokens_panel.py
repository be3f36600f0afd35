"""The Tokens tab: what the tokenizer does to the corpus. It builds the tokenizer the training form describes (or
takes the current model's own) on a background job and shows the vocabulary size, tokens per split, compression,
<unk> share, the corpus start with every token boundary visible, the vocabulary by frequency, and for BPE the merges
in learned order and how a typed word is built up from its bytes, merge by merge. A box takes any text and shows its
tokens as you type.

The Qt-free work (spans, counts, the BPE replay) is `engine.tokenizers.inspect`; this file only draws it."""
from __future__ import annotations

from dataclasses import replace
from html import escape

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QTextCharFormat
from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QSplitter, QTabWidget, QTextEdit, QVBoxLayout, QWidget)

from engine.corpus import VAL_FRACTION
from engine.errors import PlaygroundError
from engine.tokenizers.inspect import (BPEReplay, TokensResult, TokenSpan, TokenStats, analyse, bpe_replay, readable,
                                       token_spans)

from app.common.jobs import JobRunner
from app.common.model_source import ModelSource
from app.common.worker_process import in_worker_process, stop_worker_process
from app.common.token_view import PREVIEW_CHARS, SELECTED_BACKGROUND, TOKEN_BACKGROUNDS, TokenView, display_form
from app.tokens.bpe_curve_view import BPECurveView
from app.tokens.rows_table import RowsModel, table

FORM, MODEL = "the form's settings", "the current model's tokenizer"
UNK_COLOR = QColor("#b00020")
GAP_COLOR = QColor("#9a9a9a")
MAX_REPLAYED = 24          # pre-tokens replayed for the typed text; a long paste would make a wall of steps
ERROR_STYLE = "color: #b00020;"
PIECE_BACKGROUNDS = ("#c5dbf8", "#f8d8b0")   # stronger than the token views': a row of bytes is short
class TokenPreview(TokenView):
    """A TokenView over a given text: each token on its alternating background, the spaces a word tokenizer skips
    left plain between them, <unk> tokens in red. Hover shows the token's id and string."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewport().setCursor(Qt.IBeamCursor)

    def show_spans(self, text: str, spans: list[TokenSpan], tips: list[str], unk_id: int | None = None) -> None:
        self.clear_tokens()
        cursor = self._cursor_at_end()
        cursor.beginEditBlock()
        gap = QTextCharFormat()
        gap.setForeground(GAP_COLOR)
        pos, shade = 0, 0
        for span, tip in zip(spans, tips):
            if span.start > pos:
                cursor.insertText(display_form(text[pos:span.start]), gap)
            fmt = QTextCharFormat()
            fmt.setBackground(TOKEN_BACKGROUNDS[shade % 2])
            shade += span.end > span.start   # empty spans (part of a character) must not break the alternation
            fmt.setForeground(UNK_COLOR if span.id == unk_id else QColor("#111111"))
            piece = text[span.start:span.end]
            self._starts.append(cursor.position())
            cursor.insertText(display_form(piece), fmt)
            self._ends.append(cursor.position())
            self._tips.append(tip)
            self._texts.append(piece)
            pos = max(pos, span.end)
        if pos < len(text):
            cursor.insertText(display_form(text[pos:]), gap)
        cursor.endEditBlock()
        # the view's own text cursor moved along with every insertion at its position, so it sits at the end; a
        # view filled while hidden (the "Size vs length" tab) scrolled to it when shown. Back to the top.
        top = self.textCursor()
        top.setPosition(0)
        self.setTextCursor(top)
        self.verticalScrollBar().setValue(0)


def pieces_html(parts: tuple[str, ...], merged: str | None = None) -> str:
    """Byte-level pieces as coloured boxes (as the token views draw tokens); the piece just merged in yellow."""
    out = []
    for k, p in enumerate(parts):
        colour = SELECTED_BACKGROUND.name() if p == merged else PIECE_BACKGROUNDS[k % 2]
        out.append(f'<span style="background-color:{colour}">{escape(readable(p))}</span>')
    return "".join(out)


def replay_html(replays: list[BPEReplay]) -> str:
    rows = []
    for r in replays[:MAX_REPLAYED]:
        rows.append(f'<tr><td colspan="3"><b>{escape(readable("".join(r.start)))}</b> '
                    f'<span style="color:#666">— {len(r.start)} bytes, {len(r.steps)} merges, '
                    f'{len(r.ids)} token(s)</span></td></tr>')
        rows.append(f'<tr><td>bytes</td><td></td><td>{pieces_html(r.start)}</td></tr>')
        for s in r.steps:
            merge = f"{escape(readable(s.pair[0]))} + {escape(readable(s.pair[1]))}"
            rows.append(f'<tr><td>merge #{s.rank + 1:,}</td><td>{merge}</td>'
                        f'<td>{pieces_html(s.parts, s.pair[0] + s.pair[1])}</td></tr>')
        ids = " ".join(str(i) for i in r.ids)
        rows.append(f'<tr><td>ids</td><td></td><td><b>{ids}</b></td></tr><tr><td colspan="3"></td></tr>')
    more = (f"<p>… and {len(replays) - MAX_REPLAYED} more pieces, not shown.</p>"
            if len(replays) > MAX_REPLAYED else "")
    return (f'<table cellspacing="0" cellpadding="2" style="font-family:DejaVu Sans Mono">{"".join(rows)}</table>'
            f"{more}")


class TokensPanel(QWidget):
    def __init__(self, source: ModelSource, train_panel, parent: QWidget | None = None):
        super().__init__(parent)
        self.source, self.form = source, train_panel
        self.result: TokensResult | None = None
        self.jobs = JobRunner(self)
        self._request = 0
        self._key = None            # the settings the shown result was made from
        self._shown = ""            # what it is, for the line that says it is out of date: "char on <corpus>"

        self.which = QComboBox()
        self.which.addItems([FORM, MODEL])
        self.which.setToolTip("Tokenize the corpus with a tokenizer built from the training form's settings, or "
                              "with the tokenizer of the model being trained or loaded.")
        self.tokenize_btn = QPushButton("Tokenize")
        self.tokenize_btn.setToolTip("Build the tokenizer (BPE learns its merges now) and tokenize the corpus.")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        self.about = QLabel()
        self.about.setStyleSheet("color: #333;")
        self.about.setWordWrap(True)   # a model's description is long: wrapped, it cannot widen the window
        top = QHBoxLayout()
        top.addWidget(QLabel("Tokenizer:"))
        top.addWidget(self.which)
        top.addWidget(self.tokenize_btn)
        top.addWidget(self.busy)
        top.addWidget(self.about, 1)
        self.stats_label = QLabel("Press Tokenize to see what the tokenizer makes of the corpus.")
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextFormat(Qt.RichText)
        self.stats_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.hide()

        self.preview = TokenPreview()
        # a group box is at least as wide as its title: a short one lets the tables beside it have half the width
        preview_box = QGroupBox("Corpus start, one background per token")
        preview_box.setToolTip(f"The corpus's first {PREVIEW_CHARS:,} characters, tokenized.")
        QVBoxLayout(preview_box).addWidget(self.preview)
        self.try_text = QPlainTextEdit(" tokenization")
        self.try_text.setPlaceholderText("Type any text to see its tokens")
        self.try_text.setMaximumHeight(52)
        self.try_view = TokenPreview()
        self.try_ids = QLabel()
        self.try_ids.setWordWrap(True)
        self.try_ids.setTextFormat(Qt.PlainText)
        self.try_ids.setTextInteractionFlags(Qt.TextSelectableByMouse)
        try_box = QGroupBox("Try it: type text, see its tokens")
        tl = QVBoxLayout(try_box)
        tl.addWidget(self.try_text)
        tl.addWidget(self.try_view, 1)
        tl.addWidget(self.try_ids)
        left = QSplitter(Qt.Vertical)
        left.addWidget(preview_box)
        left.addWidget(try_box)
        left.setSizes([700, 200])

        self.vocab_model = RowsModel(("rank", "token", "id", "count", "share"), self)
        self.merge_model = RowsModel(("#", "left", "right", "→ token", "id", "count in train"), self)
        self.unk_model = RowsModel(("word mapped to <unk>", "count", "share of <unk>"), self)
        self.replay = QTextEdit(readOnly=True)
        self.replay.setLineWrapMode(QTextEdit.NoWrap)
        build = QWidget()
        bl = QVBoxLayout(build)
        bl.setContentsMargins(0, 0, 0, 0)
        how = QLabel("How the text typed in “Try it” is built: each piece (a word with its leading space ␣, or a run "
                     "of punctuation) starts as bytes; the earliest-learned pair of neighbours is merged, again and "
                     "again, until no learned pair is left. Below, every merge in the order it was learned; its "
                     "count is how often the merged token is left in the tokenized train split (a token later "
                     "merged into longer ones can be left 0 times). A vocabulary of 256 is the bytes alone: no "
                     "merges.")
        how.setWordWrap(True)
        bl.addWidget(how)
        bl.addWidget(self.replay, 1)
        bpe_split = QSplitter(Qt.Vertical)
        bpe_split.addWidget(build)
        bpe_split.addWidget(table(self.merge_model, 3))
        self.right = QTabWidget()
        # short tab titles, so the four fit the panel's half at 1280x800 without scroll arrows; tooltips say more
        self.right.addTab(table(self.vocab_model, 1), "Vocabulary")
        self.right.setTabToolTip(0, "Every token, by how often it occurs in the tokenized train split.")
        self.right.addTab(bpe_split, "Merges")
        self.unk_about = QLabel()
        self.unk_about.setWordWrap(True)
        self.unk_about.setTextFormat(Qt.PlainText)   # '<unk>' is text here, not a tag
        unk_page = QWidget()
        ul = QVBoxLayout(unk_page)
        ul.setContentsMargins(0, 0, 0, 0)
        ul.addWidget(self.unk_about)
        ul.addWidget(table(self.unk_model, 0), 1)
        self.right.addTab(unk_page, "<unk> words")
        self.curve = BPECurveView(TokenPreview())
        self.right.addTab(self.curve, "Size vs length")

        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(self.right)
        split.setSizes([1000, 1000])   # the merges table's six columns need half of a 1280-wide window
        root = QVBoxLayout(self)
        root.addLayout(top)
        root.addWidget(self.stats_label)
        root.addWidget(self.message)
        root.addWidget(split, 1)

        self.tokenize_btn.clicked.connect(self.tokenize)
        self.which.currentTextChanged.connect(self._describe)
        self.try_text.textChanged.connect(self._show_try)
        self.source.changed.connect(self._describe)
        self.form.corpus_box.loaded.connect(self._describe)
        self.form.tokenizer.currentTextChanged.connect(self._describe)
        f = self.form
        for signal in (f.word_cap.valueChanged, f.word_lower.toggled, f.bpe_vocab.valueChanged):
            signal.connect(self._describe)
        self._show_kind(None)
        self._describe()

    # -- what to tokenize -----------------------------------------------------------------------------------
    def _settings(self) -> tuple:
        corpus = self.form.corpus_box.corpus
        spec = corpus.source if corpus is not None else ""
        if self.which.currentText() == MODEL:   # a model keeps its tokenizer while it trains; a new one is rare
            return MODEL, spec
        return FORM, spec, self.form.tokenizer.currentText(), tuple(sorted(self.form.tokenizer_options().items()))

    def _describe(self, *_) -> None:
        corpus = self.form.corpus_box.corpus
        name = corpus.name if corpus is not None else "no corpus yet"
        if self.which.currentText() == MODEL:
            what = f"model: {self.source.describe()}"
        else:
            what = options_text(self.form.tokenizer.currentText(), self.form.tokenizer_options())
        stale = self.result is not None and self._settings() != self._key
        hint = f" — changed since; shown: {self._shown}. Press Tokenize" if stale else ""
        self.stats_label.setEnabled(not stale)   # greyed: the figures are the shown result's, not these settings'
        self.about.setText(f"{what} on {name}" + (" — tokenizing…" if not self.busy.isHidden() else hint))

    def tokenize(self) -> None:
        corpus = self.form.corpus_box.corpus
        if corpus is None:
            self.show_message("No corpus is loaded yet: pick one in the training panel.")
            return
        key = self._settings()
        if self.which.currentText() == MODEL:
            tok = self.source.tokenizer()   # no weight snapshot: only the tokenizer is needed
            if tok is None:
                self.show_message("There is no model yet: train one or load a checkpoint, or use the form's settings.")
                return
            counted = in_worker_process(analyse, corpus.text, f"the model's {tok.kind} tokenizer", VAL_FRACTION,
                                        tokenizer=tok, preview_chars=PREVIEW_CHARS)
            job = lambda: replace(counted(), tokenizer=tok)   # noqa: E731 — the model's own object, not a copy
        else:
            kind, options = self.form.tokenizer.currentText(), self.form.tokenizer_options()
            job = in_worker_process(analyse, corpus.text, kind, VAL_FRACTION, kind=kind, options=options,
                                    preview_chars=PREVIEW_CHARS)
        self._request += 1
        request = self._request
        self._set_busy(True)
        self.show_message("")
        shown = corpus.name
        self.jobs.run(job, lambda r: self._done(request, key, r, shown), lambda m: self._failed(request, m))

    def _set_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        self.tokenize_btn.setEnabled(not busy)
        self.tokenize_btn.setText("Tokenizing…" if busy else "Tokenize")
        self._describe()

    def _failed(self, request: int, message: str) -> None:
        if request == self._request:
            self._set_busy(False)
            self.show_message(f"Could not tokenize the corpus: {message}")

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # -- showing a result -----------------------------------------------------------------------------------
    def _done(self, request: int, key: tuple, result: TokensResult, corpus_name: str) -> None:
        if request != self._request:
            return
        self.result, self._key, self._shown = result, key, f"{result.label} on {corpus_name}"
        self._set_busy(False)
        self.show_message("")
        tok, s = result.tokenizer, result.stats
        # a token's rank is 1 + how many tokens are more frequent: once here, not once per hovered span
        self._ranks = np.searchsorted(np.sort(-s.counts), -s.counts, side="left") + 1
        self.stats_label.setText(stats_html(s))
        self.preview.show_spans(result.preview, result.spans, [self._tip(sp.id) for sp in result.spans],
                                0 if tok.kind == "word" else None)
        total = max(s.train_tokens, 1)
        self.vocab_model.set_rows(tok.vocab_size, lambda r: (r + 1, tok.token_str(int(s.order[r])), int(s.order[r]),
                                                             int(s.counts[s.order[r]]),
                                                             float(s.counts[s.order[r]] / total)))
        merges = tok.merges() if tok.kind == "bpe" else []
        ids = [tok.tok.token_to_id(a + b) for a, b in merges]
        self.merge_model.set_rows(len(merges), lambda r: (r + 1, readable(merges[r][0]), readable(merges[r][1]),
                                                          readable(merges[r][0] + merges[r][1]), ids[r],
                                                          int(s.counts[ids[r]])))
        unk = max(s.unk_train, 1)
        self.unk_model.set_rows(len(s.unk_words), lambda r: (s.unk_words[r][0], s.unk_words[r][1],
                                                             s.unk_words[r][1] / unk))
        shown = (f"the {len(s.unk_words):,} most frequent of {s.unk_distinct:,}"
                 if s.unk_distinct > len(s.unk_words) else f"all {s.unk_distinct:,}")
        cap = " A larger cap in the form keeps more of them." if self._key and self._key[0] == FORM else ""
        self.unk_about.setText(f"Words of the train split left out of the {tok.vocab_size - 1:,}-word vocabulary "
                               f"(id 0 is <unk>), {shown}: each of their {s.unk_train:,} occurrences encodes as "
                               f"<unk>, so the model never sees them.{cap}")
        self._show_kind(tok.kind)
        self.curve.show_result(result)
        self._show_try()
        self._describe()

    def _tip(self, i: int) -> str:
        tok, s = self.result.tokenizer, self.result.stats
        rank = int(self._ranks[i])
        unk = "\n<unk>: a word outside the vocabulary" if tok.kind == "word" and i == 0 else ""
        return (f"id {i}   '{tok.token_str(i)}'\n{int(s.counts[i]):,}× in the train split "
                f"(rank {rank:,} of {tok.vocab_size:,}){unk}")

    def _show_kind(self, kind: str | None) -> None:
        self.right.setTabEnabled(1, kind == "bpe")
        self.right.setTabEnabled(2, kind == "word")
        self.right.setTabEnabled(3, kind == "bpe")
        self.right.setTabToolTip(1, "The BPE merges, in the order they were learned." if kind == "bpe"
                                 else "Only a BPE tokenizer learns merges.")
        self.right.setTabToolTip(2, "The words the word tokenizer maps to <unk>." if kind == "word"
                                 else "Only a word tokenizer maps words to <unk>.")
        self.right.setTabToolTip(3, "BPE vocabulary sizes against the tokens each makes of the text." if kind == "bpe"
                                 else "Only for a BPE tokenizer.")
        if not self.right.isTabEnabled(self.right.currentIndex()):
            self.right.setCurrentIndex(0)

    def _show_try(self) -> None:
        """Tokenize the typed text on the GUI thread: it is short, and the tokenizer is already built."""
        if self.result is None:
            self.try_ids.setText("Tokenize first: the tokens appear here as you type.")
            return
        tok, text = self.result.tokenizer, self.try_text.toPlainText()
        try:
            spans = token_spans(tok, text)
        except PlaygroundError as e:
            self.try_view.clear_tokens()
            self.try_ids.setStyleSheet(ERROR_STYLE)
            why = (f" A char tokenizer knows only the {tok.vocab_size} characters of the text it was built from, so "
                   "it has no id for these and cannot encode this text (a word tokenizer maps unknown words to "
                   "<unk>; byte-level BPE falls back to bytes).") if "not in the vocabulary" in str(e) else ""
            self.try_ids.setText(f"{e}.{why}")
            self.replay.clear()
            return
        self.try_view.show_spans(text, spans, [self._tip(sp.id) for sp in spans],
                                 0 if tok.kind == "word" else None)
        self.try_ids.setStyleSheet("")
        ids = " ".join(str(sp.id) for sp in spans)
        unk = sum(sp.id == 0 for sp in spans) if tok.kind == "word" else 0
        unk_note = f", {unk} of them <unk> (red)" if unk else ""
        self.try_ids.setText(f"{len(spans)} token(s){unk_note}, {len(text)} character(s). ids: {ids}")
        if tok.kind == "bpe":
            self.replay.setHtml(replay_html(bpe_replay(tok, text)))

    # -- closing --------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:   # the panel on its own (the main window calls shutdown itself)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """End a running count at once, by ending the worker process (a BPE count of a 30 MB corpus took about a
        minute), then wait for its thread, which a QThread must not outlive."""
        if self.jobs.active():
            stop_worker_process()
        self.jobs.wait()
        self.curve.shutdown()


def options_text(kind: str, options: dict) -> str:
    if kind == "word":
        cap = options.get("vocab_size")
        return (f"word ({f'cap {cap:,} words' if cap else 'no cap'}"
                f"{', lowercased' if options.get('lowercase') else ''})")
    return f"bpe (vocab {options['vocab_size']:,})" if kind == "bpe" else kind


def stats_html(s: TokenStats) -> str:
    seen = int((s.counts > 0).sum())
    parts = [f"vocabulary <b>{s.vocab_size:,}</b> ({seen:,} used in train)",
             f"train <b>{s.train_tokens:,}</b> tokens from {s.train_chars:,} characters",
             f"validation <b>{s.val_tokens:,}</b> tokens",
             f"<b>{s.chars_per_token:.2f}</b> characters per token"]
    if s.kind == "word":
        parts.append(f"&lt;unk&gt; <b>{s.unk_fraction:.2%}</b> of train tokens, {s.unk_val_fraction:.2%} of validation")
    return " · ".join(parts)
