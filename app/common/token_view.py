"""The generated text, one token at a time, with every token boundary visible.

`TokenView` is a read-only QTextEdit: the prompt in grey italics, generated tokens on alternating subtle backgrounds
(so you can see where the tokenizer cut the text), a hover tooltip with the token's probability and rank, and a click
that reports which token was picked (the panel then shows that step's distribution). Newlines are drawn as a visible
"↵" before the line break, otherwise a newline token would be an invisible, unclickable zero-width slot.

`SampleView` adds the DecodeEvents behind the tokens: sampling streams one token per event; beam search shows the
leading hypothesis while it runs (it can switch branches, so the text is redrawn) and the answer at the end."""
from __future__ import annotations

import bisect
import math
import os

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit, QToolTip, QWidget

from engine.decode import DecodeConfig, DecodeEvent

PREVIEW_CHARS = 3000   # how much of a corpus the training form and the Tokens tab show as its start

TOKEN_BACKGROUNDS = (QColor("#dbe8fb"), QColor("#fbe7cf"))  # alternating, subtle enough to read through
SELECTED_BACKGROUND = QColor("#ffd84d")
PROMPT_COLOR = QColor("#6b6b6b")


def token_label(token: str) -> str:
    """A token as a label (chart axis, table cell, heatmap edge, tooltip): whitespace made visible as the text view
    draws it, a newline as ↵ and a tab as →, whether it comes as a character or as the tokenizers' token_str
    escape ("\\n"), and a space as ␣. One function, so every tab shows a newline the same way."""
    shown = token.replace("\\n", "↵").replace("\\t", "→")
    return shown.replace(" ", "␣").replace("\n", "↵").replace("\t", "→")


def display_form(text: str) -> str:
    """How a token is drawn: line breaks get a visible mark, tabs too; everything else as is."""
    return text.replace("\t", "→\t").replace("\n", "↵\n")


