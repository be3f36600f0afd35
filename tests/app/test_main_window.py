"""Drive the real main window the way a user would: first-run state, a short run, pause/resume/stop, bad corpora,
invalid hyperparameters, checkpoints, errors in the worker, closing mid-run. Runs are tiny (a 1-layer, 16-wide
model) so the whole file takes seconds."""
from __future__ import annotations

import threading

import pytest
import torch
from PySide6.QtCore import QMimeData, QObject, QPointF, QSettings, Qt, QUrl, Slot
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from app.main_window import MainWindow
from app.training.train_panel import WARN_COLOR
from engine import api
from engine import device as devices
from engine.checkpoint import load_meta

from tests.app.conftest import RUN_TIMEOUT_MS  # noqa: F401  (other tests import it from here)


def load_and_wait(qtbot, box, spec: str) -> bool:
    """Load `spec` through the box's background loader; True when it became the corpus in use."""
    box.load(spec)
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=RUN_TIMEOUT_MS)
    return not box.error.isVisible()


def make_tiny(w: MainWindow, *, max_steps: int = 30, eval_interval: int = 10) -> None:
    model = w.panel.fields["transformer"]
    for name, value in (("n_layer", 1), ("n_head", 2), ("n_embd", 16), ("block_size", 16)):
        model[name].setValue(value)
    train = w.panel.fields["train"]
    train["batch_size"].setValue(4)
    train["max_steps"].setValue(max_steps)
    train["eval_interval"].setValue(eval_interval)
    train["warmup_steps"].setValue(2)
    assert w.panel.check() == ""


def load_ckpt(qtbot, w: MainWindow, path) -> bool:
    """The window's Load, which reads the checkpoint on a worker thread: start it, wait for load_finished, and
    return whether the checkpoint is now shown."""
    with qtbot.waitSignal(w.load_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert w.load_checkpoint(str(path))
    return blocker.args[0]


def start_and_wait(qtbot, w: MainWindow, state: str = "done") -> None:
    qtbot.mouseClick(w.panel.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.state == state, timeout=RUN_TIMEOUT_MS)


def test_first_run_loads_builtin_corpus_and_cpu_preset(window):
    p = window.panel
    assert p.corpus_box.spec() == "builtin:python-docs"
    assert "characters" in p.corpus_box.summary.text() and "validation" in p.corpus_box.summary.text()
    assert p.corpus_box.preview.toPlainText()
    assert p.family.currentText() == "transformer"
    assert p.preset.currentText() == "tiny-cpu-transformer"
    assert p.start_button.isEnabled() and not p.stop_button.isEnabled()
    assert "CPU" in window.status_device.text()
    assert "parameters" in p.estimate.text()
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Loss", "Graph", "Sample", "Tokens",
                                                                                  "Inside"]
    cuda = p.device.model().item(p.device.findText("cuda"))
    assert cuda.isEnabled() == torch.cuda.is_available()
    if not cuda.isEnabled():
        assert "CUDA" in cuda.toolTip() and p.device.currentText() == "auto"


def test_parameter_count_follows_the_form(window):
    p = window.panel
    before = p.estimate.text()
    p.fields["transformer"]["n_layer"].setValue(4)
    p.check()
    after = p.estimate.text()
    count = lambda text: int(text.split("<b>")[1].split("</b>")[0].replace(",", ""))  # noqa: E731
    assert count(after) > count(before)
    assert count(after) == api.estimate("transformer", p.model_values(), {"batch_size": 16, "block_size": 64},
                                        p.vocab_guess())["params"]


def test_short_run_plots_points_and_updates_status(qtbot, window):
    make_tiny(window)
    start_and_wait(qtbot, window)
    plot = window.loss_plot
    assert plot.train.n > 0 and plot.val.n >= 3          # evals at 10, 20 and the final one
    plot.redraw()
    x, y = plot.displayed_points()
    assert len(x) > 0 and y.max() > y.min()
    assert window.status_step.text() == "step 30/30"
    assert "tok/s" in window.status_speed.text()
    assert window.status_state.text() == "finished"
    assert window.panel.progress.value() == window.panel.progress.maximum()
    assert window.panel.save_button.isEnabled() and window.panel.start_button.isEnabled()
    assert window.source.snapshot() is not None and not window.source.is_training()


def test_the_progress_bar_leaves_preparing_when_the_status_says_training(qtbot, window):
    """Between the run being built and its first report, the status bar said "training" while the progress bar
    still said "preparing: tokenizing the corpus, building the model…"."""
    from PySide6.QtCore import QObject, Slot
    seen = []

    class Spy(QObject):   # on the GUI thread; its queued slot runs right after the window's own
        @Slot(object)
        def prepared(self, run):
            seen.append((window.status_state.text(), window.panel.progress.format()))
    spy = Spy()
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    qtbot.mouseClick(window.panel.start_button, Qt.LeftButton)
    window.worker.prepared.connect(spy.prepared, Qt.QueuedConnection)   # tokenizing takes longer than this
    qtbot.waitUntil(lambda: bool(seen), timeout=RUN_TIMEOUT_MS)
    assert seen[0][0] == "training" and "preparing" not in seen[0][1]
    window.shutdown_run()


