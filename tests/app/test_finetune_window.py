"""Fine-tuning from the window: load a checkpoint, choose another corpus, "Fine-tune on this corpus"; the
unencodable characters are named and mapped on request; both curves share one step axis; a fine-tuned
checkpoint shows its parent's curve before its own when loaded."""
from __future__ import annotations

from PySide6.QtCore import Qt

from engine import checkpoint
from tests.app.test_main_window import RUN_TIMEOUT_MS, load_and_wait, load_ckpt, make_tiny, start_and_wait


def test_finetune_a_loaded_checkpoint_on_another_corpus(qtbot, window, tmp_path, small_text):
    make_tiny(window, max_steps=6, eval_interval=3)
    start_and_wait(qtbot, window)
    parent = window.save_checkpoint(str(tmp_path / "parent"))
    assert load_ckpt(qtbot, window, parent)
    assert window.panel.finetune_button.isEnabled()
    other = tmp_path / "other.txt"
    other.write_text(small_text + "¤¤ new symbol\n", encoding="utf-8")   # '¤' is not in python-docs' characters
    assert load_and_wait(qtbot, window.panel.corpus_box, str(other))
    window.panel.fields["train"]["max_steps"].setValue(4)
    asked = []
    window.ask_map_unknown = lambda message, replacement: asked.append((message, replacement)) or None
    assert window.finetune_checkpoint()              # the corpus is checked on a worker thread, then asked
    qtbot.waitUntil(lambda: bool(asked), timeout=RUN_TIMEOUT_MS)
    qtbot.wait(50)
    assert "'¤' ×2" in asked[0][0] and asked[0][1] == " " and window.thread is None   # cancelled: nothing starts
    assert window.panel.finetune_button.isEnabled()
    window.ask_map_unknown = lambda message, replacement: replacement
    qtbot.mouseClick(window.panel.finetune_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    steps = window.loss_plot.train["step"]
    assert steps[0] > 6 and steps[-1] == 6 + 4       # after the parent's steps on one axis
    earlier = window.loss_plot.history.runs
    assert len(earlier) == 2 and earlier[-1].train["step"][-1] == 6   # the parent's curve is still shown
    child = window.save_checkpoint(str(tmp_path / "child"))
    meta = checkpoint.load_meta(child)
    assert meta["parent"]["checkpoint"] == str(parent) and meta["parent"]["step"] == 6
    assert meta["spec"]["corpus"] == str(other)
    # loading the fine-tuned checkpoint shows the parent's curve, then its own after it
    assert load_ckpt(qtbot, window, child)
    assert window.loss_plot.history.runs[-1].train["step"][-1] == 6
    assert window.loss_plot.train["step"][0] > 6 and window.loss_plot.train["step"][-1] == 10


def test_export_the_loaded_checkpoint_as_a_script(qtbot, window, tmp_path):
    make_tiny(window, max_steps=4, eval_interval=2)
    start_and_wait(qtbot, window)
    assert not window.panel.export_button.isEnabled()          # a run in the window, not saved: nothing to export
    ck = window.save_checkpoint(str(tmp_path / "ck"))
    assert window.panel.export_button.isEnabled()              # saved as it ended: its folder (see below)
    assert load_ckpt(qtbot, window, ck)
    assert window.panel.export_button.isEnabled()
    with qtbot.waitSignal(window.exported, timeout=RUN_TIMEOUT_MS) as blocker:
        assert window.export_checkpoint(str(tmp_path / "run.py"))
    assert blocker.args == [str(tmp_path / "run.py")]
    assert "def main():" in (tmp_path / "run.py").read_text()
    assert "exported" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.exported, timeout=RUN_TIMEOUT_MS) as blocker:
        assert window.export_checkpoint(str(tmp_path / "run.txt"))   # not a .py: refused with the reason
    assert blocker.args == [""] and "must be a .py file" in window.panel.message.text()
    (tmp_path / "mine.py").write_text("mine\n")   # chosen in the save dialog, which asked before replacing it
    with qtbot.waitSignal(window.exported, timeout=RUN_TIMEOUT_MS) as blocker:
        assert window.export_checkpoint(str(tmp_path / "mine.py"))
    assert blocker.args == [str(tmp_path / "mine.py")] and "def main():" in (tmp_path / "mine.py").read_text()


def test_a_run_saved_in_the_window_fine_tunes_and_exports_without_loading_it(qtbot, window, tmp_path, small_text):
    """A new user trained, saved, and found Fine-tune and Export grey until they loaded the checkpoint they had
    just saved. The run's own save is the checkpoint they act on now; a new run or more training takes it away."""
    make_tiny(window, max_steps=4, eval_interval=2)
    start_and_wait(qtbot, window)
    p = window.panel
    assert not p.finetune_button.isEnabled() and not p.export_button.isEnabled()
    window.ask_save_path = lambda: str(tmp_path / "ck")
    assert window.save_in_background()                        # the Save button: written on a worker thread
    qtbot.waitUntil(lambda: not window._saving, timeout=RUN_TIMEOUT_MS)
    assert p.finetune_button.isEnabled() and p.export_button.isEnabled() and window.loaded is None
    with qtbot.waitSignal(window.exported, timeout=RUN_TIMEOUT_MS) as blocker:
        assert window.export_checkpoint(str(tmp_path / "run.py"))
    assert blocker.args == [str(tmp_path / "run.py")] and "def main():" in (tmp_path / "run.py").read_text()
    other = tmp_path / "other.txt"
    other.write_text(small_text, encoding="utf-8")
    assert load_and_wait(qtbot, window.panel.corpus_box, str(other))
    window.panel.fields["train"]["max_steps"].setValue(3)
    assert window.finetune_checkpoint()                       # checks the corpus on a worker, then starts
    qtbot.waitUntil(lambda: window.thread is not None, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    assert window.loss_plot.train["step"][-1] == 4 + 3        # continues after its parent's steps
    assert not p.finetune_button.isEnabled() and not p.export_button.isEnabled()   # the new run is not saved
    child = window.save_checkpoint(str(tmp_path / "child"))
    assert checkpoint.load_meta(child)["parent"]["checkpoint"] == str(tmp_path / "ck")


def test_a_followed_run_does_not_fine_tune_or_export_the_run_saved_before(qtbot, window, tmp_path):
    """The run saved in the window stays its checkpoint only while it is the window's run: after File → Open run,
    Export wrote a script of the earlier run while the window showed the followed one (the review's repro)."""
    import json

    from engine.metrics_log import METRICS_FILE
    make_tiny(window, max_steps=4, eval_interval=2)
    start_and_wait(qtbot, window)
    saved = window.save_checkpoint(str(tmp_path / "A"))
    assert window.checkpoint_in_use()[0] == str(saved)
    followed = tmp_path / "B"
    followed.mkdir()
    (followed / METRICS_FILE).write_text(json.dumps({"event": "start", "step": 0}) + "\n", encoding="utf-8")
    assert window.open_run(str(followed))
    assert window.checkpoint_in_use() is None
    assert not window.panel.export_button.isEnabled() and not window.panel.finetune_button.isEnabled()
    assert not window.export_checkpoint(str(tmp_path / "exported.py"))
