"""How long the GUI thread freezes during each user action while a tiny model trains. A 5 ms QTimer probe on the
GUI thread records how late each tick fires; the real main window is driven through the actions a user takes:
idle on the Loss tab, the Tokens tab (a BPE and a word tokenizer's result arriving, then switching tabs), resizing
the window on the Tokens and the Loss tab, a Graph build, Stop, loading a checkpoint, and closing the window mid-run
with Discard. One line per action:

    action max_stall_ms p99_ms

The goal on the project's 2-core machine: every max under 100 ms and every p99 under 20 ms. Lateness includes the
driving loop's 1 ms sleeps, and another busy process on the machine shows up here too; the load average is printed.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_stalls.py [--corpus PATH] [--size 1600x1000]
    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/gui_stalls.py
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# torch and Qt are imported where they are used, not here: the window's worker process (spawn) imports this file as
# its main module, as it imports main.py in the app, and should pay what it pays there

PROBE_MS = 5
SHAKESPEARE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"


class Probe:
    """A PROBE_MS timer on the GUI thread; each tick's lateness (ms) is filed under the action running then."""

    def __init__(self):
        self.action = ""
        self.late: dict[str, list[float]] = {}
        self._expected = 0.0
        from PySide6.QtCore import QTimer
        self.timer = QTimer()
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._expected and self.action:
            self.late.setdefault(self.action, []).append(max(0.0, (now - self._expected) * 1000.0))
        self._expected = now + PROBE_MS / 1000.0

    def start(self, action: str) -> None:
        self.action = action
        self._expected = time.perf_counter() + PROBE_MS / 1000.0   # a freeze right after this call counts
        if not self.timer.isActive():
            self.timer.start()

    def end(self) -> None:
        """Call right after the action's last step: a stall that ends there still counts, in the action's name."""
        pump(0.02)
        self.action = ""


def pump(seconds: float = 0.0, until=None, timeout: float = 120.0) -> float:
    """Run the event loop for `seconds`, or until `until()` is true (at most `timeout`); returns the time taken."""
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance()
    t0 = time.perf_counter()
    while True:
        app.processEvents()
        el = time.perf_counter() - t0
        if until is not None and until():
            return el
        if until is None and el >= seconds:
            return el
        if el > timeout:
            raise TimeoutError(f"gave up after {timeout:.0f} s")
        time.sleep(0.001)


def make_checkpoint(corpus: str, folder: str) -> str:
    """A small finished run saved to disk, for the Load checkpoint action (built here, without the window)."""
    from engine import api
    run = api.start_run(api.RunSpec(corpus=corpus, family="transformer", preset="tiny-cpu-transformer",
                                    max_steps=20, overrides={"eval_interval": "20"}))
    for _ in run.reports():
        pass
    return str(run.save(os.path.join(folder, "ckpt")))


