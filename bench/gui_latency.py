"""GUI responsiveness while training: a 10 ms QTimer probe on the GUI thread records how late each tick fires while
the real main window trains the default CPU preset with the Loss tab visible. Prints p50/p95/p99/max lateness,
the redraw rate and the training throughput, next to the same run's throughput with no GUI (what the GUI costs).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_latency.py [--seconds 20] [--steps 100000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

PROBE_MS = 10


def headless_tokens_per_s(spec, steps: int) -> float:
    """Throughput of the same spec iterated on this thread with no GUI running (evals excluded)."""
    from dataclasses import replace
    from engine import api
    run = api.start_run(replace(spec, max_steps=steps, overrides={**spec.overrides, "eval_interval": str(steps)}))
    rates = [r.tokens_per_s for r in run.reports() if r.event == "step"]
    return float(np.median(rates[len(rates) // 4:]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="how long to probe while training")
    ap.add_argument("--steps", type=int, default=100_000, help="max_steps of the run (it is stopped at the end)")
    ap.add_argument("--preset", default="tiny-cpu-transformer")
    ap.add_argument("--baseline-steps", type=int, default=200, help="steps of the same run without the GUI")
    args = ap.parse_args()

    app = QApplication.instance() or QApplication([])
    from app.main_window import MainWindow
    settings_dir = tempfile.mkdtemp(prefix="lmp-bench-")
    # the window's run folders (autosaves, crash recovery) in the temporary folder: a bench killed midway must
    # neither leave a run that the next window offers to recover (a modal question that stops the bench) nor
    # fill the user's data folder
    os.environ["LM_PLAYGROUND_RUNS"] = os.path.join(settings_dir, "runs")
    window = MainWindow(QSettings(os.path.join(settings_dir, "bench.ini"), QSettings.IniFormat))
    window.resize(1400, 900)
    window.show()
    while window.panel.corpus_box.is_loading():   # the first corpus loads in the background; Start waits for it
        app.processEvents()
        time.sleep(0.005)
    window.panel.preset.setCurrentText(args.preset)
    window.panel.fields["train"]["max_steps"].setValue(args.steps)
    window.panel.check()
    window.tabs.setCurrentWidget(window.loss_plot)

    redraws = [0]
    paints: list[float] = []          # how long Qt took to paint the plots, per redraw (the previous frame's)
    original_redraw = window.loss_plot.redraw

    def counting_redraw():
        redraws[0] += 1
        paints.append(window.loss_plot.graphics.paint_s * 1000.0)
        original_redraw()
    window.loss_plot.redraw = counting_redraw

    lateness: list[float] = []
    expected = [0.0]
    probe = QTimer()
    probe.setInterval(PROBE_MS)

    def tick():
        now = time.perf_counter()
        if expected[0]:
            lateness.append((now - expected[0]) * 1000.0)
        expected[0] = now + PROBE_MS / 1000.0
    probe.timeout.connect(tick)

    spec = window.panel.spec()
    baseline = headless_tokens_per_s(spec, args.baseline_steps)
    window.start()
    t_start = time.perf_counter()
    while window.state == "preparing" and time.perf_counter() - t_start < 60:
        app.processEvents()
        time.sleep(0.005)
    prep_s = time.perf_counter() - t_start
    first = window.run.last_report if window.run is not None else None
    probe.start()
    t0 = time.perf_counter()
    redraws[0] = 0
    paints.clear()
    while time.perf_counter() - t0 < args.seconds and window.state in ("running", "preparing"):
        app.processEvents()
        time.sleep(0.001)
    probe.stop()
    wall = time.perf_counter() - t0
    last = window.run.last_report
    window.shutdown_run()

    late = np.asarray(lateness)
    steps = last.step - (first.step if first else 0)
    print(f"machine: {os.cpu_count()} CPU cores, torch threads in the worker: 1, platform "
          f"{os.environ['QT_QPA_PLATFORM']}, preset {args.preset}")
    print(f"preparing (corpus, tokenizer, model, optimizer) took {prep_s:.2f} s; probed {wall:.1f} s of training")
    print(f"probe ticks: {len(late)} (ideal {wall * 1000 / PROBE_MS:.0f}); lateness ms: p50 {np.percentile(late, 50):.2f}"
          f"  p95 {np.percentile(late, 95):.2f}  p99 {np.percentile(late, 99):.2f}  max {late.max():.2f}")
    tokens = last.tokens - (first.tokens if first else 0)
    print(f"plot redraws: {redraws[0] / wall:.1f} per s; training: {steps / wall:.1f} steps/s, "
          f"{tokens / wall:,.0f} tokens/s over the probed time, {window.loss_plot.train.n} points plotted")
    print(f"same run without the GUI: {baseline:,.0f} tokens/s")
    paint = np.asarray(paints[1:])
    print(f"plot paint per frame ms: p50 {np.percentile(paint, 50):.1f}  p95 {np.percentile(paint, 95):.1f}  "
          f"(the GUI thread is busy for that long; Python's GIL switch interval is "
          f"{sys.getswitchinterval() * 1000:.0f} ms)")
    window.unsaved = False
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
