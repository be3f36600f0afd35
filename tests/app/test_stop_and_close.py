"""Stop ends a run at once and Save is there while the final validation runs as its own cancellable pass; closing
mid-run never waits for that pass (it froze the window for 10-20 s on a large corpus)."""
from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from app.main_window import MainWindow
from tests.app.test_main_window import RUN_TIMEOUT_MS, make_tiny


def slow_validation(window: MainWindow) -> dict:
    """Make the run's validation pass last until it is cancelled (or 30 s pass): what a 50 MB corpus does."""
    seen = {"cancelled": False, "started": threading.Event()}

    def evaluate(cancel=None):
        seen["started"].set()
        if cancel is None:
            return None
        done = threading.Event()
        for _ in range(3000):
            if cancel():
                seen["cancelled"] = True
                return None
            done.wait(0.01)
        return 1.0, 1.0, 2.7
    window.run.trainer.evaluate = evaluate
    return seen


def start_long_run(qtbot, window: MainWindow) -> None:
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    qtbot.mouseClick(window.panel.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state == "running" and window.last_report is not None, timeout=RUN_TIMEOUT_MS)


def test_stop_offers_save_during_the_final_validation_and_stop_again_skips_it(qtbot, window, tmp_path):
    start_long_run(qtbot, window)
    seen = slow_validation(window)
    p = window.panel
    qtbot.mouseClick(p.stop_button, Qt.LeftButton)
    assert window.status_state.text() == "stopping…"
    qtbot.waitUntil(lambda: window.state == "validating", timeout=RUN_TIMEOUT_MS)
    assert window.status_state.text() == "stopping… (final validation)"
    assert window.status_eta.text() == "ETA —" and "ETA" not in p.progress.format()
    assert p.save_button.isEnabled() and p.stop_button.isEnabled() and not p.start_button.isEnabled()
    assert "Skip" in p.stop_button.toolTip()
    assert window.save_checkpoint(str(tmp_path / "saved")) is not None   # saved while validating
    assert not window.unsaved
    qtbot.mouseClick(p.stop_button, Qt.LeftButton)    # skip the pass
    qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)
    assert seen["cancelled"] and window.run.last_report.event == "done"
    assert window.status_state.text() == "stopped" and p.start_button.isEnabled()
    assert p.progress.format().endswith(" · stopped") and "stopping" not in p.progress.format()


def test_closing_mid_run_with_discard_does_not_wait_for_a_validation_pass(qtbot, window):
    start_long_run(qtbot, window)
    seen = slow_validation(window)
    window.stop()
    qtbot.waitUntil(lambda: window.state == "validating", timeout=RUN_TIMEOUT_MS)
    assert seen["started"].is_set()
    window.close()
    assert seen["cancelled"], "closing waited for the validation pass instead of cancelling it"
    assert window.thread is None and not window.isVisible()


def test_closing_while_training_skips_the_final_validation(qtbot, window):
    start_long_run(qtbot, window)
    seen = slow_validation(window)
    window.close()
    assert not seen["started"].is_set() and window.thread is None and not window.isVisible()


def test_save_writes_in_the_background_and_the_window_waits_for_it(qtbot, window, tmp_path):
    make_tiny(window, max_steps=6, eval_interval=100)
    window.menu_actions["start"].trigger()
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    release, real_save = threading.Event(), window.run.save
    window.run.save = lambda path: release.wait(30) and real_save(path)   # a big checkpoint, slow to write
    window.ask_save_path = lambda: str(tmp_path / "ck")
    p = window.panel
    qtbot.mouseClick(p.save_button, Qt.LeftButton)
    assert window.unsaved and not p.save_button.isEnabled()   # the GUI thread came back while it writes
    assert "saving" in window.statusBar().currentMessage()
    release.set()
    qtbot.waitUntil(lambda: not window.unsaved, timeout=RUN_TIMEOUT_MS)
    assert p.save_button.isEnabled() and "saved checkpoint" in window.statusBar().currentMessage()
    release.clear()
    qtbot.mouseClick(p.save_button, Qt.LeftButton)           # again, then close while it writes
    window.close()
    assert window.isVisible()                                 # a save being written keeps the window open
    release.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)   # and closes once it is written
    assert (tmp_path / "ck" / "meta.json").exists() and not window.unsaved


def test_load_reads_the_checkpoint_in_the_background(qtbot, window, tmp_path, monkeypatch):
    make_tiny(window, max_steps=6, eval_interval=100)
    window.menu_actions["start"].trigger()
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    saved = window.save_checkpoint(str(tmp_path / "ck"))
    from app.window import checkpoint_actions
    read_on, release = [], threading.Event()
    real_load = checkpoint_actions.api.load_checkpoint

    def slow_load(path):
        read_on.append(threading.current_thread())
        release.wait(30)
        return real_load(path)
    monkeypatch.setattr(checkpoint_actions.api, "load_checkpoint", slow_load)
    window.ask_load_path = lambda: str(saved)
    qtbot.mouseClick(window.panel.load_button, Qt.LeftButton)
    assert window.state == "done" and not window.panel.load_button.isEnabled()   # the GUI thread came back
    assert "loading checkpoint" in window.statusBar().currentMessage()
    release.set()
    qtbot.waitUntil(lambda: window.state == "loaded", timeout=RUN_TIMEOUT_MS)
    assert read_on and read_on[0] is not threading.main_thread()
    assert window.panel.load_button.isEnabled() and window.source.snapshot() is not None