class TokenView(QTextEdit):
    """Prompt + generated tokens. `token_clicked(index)` fires with the index of the generated token under a click."""

    token_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setMouseTracking(True)
        self.viewport().setCursor(Qt.PointingHandCursor)
        font = QFont("DejaVu Sans Mono")
        font.setStyleHint(QFont.Monospace)
        font.setPointSize(11)
        self.document().setDefaultFont(font)
        self._starts: list[int] = []   # document position where each generated token starts
        self._ends: list[int] = []
        self._tips: list[str] = []
        self._texts: list[str] = []
        self._prompt = ""
        self._selected: int | None = None

    # -- content -------------------------------------------------------------------------------------------
    def clear_tokens(self, prompt: str = "") -> None:
        self.clear()
        self._starts, self._ends, self._tips, self._texts = [], [], [], []
        self._selected = None
        self._prompt = prompt
        self.setExtraSelections([])
        if prompt:
            fmt = QTextCharFormat()
            fmt.setForeground(PROMPT_COLOR)
            fmt.setFontItalic(True)
            self._cursor_at_end().insertText(display_form(prompt), fmt)

    def append_tokens(self, items: list[tuple[str, str]]) -> None:
        """Append (token text, tooltip) pairs; one call per batch keeps streaming cheap."""
        cursor = self._cursor_at_end()
        cursor.beginEditBlock()
        for text, tip in items:
            fmt = QTextCharFormat()
            fmt.setBackground(TOKEN_BACKGROUNDS[len(self._texts) % 2])
            fmt.setForeground(QColor("#111111"))
            start = cursor.position()
            cursor.insertText(display_form(text), fmt)
            self._starts.append(start)
            self._ends.append(cursor.position())
            self._tips.append(tip)
            self._texts.append(text)
        cursor.endEditBlock()
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    def _extend_last(self, text: str) -> None:
        """Add text to the last token (in its colours): decoding gives the rest of a split character at the end."""
        cursor = self._cursor_at_end()
        fmt = QTextCharFormat()
        fmt.setBackground(TOKEN_BACKGROUNDS[(len(self._texts) - 1) % 2])
        fmt.setForeground(QColor("#111111"))
        cursor.insertText(display_form(text), fmt)
        self._ends[-1] = cursor.position()
        self._texts[-1] += text

    def _cursor_at_end(self) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        return cursor

    @property
    def prompt(self) -> str:
        return self._prompt

    @property
    def token_count(self) -> int:
        return len(self._texts)

    def generated_text(self) -> str:
        return "".join(self._texts)

    def token_text(self, index: int) -> str:
        return self._texts[index]

    # -- selection -----------------------------------------------------------------------------------------
    def select_token(self, index: int | None) -> None:
        """Outline one token (the one whose distribution the chart shows)."""
        self._selected = index
        if index is None:
            self.setExtraSelections([])
            return
        sel = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._starts[index])
        cursor.setPosition(self._ends[index], QTextCursor.KeepAnchor)
        sel.cursor = cursor
        sel.format.setBackground(SELECTED_BACKGROUND)
        sel.format.setFontWeight(QFont.Bold)
        self.setExtraSelections([sel])
        visible = QTextCursor(self.document())
        visible.setPosition(self._starts[index])
        self.setTextCursor(visible)  # no selection, so a later click still counts as a click
        self.ensureCursorVisible()

    @property
    def selected(self) -> int | None:
        return self._selected

    # -- hit testing ---------------------------------------------------------------------------------------
    def token_at(self, viewport_pos: QPoint) -> int | None:
        """Index of the generated token under a point in viewport coordinates, or None (prompt, margin)."""
        doc_pos = self.document().documentLayout().hitTest(
            viewport_pos + QPoint(self.horizontalScrollBar().value(), self.verticalScrollBar().value()),
            Qt.ExactHit)
        if doc_pos < 0:
            return None
        i = bisect.bisect_right(self._starts, doc_pos) - 1
        if i < 0 or doc_pos >= self._ends[i]:
            return None
        return i

    def token_center(self, index: int) -> QPoint:
        """Viewport point in the middle of a token's first character (for tests and for keyboard users)."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._starts[index])
        left = self.cursorRect(cursor)
        cursor.setPosition(self._starts[index] + 1)
        right = self.cursorRect(cursor)
        if right.top() != left.top():  # the token's first character ends a line (e.g. "↵")
            return QPoint(left.left() + 3, left.center().y())
        return QPoint((left.left() + right.left()) // 2, left.center().y())

    def viewportEvent(self, event) -> bool:
        if event.type() == QEvent.ToolTip:
            i = self.token_at(event.pos())
            if i is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self._tips[i], self.viewport())
            return True
        return super().viewportEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.LeftButton and not self.textCursor().hasSelection():
            i = self.token_at(event.position().toPoint())
            if i is not None:
                self.token_clicked.emit(i)


def _added(before: str, after: str) -> str:
    return after[len(os.path.commonprefix([before, after])):]


class SampleView(TokenView):
    """A TokenView fed with DecodeEvents; it keeps them so a click can show the step's distribution."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tokenizer = None
        self.beam = False
        self.events: list[DecodeEvent] = []        # token events, in order (beam: one per step)
        self.beam_steps: list[list] = []            # beam: per step, the BeamInfos reported (kept, finished, pruned)
        self.best_ids: tuple[int, ...] | None = None  # beam: the answer's token ids, once known
        self._path: tuple[int, ...] = ()            # beam: the token ids on display
        self._hyps: dict[tuple[int, ...], object] = {}

    def start(self, tokenizer, prompt: str, cfg: DecodeConfig) -> None:
        self.tokenizer, self.beam = tokenizer, cfg.strategy == "beam"
        self.events, self.beam_steps, self.best_ids = [], [], None
        self._path, self._hyps = (), {}
        self.clear_tokens(prompt)

    def add_events(self, events: list[DecodeEvent]) -> None:
        items = []
        for e in events:
            if e.done:
                if self.beam and self.beam_steps:
                    self.best_ids = self._best_ids(e)
                elif e.text and self._texts:  # the tail of a character split over BPE tokens, held back till now
                    self._extend_last(e.text)
                continue
            self.events.append(e)
            if self.beam:
                hyps = list(e.beams or []) + list(e.pruned or [])
                self.beam_steps.append(hyps)
                self._hyps.update((tuple(h.token_ids), h) for h in hyps)
            else:
                items.append((e.text, self._sample_tip(e)))
        if items:
            self.append_tokens(items)
        if self.beam and self.events:
            self._show_path(self.best_ids if self.best_ids is not None else tuple(self.events[-1].beams[0].token_ids))

    def _sample_tip(self, e: DecodeEvent) -> str:
        V = self.tokenizer.vocab_size
        return (f"{self.tokenizer.token_str(e.token_id)}   (step {e.step})\n"
                f"p = {e.prob:.4f} as drawn (after penalty, temperature, truncation)\n"
                f"p = {e.raw_prob:.4f} under the model\n"
                f"rank {e.rank + 1} of {V} (1 = most probable)")

    def _best_ids(self, final: DecodeEvent) -> tuple[int, ...]:
        """The answer is the best-scoring finished hypothesis (stopped early: finished or live), as engine.decode
        picks it; its text identifies it among equal scores."""
        finished = [h for step in self.beam_steps for h in step if not h.alive and h.finish != "pruned"]
        live = [h for h in self.beam_steps[-1] if h.alive]
        pool = finished + live if final.finish_reason == "stopped" else finished
        same = [h for h in pool if h.text == final.final_text] or pool
        return tuple(max(same, key=lambda h: h.score).token_ids)

    def _show_path(self, ids: tuple[int, ...]) -> None:
        """Redraw the text as the hypothesis `ids`, one token per step."""
        if ids == self._path:
            return
        self._path = ids
        self.clear_tokens(self._prompt)
        items, text, logprob = [], "", 0.0
        for t in range(1, len(ids) + 1):
            h = self._hyps[ids[:t]]
            p = math.exp(h.logprob - logprob)
            tip = (f"{self.tokenizer.token_str(ids[t - 1])}   (step {t})\n"
                   f"p = {p:.4f} under the model (after repetition penalty)\n"
                   f"hypothesis log-prob so far {h.logprob:.3f}, score {h.score:.3f}")
            # a byte-level BPE token can end inside a character ('\ufffd' until the next token completes it):
            # hold that back, as decode does when streaming, so the pieces add up to the hypothesis' text
            shown = h.text if t == len(ids) else h.text.rstrip("\ufffd")
            items.append((_added(text, shown), tip))
            text, logprob = shown, h.logprob
        self.append_tokens(items)

    def step_event(self, index: int) -> tuple[DecodeEvent, int, str]:
        """The event whose distribution lies behind token `index`, the token taken there, and a note when that
        distribution belongs to another branch (beam search reports only the leading hypothesis' distribution)."""
        e = self.events[index]
        if not self.beam:
            return e, e.token_id, ""
        lead = tuple(e.beams[0].token_ids)
        if lead[:-1] == self._path[:index]:
            return e, self._path[index], ""
        return e, e.token_id, (f"Beam search reports the distribution of the leading hypothesis only; at step "
                               f"{index + 1} that was {self._hyps[lead].text!r}, a different branch from this text.")