def test_pause_resume_stop_change_buttons_and_state(qtbot, window, tmp_path):
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    p = window.panel
    qtbot.mouseClick(p.start_button, Qt.LeftButton)
    assert window.state == "preparing" and not p.start_button.isEnabled() and p.stop_button.isEnabled()
    qtbot.waitUntil(lambda: window.state == "running" and window.loss_plot.train.n > 3, timeout=RUN_TIMEOUT_MS)
    assert window.source.is_training()
    qtbot.mouseClick(p.pause_button, Qt.LeftButton)
    assert window.state == "paused" and p.resume_button.isEnabled() and not p.pause_button.isEnabled()
    qtbot.waitUntil(lambda: window.last_report.event == "paused", timeout=RUN_TIMEOUT_MS)
    paused_at = window.run.last_report.step
    assert window.status_eta.text() == "ETA — (paused)" and p.progress.format().endswith(" · paused")
    assert window.save_checkpoint(str(tmp_path / "paused")) is not None   # the paused run's lock is free
    qtbot.wait(200)
    assert window.run.last_report.step == paused_at
    qtbot.mouseClick(p.resume_button, Qt.LeftButton)
    assert window.state == "running" and p.pause_button.isEnabled()
    qtbot.waitUntil(lambda: window.run.last_report.step > paused_at + 2, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: "ETA" in p.progress.format() and "paused" not in window.status_eta.text(),
                    timeout=RUN_TIMEOUT_MS)
    qtbot.mouseClick(p.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)
    assert window.run.last_report.event == "eval"   # the final validation, run after the end
    assert window.run.last_report.val_loss is not None and "validation loss" in p.message.text()
    assert p.start_button.isEnabled() and not p.stop_button.isEnabled() and p.save_button.isEnabled()
    assert window.status_state.text() == "stopped"
    assert window.status_eta.text() == "ETA —"  # a stopped run has nothing left to wait for


def test_bad_corpus_file_shows_reason_and_keeps_previous(qtbot, window, tmp_path):
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\x00\x00\x00binary")
    drop = QMimeData()
    drop.setUrls([QUrl.fromLocalFile(str(binary))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, drop, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)
    box = window.panel.corpus_box
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=RUN_TIMEOUT_MS)
    assert box.error.isVisible() and "binary" in box.error.text()
    assert box.spec() == "builtin:python-docs" and box.choice.currentData() == "builtin:python-docs"
    bad_utf8 = tmp_path / "latin1.txt"
    bad_utf8.write_bytes("caf\u00e9 au lait, ".encode("latin-1") * 20)
    assert not load_and_wait(qtbot, box, str(bad_utf8))
    assert "UTF-8" in box.error.text() and box.spec() == "builtin:python-docs"
    good = tmp_path / "good.txt"
    good.write_text("hello world, this is a tiny corpus of text. " * 200, encoding="utf-8")
    assert load_and_wait(qtbot, box, str(good)) and not box.error.isVisible()
    assert box.spec() == str(good.resolve()) and str(good.resolve()) in box.recent()
    make_tiny(window, max_steps=10)
    start_and_wait(qtbot, window)       # the app still trains after the bad files
    assert window.loss_plot.train.n > 0


def test_large_corpus_loads_in_the_background_and_the_window_stays_responsive(qtbot, window, tmp_path,
                                                                             monkeypatch):
    """The loader waits for a QTimer tick before it reads the 20 MB file, so the tick can only fire if the GUI
    thread's event loop runs while the load is under way (a load on the GUI thread would wait in vain and fail);
    no timing is measured, so a busy machine cannot make this flaky."""
    import threading

    from PySide6.QtCore import QTimer

    import app.training.corpus_box as corpus_box
    big = tmp_path / "big.txt"
    line = "the quick brown fox jumps over the lazy dog, caf\u00e9 \u00e0 la cr\u00e8me. 0123456789\n"
    big.write_text(line * (20_000_000 // len(line.encode("utf-8"))), encoding="utf-8")
    ticked, real_load = threading.Event(), corpus_box.load_corpus

    def load_after_a_tick(spec, **options):
        if not ticked.wait(10):
            raise RuntimeError("the GUI thread never ticked while the corpus was loading")
        return real_load(spec, **options)
    monkeypatch.setattr(corpus_box, "load_corpus", load_after_a_tick)
    box, p = window.panel.corpus_box, window.panel
    ticks = []
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: ticks.append(box.is_loading()) or ticked.set())
    loads = []
    box.loaded.connect(loads.append)
    box.load(str(big))
    timer.start()
    assert box.is_loading() and box.loading.isVisible() and "loading big.txt" in box.loading_label.text()
    assert box.spec() == "builtin:python-docs" and "python-docs" in box.summary.text()   # old one until then
    assert not p.start_button.isEnabled() and "loading" in p.start_button.toolTip()
    window.start()
    assert window.thread is None                                   # no run on a corpus about to be replaced
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=RUN_TIMEOUT_MS)
    timer.stop()
    assert ticks[0] is True and not box.error.isVisible()          # a tick came while the load was running
    assert not box.loading.isVisible() and box.spec() == str(big.resolve()) and len(loads) == 1
    text = big.read_text(encoding="utf-8")
    assert f"{len(text):,} characters, {len(set(text))} distinct" in box.summary.text()
    assert box.validation_text() == text[int(len(text) * 0.9):]
    assert p.start_button.isEnabled()


