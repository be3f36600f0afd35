"""A corpus over the in-memory limit in the window: offered the prepare path (progress bar and Cancel, off the
GUI thread), then trained from the prepared folder; a prepared copy made before is used again at once."""
from __future__ import annotations

from engine.data import load_prepared

TIMEOUT_MS = 60_000
TEXT = "It was the best of times, it was the worst of times; café, naïve. " * 400   # ~26 KB


def _too_large(window, tmp_path, text=TEXT):
    box = window.panel.corpus_box
    box.max_bytes = 10_000            # a stand-in for the 50 MB limit
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    return box, path


def test_over_the_limit_is_offered_prepare_then_trains_from_the_folder(qtbot, window, tmp_path):
    box, path = _too_large(window, tmp_path)
    window.panel.tokenizer.setCurrentText("word")
    box.load(str(path))
    qtbot.waitUntil(lambda: box.prepare_panel.isVisible(), timeout=TIMEOUT_MS)
    assert "over the 0.0100 MB limit" in box.prepare_panel.label.text()
    assert box.prepare_panel.prepare_button.text() == "Prepare (word tokens)"
    assert not box.is_loading() and not box.error.isVisible()
    box.prepare_panel.prepare_button.click()
    qtbot.waitUntil(lambda: box.data_folder() is not None, timeout=TIMEOUT_MS)
    data = load_prepared(box.data_folder())
    assert data.meta["source"] == str(path.resolve()) and data.tokenizer.kind == "word"
    assert "prepared, trains from disk" in box.summary.text() and f"{len(data.train):,}" in box.summary.text()
    assert not box.prepare_panel.isVisible()
    spec = window.panel.spec()
    assert spec.data == box.data_folder() and spec.tokenizer == "word"
    assert not window.panel.tokenizer.isEnabled()              # fixed by the prepared files
    assert window.panel.check() == ""

    small = tmp_path / "small.txt"
    small.write_text(TEXT[:5000], encoding="utf-8")
    box.load(str(small))                                       # a corpus in memory again: the tokenizer is free
    qtbot.waitUntil(lambda: not box.is_loading() and box.corpus.name == "small.txt", timeout=TIMEOUT_MS)
    assert box.data_folder() is None and window.panel.tokenizer.isEnabled() and window.panel.spec().data is None

    box.load(str(path))                                        # prepared before with the same tokenizer: used again
    qtbot.waitUntil(lambda: box.data_folder() is not None, timeout=TIMEOUT_MS)
    assert not box.prepare_panel.isVisible()


def test_cancel_leaves_nothing_and_prepare_can_start_again(qtbot, window, tmp_path, runs_location):
    box, path = _too_large(window, tmp_path, TEXT * 800)       # ~21 MB: several chunks
    box.load(str(path))
    qtbot.waitUntil(lambda: box.prepare_panel.isVisible(), timeout=TIMEOUT_MS)
    panel = box.prepare_panel
    panel.prepare_button.click()
    assert panel.is_running() and panel.cancel_button.isVisible() and panel.bar.isVisible()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=TIMEOUT_MS)
    assert panel.stage.text() == "Cancelled: nothing was kept."
    assert box.data_folder() is None and panel.prepare_button.isVisible()
    prepared = runs_location / "prepared"
    assert not prepared.exists() or not any(prepared.iterdir())
