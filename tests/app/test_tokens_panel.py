"""The Tokens tab driven as a user would: the form's tokenizer settings on a small corpus, Tokenize, and what the
preview, the tables, the BPE replay and the try-it box show; the model's own tokenizer; errors shown, not raised."""
from __future__ import annotations

from collections import Counter

import pytest
from PySide6.QtCore import QModelIndex, Qt

from app.common.model_source import ModelSource
from app.common.token_view import PREVIEW_CHARS
from app.tokens.tokens_panel import MODEL, TokensPanel
from app.training.train_panel import TrainPanel
from engine.corpus import Corpus
from engine.tokenizers import build_tokenizer
from engine.tokenizers.inspect import bpe_replay, form_tokenizer

WAIT_MS = 20_000
TEXT = ("The tokenizer turns text into tokens. Tokens are ids; the model sees only ids.\n"
        "A word tokenizer keeps frequent words, a character tokenizer keeps characters,\n"
        "and byte pair encoding merges frequent pairs: token, tokens, tokenizer, tokenization.\n") * 20


class FakeSource(ModelSource):
    """A source whose model is only a tokenizer: the panel asks for nothing else, and never for a weight copy."""

    def __init__(self, tokenizer=None):
        super().__init__()
        self.tok = tokenizer

    def tokenizer(self):
        return self.tok

    def has_model(self) -> bool:
        return self.tok is not None

    def snapshot(self):
        raise AssertionError("the Tokens tab copied the model's weights to read its tokenizer")

    def describe(self) -> str:
        return "a test model" if self.tok is not None else "no model yet"


@pytest.fixture
def make_panel(qtbot):
    def make(kind="char", source=None, text=TEXT, **options):
        form = TrainPanel()
        qtbot.addWidget(form)
        form.corpus_box.corpus = Corpus("test", text, "/tmp/test.txt")
        form.tokenizer.setCurrentText(kind)
        if "cap" in options:
            form.word_cap.setValue(options["cap"])
        if "bpe_vocab" in options:
            form.bpe_vocab.setValue(options["bpe_vocab"])
        panel = TokensPanel(source or FakeSource(), form)
        qtbot.addWidget(panel)
        panel.resize(1200, 800)
        panel.show()
        return panel
    return make


def tokenize(qtbot, panel: TokensPanel) -> None:
    old = panel.result
    qtbot.mouseClick(panel.tokenize_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.result is not old or panel.message.isVisible(), timeout=WAIT_MS)
    assert not panel.busy.isVisible() and panel.tokenize_btn.isEnabled()


def test_char_preview_counts_and_vocabulary(qtbot, make_panel):
    panel = make_panel("char")
    assert panel.result is None
    tokenize(qtbot, panel)
    tok = panel.result.tokenizer
    preview = TEXT[:PREVIEW_CHARS]
    assert panel.preview.token_count == len(tok.encode(preview)) == len(preview)
    assert "".join(panel.preview.token_text(i) for i in range(panel.preview.token_count)) == preview
    assert "1.00</b> characters per token" in panel.stats_label.text()
    # the vocabulary table: one row per token, the most frequent first
    model = panel.vocab_model
    assert model.rowCount() == tok.vocab_size
    top_char, top_count = Counter(TEXT[:int(len(TEXT) * 0.9)]).most_common(1)[0]
    assert model.row(0)[1:4] == (tok.token_str(tok.stoi[top_char]), tok.stoi[top_char], top_count)
    counts = [model.row(r)[3] for r in range(model.rowCount())]
    assert counts == sorted(counts, reverse=True) and sum(counts) == panel.result.stats.train_tokens
    assert model.data(model.index(0, 0)) == "1" and model.data(model.index(0, 4)).endswith("%")
    assert not panel.right.isTabEnabled(1) and not panel.right.isTabEnabled(2)