def test_newer_corpus_request_supersedes_a_running_one_and_failures_keep_the_corpus(qtbot, window, tmp_path,
                                                                                     monkeypatch):
    import app.training.corpus_box as corpus_box
    box, p = window.panel.corpus_box, window.panel
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_text("abcdefghij " * 1_000_000, encoding="utf-8")
    small.write_text("a small corpus of words. " * 100, encoding="utf-8")
    loads = []
    box.loaded.connect(loads.append)
    box.load(str(big))
    box.load(str(small))                                           # before big.txt has been read
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=RUN_TIMEOUT_MS)
    qtbot.wait(50)                                                 # anything big.txt still had to say
    assert [c.name for c in loads] == ["small.txt"] and box.spec() == str(small.resolve())
    assert str(big.resolve()) not in box.recent()
    val = box.validation_text()
    monkeypatch.setattr(corpus_box, "split_text", lambda *a: pytest.fail("validation text was split again"))
    assert box.validation_text() == val == small.read_text(encoding="utf-8")[2250:]   # cached, not re-split
    monkeypatch.undo()
    assert not load_and_wait(qtbot, box, str(tmp_path / "missing.txt"))
    assert "no such file" in box.error.text() and not box.loading.isVisible()
    assert box.spec() == str(small.resolve()) and box.validation_text() == val and len(loads) == 1
    assert box.choice.currentData() == str(small.resolve()) and p.start_button.isEnabled()


def test_a_remembered_corpus_that_is_gone_falls_back_to_the_builtin_one(qtbot, settings, tmp_path):
    settings.setValue("corpus/last", str(tmp_path / "deleted.txt"))
    w = MainWindow(settings)
    qtbot.addWidget(w)
    box = w.panel.corpus_box
    assert box.is_loading() and box.spec() == ""
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=RUN_TIMEOUT_MS)
    assert box.spec() == "builtin:python-docs" and w.panel.start_button.isEnabled()


def test_invalid_hyperparameters_block_start_with_reason(window):
    p = window.panel
    fields = p.fields["transformer"]
    fields["n_head"].setValue(4)
    fields["n_embd"].setValue(30)
    problem = p.check()
    assert "divisible" in problem and not p.start_button.isEnabled()
    assert fields["n_embd"].property("invalid") and fields["n_head"].property("invalid")
    assert not fields["n_layer"].property("invalid")
    assert "divisible" in p.start_button.toolTip() and "divisible" in p.estimate.text()
    fields["n_embd"].setValue(32)
    fields["n_kv_head"].setValue(3)
    assert "n_kv_head" in p.check() and fields["n_kv_head"].property("invalid")
    fields["n_kv_head"].setValue(2)
    assert p.check() == "" and p.start_button.isEnabled()
    p.family.setCurrentText("lstm")
    p.fields["rnn"]["tie_weights"].setChecked(True)
    p.fields["rnn"]["n_hidden"].setValue(100)
    p.fields["rnn"]["n_embd"].setValue(64)
    assert "tie_weights" in p.check() and not p.start_button.isEnabled()


def test_family_form_shows_only_its_hyperparameters(window):
    p = window.panel
    p.family.setCurrentText("ngram")
    assert p.pages.currentWidget().isVisible() and not p.train_box.isVisible()
    assert "order" in p.model_values() and "n_head" not in p.model_values()
    p.fields["ngram"]["smoothing"].setCurrentText("add-k")
    assert "k" in p.model_values() and "discount" not in p.model_values()
    p.family.setCurrentText("gru")
    assert set(p.model_values()) >= {"n_hidden", "n_embd"} and "n_head" not in p.model_values()
    assert p.train_box.isVisible()
    assert all(w.toolTip() for form in p.fields.values() for w in form.values())


def test_ngram_counting_shows_progress_and_val_point(qtbot, window):
    p = window.panel
    p.family.setCurrentText("ngram")
    p.fields["ngram"]["order"].setValue(2)
    assert p.check() == ""
    start_and_wait(qtbot, window)
    assert p.progress.value() == p.progress.maximum() == 2
    assert window.loss_plot.val.n == 1 and window.loss_plot.train.n == 0
    params = window.run.summary()["params"]                       # known once counted, and shown then
    assert params > 0 and f"ngram: {params:,} parameters" in p.message.text()
    assert "finished" in p.message.text() and "counting" not in p.message.text()
    assert window.status_device.text() == "device: CPU (numpy counting)"   # worded like "CPU (1 thread)"


def test_save_then_load_checkpoint(qtbot, window, tmp_path):
    make_tiny(window, max_steps=10)
    start_and_wait(qtbot, window)
    out = window.save_checkpoint(str(tmp_path / "ckpt"))
    assert out is not None and (tmp_path / "ckpt" / "meta.json").exists() and not window.unsaved
    changes = []
    window.source.changed.connect(lambda: changes.append(1))
    assert load_ckpt(qtbot, window, str(tmp_path / "ckpt"))
    assert changes and window.source.describe().startswith("checkpoint ckpt: transformer")
    handle = window.source.snapshot()
    assert handle.family == "transformer" and handle.meta["summary"]["step"] == 10
    assert window.source.validation_text()
    assert not load_ckpt(qtbot, window, str(tmp_path / "missing"))
    assert "Could not load" in window.panel.message.text()
    assert "checkpoint ckpt: transformer" in window.panel.message.text()   # the loaded model is still described


