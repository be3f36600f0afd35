"""GUI responsiveness while training, and what the window costs the training thread.

A 10 ms QTimer probe on the GUI thread records how late each tick fires while the real main window trains the
default CPU preset with the Loss tab visible. The same run spec also trains with no GUI at all, on this thread.
The two alternate (headless, window, headless, window, ...) and both are measured the same way, over the same
number of seconds from the first report:
  - tokens/s over the wall time: evaluations (every eval_interval steps, in both) and everything the window does
    (plot, autosave at each evaluation, snapshots) included;
  - the median of the per-report tokens/s (the trainer's own rate over each report's steps: evaluations left out).
Prints p50/p95/p99/max lateness, the redraw rate, both throughputs and their ratio pair by pair.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_latency.py [--seconds 20] [--pairs 2]
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


def headless(spec, seconds: float) -> tuple[float, float]:
    """The spec trained on this thread with no GUI running for `seconds` from its first report: (tokens/s over
    that wall time, median per-report tokens/s)."""
    from engine import api
    run = api.start_run(spec)
    reports = run.reports()
    first = next(reports)
    t0 = time.perf_counter()
    last, rates = first, []
    for r in reports:
        last = r
        if r.event == "step":
            rates.append(r.tokens_per_s)
        if time.perf_counter() - t0 >= seconds:
            break
    wall = time.perf_counter() - t0
    run.stop()
    for _ in reports:   # the trainer ends after its current step
        pass
    return (last.tokens - first.tokens) / wall, float(np.median(rates[len(rates) // 4:]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="how long each run is measured")
    ap.add_argument("--pairs", type=int, default=2, help="headless-then-window pairs, alternating")
    ap.add_argument("--steps", type=int, default=100_000, help="max_steps of the run (it is stopped at the end)")
    ap.add_argument("--preset", default="tiny-cpu-transformer")
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
    rates: list[float] = []           # the window's per-report tokens/s
    original_redraw, original_add = window.loss_plot.redraw, window.loss_plot.add_reports

    def counting_redraw():
        redraws[0] += 1
        paints.append(window.loss_plot.graphics.paint_s * 1000.0)
        original_redraw()

    def counting_add(reports):
        rates.extend(r.tokens_per_s for r in reports if r.event == "step")
        original_add(reports)
    window.loss_plot.redraw, window.loss_plot.add_reports = counting_redraw, counting_add

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

    def windowed() -> tuple[float, float]:
        window.unsaved = False
        window.start()
        t_start = time.perf_counter()
        while (window.run is None or window.run.last_report is None) and time.perf_counter() - t_start < 60:
            app.processEvents()   # from the first report on, as headless() measures
            time.sleep(0.001)
        if window.run is None or window.run.last_report is None:
            sys.exit(f"the window's run gave no report within 60 s (state {window.state})")
        first = window.run.last_report
        expected[0] = 0.0
        probe.start()
        t0 = time.perf_counter()
        redraws[0] = 0
        del paints[:], rates[:]
        while time.perf_counter() - t0 < args.seconds and window.state in ("running", "preparing"):
            app.processEvents()
            time.sleep(0.001)
        probe.stop()
        wall = time.perf_counter() - t0
        last = window.run.last_report
        window.shutdown_run()
        paint = (f"plot paint per frame p50 {np.percentile(paints[1:], 50):.1f} ms, p95 "
                 f"{np.percentile(paints[1:], 95):.1f} ms" if len(paints) > 1 else "no plot paint timed")
        print(f"  window: first report after {t0 - t_start:.2f} s; {(last.step - first.step) / wall:.1f} steps/s, "
              f"{redraws[0] / wall:.1f} plot redraws/s, {window.loss_plot.train.n} points plotted, {paint}")
        return (last.tokens - first.tokens) / wall, float(np.median(rates[len(rates) // 4:]))

    spec = window.panel.spec()
    print(f"machine: {os.cpu_count()} CPU cores, torch threads in the trainer: 1, platform "
          f"{os.environ['QT_QPA_PLATFORM']}, preset {args.preset} (eval every {spec.overrides.get('eval_interval')} "
          f"steps), {args.seconds:.0f} s per run")
    pairs = []
    for i in range(args.pairs):
        h = headless(spec, args.seconds)
        w = windowed()
        pairs.append((h, w))
        print(f"pair {i + 1}: tokens/s over the wall time: headless {h[0]:,.0f}, window {w[0]:,.0f}, ratio "
              f"{w[0] / h[0]:.2f} | median per report: headless {h[1]:,.0f}, window {w[1]:,.0f}, ratio "
              f"{w[1] / h[1]:.2f}", flush=True)
    late = np.asarray(lateness)
    print(f"GUI probe over the window runs: {len(late)} ticks; lateness ms: p50 {np.percentile(late, 50):.2f}  "
          f"p95 {np.percentile(late, 95):.2f}  p99 {np.percentile(late, 99):.2f}  max {late.max():.2f} (goal: p99 "
          f"< 20)")
    wall_ratios = [w[0] / h[0] for h, w in pairs]
    print(f"window / headless, tokens/s over the wall time: median {np.median(wall_ratios):.2f}, pair by pair "
          f"{', '.join(f'{r:.2f}' for r in wall_ratios)} (goal >= 0.90); per-report rate: median "
          f"{np.median([w[1] / h[1] for h, w in pairs]):.2f}")
    window.unsaved = False
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
