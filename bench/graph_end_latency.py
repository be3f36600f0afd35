"""End on a long RNN tape: how long the backward pass takes and the longest the GUI thread is kept from its event
loop meanwhile (the rest runs on a worker after END_INLINE_S).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/graph_end_latency.py [--chars 257] [--family lstm]

Fresh tiny-cpu-<family> weights (the step count does not depend on training), text from tinyshakespeare or the
built-in python-docs. Goal: no gap over 100 ms."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

from inside_speed import _handle, _text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chars", type=int, default=257)
    ap.add_argument("--family", default="lstm", choices=["rnn", "lstm", "gru"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.common.model_source import ModelSource
    from app.graph.graph_controls import MODEL
    from app.graph.graph_view import GraphPanel

    qapp = QApplication.instance() or QApplication([])
    corpus = _text(args.chars)
    handle = _handle(args.family, corpus, args.chars)
    source = ModelSource()
    source.set_checkpoint(handle, "bench", corpus[-50_000:])
    panel = GraphPanel(source)
    panel.resize(1600, 1000)
    panel.show()
    panel.what.setCurrentText(MODEL)
    panel.text.setText(corpus[10_000:10_000 + args.chars].replace("\n", "⏎"))
    old = panel.program
    panel.build()
    while panel.program is old:
        qapp.processEvents()
        time.sleep(0.005)
    settle = time.perf_counter() + 1.0      # let the new graph paint first: that is the build's cost, not End's
    while time.perf_counter() < settle:
        qapp.processEvents()
        time.sleep(0.005)
    s = panel.stepper
    ticks = [time.perf_counter()]
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t = time.perf_counter()
    panel.buttons["end"].click()
    while s.phase != "done" or panel._end_cancel is not None:
        qapp.processEvents()
        time.sleep(0.001)
    total = time.perf_counter() - t
    ticks.append(time.perf_counter())
    timer.stop()
    gaps = sorted(((b - a, a - t) for a, b in zip(ticks, ticks[1:])), reverse=True)
    worst = ", ".join(f"{g * 1000:.0f} ms at {at:.2f} s" for g, at in gaps[:3])
    print(f"{args.family} on {args.chars} characters: {len(panel.program.nodes):,} nodes, {s.n_steps:,} steps; "
          f"End took {total:.2f} s; longest GUI gaps: {worst}")
    panel.shutdown()


if __name__ == "__main__":
    main()