def test_error_in_worker_is_shown_and_run_can_be_saved(qtbot, window, tmp_path, monkeypatch):
    real_start = api.start_run

    def failing_start(spec):
        run = real_start(spec)
        reports = run.reports

        def failing_reports():
            for i, r in enumerate(reports()):
                if i == 5:
                    raise RuntimeError("simulated failure in the middle of training")
                yield r
        run.reports = failing_reports
        return run
    monkeypatch.setattr(api, "start_run", failing_start)
    make_tiny(window, max_steps=1000)
    start_and_wait(qtbot, window, state="error")
    qtbot.waitUntil(lambda: window.thread is None, timeout=RUN_TIMEOUT_MS)
    assert "simulated failure" in window.panel.message.text()
    assert window.status_state.text() == "error"
    assert window.panel.start_button.isEnabled() and window.panel.save_button.isEnabled()
    assert "simulated failure" in window.statusBar().currentMessage()
    assert window.save_checkpoint(str(tmp_path / "after-error")) is not None
    window.statusBar().showMessage("error: an earlier run's", 15000)
    monkeypatch.setattr(api, "start_run", real_start)
    start_and_wait(qtbot, window, state="running")
    assert window.statusBar().currentMessage() == ""             # the next run does not carry the old error
    window.stop()
    qtbot.waitUntil(lambda: window.thread is None, timeout=RUN_TIMEOUT_MS)


def test_closing_mid_run_stops_it_and_asks_to_save(qtbot, window, tmp_path):
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    start_and_wait(qtbot, window, state="running")
    qtbot.waitUntil(lambda: window.loss_plot.train.n > 0, timeout=RUN_TIMEOUT_MS)
    asked = []
    window.ask_save_on_close = lambda: asked.append(1) or QMessageBox.Cancel
    window.close()
    assert asked and window.isVisible() and window.state == "running"   # Cancel keeps the run going
    window.ask_save_on_close = lambda: asked.append(2) or QMessageBox.Save
    saved_to = tmp_path / "on-close"
    window.ask_save_path = lambda: str(saved_to)
    saved_on = []
    real_save = window.run.save
    window.run.save = lambda path: saved_on.append(threading.current_thread()) or real_save(path)
    window.close()
    assert asked == [1, 2] and window.thread is None and window.run.last_report.event == "done"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)   # closed once the save is written
    assert (saved_to / "meta.json").exists()
    assert saved_on and saved_on[0] is not threading.main_thread()   # written off the GUI thread


def test_settings_persist_between_windows(qtbot, window, settings, tmp_path):
    good = tmp_path / "notes.txt"
    good.write_text("some notes to train on. " * 300, encoding="utf-8")
    assert load_and_wait(qtbot, window.panel.corpus_box, str(good))
    window.panel.seed.setValue(42)
    window.panel.family.setCurrentText("gru")
    window.close()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: not again.panel.corpus_box.is_loading(), timeout=RUN_TIMEOUT_MS)
    assert again.panel.seed.value() == 42 and again.panel.family.currentText() == "gru"
    assert again.panel.corpus_box.spec() == str(good.resolve())
    assert str(good.resolve()) in again.panel.corpus_box.recent()