def test_table_cells_are_painted_from_one_call_each(qtbot):
    """Qt 6's delegate asks for a cell's roles in one multiData call; answering them through data() instead costs
    seven calls from C++ into Python per cell, each waiting for the GIL while a worker tokenizes (a 150-300 ms
    freeze per repaint in bench/gui_stalls.py). multiData must give what data() gives, for every role."""
    from app.tokens.rows_table import RowsModel, table

    class Counting(RowsModel):
        calls = Counter()

        def data(self, index, role=Qt.DisplayRole):
            self.calls["data"] += 1
            return super().data(index, role)

        def multiData(self, index, roles):
            self.calls["multiData"] += 1
            return super().multiData(index, roles)

    model = Counting(("rank", "token", "share"))
    model.set_rows(1000, lambda r: (r + 1, f"w{r}", 1 / (r + 1)))
    view = table(model, 1)
    view.resize(400, 300)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    Counting.calls.clear()
    view.grab()
    assert Counting.calls["multiData"] >= 3 * 5 and Counting.calls["data"] == 0
    # the cells say the same through either door, including the roles the model leaves empty
    from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan
    for r, c in ((0, 0), (0, 1), (5, 2), (999, 1)):
        index = model.index(r, c)
        roles = [QModelRoleData(role) for role in (Qt.DisplayRole, Qt.TextAlignmentRole, Qt.FontRole,
                                                   Qt.ToolTipRole, Qt.BackgroundRole)]
        for slot in roles:
            model.multiData(index, QModelRoleDataSpan(slot))
            assert slot.data() == model.data(index, slot.role()), (r, c, slot.role())
    # Qt's delegate keeps one span and reuses it cell after cell: a number cell after a token cell must not keep
    # the token's monospace font (nor anything else the model leaves unanswered)
    font_slot = QModelRoleData(Qt.FontRole)
    model.multiData(model.index(0, 1), QModelRoleDataSpan(font_slot))
    assert font_slot.data() is not None
    model.multiData(model.index(0, 0), QModelRoleDataSpan(font_slot))
    assert font_slot.data() is None
    model.multiData(model.index(0, 1), QModelRoleDataSpan(font_slot))
    model.multiData(QModelIndex(), QModelRoleDataSpan(font_slot))
    assert font_slot.data() is None
    assert model.data(model.index(0, 1), Qt.FontRole).family() == model.mono.family()
    assert model.data(model.index(0, 2)) == "100.00%"
    assert not model.index(1000, 0).isValid() and not model.index(0, 3).isValid() and not model.index(-1, 0).isValid()


def test_preview_hover_shows_id_and_string(qtbot, make_panel):
    panel = make_panel("word")
    tokenize(qtbot, panel)
    tok = panel.result.tokenizer
    view = panel.preview
    i = view.token_at(view.token_center(1))
    assert i == 1
    word_id = tok.encode(TEXT)[1]
    assert view._tips[1].startswith(f"id {word_id}   '{tok.token_str(word_id)}'")   # escaped once, not twice


def test_word_shows_unk_stats_and_words(qtbot, make_panel):
    panel = make_panel("word", cap=8)
    tokenize(qtbot, panel)
    s = panel.result.stats
    assert s.unk_train > 0
    assert f"&lt;unk&gt; <b>{s.unk_fraction:.2%}</b>" in panel.stats_label.text()   # escaped: shown, not a tag
    assert panel.right.isTabEnabled(2) and not panel.right.isTabEnabled(1)
    tok, train, _ = form_tokenizer("word", TEXT, {"vocab_size": 8})
    cut = Counter(w for w in tok.split(train) if w not in tok.stoi)
    top = panel.unk_model.row(0)
    assert top[1] == max(cut.values()) and cut[top[0]] == top[1]
    assert panel.unk_model.rowCount() == len(cut)
    assert f"each of their {s.unk_train:,} occurrences" in panel.unk_about.text()
    panel.try_text.setPlainText("tokens zebra")
    assert "of them <unk>" in panel.try_ids.text()


def test_switching_kind_marks_the_result_stale_and_retokenizes(qtbot, make_panel):
    panel = make_panel("char")
    tokenize(qtbot, panel)
    assert "changed since" not in panel.about.text()
    assert panel.stats_label.isEnabled()
    panel.form.tokenizer.setCurrentText("word")
    assert "changed since; shown: char on test" in panel.about.text()       # what the (old) figures below are
    assert not panel.stats_label.isEnabled()                                  # and they are greyed
    tokenize(qtbot, panel)
    assert panel.result.tokenizer.kind == "word" and "changed since" not in panel.about.text()
    assert "&lt;unk&gt;" in panel.stats_label.text() and panel.stats_label.isEnabled()


