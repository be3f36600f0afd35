"""Issue 14 in the window: a failed save keeps the run (also when closing), every hostile checkpoint leaves the
window as it was with one message, damaged saved settings are reset key by key and the app starts, skipped
corpus files are named, a resume that starts its optimizer afresh says so."""
from __future__ import annotations

import errno
import json
from html import escape

import pytest
from PySide6.QtWidgets import QMessageBox

from engine import checkpoint
from tests.app.conftest import open_window
from tests.app.test_main_window import RUN_TIMEOUT_MS, load_and_wait, load_ckpt, make_tiny, start_and_wait
from tests.engine import hostile


def _full_disk(monkeypatch):
    def write(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(checkpoint, "_write_synced", write)


def test_save_on_a_full_disk_says_why_and_keeps_the_run(qtbot, window, tmp_path, monkeypatch):
    make_tiny(window, max_steps=4)
    start_and_wait(qtbot, window)
    with monkeypatch.context() as m:
        _full_disk(m)
        assert window.save_checkpoint(str(tmp_path / "ck")) is None
    assert "Could not save" in window.panel.message.text() and "the disk is full" in window.panel.message.text()
    assert window.unsaved and window.panel.save_button.isEnabled() and window.run is not None
    assert not (tmp_path / "ck" / "meta.json").exists()
    assert window.save_checkpoint(str(tmp_path / "ck")) is not None and not window.unsaved   # space again
    assert "Could not save" not in window.panel.message.text()


def test_closing_with_save_on_a_full_disk_keeps_the_window_and_the_run(qtbot, window, tmp_path, monkeypatch):
    make_tiny(window, max_steps=4)
    start_and_wait(qtbot, window)
    window.ask_save_on_close = lambda: QMessageBox.Save
    window.ask_save_path = lambda: str(tmp_path / "ck")
    with monkeypatch.context() as m:
        _full_disk(m)
        window.close()                                              # the save runs on a worker thread
        qtbot.waitUntil(lambda: "the disk is full" in window.panel.message.text(), timeout=RUN_TIMEOUT_MS)
        assert window.isVisible() and window.run is not None and window.unsaved
    window.close()                                                  # the disk has room again
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    assert (tmp_path / "ck" / "meta.json").exists()


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    return hostile.build_good(tmp_path_factory.mktemp("hostile-window"))


def test_hostile_checkpoints_leave_the_window_as_it_was(qtbot, window, tmp_path, good_checkpoint):
    """Every case the loaders must refuse, through the window's Load: False, one message, nothing else changed."""
    p = window.panel
    before = (window.state, json.dumps(p.settings()), window.loss_plot.train.n, window.source.snapshot())
    refused = 0
    for i, (name, mutate, expect) in enumerate(hostile.CASES):
        if expect != "error":
            continue
        case = hostile.make_case(good_checkpoint, tmp_path / f"case{i}", mutate)
        assert not load_ckpt(qtbot, window, str(case)), name
        assert "Could not load" in p.message.text(), name
        assert (window.state, json.dumps(p.settings()), window.loss_plot.train.n,
                window.source.snapshot()) == before, name
        refused += 1
    assert refused >= 100
    for i, (name, mutate, expect) in enumerate(hostile.CASES):   # odd but loadable: shown without a crash
        if expect != "error":
            case = hostile.make_case(good_checkpoint, tmp_path / f"case{i}", mutate)
            assert load_ckpt(qtbot, window, str(case)) and window.state == "loaded", name
    assert load_ckpt(qtbot, window, str(good_checkpoint)) and window.state == "loaded"


DAMAGED = {
    "settings/last": json.dumps({"seed": 2 ** 40, "family": "transformer", "model": {"n_layer": 1e30, "n_embd": 48},
                                 "train": {"lr": float("nan"), "batch_size": 12, "max_steps": "many"},
                                 "tokenizer": 3, "word_cap": 7}),
    "window/geometry": "a string",
    "window/splitter": 42,
    "corpus/recent": 5,
    "corpus/last": 5,
}


def test_damaged_saved_settings_are_reset_one_key_at_a_time(qtbot, settings):
    for key, value in DAMAGED.items():
        settings.setValue(key, value)
    settings.sync()
    w = open_window(qtbot, settings)       # the app starts
    expected = ["settings/last seed: 1,099,511,627,776 is outside", "settings/last model.n_layer: 1e+30 is not a "
                "whole number", "settings/last train.lr: nan is outside", "settings/last train.max_steps: 'many' "
                "is not a whole number", "settings/last tokenizer: 3 is not one of the choices",
                "window/geometry: not a saved window state", "window/splitter: not a saved window state",
                "corpus/recent: not a list of corpora", "corpus/last: 5 is not a corpus path"]
    for reset in expected:
        assert any(r.startswith(reset) for r in w.reset_settings), (reset, w.reset_settings)
        assert escape(reset) in w.panel.message.text()
    assert len(w.reset_settings) == len(expected)
    p = w.panel                                  # the valid entries were applied, the bad ones left as they were
    assert p.fields["transformer"]["n_embd"].value() == 48 and p.fields["train"]["batch_size"].value() == 12
    assert p.word_cap.value() == 7
    w.close()
    again = open_window(qtbot, settings)    # written back clean: the next start has nothing to reset
    assert again.reset_settings == []
    again.close()


@pytest.mark.parametrize("value,reset", [(json.dumps([1, 2]), "the saved settings are a list, not an object"),
                                         ("{not json", "settings/last not readable")])
def test_saved_settings_that_are_not_an_object_are_reset(qtbot, settings, value, reset):
    settings.setValue("settings/last", value)
    w = open_window(qtbot, settings)
    assert any(reset in r for r in w.reset_settings) and w.panel.preset.currentText() == "tiny-cpu-transformer"
    w.close()


def test_skipped_corpus_files_are_named_in_the_window(qtbot, window, tmp_path, small_text):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text(small_text)
    (tmp_path / "c" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" * 100)
    assert load_and_wait(qtbot, window.panel.corpus_box, str(tmp_path / "c"))
    summary = window.panel.corpus_box.summary.text()
    assert "skipped 1 file(s): clip.mp4 (binary (NUL bytes))" in summary


def test_a_resume_that_restarts_the_optimizer_says_so(qtbot, window, tmp_path):
    make_tiny(window, max_steps=4, eval_interval=2)
    start_and_wait(qtbot, window)
    assert window.save_checkpoint(str(tmp_path / "ck")) is not None
    hostile.CASES_BY_NAME["optimizer a moment of the wrong shape"](tmp_path / "ck")
    assert load_ckpt(qtbot, window, str(tmp_path / "ck"))
    window.panel.fields["train"]["max_steps"].setValue(8)
    assert window.resume_checkpoint()
    qtbot.waitUntil(lambda: window.thread is None, timeout=RUN_TIMEOUT_MS)
    assert "Warning: the saved optimizer state cannot be used" in window.panel.message.text()


def test_loading_runs_off_the_gui_thread(qtbot, window, tmp_path, good_checkpoint, monkeypatch):
    """load_checkpoint returns at once; the files are read on a worker while the GUI thread goes on."""
    import threading

    from engine import api
    release, threads = threading.Event(), []
    real = api.load_checkpoint

    def slow_load(path):
        threads.append(threading.current_thread())
        assert release.wait(RUN_TIMEOUT_MS / 1000)
        return real(path)
    monkeypatch.setattr(api, "load_checkpoint", slow_load)
    assert window.load_checkpoint(str(good_checkpoint))
    assert not window.load_checkpoint(str(good_checkpoint))          # one load at a time
    qtbot.waitUntil(lambda: bool(threads), timeout=RUN_TIMEOUT_MS)
    assert threads[0] is not threading.main_thread() and window.state != "loaded"
    with qtbot.waitSignal(window.load_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        release.set()
    assert blocker.args == [True] and window.state == "loaded"
