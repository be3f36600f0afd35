"""Work a review found on the GUI thread, each moved off it (issue 12): scrubbing reads a snapshot file, fine-tuning
scans the corpus for unencodable symbols, the Tokens tab needs only the model's tokenizer, and the Inside tab copies
the training run's weights once per refresh, on its job. Each test puts a slow stand-in in the work's place and
checks it ran on another thread while the window stayed free."""
from __future__ import annotations

import threading
import time

from app.inside.inside_panel import InsidePanel
from app.tokens.tokens_panel import MODEL
from tests.app.test_main_window import RUN_TIMEOUT_MS, load_and_wait, load_ckpt, make_tiny, start_and_wait

SLOW_S = 0.4    # the stand-ins' duration: the GUI thread must not wait for it


def _slow(fn, threads: list):
    """fn, recording the thread each call runs on and taking SLOW_S longer."""
    def wrapped(*args, **kwargs):
        threads.append(threading.current_thread())
        time.sleep(SLOW_S)
        return fn(*args, **kwargs)
    return wrapped


def _returns_at_once(call) -> None:
    t0 = time.perf_counter()
    call()
    assert time.perf_counter() - t0 < SLOW_S / 2, "the slow work ran on the GUI thread"


def test_scrubbing_reads_the_snapshot_on_a_worker_thread(qtbot, window):
    make_tiny(window, max_steps=6, eval_interval=3)
    start_and_wait(qtbot, window)
    threads: list = []
    window.run.snapshot_at = _slow(window.run.snapshot_at, threads)
    _returns_at_once(lambda: window.loss_plot.choose_step(3))
    qtbot.waitUntil(lambda: window.source.past_step() == 3, timeout=RUN_TIMEOUT_MS)
    assert threads and threading.main_thread() not in threads
    # a newer choice wins over one still being read
    window.loss_plot.choose_step(2)
    window.loss_plot.choose_step(1)
    qtbot.waitUntil(lambda: len(threads) == 3, timeout=RUN_TIMEOUT_MS)
    window.jobs.wait()
    qtbot.wait(50)
    assert window.source.past_step() == 1


def test_finetune_counts_unknown_symbols_on_a_worker_thread(qtbot, window, tmp_path, monkeypatch, small_text):
    import app.window.model_actions as main_window   # where the fine-tune check lives
    make_tiny(window, max_steps=3, eval_interval=3)
    start_and_wait(qtbot, window)
    assert load_ckpt(qtbot, window, window.save_checkpoint(str(tmp_path / "ck")))
    other = tmp_path / "other.txt"
    other.write_text(small_text + "¤¤ new symbol\n", encoding="utf-8")   # '¤' is not in python-docs' characters
    assert load_and_wait(qtbot, window.panel.corpus_box, str(other))
    threads: list = []
    monkeypatch.setattr(main_window, "missing_symbols", _slow(main_window.missing_symbols, threads))
    asked: list = []
    window.ask_map_unknown = lambda message, replacement: asked.append(message) or None
    _returns_at_once(lambda: window.finetune_checkpoint())
    assert not window.panel.finetune_button.isEnabled()     # one check at a time
    qtbot.waitUntil(lambda: window.panel.finetune_button.isEnabled(), timeout=RUN_TIMEOUT_MS)
    assert threads and threading.main_thread() not in threads
    assert "'¤' ×2" in asked[0] and window.thread is None   # asked once the check ended; cancelled: no run


def test_tokens_tab_reads_the_model_tokenizer_without_copying_weights(qtbot, window):
    make_tiny(window, max_steps=3, eval_interval=3)
    start_and_wait(qtbot, window)
    copies: list = []
    window.source.snapshot = lambda: copies.append(1)
    tokens = window.tokens_panel
    tokens.which.setCurrentText(MODEL)
    tokens.tokenize_btn.click()
    qtbot.waitUntil(lambda: tokens.tokenize_btn.isEnabled(), timeout=RUN_TIMEOUT_MS)
    assert tokens.result is not None and tokens.result.tokenizer is window.run.tokenizer and not copies


def test_inside_tab_takes_one_snapshot_per_refresh_off_the_gui_thread(qtbot, window):
    make_tiny(window, max_steps=3, eval_interval=3)
    start_and_wait(qtbot, window)
    threads: list = []
    window.source.snapshot = _slow(window.source.snapshot, threads)
    inside: InsidePanel = window.inside_panel
    _returns_at_once(lambda: window.tabs.setCurrentWidget(inside))   # first show: a random window, refreshed
    qtbot.waitUntil(lambda: inside.inside is not None, timeout=RUN_TIMEOUT_MS)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    window.tabs.setCurrentWidget(window.loss_plot)
    window.tabs.setCurrentWidget(inside)    # switching back shows what was computed: no copy at all
    assert len(threads) == 1
