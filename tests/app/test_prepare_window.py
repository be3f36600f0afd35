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


def _offered(qtbot, box, path):
    box.load(str(path))
    qtbot.waitUntil(lambda: box.prepare_panel.isVisible() and not box.is_loading(), timeout=TIMEOUT_MS)


def test_start_waits_for_the_offer_and_the_old_corpus_is_not_shown_as_current(qtbot, window, tmp_path):
    box, path = _too_large(window, tmp_path)
    panel = window.panel
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=TIMEOUT_MS)   # the first corpus is in use
    panel.tokenizer.setCurrentText("word")
    _offered(qtbot, box, path)
    assert not panel.start_button.isEnabled() and "Prepare it first" in panel.start_button.toolTip()
    assert not box.summary.isVisible() and not box.preview.isVisible()
    assert box.choice.currentText() == "big.txt (not prepared)"
    window.start()                                             # the window's own Start refuses too
    assert window.thread is None
    assert box.prepare_panel.prepare_button.text() == "Prepare (word tokens)"
    assert "1.7–2 MB/s" in box.prepare_panel.label.toolTip()
    panel.tokenizer.setCurrentText("char")                     # the offer follows the form's tokenizer
    assert box.prepare_panel.prepare_button.text() == "Prepare (char tokens)"
    assert "31–46 MB/s" in box.prepare_panel.label.toolTip() and "20–60" not in box.prepare_panel.label.toolTip()
    box.prepare_panel.prepare_button.click()
    assert not panel.start_button.isEnabled() and "being prepared" in panel.start_button.toolTip()
    qtbot.waitUntil(lambda: box.data_folder() is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=TIMEOUT_MS)
    assert load_prepared(box.data_folder()).tokenizer.kind == "char"
    assert box.summary.isVisible() and box.choice.currentText() == "big.txt"


def test_choosing_the_corpus_in_use_again_drops_the_offer(qtbot, window, tmp_path):
    box, path = _too_large(window, tmp_path)
    qtbot.waitUntil(lambda: window.panel.start_button.isEnabled(), timeout=TIMEOUT_MS)
    in_use = box.spec()
    _offered(qtbot, box, path)
    box.choice.setCurrentIndex(box.choice.findData(in_use))
    box.choice.activated.emit(box.choice.currentIndex())
    assert not box.prepare_panel.isVisible() and not box.awaiting_prepare() and box.summary.isVisible()
    assert window.panel.start_button.isEnabled() and window.panel.spec().corpus == in_use


def test_a_failed_prepare_wraps_names_the_box_and_clears_when_it_is_ticked(qtbot, window, tmp_path):
    box, _ = _too_large(window, tmp_path)
    folder = tmp_path / ("a_very_long_folder_name_without_any_spaces_" * 4)
    folder.mkdir()
    path = folder / "bad.txt"
    path.write_bytes(TEXT.encode() + b"\xff\xfe" + TEXT.encode())
    qtbot.waitUntil(lambda: window.panel.start_button.isEnabled(), timeout=TIMEOUT_MS)
    width = box.minimumSizeHint().width()
    _offered(qtbot, box, path)
    assert box.minimumSizeHint().width() <= width + 20          # the long path in the offer text wraps
    panel = box.prepare_panel
    panel.prepare_button.click()
    qtbot.waitUntil(lambda: not panel.is_running() and panel.message().startswith("Could not prepare"),
                    timeout=TIMEOUT_MS)
    assert "byte offset" in panel.message() and "replace bad bytes" in panel.message()
    assert panel.stage.wordWrap() and box.minimumSizeHint().width() <= width + 20
    box.replace_bad.setChecked(True)
    assert panel.message() == "" and panel.isVisible() and box.awaiting_prepare()
    panel.prepare_button.click()
    qtbot.waitUntil(lambda: box.data_folder() is not None, timeout=TIMEOUT_MS)
    assert load_prepared(box.data_folder()).meta["on_bad_utf8"] == "replace"


def test_two_files_of_the_same_name_get_their_own_prepared_copy(qtbot, window, tmp_path):
    box, path = _too_large(window, tmp_path)
    _offered(qtbot, box, path)
    box.prepare_panel.prepare_button.click()
    qtbot.waitUntil(lambda: box.data_folder() is not None, timeout=TIMEOUT_MS)
    first = box.data_folder()
    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / "big.txt"
    twin.write_text(TEXT[::-1], encoding="utf-8")               # same name, size and characters
    _offered(qtbot, box, twin)                                 # not the first file's copy
    box.prepare_panel.prepare_button.click()
    qtbot.waitUntil(lambda: box.data_folder() not in (None, first), timeout=TIMEOUT_MS)
    assert load_prepared(first).meta["source"] == str(path.resolve())
    assert load_prepared(box.data_folder()).meta["source"] == str(twin.resolve())


def test_a_checkpoint_trained_from_a_prepared_folder_opens_on_that_folder(qtbot, window, tmp_path):
    """`train --data DIR` over a corpus over the limit, then Load in the window: the folder is the corpus (the text
    is not read again, nor offered Prepare) and Resume trains on; the same folder re-prepared with another split is
    not used, and Resume then refuses it saying why."""
    from engine import api
    from engine.cli import main
    from engine.prepare import prepare
    box, path = _too_large(window, tmp_path, TEXT * 3)
    folder = tmp_path / "d"
    prepare(str(path), "char", folder, val_fraction=0.2)
    assert main(["train", "--data", str(folder), "--model", "lstm", "--preset", "tiny-cpu-lstm", "--set", "n_embd=8",
                 "--set", "n_hidden=16", "--set", "block_size=16", "--set", "batch_size=4", "--max-steps", "3",
                 "--device", "cpu", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    with qtbot.waitSignal(window.load_finished, timeout=TIMEOUT_MS) as blocker:
        assert window.load_checkpoint(str(tmp_path / "r"))
    assert blocker.args[0]
    assert box.data_folder() == str(folder.resolve()) and not box.prepare_panel.isVisible()
    assert not box.is_loading() and "(the last 20%)" in box.summary.text()
    assert window.panel.spec().data == str(folder.resolve())
    window.panel.fields["train"]["max_steps"].setValue(5)
    assert window.resume_checkpoint()
    qtbot.waitUntil(lambda: window.thread is None and window.state != "running", timeout=TIMEOUT_MS)
    assert api.load_checkpoint(tmp_path / "r").meta["step"] >= 3

    from PySide6.QtWidgets import QMessageBox
    window.ask_save_before_load = lambda: QMessageBox.Discard
    prepare(str(path), "char", folder, val_fraction=0.3)      # other data in the run's folder
    with qtbot.waitSignal(window.load_finished, timeout=TIMEOUT_MS):
        assert window.load_checkpoint(str(tmp_path / "r"))
    window.panel.fields["train"]["max_steps"].setValue(8)
    assert not window.resume_checkpoint() and window.thread is None
    assert "changed since the checkpoint was saved" in window.panel.message.text()
