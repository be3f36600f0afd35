"""The corpus box's side of a corpus over the in-memory limit (app/training/corpus_box.py mixes it in): offer to
prepare it once into token files (app/training/prepare_box.py shows the offer and runs the prepare), use a prepared
copy made before, or the prepared folder a loaded checkpoint was trained from. While a corpus is offered, the old
corpus's summary and preview are hidden and `awaiting_prepare()` keeps Start off."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Slot

from engine.errors import PlaygroundError
from engine.corpus import VAL_FRACTION

from app.common.token_view import PREVIEW_CHARS
from app.training.prepare_box import breakable

MAX_RECENT = 8   # entries of the recent list


class PrepareOffer:
    """Methods of CorpusBox (it holds the widgets and state they use: prepare_panel, summary, preview, error,
    choice, _data, _too_large, _wanted, corpus, tokenizer_choice, prepared_root)."""

    def data_folder(self) -> str | None:
        """The prepared folder a run trains from (RunSpec.data), or None for a corpus held in memory."""
        return str(self._data.folder) if self._data is not None else None

    def prepared_meta(self) -> dict | None:
        return self._data.meta if self._data is not None else None

    def train_tokens_hint(self) -> int:
        """Training tokens (prepared) or characters (in memory: at least as many as tokens) of the corpus in use."""
        if self._data is not None:
            return len(self._data.train)
        return int(len(self.corpus.text) * (1 - VAL_FRACTION)) if self.corpus is not None else 0

    def _offer_prepare(self, spec: str, message: str) -> bool:
        """A load refused as too large: use a prepared copy made earlier with the form's tokenizer, or offer to
        prepare one. True when handled (the load counts as ended)."""
        from engine.prepare import find_prepared
        self._wanted = None
        self.loading.hide()
        kind, options = self.tokenizer_choice()
        found = find_prepared(spec, kind, options, self.prepared_root)
        if found is not None and self._use_prepared(found):
            return True
        self._too_large = spec
        self.clear_error()
        try:
            size = _corpus_bytes(spec)
        except OSError:
            size = None
        self.prepare_panel.offer(message, kind, size)
        self._show_in_use(False)
        self._fill_choices()
        self.loading_changed.emit(False)
        return True

    def open_prepared(self, folder: str, fingerprint: str | None = None) -> bool:
        """Use the prepared `folder` as the corpus (a checkpoint trained from it was loaded), replacing an offer or a
        load in progress; milliseconds, on the GUI thread. False, changing nothing, when it is not a complete
        prepared folder or its data is no longer the run's (engine.data.check_fingerprint; None: not checked)."""
        from engine.data import check_fingerprint
        try:
            check_fingerprint(folder, None, fingerprint)
        except (PlaygroundError, OSError):
            return False
        if self._data is not None and str(self._data.folder) == str(Path(folder).expanduser().resolve()):
            return True
        if self._wanted is not None:   # a load in progress: its answer is dropped (_superseded)
            self._wanted = None
        self._drop_offer()
        return self._use_prepared(folder)

    def awaiting_prepare(self) -> bool:
        """A corpus over the limit was chosen and is offered Prepare (or is being prepared): until it is, the corpus
        in use is not the one chosen, so nothing may start (the training form says why)."""
        return bool(self._too_large)

    def tokenizer_changed(self) -> None:
        """The form's tokenizer changed: an offer not yet taken up names the new one (Prepare uses it)."""
        if self._too_large and not self.prepare_panel.is_running():
            self.prepare_panel.set_kind(self.tokenizer_choice()[0])

    def _show_in_use(self, shown: bool) -> None:
        """The summary and preview of the corpus in use, hidden while another corpus is offered Prepare, so the old
        one never looks like the chosen one."""
        self.summary.setVisible(shown)
        self.preview.setVisible(shown)

    def _drop_offer(self) -> None:
        """Back to the corpus in use: the offer (and a prepare in progress) is dropped."""
        self.prepare_panel.cancel()
        self.prepare_panel.hide()
        self._too_large = ""
        self._show_in_use(True)

    @Slot()
    def _start_prepare(self) -> None:
        from engine.prepare import default_prepared_dir
        kind, options = self.tokenizer_choice()
        out = default_prepared_dir(self._too_large, kind, options, self.prepared_root)
        self.prepare_panel.start(self._too_large, kind, options, out,
                                 "replace" if self.replace_bad.isChecked() else "error")

    @Slot(object)
    def _on_prepared(self, meta: dict) -> None:
        if self._too_large and _same_path(meta.get("source"), self._too_large):   # the corpus still on offer:
            # a cancelled prepare of another corpus can finish after its last cancel check
            self._too_large = ""
            if not self._use_prepared(meta["out"]):
                self._show_in_use(True)
                self._fill_choices()
                self.loading_changed.emit(False)

    def _use_prepared(self, folder) -> bool:
        from app.training.prepare_box import prepared_view
        try:
            data, corpus, val_text, summary, vocab = prepared_view(folder, PREVIEW_CHARS)
        except PlaygroundError as e:
            self.error.setText(breakable(f"Could not use the prepared folder {folder}: {e}"))
            self.error.show()
            return False
        self._data, self.corpus, self._val_text, self.vocab_chars = data, corpus, val_text, vocab
        self.vocab_words = None
        self._read_as = str(data.meta.get("on_bad_utf8", "error"))
        self.clear_error()
        self.prepare_panel.hide()
        self._too_large = ""
        self._show_in_use(True)
        self._recent = [corpus.source] + [p for p in self._recent if p != corpus.source]
        del self._recent[MAX_RECENT:]
        self._fill_choices()
        self.summary.setText(summary)
        self.summary.setToolTip(f"{corpus.source}\nprepared in {data.folder}")
        self.preview.setPlainText(corpus.text)
        self.loading.hide()
        self.loading_changed.emit(False)
        self.loaded.emit(corpus)
        return True


def _corpus_bytes(spec: str) -> int:
    """A file's size, or a folder's files' sizes summed (listed, not read): what a prepare will stream."""
    if os.path.isdir(spec):
        return sum(os.path.getsize(os.path.join(root, n)) for root, _, names in os.walk(spec) for n in names)
    return os.path.getsize(spec)


def _same_path(a, b) -> bool:
    """Whether two corpus paths name the same file or folder (the prepared meta records it resolved)."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    try:
        return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return False
