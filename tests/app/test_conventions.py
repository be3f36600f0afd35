"""Desktop conventions: a menu bar with standard shortcuts that mirror the buttons, a notice when a run ends, a
first launch that fits the screen, run buttons that stay put, and status text that is true."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.window.run_notice import first_geometry
from engine import api
from engine.errors import CorpusError
from tests.app.test_main_window import RUN_TIMEOUT_MS, make_tiny


def menu_texts(window: MainWindow) -> dict[str, list[str]]:
    return {m.title().replace("&", ""): [a.text().replace("&", "") for a in m.actions() if not a.isSeparator()]
            for m in (a.menu() for a in window.menuBar().actions())}


def test_menus_hold_the_commands_with_standard_shortcuts(window):
    menus = menu_texts(window)
    assert list(menus) == ["File", "Run", "View", "Help"]
    assert menus["File"] == ["Open corpus file…", "Open corpus folder…", "Recent corpora", "Load checkpoint…",
                             "Open model… (GPT-2 folder, nanoGPT ckpt.pt)", "Open run…", "Save checkpoint…",
                             "Export loss plot", "Close window", "Quit"]
    assert menus["Run"][0] == "Start training" and menus["Run"][2] == "Stop"
    assert menus["View"] == ["Loss tab", "Graph tab", "Sample tab", "Tokens tab", "Inside tab"]
    assert menus["Help"] == ["Keyboard shortcuts", "About LM Playground"]
    a = window.menu_actions
    for name, key in (("open_file", QKeySequence.Open), ("save", QKeySequence.Save), ("quit", QKeySequence.Quit),
                      ("close", QKeySequence.Close), ("shortcuts", QKeySequence.HelpContents)):
        assert a[name].shortcut() == QKeySequence(key), name
    assert a["start"].shortcut() == QKeySequence("F5") and a["stop"].shortcut() == QKeySequence("Shift+F5")
    assert a["tab_1"].shortcut() == QKeySequence("Ctrl+2")


def test_menu_items_follow_their_buttons_and_tooltips_name_the_keys(qtbot, window):
    p, a = window.panel, window.menu_actions
    assert a["start"].isEnabled() and not a["stop"].isEnabled() and not a["save"].isEnabled()
    assert p.start_button.toolTip().endswith("(F5)") and p.stop_button.toolTip().endswith("(Shift+F5)")
    assert p.save_button.toolTip().endswith("(Ctrl+S)")
    p.fields["transformer"]["n_embd"].setValue(16)   # 16 wide with 3 heads: an invalid form, so the panel
    p.fields["transformer"]["n_head"].setValue(3)    # rewrites Start's tooltip with the reason
    assert p.check()
    assert not p.start_button.isEnabled() and not a["start"].isEnabled()
    assert p.start_button.toolTip().startswith("Cannot start") and p.start_button.toolTip().endswith("(F5)")
    a["start"].trigger()                            # a shortcut can never do what the button refuses
    assert window.state == "idle"
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    assert a["start"].isEnabled()
    a["start"].trigger()
    qtbot.waitUntil(lambda: window.state == "running", timeout=RUN_TIMEOUT_MS)
    assert a["pause"].isEnabled() and a["pause"].text() == "&Pause" and not a["start"].isEnabled()
    a["pause"].trigger()
    assert window.state == "paused" and a["pause"].text() == "&Resume"
    assert a["save"].isEnabled() and not a["load"].isEnabled() and not a["open_file"].isEnabled()
    a["pause"].trigger()
    assert window.state == "running"
    a["stop"].trigger()
    qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)


def test_view_keys_switch_tabs_and_close_closes(qtbot, window):
    window.menu_actions["tab_3"].trigger()
    assert window.tabs.currentWidget() is window.tokens_panel
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key_2, Qt.ControlModifier)
    assert window.tabs.currentWidget() is window.graph_panel
    window.menu_actions["shortcuts"].trigger()
    dialog = window._shortcuts_dialog
    text = dialog.findChild(type(window.status_step)).text()
    assert dialog.isVisible() and not dialog.isModal() and "F5" in text and "Pause / resume" in text
    window.menu_actions["close"].trigger()
    assert not window.isVisible()


def test_a_finished_run_leaves_a_notice_and_alerts(qtbot, window, monkeypatch):
    alerts = []
    monkeypatch.setattr(QApplication, "alert", staticmethod(lambda widget, msec=0: alerts.append(widget)))
    make_tiny(window, max_steps=12, eval_interval=100)
    assert window.notice.isHidden()
    window.menu_actions["start"].trigger()
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    assert window.notice.isVisible() and window.notice.kind == "done"
    assert "finished at step 12 of 12" in window.notice.label.text()
    assert "validation loss" in window.notice.label.text() and alerts == [window]
    qtbot.mouseClick(window.notice.dismiss, Qt.LeftButton)
    assert window.notice.isHidden()


def test_a_failed_start_says_so_and_clears_what_is_no_longer_true(qtbot, window, monkeypatch):
    make_tiny(window, max_steps=8, eval_interval=100)
    window.menu_actions["start"].trigger()
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    assert "tokens/s" in window.panel.speed.text() and window.status_speed.text()

    def refuse(spec):
        raise CorpusError("the corpus vanished")
    monkeypatch.setattr(api, "start_run", refuse)
    window.menu_actions["start"].trigger()
    qtbot.waitUntil(lambda: window.thread is None and window.state == "error", timeout=RUN_TIMEOUT_MS)
    p = window.panel
    assert "preparing" not in p.progress.format() and p.progress.format() == "could not start"
    assert "tokens/s" not in p.speed.text() and window.status_speed.text() == ""
    assert window.status_state.text() == "error"
    assert window.notice.kind == "error" and "the corpus vanished" in window.notice.label.text()


def test_status_reads_idle_and_the_device_a_run_uses(qtbot, window):
    assert window.status_state.text() == "idle" and window.panel.progress.text() == "idle"
    if window.panel.device.currentText() in ("auto", "cpu") and "CPU" in window.status_device.text():
        assert window.status_device.text() == "device: CPU (1 thread)"   # what a run here trains with
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    window.menu_actions["start"].trigger()
    qtbot.waitUntil(lambda: window.state == "running", timeout=RUN_TIMEOUT_MS)
    assert window.status_device.text() == f"device: {window.run.summary()['device']}"
    window.stop()
    qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)


def test_run_buttons_stay_where_they_were_when_training_starts(qtbot, window):
    window.resize(1280, 760)
    qtbot.wait(50)
    p = window.panel
    buttons = (p.start_button, p.stop_button, p.save_button, p.load_button)
    before = [b.mapTo(window, QPoint(0, 0)) for b in buttons]
    make_tiny(window, max_steps=100_000, eval_interval=5)
    qtbot.mouseClick(p.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state == "running" and "validation loss" in p.message.text(),
                    timeout=RUN_TIMEOUT_MS)
    assert p.message.text().count("<br>") >= 2          # the run's description, a note and an evaluation
    qtbot.wait(50)
    assert [b.mapTo(window, QPoint(0, 0)) for b in buttons] == before
    window.stop()
    qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)


def test_the_first_launch_fits_the_available_screen():
    minimum = QSize(1084, 542)
    for available in (QRect(0, 0, 1280, 800), QRect(0, 27, 1280, 773), QRect(0, 0, 1600, 1000),
                      QRect(1920, 0, 2560, 1440)):
        rect = first_geometry(available, minimum)
        assert available.contains(rect) and rect.top() - available.top() >= 30   # room for a title bar
        assert rect.width() >= minimum.width() and rect.height() >= minimum.height()
    assert first_geometry(QRect(0, 0, 2560, 1440), minimum).size() == QSize(1400, 900)


def test_the_window_can_shrink_to_a_1280x800_screen(window):
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 * 0.92 and hint.height() <= 800 * 0.92