def resize_back_and_forth(w, size: tuple[int, int], times: int = 12) -> None:
    """Between 1280x800 and `size`, as a user dragging the window's corner does, a pause after each step."""
    for i in range(times):
        w.resize(*((1280, 800) if i % 2 == 0 else size))
        pump(0.15)
    w.resize(*size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(SHAKESPEARE) if SHAKESPEARE.exists() else "builtin:python-docs")
    ap.add_argument("--size", default="1600x1000", help="window size, WxH")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds idle on the Loss tab")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox
    torch.set_num_threads(1)
    qapp = QApplication.instance() or QApplication([])   # before any widget
    from app.main_window import MainWindow
    tmp = tempfile.mkdtemp(prefix="lmp-stalls-")
    # the window's run folders (autosaves, crash recovery) in the temporary folder: a bench killed midway must
    # neither leave a run that the next window offers to recover (a modal question that stops the bench) nor
    # fill the user's data folder
    os.environ["LM_PLAYGROUND_RUNS"] = os.path.join(tmp, "runs")
    ckpt = make_checkpoint(args.corpus, tmp)
    w = MainWindow(QSettings(os.path.join(tmp, "bench.ini"), QSettings.IniFormat))
    w.ask_save_on_close = lambda: QMessageBox.Discard
    w.ask_save_before_load = lambda: QMessageBox.Discard
    w.resize(width, height)
    w.show()
    p = w.panel
    p.corpus_box.load(args.corpus)
    pump(until=lambda: not p.corpus_box.is_loading() and p.corpus_box.spec() == args.corpus)
    p.family.setCurrentText("transformer")
    p.preset.setCurrentText("tiny-cpu-transformer")
    p.tokenizer.setCurrentText("char")
    p.fields["train"]["max_steps"].setValue(1_000_000)
    p.fields["train"]["eval_interval"].setValue(200)   # evaluations happen during the actions too
    assert p.check() == "", p.problem
    w.tabs.setCurrentWidget(w.loss_plot)

    probe = Probe()
    timings: dict[str, str] = {}

    def start_training() -> None:
        w.start()
        pump(until=lambda: w.state == "running" and w.last_report is not None)

    start_training()
    pump(1.0)

    probe.start("idle_loss_tab")
    pump(args.idle)
    probe.end()

    tokens = w.tokens_panel
    for kind in ("bpe", "word"):
        p.tokenizer.setCurrentText(kind)
        if kind == "bpe":
            p.bpe_vocab.setValue(2000)
        else:
            p.word_cap.setValue(0)   # no cap: the whole vocabulary, tens of thousands of rows
        probe.start(f"tokens_{kind}_result")
        w.tabs.setCurrentWidget(tokens)
        tokens.tokenize_btn.click()
        t = pump(until=lambda: tokens.tokenize_btn.isEnabled())
        pump(0.3)
        probe.end()
        timings[f"tokens_{kind}_result"] = f"result after {t:.1f} s"
    probe.start("tokens_tab_switch")
    for _ in range(4):
        w.tabs.setCurrentWidget(w.loss_plot)
        pump(0.2)
        w.tabs.setCurrentWidget(tokens)
        pump(0.2)
    probe.end()
    probe.start("resize_tokens_tab")     # with a whole word vocabulary in its table
    resize_back_and_forth(w, (width, height))
    probe.end()
    w.tabs.setCurrentWidget(w.loss_plot)
    probe.start("resize_loss_tab")
    resize_back_and_forth(w, (width, height))
    probe.end()
    p.tokenizer.setCurrentText("char")

    graph = w.graph_panel
    probe.start("graph_build")
    w.tabs.setCurrentWidget(graph)
    from app.graph.graph_controls import MODEL
    graph.what.setCurrentText(MODEL)
    graph.random_validation_window()
    graph.build()
    t = pump(until=lambda: graph.program_from_model or graph.message_bar.isVisible())
    pump(0.3)
    w.tabs.setCurrentWidget(w.loss_plot)
    pump(0.1)
    probe.end()
    timings["graph_build"] = f"graph after {t:.1f} s"

    probe.start("stop")
    w.stop()
    t_end = pump(until=lambda: w.state in ("validating", "stopped") and w.panel.save_button.isEnabled())
    t_all = t_end + pump(until=lambda: w.thread is None)
    probe.end()
    timings["stop"] = f"run ended, Save enabled after {t_end:.2f} s; final validation done after {t_all:.2f} s"

    probe.start("load_checkpoint")     # as the Load button does it: the folder dialog answered with ckpt
    w.ask_load_path = lambda: ckpt
    p.load_button.click()
    t = pump(until=lambda: w.state == "loaded" and not p.corpus_box.is_loading())
    pump(0.5)
    probe.end()
    timings["load_checkpoint"] = f"loaded after {t:.2f} s"

    p.fields["train"]["max_steps"].setValue(1_000_000)
    start_training()
    pump(1.0)
    probe.start("close_discard")
    t0 = time.perf_counter()
    w.close()
    pump(until=lambda: not w.isVisible())
    timings["close_discard"] = f"window gone after {time.perf_counter() - t0:.2f} s"
    probe.end()
    probe.timer.stop()

    load = os.getloadavg()
    print(f"# {os.cpu_count()} CPU cores, load average {load[0]:.2f} {load[1]:.2f}; platform "
          f"{qapp.platformName()}, window {width}x{height}, corpus {Path(args.corpus).name}, "
          f"probe every {PROBE_MS} ms")
    print("action max_stall_ms p99_ms")
    for action, late in probe.late.items():
        a = np.asarray(late)
        note = f"   # {timings[action]}" if action in timings else ""
        print(f"{action} {a.max():.0f} {np.percentile(a, 99):.0f}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
