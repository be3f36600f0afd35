"""A run in the window is never only in memory: it gets a folder under the default runs location, is autosaved at
each evaluation and at its end, keeps past models for scrubbing, and a run whose window died is offered for
recovery by the next window. Save and Load dialogs start in the runs location."""
from __future__ import annotations

import json

import pytest
import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.main_window import MainWindow
from engine import checkpoint, runs_dir
from tests.app.conftest import open_window
from tests.app.test_main_window import RUN_TIMEOUT_MS, make_tiny, start_and_wait


def _window(qtbot, tmp_path, name="settings.ini") -> MainWindow:
    return open_window(qtbot, QSettings(str(tmp_path / name), QSettings.IniFormat))


@pytest.fixture
def window(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    yield w
    w.shutdown_run()


def test_a_run_is_autosaved_in_its_folder_and_keeps_past_models(qtbot, window, runs_location):
    make_tiny(window, max_steps=12, eval_interval=4)
    saves = []
    window.keeper.saved.connect(saves.append)
    start_and_wait(qtbot, window)
    folder = window.keeper.folder
    assert folder.parent == runs_location                          # not the working directory
    qtbot.waitUntil(lambda: json.loads((folder / "run.json").read_text())["state"] == "ended",
                    timeout=RUN_TIMEOUT_MS)
    assert saves and saves[-1] == str(folder / "checkpoint")
    assert checkpoint.load_meta(folder / "checkpoint")["step"] == 12   # the final state, autosaved
    kept = window.run.snapshot_steps()
    assert {1, 2, 3, 4, 8, 12} <= set(kept) and len(kept) <= 32
    assert len(list((folder / "snapshots").glob("*.safetensors"))) == len(kept)
    plot = window.loss_plot
    assert plot.kept_steps == kept and plot.marker.isVisible()
    assert plot.kept_label.text().startswith(f"Past models: {len(kept)} kept (")

    # scrub: drop the marker near step 4; the tabs' model is the one of step 4, and says so
    plot.marker.setValue(4.3)
    plot.marker.sigPositionChangeFinished.emit(plot.marker)
    assert plot.chosen_step == 4
    qtbot.waitUntil(lambda: window.source.past_step() == 4, timeout=RUN_TIMEOUT_MS)   # read on a worker thread
    assert "as it was at step 4" in window.source.describe()
    past = window.source.snapshot()
    saved = window.run.snapshot_at(4).model.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in past.model.state_dict().items())
    newest = window.run.snapshot().model.state_dict()
    assert not all(torch.equal(v, newest[k]) for k, v in past.model.state_dict().items())
    assert "as it was at step 4" in window.sample_panel.model_label.text()   # named where it is used
    assert "as it was at step 4" in window.graph_panel.model_label.text()
    assert "model of step 4" in window.statusBar().currentMessage()
    plot.back_to_newest()
    assert window.source.past_step() is None and "as it was" not in window.source.describe()
    assert window.statusBar().currentMessage() == "the Sample and Graph tabs use the newest model again"

    dialog = window.show_samples_over_time()
    dialog.prompt.setText("The ")
    with qtbot.waitSignal(dialog.finished_rows, timeout=RUN_TIMEOUT_MS) as blocker:
        dialog.generate_button.click()
    assert blocker.args == [len(kept)] and dialog.table.rowCount() == len(kept)
    assert [dialog.table.item(i, 0).text() for i in range(len(kept))] == [f"{s:,}" for s in kept]
    assert all(dialog.table.item(i, 1).text().startswith("The ") for i in range(len(kept)))
    dialog.close()


