"""How fast the Graph tab is on a ~1,000-node tape: recording, layout (all groups expanded, and collapsed as a
large graph opens), building the scene's items, and one step (state update + a synchronous repaint of the view).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/graph_view_speed.py [--steps 64] [--family lstm]

Prints figures; asserts nothing (speed is not a test)."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

torch.set_num_threads(1)

from PySide6.QtCore import QObject, Signal  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.graph.graph_layout import GraphSpec, default_collapsed, layout  # noqa: E402
from app.graph.graph_view import MODEL, GraphPanel  # noqa: E402
from engine.api import ModelHandle  # noqa: E402
from engine.autodiff.bridge import build_tape  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.tokenizers import build_tokenizer  # noqa: E402

TEXT = "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun. " * 20


class Source(QObject):
    """The ModelSource interface around one fixed model."""
    changed = Signal()

    def __init__(self, handle):
        super().__init__()
        self.handle = handle

    def snapshot(self):
        return self.handle

    def validation_text(self):
        return TEXT

    def describe(self):
        return f"benchmark {self.handle.family}"

    def is_training(self):
        return False


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def step_timings(app, panel, what: str, place_view) -> None:
    """Every step from reset to the end: the panel's own work, then the paint it caused (with the view following
    the current node and the overview re-rendering now and then, as a user would see it)."""
    panel.buttons["reset"].click()
    place_view()
    app.processEvents()
    logic, paint = [], []
    while panel.stepper.phase != "done":
        t0 = time.perf_counter()
        panel.buttons["step"].click()
        t1 = time.perf_counter()
        app.processEvents()
        t2 = time.perf_counter()
        logic.append(t1 - t0)
        paint.append(t2 - t1)
    print(f"  stepping, {what}, zoom {panel.view.transform().m11():.2f}, {len(logic)} steps:")
    for name, xs in (("state + items", logic), ("paint", paint), ("total", [a + b for a, b in zip(logic, paint)])):
        xs = sorted(xs)
        print(f"    {name:22s} median {statistics.median(xs) * 1e3:6.2f} ms, p95 {xs[int(0.95 * len(xs))] * 1e3:6.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="lstm", choices=["rnn", "lstm", "gru", "transformer"])
    ap.add_argument("--steps", type=int, default=64, help="tokens on the tape")
    ap.add_argument("--layers", type=int, default=1)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    torch.manual_seed(0)
    tok = build_tokenizer("char", TEXT)
    cfg = {"vocab_size": tok.vocab_size, "block_size": max(64, args.steps), "n_layer": args.layers,
           "n_embd": 32}
    cfg.update({"n_head": 2} if args.family == "transformer" else {"n_hidden": 32})
    model = build_model(args.family, cfg).eval()
    text = TEXT[: args.steps + 1]

    t_tape = best_of(lambda: build_tape(model, tok, text), 3)
    program = build_tape(model, tok, text)
    spec = GraphSpec.from_nodes(program.nodes)
    collapsed = default_collapsed(spec)
    t_full = best_of(lambda: layout(spec))
    t_coll = best_of(lambda: layout(spec, collapsed))
    print(f"{args.family}, {args.layers} layer(s), {args.steps} tokens: {len(program.nodes)} nodes, "
          f"{sum(len(n.inputs) for n in program.nodes)} edges, {len(spec.boxed_groups())} groups")
    print(f"  build_tape               {t_tape * 1e3:8.1f} ms")
    print(f"  layout, all expanded     {t_full * 1e3:8.1f} ms")
    print(f"  layout, collapsed        {t_coll * 1e3:8.1f} ms ({len(layout(spec, collapsed).unit_node)} units)")

    panel = GraphPanel(Source(ModelHandle(args.family, model, tok, {})))
    panel.resize(1600, 950)
    panel.show()
    panel.what.setCurrentText(MODEL)
    panel.text.setText(text)
    old = panel.program
    panel.build()
    while panel.program is old:
        app.processEvents()
    step_timings(app, panel, f"as opened ({len(panel.scene.units)} units, groups collapsed)", panel.view.start_view)
    panel.collapsed.clear()                      # the worst case: every node its own item
    t = time.perf_counter()
    panel.lay = layout(panel.spec, panel.collapsed)
    panel._redraw_all()
    app.processEvents()
    print(f"  scene build (expanded)   {(time.perf_counter() - t) * 1e3:8.1f} ms ({len(panel.scene.units)} items "
          f"+ {len(panel.scene.edge_items)} edges)")
    panel.view.fit()
    t = time.perf_counter()
    panel.view.viewport().repaint()
    print(f"  full repaint at fit zoom {(time.perf_counter() - t) * 1e3:8.1f} ms")

    step_timings(app, panel, "expanded, whole graph fitted", panel.view.fit)
    step_timings(app, panel, "expanded, readable zoom", panel.view.start_view)
    t = time.perf_counter()
    panel.buttons["reset"].click()
    print(f"  reset (all items)        {(time.perf_counter() - t) * 1e3:8.1f} ms")
    panel.shutdown()


if __name__ == "__main__":
    main()
