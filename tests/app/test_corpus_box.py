"""The corpus box on its own and in the window: bad UTF-8 and the "replace bad bytes" box, recent entries that are
gone, and a file dropped while a run is going."""
from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from app.main_window import MainWindow
from app.training.corpus_box import CorpusBox

TIMEOUT_MS = 60_000
TEXT = "hello world, this is a tiny corpus of text. " * 200


@pytest.fixture
def box(qtbot):
    b = CorpusBox()
    qtbot.addWidget(b)
    b.show()
    yield b
    b.shutdown()


def load_and_wait(qtbot, box, spec: str) -> bool:
    box.load(spec)
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=TIMEOUT_MS)
    return not box.error.isVisible()


def test_bad_utf8_names_the_box_that_replaces_bad_bytes_and_ticking_it_loads_the_file(qtbot, box, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(TEXT, encoding="utf-8")
    assert load_and_wait(qtbot, box, str(good)) and box.on_bad_utf8() == "error"
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 au lait, ".encode("latin-1") * 20)
    assert not load_and_wait(qtbot, box, str(latin1))
    message = box.error.text()
    assert "not valid UTF-8 at byte offset 3" in message and "replace bad bytes" in message
    assert "on_bad_utf8" not in message and box.spec() == str(good)
    box.replace_bad.setChecked(True)                    # what the message asks for: the refused file loads
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=TIMEOUT_MS)
    assert not box.error.isVisible() and box.spec() == str(latin1)
    assert box.corpus.text.startswith("caf\ufffd au lait") and box.on_bad_utf8() == "replace"


def test_a_run_reads_the_corpus_as_the_box_did(qtbot, tmp_path):
    from app.training.train_panel import TrainPanel
    panel = TrainPanel()
    qtbot.addWidget(panel)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(TEXT.encode() + b"\xff tail\n")
    panel.corpus_box.replace_bad.setChecked(True)
    assert load_and_wait(qtbot, panel.corpus_box, str(bad))
    assert panel.spec().on_bad_utf8 == "replace"
    panel.corpus_box.shutdown()


def test_recent_entries_that_are_gone_are_dropped_with_a_message(qtbot, box, tmp_path):
    kept, gone, later = (tmp_path / n for n in ("kept.txt", "gone.txt", "later"))
    kept.write_text(TEXT, encoding="utf-8")
    later.mkdir()
    (later / "a.txt").write_text(TEXT, encoding="utf-8")
    box.set_recent([str(kept), str(gone), str(later)])
    assert box.recent() == [str(kept), str(later)]
    assert "Removed from the recent list" in box.error.text() and "gone.txt" in box.error.text()
    assert load_and_wait(qtbot, box, "builtin:python-docs") is False     # the window's first load keeps it shown
    assert "gone.txt" in box.error.text()
    assert load_and_wait(qtbot, box, str(kept))                          # and the next one clears it
    recent_items = [box.choice.itemData(i) for i in range(box.choice.count())]
    assert str(gone) not in recent_items
    shutil.rmtree(later)                                # deleted while the app runs, then chosen
    box.choice.activated.emit(box.choice.findData(str(later)))
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=TIMEOUT_MS)
    assert "removed from the recent list" in box.error.text() and "no such file or folder" in box.error.text()
    assert box.recent() == [str(kept)] and box.choice.findData(str(later)) == -1


def test_a_file_dropped_during_a_run_is_refused_with_a_reason(qtbot, tmp_path):
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    w.ask_save_on_close = lambda: QMessageBox.Discard
    w.show()
    box = w.panel.corpus_box
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=TIMEOUT_MS)
    p = tmp_path / "dropped.txt"
    p.write_text(TEXT, encoding="utf-8")
    train = w.panel.fields["train"]
    train["max_steps"].setValue(100_000)
    train["eval_interval"].setValue(100_000)
    qtbot.mouseClick(w.panel.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.state == "running", timeout=TIMEOUT_MS)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    w.dropEvent(event)
    assert not box.is_loading() and box.spec() == "builtin:python-docs"
    assert w.statusBar().currentMessage() == ("dropped.txt was not loaded: the corpus cannot change during a run. "
                                              "Stop the run, then drop it again.")
    w.stop()
    qtbot.waitUntil(lambda: w.state == "stopped", timeout=TIMEOUT_MS)
    other = tmp_path / "other.txt"
    other.write_text(TEXT, encoding="utf-8")
    mime.setUrls([QUrl.fromLocalFile(str(p)), QUrl.fromLocalFile(str(other))])   # two at once: the first is used
    w.dropEvent(QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert "the other 1 dropped item(s) were left out" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=TIMEOUT_MS)
    assert box.spec() == str(p)
    w.shutdown_run()