def test_another_corpus_says_the_figures_shown_are_the_old_corpus(qtbot, make_panel):
    panel = make_panel("char")
    tokenize(qtbot, panel)
    before = panel.result.stats.vocab_size
    other = Corpus("other", "a different corpus, not tokenized yet\n" * 30, "/tmp/other.txt")
    panel.form.corpus_box.corpus = other
    panel.form.corpus_box.loaded.emit(other)
    about = panel.about.text()
    assert about.startswith("char") and " on other" in about and "shown: char on test. Press Tokenize" in about
    assert not panel.stats_label.isEnabled()
    tokenize(qtbot, panel)
    assert "changed since" not in panel.about.text() and panel.stats_label.isEnabled()
    assert panel.result.stats.vocab_size < before       # the new corpus's figures: fewer distinct characters


def test_bpe_merges_and_replay(qtbot, make_panel):
    panel = make_panel("bpe", bpe_vocab=300)
    tokenize(qtbot, panel)
    tok = panel.result.tokenizer
    assert panel.right.isTabEnabled(1)
    merges = tok.merges()
    assert panel.merge_model.rowCount() == len(merges) > 0
    first = panel.merge_model.row(0)
    assert first[0] == 1 and first[4] == tok.tok.token_to_id(merges[0][0] + merges[0][1])
    preview = TEXT[:PREVIEW_CHARS]
    assert panel.preview.token_count == len(tok.encode(preview))
    panel.try_text.setPlainText(" tokenization")
    ids = tok.encode(" tokenization")
    assert panel.try_view.token_count == len(ids)
    assert panel.try_ids.text().endswith("ids: " + " ".join(map(str, ids)))
    replay = bpe_replay(tok, " tokenization")[0]
    html = panel.replay.toPlainText()
    assert html.count("merge #") == len(replay.steps) > 0
    assert " ".join(map(str, replay.ids)) in html and list(replay.ids) == ids


def test_char_tokenizer_error_is_shown_not_raised(qtbot, make_panel):
    panel = make_panel("char")
    tokenize(qtbot, panel)
    panel.try_text.setPlainText("tokens €")
    assert "not in the vocabulary" in panel.try_ids.text() and "'€'" in panel.try_ids.text()
    assert panel.try_view.token_count == 0


def test_model_tokenizer_and_its_errors(qtbot, make_panel):
    panel = make_panel("char")
    panel.which.setCurrentText(MODEL)
    tokenize(qtbot, panel)                       # no model yet: said so
    assert panel.result is None and "no model yet" in panel.message.text().lower()
    narrow = build_tokenizer("char", "The tokenizer")   # lacks most of the corpus' characters
    panel.source.tok = narrow
    tokenize(qtbot, panel)
    assert panel.result is None and "not in the vocabulary" in panel.message.text()
    bpe = build_tokenizer("bpe", TEXT, vocab_size=280)
    panel.source.tok = bpe
    tokenize(qtbot, panel)
    assert panel.result.tokenizer is bpe and not panel.message.isVisible()
    assert panel.result.stats.vocab_size == 280


def test_no_corpus_is_a_message(qtbot, make_panel):
    panel = make_panel("char")
    panel.form.corpus_box.corpus = None
    panel.tokenize()
    assert "No corpus" in panel.message.text() and panel.tokenize_btn.isEnabled()


