"""Answers that arrive after the question changed must not be shown as current (found by a review of the merged
window code): a backlog parsed after following stopped, a cache check of an earlier model, a prepare of a corpus
no longer on offer; and Open run neither races a checkpoint load nor presents the previous model as the run's."""
from __future__ import annotations

import json
import threading

from tests.app.conftest import RUN_TIMEOUT_MS


def test_a_backlog_parsed_after_following_stopped_is_dropped(qtbot, tmp_path):
    from app.common.jobs import JobRunner
    from app.window.run_watcher import INLINE_BYTES, RunWatcher
    from engine.metrics_log import METRICS_FILE
    line = json.dumps({"event": "step", "step": 1, "train_loss": 1.0, "pad": "x" * 200}) + "\n"
    (tmp_path / METRICS_FILE).write_text(line * (2 * INLINE_BYTES // len(line)), encoding="utf-8")
    jobs = JobRunner()
    watcher = RunWatcher(tmp_path, jobs)
    got = []
    watcher.records.connect(got.append)
    watcher.start()                        # a backlog over INLINE_BYTES: parsed on a worker
    watcher.stop()                         # another run was opened meanwhile
    jobs.wait()
    qtbot.wait(50)                         # the worker's answer is delivered, and dropped
    assert got == []


def test_a_cache_check_of_an_earlier_model_is_not_shown(qtbot):
    from app.sample.decode_controls import CacheControls
    controls = CacheControls()
    qtbot.addWidget(controls)
    release = threading.Event()

    class Check:
        max_abs_diff, same_argmax = 1e-6, True

        def summary(self):
            return "max |diff| 1e-6 (old model)"

    controls.run_check(lambda: release.wait(5) and Check())
    controls.forget()                      # another model was loaded while it ran
    release.set()
    controls._jobs.wait()
    qtbot.wait(50)
    assert "old model" not in controls.result.text() and not controls.check_button.isEnabled()


def test_open_run_waits_for_a_loading_checkpoint_and_clears_the_previous_model(qtbot, window, tmp_path):
    from engine.metrics_log import METRICS_FILE
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / METRICS_FILE).write_text("", encoding="utf-8")
    window._loading = str(tmp_path / "ckpt")            # a checkpoint is being read
    assert not window.open_run(str(folder))
    window._loading = None
    from tests.app.test_sample_panel import _ngram
    window.source.set_checkpoint(_ngram("the cat sat on the mat " * 20), "previous", "the cat")
    assert window.open_run(str(folder))
    assert window.source.snapshot() is None and "no model" in window.source.describe()
    window.stop_following()


def test_a_prepare_of_a_corpus_no_longer_on_offer_is_ignored(window, tmp_path):
    box = window.panel.corpus_box
    box._too_large = str(tmp_path / "B.txt")            # the user moved on to B while A's prepare finished
    box._on_prepared({"source": str(tmp_path / "A.txt"), "out": str(tmp_path / "prepared-A")})
    assert box._too_large == str(tmp_path / "B.txt") and box._data is None


def test_closing_the_window_stops_following(qtbot, settings, tmp_path):
    """The watcher kept polling after the window closed: a poll after the jobs were waited for could start a read
    thread that is destroyed while it runs."""
    from tests.app.conftest import open_window
    from engine.metrics_log import METRICS_FILE
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / METRICS_FILE).write_text("", encoding="utf-8")
    w = open_window(qtbot, settings)
    assert w.open_run(str(folder))
    watcher = w.watcher
    w.close()
    assert w.watcher is None and not watcher.active