def test_a_run_left_running_by_a_dead_window_is_offered_for_recovery(qtbot, window, tmp_path, monkeypatch):
    make_tiny(window, max_steps=4, eval_interval=2)
    start_and_wait(qtbot, window)
    folder = window.keeper.folder
    # the final autosave has ended (its callback marks the folder ended); then fake the crash
    qtbot.waitUntil(lambda: json.loads((folder / "run.json").read_text())["state"] == "ended",
                    timeout=RUN_TIMEOUT_MS)
    runs_dir.mark(folder, "running")                                   # as a crash leaves it...
    record = json.loads((folder / "run.json").read_text())
    record["pid"] = 2 ** 22 + 12345                                    # ...by a process that is gone
    (folder / "run.json").write_text(json.dumps(record))
    assert runs_dir.unfinished_runs() == [folder]
    asked = []
    monkeypatch.setattr(MainWindow, "ask_recover", lambda self, f: asked.append(f) or True)
    second = _window(qtbot, tmp_path, "second.ini")
    qtbot.waitUntil(lambda: second.state == "loaded", timeout=RUN_TIMEOUT_MS)
    assert asked == [folder]
    assert second.loaded[0] == str(folder / "checkpoint")
    assert runs_dir.unfinished_runs() == []                            # offered once
    second.shutdown_run()


def test_save_and_load_dialogs_start_in_the_runs_location(qtbot, window, monkeypatch, runs_location):
    make_tiny(window, max_steps=2, eval_interval=2)
    start_and_wait(qtbot, window)
    seen = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: seen.append(a[2]) or ("", ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: seen.append(a[2]) or "")
    window.save_checkpoint()
    window.load_checkpoint()
    assert seen[0].startswith(str(runs_location) + "/") and seen[1] == str(runs_location)


def test_a_loaded_run_folder_can_be_scrubbed(qtbot, window):
    """Loading the autosave of a window run brings its past models along: the marker snaps to them and the tabs
    use the chosen step's model."""
    from tests.app.test_main_window import load_ckpt
    make_tiny(window, max_steps=10, eval_interval=5)
    start_and_wait(qtbot, window)
    folder = window.keeper.folder
    qtbot.waitUntil(lambda: json.loads((folder / "run.json").read_text())["state"] == "ended",
                    timeout=RUN_TIMEOUT_MS)
    kept = window.run.snapshot_steps()
    five = window.run.snapshot_at(5).model.state_dict()
    window.ask_save_before_load = lambda: QMessageBox.Discard   # it is autosaved; no question in a test
    assert load_ckpt(qtbot, window, folder / "checkpoint")
    assert window.run is None and window.loss_plot.kept_steps == kept
    window.loss_plot.choose_step(5)
    qtbot.waitUntil(lambda: window.source.past_step() == 5, timeout=RUN_TIMEOUT_MS)
    assert "as it was at step 5" in window.sample_panel.model_label.text()
    past = window.source.snapshot().model.state_dict()
    assert all(torch.equal(v, five[k]) for k, v in past.items())
    dialog = window.show_samples_over_time()
    with qtbot.waitSignal(dialog.finished_rows, timeout=RUN_TIMEOUT_MS) as blocker:
        dialog.generate_button.click()
    assert blocker.args == [len(kept)]
    dialog.close()


def test_an_earlier_runs_late_autosave_leaves_the_next_runs_folder_alone(qtbot):
    """The final autosave of one run can still be answered after the next run has begun: its answer must not
    mark the new run's folder ended (a crash in the new run would then never be offered for recovery), nor
    start a save into the new folder."""
    import json
    import threading

    from app.training.run_keeper import RunKeeper

    release, saved_into = threading.Event(), []

    class SlowRun:
        def save(self, target):
            release.wait(10)
            saved_into.append(target)
            return target

    keeper = RunKeeper()
    first = keeper.begin("transformer").parent
    keeper.autosave(SlowRun(), final=True)
    keeper.autosave(SlowRun())                       # queued behind the first
    release.set()
    second = keeper.begin("transformer").parent     # waits for the save; its answer is still queued
    qtbot.wait(200)                                  # the queued answers arrive now
    assert json.loads((second / "run.json").read_text())["state"] == "running"
    assert json.loads((first / "run.json").read_text())["state"] == "ended"
    assert all(str(second) not in str(t) for t in saved_into)
