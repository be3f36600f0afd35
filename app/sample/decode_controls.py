"""Controls the one-strategy panel and the side-by-side view share: the stop-strings field and the KV cache switch.

Stop strings end a text once it contains one (the text ends before it). They matter to beam search in particular:
without one every hypothesis ends at max tokens, all of one length, so the length penalty has nothing to compare.
The cache switch turns the KV cache (Transformer) or the carried hidden state (RNN) on and off; the speed of the last
run with each setting is shown side by side, and Check runs the text through the model both ways and reports the
largest |difference| of the next-token logits (engine.decode_compare.check_cache), which should be float rounding."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from engine.errors import ConfigError

from app.common.jobs import JobRunner

STOP_HELP = ("Stop once the text contains one of these (it ends before it). Separate several with |. "
             "Write a newline as \\n, a tab as \\t, a space as \\s, a | as \\| and a backslash as \\\\. "
             "Spaces around each are ignored, unless the field holds nothing else.")
_ESCAPES = {"n": "\n", "t": "\t", "s": " ", "|": "|", "\\": "\\"}
_HELD = {k: chr(0xE000 + i) for i, k in enumerate(_ESCAPES)}          # escape letter -> stand-in
_BACK = {ord(_HELD[k]): v for k, v in _ESCAPES.items()}               # stand-in -> the character meant


def parse_stops(text: str) -> tuple[str, ...]:
    """The field's text as stop strings: '|' separates, whitespace around each is dropped (a field of only
    whitespace is that whitespace), escapes as in STOP_HELP.
    ConfigError for an unknown escape."""
    stops, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in _ESCAPES:
                shown = text[i:i + 2]
                raise ConfigError(f"stop strings: unknown escape {shown!r}; use \\n, \\t, \\s, \\| or \\\\")
            cur.append(_HELD[text[i + 1]])   # a private-use stand-in, so stripping whitespace keeps an escaped one
            i += 2
            continue
        if c == "|":
            stops.append(cur)
            cur = []
        else:
            cur.append(c)
        i += 1
    stops.append(cur)
    if len(stops) == 1 and stops[0] and not "".join(stops[0]).strip():
        return ("".join(stops[0]),)          # only whitespace typed: that is the stop string (a space, say)
    out = []
    for parts in stops:
        s = "".join(parts).strip().translate(_BACK)
        if s:
            out.append(s)
    return tuple(out)


class StopField(QLineEdit):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText(r"none   e.g.  \n\n | .")
        self.setToolTip(STOP_HELP)

    def stops(self) -> tuple[str, ...]:
        return parse_stops(self.text())


class CacheControls(QWidget):
    """The KV cache switch (on by default), the tokens/s of the last run with it on and off, and Check.
    `check_requested` fires on Check; the owner calls `run_check` with what to check."""

    check_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.box = QCheckBox("KV cache")
        self.box.setChecked(True)
        self.box.setToolTip("On: keep the keys and values (Transformer) or the hidden state (RNN) of the text so far, "
                            "so each new token costs one position. Off: recompute the whole context for every token. "
                            "The text must be the same either way; only the speed changes.")
        self.check_button = QPushButton("Check")
        self.check_button.setToolTip("Run the generated text through the model with and without the cache and report "
                                     "the largest difference of the next-token logits")
        self.check_button.setEnabled(False)
        self.check_button.clicked.connect(self.check_requested)
        self.speeds = QLabel()
        self.speeds.setWordWrap(True)
        self.speeds.setStyleSheet("color: #444;")
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.result.setStyleSheet("color: #444;")
        self._speed: dict[bool, float] = {}
        self._check_request = 0    # bumped by each check, forget() and run_started(): only the newest check shows
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.box)
        row.addStretch(1)
        row.addWidget(self.check_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.speeds)
        col.addWidget(self.result)
        self._jobs = JobRunner(self)
        self._show_speeds()

    @property
    def use_cache(self) -> bool:
        return self.box.isChecked()

    def record_speed(self, use_cache: bool, tokens_per_s: float) -> None:
        """The speed of the run that just finished, under its cache setting."""
        self._speed[use_cache] = tokens_per_s
        self._show_speeds()

    def forget(self) -> None:
        """Another model: the speeds and the check were about the old one (a check still running is dropped)."""
        self._check_request += 1
        self._speed.clear()
        self.result.clear()
        self._show_speeds()

    def _show_speeds(self) -> None:
        parts = [f"cache {'on' if on else 'off'}: {self._speed[on]:,.0f}" if on in self._speed
                 else f"cache {'on' if on else 'off'}: not run yet" for on in (True, False)]
        self.speeds.setText("tokens/s — " + " · ".join(parts))

    def run_check(self, fn) -> None:
        """Run fn() -> engine.decode_compare.CacheCheck (or a list of them) on a worker thread and show the result."""
        self.check_button.setEnabled(False)
        self.result.setStyleSheet("color: #444;")
        self.result.setText("checking: the text through the model with and without the cache…")
        self._check_request += 1
        request = self._check_request
        self._jobs.run(fn, lambda c: self._checked(c, request), lambda m: self._check_failed(m, request))

    def run_started(self) -> None:
        """A new run: Check waits for its text, and a check of the previous text still running is dropped."""
        self._check_request += 1
        self.check_button.setEnabled(False)

    def _checked(self, check, request: int) -> None:
        if request != self._check_request:
            return                  # about an earlier model or text
        checks = check if isinstance(check, list) else [check]
        worst = max(checks, key=lambda c: c.max_abs_diff)
        ok = all(c.same_argmax for c in checks) and worst.max_abs_diff < 1e-3
        self.result.setStyleSheet("color: #1b7a34;" if ok else "color: #b00020; font-weight: bold;")
        self.result.setText(("Cache check: " if len(checks) == 1 else f"Cache check ({len(checks)} columns, worst): ")
                            + worst.summary() + (". Only the speed differs." if ok else "."))
        self.check_button.setEnabled(True)

    def _check_failed(self, message: str, request: int) -> None:
        if request != self._check_request:
            return
        self.result.setStyleSheet("color: #b00020; font-weight: bold;")
        self.result.setText(f"Cache check failed: {message}")
        self.check_button.setEnabled(True)

    def wait(self) -> None:
        self._jobs.wait()