def test_in_the_window_and_closing_while_a_job_runs(qtbot, tmp_path):
    """The tab reads the window's own form and corpus; closing the window mid-job ends the job and waits for its
    thread (a QThread destroyed while running would abort the whole test process)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    w.ask_save_on_close = lambda: QMessageBox.Discard
    w.show()
    qtbot.waitUntil(lambda: w.panel.corpus_box.corpus is not None and not w.panel.corpus_box.is_loading(),
                    timeout=WAIT_MS)
    panel = w.tokens_panel
    assert w.tabs.tabText(w.tabs.indexOf(panel)) == "Tokens"
    w.panel.tokenizer.setCurrentText("char")
    tokenize(qtbot, panel)
    assert panel.result.stats.train_chars + panel.result.stats.val_chars == len(w.panel.corpus_box.corpus.text)
    w.panel.tokenizer.setCurrentText("bpe")
    panel.tokenize()
    assert panel.busy.isVisibleTo(panel)
    w.close()             # ends the count: the worker process is stopped, not waited for
    assert not any(thread.isRunning() for thread, _ in panel.jobs._jobs)
    from app.common import worker_process
    assert worker_process._pool is None


def test_a_long_model_description_wraps_instead_of_widening_the_window(qtbot, make_panel):
    source = FakeSource(build_tokenizer("char", TEXT))
    source.describe = lambda: "checkpoint a_long_checkpoint_name: transformer 76,384 params, word tokenizer, " * 3
    panel = make_panel("char", source=source)
    narrow = panel.minimumSizeHint().width()
    panel.which.setCurrentText(MODEL)
    assert "a_long_checkpoint_name" in panel.about.text() and panel.minimumSizeHint().width() <= narrow


def test_token_shades_alternate_over_characters_split_across_bpe_tokens(qtbot, make_panel):
    """A BPE token holding only part of a multi-byte character is an empty span; counting it in the alternation
    drew neighbouring tokens of Greek or CJK text in one colour, as if they were one token."""
    from PySide6.QtGui import QTextCursor
    text = TEXT + "Ελληνικά 東京 😀😀 Café\n" * 5
    panel = make_panel("bpe", text=text, bpe_vocab=260)
    tokenize(qtbot, panel)
    panel.try_text.setPlainText("Ελληνικά 東京 😀😀")
    view = panel.try_view
    shades = []
    for start, end in zip(view._starts, view._ends):
        if end > start:
            cursor = QTextCursor(view.document())
            cursor.setPosition(start + 1)
            shades.append(cursor.charFormat().background().color().name())
    assert len(shades) > 5 and all(a != b for a, b in zip(shades, shades[1:]))


def test_unk_list_says_when_it_shows_only_the_most_frequent(qtbot, make_panel, monkeypatch):
    from app.tokens import tokens_panel
    from engine.tokenizers import inspect
    monkeypatch.setattr(inspect, "UNK_SHOWN", 3)   # a patch the worker process would not see: count in this one
    monkeypatch.setattr(tokens_panel, "in_worker_process", lambda fn, *a, **k: lambda: fn(*a, **k))
    panel = make_panel("word", cap=8)
    tokenize(qtbot, panel)
    s = panel.result.stats
    assert len(s.unk_words) == 3 < s.unk_distinct
    assert f"the 3 most frequent of {s.unk_distinct:,}" in panel.unk_about.text()
    assert "larger cap in the form" in panel.unk_about.text()


def test_the_count_runs_in_the_worker_process(qtbot, make_panel, monkeypatch):
    """Counting is pure Python: on a thread of the window's process it would hold the GIL against every paint
    (bench/gui_stalls.py tokens_word_result went to 120-370 ms)."""
    from app.tokens import tokens_panel
    from engine.tokenizers.inspect import analyse
    calls = []
    real = tokens_panel.in_worker_process
    monkeypatch.setattr(tokens_panel, "in_worker_process", lambda fn, *a, **k: calls.append(fn) or real(fn, *a, **k))
    panel = make_panel("word")
    tokenize(qtbot, panel)
    assert calls == [analyse]
    assert panel.result.tokenizer.kind == "word" and panel.result.stats.train_tokens > 0
    assert panel.vocab_model.rowCount() == panel.result.tokenizer.vocab_size


def test_the_tables_get_half_the_tab_at_1280_by_800(qtbot, make_panel):
    """At a 1280×800 screen's window the Tokens tab is about 790 px wide. The preview's group-box title (as wide
    as its text) held the left half to 460 px, so the four inner tabs hid behind scroll arrows and the merges
    table's last columns were cut."""
    panel = make_panel("bpe", bpe_vocab=300)
    panel.resize(790, 600)
    tokenize(qtbot, panel)
    panel.right.setCurrentIndex(1)
    qtbot.wait(50)
    assert panel.right.width() >= 0.45 * panel.width()
    bar = panel.right.tabBar()
    assert sum(bar.tabRect(i).width() for i in range(bar.count())) <= bar.width()   # no scroll arrows
    merges = panel.right.widget(1).widget(1)
    header = merges.horizontalHeader()
    assert header.length() <= merges.viewport().width()                              # every column in view