def test_run_gui_opens_the_window_and_returns(qtbot, tmp_path, monkeypatch):
    """The entry point main.py uses; its QSettings are pointed at tmp_path so the user's stay untouched."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import run_gui
    QSettings.setPath(QSettings.NativeFormat, QSettings.UserScope, str(tmp_path))
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path))
    seen = []

    def close_it():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if any(w.panel.corpus_box.is_loading() for w in windows):
            QTimer.singleShot(50, close_it)   # the first corpus is still loading in the background
            return
        seen.extend(windows)
        for w in windows:
            w.close()
    QTimer.singleShot(300, close_it)
    try:
        assert run_gui([]) == 0
    finally:
        QApplication.instance().setStyleSheet("")   # the app is shared with the other tests
    assert len(seen) == 1 and seen[0].panel.corpus_box.spec() == "builtin:python-docs"
    assert any(tmp_path.rglob("*.conf")) or any(tmp_path.rglob("*.ini"))   # settings went to tmp_path


class ScriptedRun:
    """Stands in for api.Run: yields `n` reports as fast as Python can, an eval at `eval_at`, done at the end."""

    def __init__(self, n: int, eval_at: int):
        self.n, self.eval_at, self.stopped = n, eval_at, False

    def reports(self):
        from engine.train import StepReport
        for i in range(1, self.n + 1):
            event = "done" if i == self.n else "eval" if i == self.eval_at else "step"
            yield StepReport(i, self.n, i, 1.0, 1e-3, 1.0, 1.0, 0.0, 0.0,
                             val_loss=1.0 if event == "eval" else None, event=event)

    def pause(self):
        pass

    def resume(self):
        pass

    def stop(self):
        self.stopped = True


class Sink(QObject):
    """A receiver living on the GUI thread, like the main window, so queued signals are delivered there."""

    def __init__(self):
        super().__init__()
        self.batches = []

    @Slot(list)
    def take(self, batch):
        self.batches.append(batch)


def test_worker_batches_reports_and_forwards_evals_at_once(qtbot):
    from app.common.workers import TrainWorker, start_worker
    run = ScriptedRun(20_000, eval_at=7_000)
    worker = TrainWorker(api.RunSpec(device="cpu"), start_run=lambda spec: run)
    sink = Sink()
    worker.reports.connect(sink.take, Qt.QueuedConnection)
    thread = start_worker(worker, "test")
    qtbot.waitUntil(lambda: sum(map(len, sink.batches)) == 20_000, timeout=RUN_TIMEOUT_MS)
    thread.wait()
    batches = sink.batches
    steps = [r.step for b in batches for r in b]
    assert steps == list(range(1, 20_001))          # every report, in order
    assert len(batches) < 2_000                      # batched, not one signal per report
    eval_batch = next(b for b in batches if any(r.event == "eval" for r in b))
    assert eval_batch[-1].event == "eval"            # an eval is sent the moment it arrives
    assert batches[-1][-1].event == "done"


def test_window_fits_a_1280_screen_after_a_run(qtbot, window):
    """The first report carries a long device/MFU remark; it goes to the wrapping message label, so neither the
    panel nor the window grows (it used to push the window past 2000 px)."""
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    start_and_wait(qtbot, window, state="running")
    qtbot.waitUntil(lambda: "training on" in window.panel.message.text(), timeout=RUN_TIMEOUT_MS)
    assert "training on" not in window.panel.speed.text()         # shown, but where it can wrap
    for _ in range(2):                                            # mid-run, and once the run has ended
        assert window.panel.minimumSizeHint().width() <= 400
        assert window.sample_panel.minimumSizeHint().width() <= 1280 - 400
        assert window.minimumSizeHint().width() <= 1280
        window.stop()
        qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)


def saved_tiny_checkpoint(qtbot, w: MainWindow, path) -> None:
    make_tiny(w, max_steps=10)
    w.panel.fields["transformer"]["n_embd"].setValue(24)
    start_and_wait(qtbot, w)
    assert w.save_checkpoint(str(path)) is not None


def test_loading_a_checkpoint_replaces_the_run_in_the_whole_window(qtbot, window, tmp_path):
    saved_tiny_checkpoint(qtbot, window, tmp_path / "ck")
    p = window.panel
    p.fields["transformer"]["n_embd"].setValue(32)                # a different second run, left unsaved
    p.fields["train"]["max_steps"].setValue(12)
    start_and_wait(qtbot, window)
    assert window.unsaved
    asked = []
    window.ask_save_before_load = lambda: asked.append(1) or QMessageBox.Discard
    assert load_ckpt(qtbot, window, str(tmp_path / "ck"))
    assert asked                                                   # the unsaved run was offered for saving
    assert window.state == "loaded" and window.status_state.text() == "checkpoint loaded"
    assert p.fields["transformer"]["n_embd"].value() == 24 and p.fields["train"]["max_steps"].value() == 10
    meta = load_meta(tmp_path / "ck")                              # the plot shows the checkpoint's own curve
    assert list(window.loss_plot.train["step"]) == list(range(1, 11))
    assert list(window.loss_plot.val["loss"]) == [pytest.approx(meta["metrics"]["val_loss"])]
    assert window.loss_plot.history.runs[-1].label.endswith("as #1 but n_embd=32")   # the unsaved run, kept
    assert p.progress.value() == 10 and "checkpoint" in p.progress.format()
    assert window.status_step.text() == "step 10" and window.status_eta.text() == "ETA —"
    assert not p.save_button.isEnabled() and window.save_checkpoint(str(tmp_path / "again")) is None
    assert p.resume_button.isEnabled() and p.start_button.isEnabled()
    assert "validation loss" in p.message.text()


def test_loading_a_checkpoint_brings_back_its_corpus_in_the_background(qtbot, window, tmp_path, monkeypatch):
    import threading

    import app.training.corpus_box as corpus_box
    box = window.panel.corpus_box
    notes = tmp_path / "notes.txt"
    notes.write_text("notes to train a checkpoint on. " * 300, encoding="utf-8")
    assert load_and_wait(qtbot, box, str(notes))
    saved_tiny_checkpoint(qtbot, window, tmp_path / "ck")
    assert load_and_wait(qtbot, box, "builtin:python-docs")
    docs_val = box.validation_text()
    release, real_load = threading.Event(), corpus_box.load_corpus

    def held_load(spec, **options):   # the notes file waits until the test has looked at the stand-in
        if str(spec) == str(notes.resolve()):
            release.wait(RUN_TIMEOUT_MS / 1000)
        return real_load(spec, **options)
    monkeypatch.setattr(corpus_box, "load_corpus", held_load)
    assert load_ckpt(qtbot, window, str(tmp_path / "ck"))
    assert box.is_loading() and window.source.validation_text() == docs_val   # a stand-in so far
    release.set()
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=RUN_TIMEOUT_MS)
    assert box.spec() == str(notes.resolve()) and window.state == "loaded"
    assert window.source.validation_text() == box.validation_text() and "notes to train" in box.validation_text()
    assert load_and_wait(qtbot, box, "builtin:python-docs")
    notes.unlink()                                                 # the checkpoint's corpus is gone now
    assert load_ckpt(qtbot, window, str(tmp_path / "ck"))
    qtbot.waitUntil(lambda: not box.is_loading(), timeout=RUN_TIMEOUT_MS)
    assert box.spec() == "builtin:python-docs" and "could not be loaded" in window.panel.message.text()
    assert window.source.validation_text() == box.validation_text()


def test_resume_trains_a_loaded_checkpoint_from_its_step(qtbot, window, tmp_path):
    saved_tiny_checkpoint(qtbot, window, tmp_path / "ck")
    assert load_ckpt(qtbot, window, str(tmp_path / "ck"))
    p = window.panel
    assert "up to max_steps (above 10)" in p.message.text()       # a finished run: say what Resume needs
    qtbot.mouseClick(p.resume_button, Qt.LeftButton)             # max_steps (10) leaves nothing to train
    assert window.thread is None and "already at step 10" in p.message.text() and window.state == "loaded"
    assert "Start trains a new model" not in p.message.text()
    p.fields["train"]["max_steps"].setValue(16)
    qtbot.mouseClick(p.resume_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    steps = window.loss_plot.train["step"]                       # the checkpoint's curve, then the resumed steps
    assert list(steps) == list(range(1, 17))
    assert len(window.loss_plot.history.runs) == 1        # the run before the load; the checkpoint is continued
    assert window.status_step.text() == "step 16/16" and p.save_button.isEnabled()
    assert window.run.summary()["step"] == 16 and window.loaded is None


def test_resume_takes_the_forms_training_settings_and_refuses_a_changed_model(qtbot, window, tmp_path):
    saved_tiny_checkpoint(qtbot, window, tmp_path / "ck")
    assert load_ckpt(qtbot, window, str(tmp_path / "ck"))
    p = window.panel
    p.fields["train"]["max_steps"].setValue(14)
    p.fields["transformer"]["n_embd"].setValue(32)                # not the checkpoint's 24
    qtbot.mouseClick(p.resume_button, Qt.LeftButton)
    assert window.thread is None and window.state == "loaded"     # refused before any work; still loaded
    assert "n_embd" in p.message.text() and "Start trains a new model" in p.message.text()
    p.fields["transformer"]["n_embd"].setValue(24)
    p.fields["train"]["lr"].setValue(0.0005)
    p.fields["train"]["min_lr"].setValue(0.0001)
    qtbot.mouseClick(p.resume_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    cfg = window.run.trainer.cfg
    assert (cfg.lr, cfg.min_lr, cfg.max_steps) == (0.0005, 0.0001, 14) and window.run.summary()["step"] == 14
    assert window.loss_plot.train["lr"][-1] == pytest.approx(cfg.lr_at(13))   # the plot shows the new schedule
    start_and_wait(qtbot, window)                                  # a new run keeps the resumed one to compare
    kept = window.loss_plot.history.runs[-1]
    assert kept.label.endswith("(checkpoint ck, resumed)") and " as #" not in kept.label
    assert list(kept.train["step"]) == list(range(1, 15))         # the checkpoint's curve and the resumed steps


def test_no_stale_messages_after_a_run(qtbot, window, tmp_path):
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\x00\x00\x00binary")
    box = window.panel.corpus_box
    assert not load_and_wait(qtbot, box, str(binary)) and box.error.isVisible()
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    start_and_wait(qtbot, window, state="running")
    assert not box.error.isVisible()                              # a new run: the old load error is gone
    qtbot.waitUntil(lambda: window.loss_plot.train.n > 2, timeout=RUN_TIMEOUT_MS)
    window.pause()
    qtbot.waitUntil(lambda: window.last_report.event == "paused", timeout=RUN_TIMEOUT_MS)
    assert "paused" in window.panel.message.text()
    window.stop()
    qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)
    text = window.panel.message.text() + window.panel.speed.text()
    assert "paused" not in text and "stopped at step" in text


def test_pause_as_the_last_step_ends_lets_the_run_finish(qtbot, window, monkeypatch):
    """Pause arriving when the last step has run must not park a finished run at 100% waiting for Resume."""
    real_start = api.start_run

    def start_then_pause_at_the_end(spec):
        run = real_start(spec)
        reports = run.reports

        def pausing_reports():
            for r in reports():
                if r.step == r.max_steps and r.event != "done":
                    window.worker.pause()     # what the Pause button does, at the worst moment
                yield r
        run.reports = pausing_reports
        return run
    monkeypatch.setattr(api, "start_run", start_then_pause_at_the_end)
    make_tiny(window, max_steps=5, eval_interval=100)
    start_and_wait(qtbot, window)
    assert window.last_report.event == "done" and window.thread is None
    assert "paused" not in window.panel.message.text()


def test_memory_estimate_near_the_machine_warns_and_beyond_it_blocks_start(window, monkeypatch):
    p = window.panel
    needed = api.estimate("transformer", *api.resolve_config("transformer", p.spec().preset, p.spec().overrides,
                                                             p.vocab_guess()), p.vocab_guess())["memory_bytes"]
    monkeypatch.setattr(devices, "available_memory", lambda device="auto": (10 ** 15, "available RAM"))
    assert p.check() == "" and "⚠" not in p.estimate.text()
    monkeypatch.setattr(devices, "available_memory", lambda device="auto": (int(needed * 1.1), "available RAM"))
    assert p.check() == "" and p.start_button.isEnabled()          # close to full: a warning, not a refusal
    assert WARN_COLOR in p.estimate.text() and "available RAM" in p.estimate.toolTip()
    monkeypatch.setattr(devices, "available_memory", lambda device="auto": (1024, "available RAM"))
    problem = p.check()                                           # beyond it: the run could not even be built
    assert "needs about" in problem and not p.start_button.isEnabled() and "batch_size" in problem
    assert "parameters" in p.estimate.text()                      # how big it is, above why it is refused
    p.fields["transformer"]["n_layer"].setValue(256)
    p.fields["transformer"]["n_embd"].setValue(65_536)
    p.fields["transformer"]["block_size"].setValue(65_536)
    monkeypatch.undo()
    assert "needs about" in p.check() and not p.start_button.isEnabled()   # the real machine refuses it too


def test_form_groups_grey_out_while_training_and_family_change_is_announced(qtbot, window):
    p = window.panel
    p.family.textActivated.emit("gru")                            # as the user picking it does
    assert "replaced" in p.message.text()
    p.family.setCurrentText("transformer")
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    start_and_wait(qtbot, window, state="running")
    assert not p.model_box.isEnabled() and not p.tok_box.isEnabled() and not p.train_box.isEnabled()
    window.stop()
    qtbot.waitUntil(lambda: window.state == "stopped", timeout=RUN_TIMEOUT_MS)
    assert p.model_box.isEnabled()


def test_each_new_run_keeps_the_previous_one_on_the_plot(qtbot, window, tmp_path):
    make_tiny(window, max_steps=10, eval_interval=5)
    start_and_wait(qtbot, window)
    assert not window.loss_plot.history.runs
    window.panel.fields["train"]["lr"].setValue(0.002)
    start_and_wait(qtbot, window)
    [first] = window.loss_plot.history.runs
    assert first.label.startswith("#1 transformer · tiny-cpu-transformer") and "n_embd=16" in first.label
    assert list(first.val["step"]) == [5, 10] and len(first.train["step"]) == 10
    out = window.save_checkpoint(str(tmp_path / "ck"))
    assert out is not None and load_ckpt(qtbot, window, str(out))
    second = window.loss_plot.history.runs[-1]
    assert second.label == "#2 transformer · tiny-cpu-transformer · as #1 but lr=0.002"
    assert list(window.loss_plot.train["step"]) == list(range(1, 11))   # the checkpoint's own curve


def test_a_corpus_shorter_than_one_window_blocks_start(qtbot, window, tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("hello world!", encoding="utf-8")          # 12 characters; the preset's window is 64
    assert load_and_wait(qtbot, window.panel.corpus_box, str(tiny))
    problem = window.panel.check()
    assert "too short for one training window" in problem and not window.panel.start_button.isEnabled()
    assert window.panel.fields["transformer"]["block_size"].property("invalid")
    # said under the grey Start too: the form's red text can be scrolled out of view
    speed = window.panel.speed
    assert "Cannot start: the corpus is too short for one training window<" in speed.text()
    assert speed.toolTip() == f"Cannot start: {problem}" and "it has 10 characters" in problem
    window.panel.fields["transformer"]["block_size"].setValue(4)    # the form's block_size sets both configs'
    assert window.panel.check() == "" and speed.text() == " " and speed.toolTip() == ""
    window.panel.family.setCurrentText("ngram")                # counting needs no window
    assert "too short" not in window.panel.check()


def test_word_tokenizer_estimate_uses_the_corpus_own_vocabulary(qtbot, window, tmp_path):
    """The parameter count for a word model is the one the run will have: the form counts the train split's
    distinct words on the loader thread instead of guessing."""
    text = ("The cat sat. the dog ran! A cat, a dog.\n" * 40) + "Zebra " * 30
    path = tmp_path / "words.txt"
    path.write_text(text, encoding="utf-8")
    assert load_and_wait(qtbot, window.panel.corpus_box, str(path))
    p = window.panel
    p.tokenizer.setCurrentText("word")
    p.word_cap.setValue(0)                                          # no cap
    make_tiny(window, max_steps=2)
    start_and_wait(qtbot, window)                                  # a word model's bits/char comes with its caveat
    assert "optimistic" in p.message.text() and "spaces are not predicted" in p.message.text()
    for lower in (False, True):
        p.word_lower.setChecked(lower)
        p.check()
        spec = p.spec()
        run = api.start_run(spec)
        assert p.vocab_guess() == run.tokenizer.vocab_size
        shown = int(p.estimate.text().split("<b>")[1].split("</b>")[0].replace(",", ""))
        assert shown == run.summary()["params"]


def test_distinct_words_are_counted_exactly_across_slices():
    """The loader counts in slices (so the GUI thread gets the GIL in between); slices end at whitespace, so no
    word is cut in two and counted twice."""
    import random

    from app.training.corpus_box import SET_CHUNK, _distinct_words
    from engine.tokenizers.word import WordTokenizer
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 12))) for _ in range(3000)]
    text = " ".join(rng.choice(words).capitalize() if rng.random() < 0.1 else rng.choice(words)
                    for _ in range(3 * SET_CHUNK // 7))
    assert len(text) > 2 * SET_CHUNK
    assert _distinct_words(text) == (WordTokenizer.train(text).vocab_size - 1,
                                     WordTokenizer.train(text, lowercase=True).vocab_size - 1)


def test_a_checkpoint_trained_on_a_relative_corpus_path_brings_its_validation_text(qtbot, window, tmp_path,
                                                                                   monkeypatch, small_text):
    """The README trains with a relative path (../shared/corpora/...); a checkpoint saved before runs kept absolute
    paths records it as typed, and the loaded corpus reports it absolute. The window compared the two strings, so
    the old corpus's validation text stayed: Random window failed and the Inside tab's comparison model trained on
    the wrong text."""
    import json

    from engine import checkpoint
    (tmp_path / "c.txt").write_text(small_text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    run = api.start_run(api.RunSpec(corpus="c.txt", family="rnn", preset="tiny-cpu-rnn", device="cpu",
                                    overrides={"n_hidden": "8", "n_embd": "8"}, max_steps=2))
    list(run.reports())
    ckpt = run.save(tmp_path / "rnn")
    meta = checkpoint.load_meta(ckpt)
    assert meta["spec"]["corpus"] == str(tmp_path / "c.txt")    # absolute now; an older checkpoint's, as typed:
    meta["spec"]["corpus"] = "c.txt"
    (ckpt / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    want = small_text[int(len(small_text) * 0.9):]
    assert window.source.validation_text() != want
    assert load_ckpt(qtbot, window, ckpt)
    qtbot.waitUntil(lambda: window.source.validation_text() == want, timeout=RUN_TIMEOUT_MS)


def test_a_stopped_runs_queued_signals_do_not_reach_the_next_run(qtbot, window):
    """shutdown_run ends a run without the event loop: the stopped worker's last reports and its finished signal
    are still queued when the next Start is pressed. They reached the new run: its plot got the old run's steps,
    and the old finished made the GUI thread wait for the new run's thread to end (bench/gui_latency.py hung
    there, on a run of 100,000 steps)."""
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    qtbot.mouseClick(window.panel.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.run is not None and window.run.last_report is not None
                    and window.run.last_report.step > 40, timeout=RUN_TIMEOUT_MS)
    window.shutdown_run()
    window.unsaved = False
    make_tiny(window, max_steps=30, eval_interval=100_000)
    window.start()
    assert window.thread is not None
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    assert window.loss_plot.train["step"].max() == 30
    assert window.last_report.step == 30 and window.last_report.event == "done"


def test_close_window_from_the_menu_ends_the_run(qtbot, window):
    """File → Close window during a run: close() runs from the menu action's signal, so inside shutdown_run's
    direct call to _on_finished sender() is the QAction. Read as a stopped worker's late signal, the run was not
    ended (thread, worker and state "running" stayed while the window closed)."""
    make_tiny(window, max_steps=100_000, eval_interval=100_000)
    qtbot.mouseClick(window.panel.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state == "running" and window.loss_plot.train.n > 3, timeout=RUN_TIMEOUT_MS)
    window.menu_actions["close"].trigger()
    assert window.thread is None and window.worker is None and window.state == "stopped"
    assert not window.isVisible()


def test_the_workers_signals_are_handled_on_the_gui_thread(qtbot, window, monkeypatch):
    """The worker's slots live in a mixin (app/window/run_control.py). Decorated with @Slot there, PySide 6.11
    never delivered the queued `prepared` signal (the run stayed "preparing") and ran `finished`'s slot on the
    worker's own thread, which then waited for itself. Every slot must run on the GUI thread, the only one that may
    touch widgets: each of them goes through _set_notes or _set_state, so those record the thread they run on."""
    gui = threading.current_thread()
    seen = []
    for name in ("_set_notes", "_set_state"):
        original = getattr(window, name)
        monkeypatch.setattr(window, name, lambda *a, _f=original, **k: (seen.append(threading.current_thread()),
                                                                      _f(*a, **k))[1])
    make_tiny(window, max_steps=12, eval_interval=5)
    window.start()
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    assert window.thread is None and window.last_report.step == 12
    assert window.panel.message.text().count("validation loss") == 1 and "parameters" in window.panel.message.text()
    assert len(seen) > 4 and all(t is gui for t in seen)


def test_the_reason_start_is_grey_gives_the_speed_line_back(qtbot, window, tmp_path, small_text):
    """A finished run's figures on the speed line were replaced by "the corpus is still loading" while another
    corpus loaded (the step before Fine-tune), and the line was blank after it."""
    make_tiny(window, max_steps=4, eval_interval=2)
    start_and_wait(qtbot, window)
    figures = window.panel.speed.text()
    assert "tokens/s" in figures
    other = tmp_path / "o.txt"
    other.write_text(small_text, encoding="utf-8")
    window.panel.corpus_box.load(str(other))
    assert "Cannot start yet: the corpus is still loading" in window.panel.speed.text()
    qtbot.waitUntil(lambda: not window.panel.corpus_box.is_loading(), timeout=RUN_TIMEOUT_MS)
    assert window.panel.speed.text() == figures
