"""How long a Refresh of the Inside tab takes, and the longest the GUI thread is kept from its event loop meanwhile.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/inside_speed.py [--chars 256] [--repeat 7] [--threads 1]

Models are the tiny-cpu presets with fresh weights (the work does not depend on what the weights learned); the
transformer's context is raised to fit the text (the preset's is 64 tokens). Goal: < 200 ms for the tiny
transformer on 256 characters, and no GUI stall over 100 ms. Prints, per model: the engine's look_inside time
(worker side), the drawing time on the GUI thread, the whole refresh (click to drawn) and the longest gap
between 5 ms timer ticks on the GUI thread during it (median of --repeat)."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.api import ModelHandle  # noqa: E402
from engine.corpus import load_corpus  # noqa: E402
from engine.inside import look_inside  # noqa: E402
from app.inside.scales import sequential  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.presets import load_preset  # noqa: E402
from engine.tokenizers import build_tokenizer  # noqa: E402

SHAKESPEARE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"


def _text(chars: int) -> str:
    if SHAKESPEARE.exists():
        return SHAKESPEARE.read_text(encoding="utf-8")
    return load_corpus("builtin:python-docs").text


def _handle(family: str, corpus: str, chars: int) -> ModelHandle:
    tok = build_tokenizer("char", corpus)
    cfg = dict(load_preset(f"tiny-cpu-{family}")["model"])
    if family == "transformer":
        cfg["block_size"] = max(cfg["block_size"], chars)
    torch.manual_seed(0)
    return ModelHandle(family, build_model(family, {"vocab_size": tok.vocab_size, **cfg}).eval(), tok, {})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chars", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the app's worker shares the CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.common.model_source import ModelSource
    from app.inside.inside_panel import InsidePanel

    qapp = QApplication.instance() or QApplication([])
    corpus = _text(args.chars)
    text = corpus[10_000:10_000 + args.chars]
    print(f"{args.chars} characters, torch threads {args.threads}, median of {args.repeat}")
    for family in ("transformer", "lstm", "gru", "rnn"):
        handle = _handle(family, corpus, args.chars)
        engine_s = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            inside = look_inside(handle.model, handle.tokenizer, text)
            colours = None if inside.attention is None else sequential(inside.attention)
            engine_s.append(time.perf_counter() - t)
        source = ModelSource()
        source.set_checkpoint(handle, "bench", corpus[-50_000:])
        panel = InsidePanel(source)
        panel.resize(1600, 1000)
        panel.text.setPlainText(text)
        panel.show()
        draw_s, total_s, stalls = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            panel._show(inside, colours)
            draw_s.append(time.perf_counter() - t)
            ticks = [time.perf_counter()]
            timer = QTimer()
            timer.setInterval(5)
            timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
            timer.start()
            old = panel.inside
            t = time.perf_counter()
            panel.refresh()
            while panel.inside is old or panel.status.text().startswith("Computing"):
                qapp.processEvents()
                time.sleep(0.001)
            total_s.append(time.perf_counter() - t)
            ticks.append(time.perf_counter())
            timer.stop()
            stalls.append(max(b - a for a, b in zip(ticks, ticks[1:])))
        panel.shutdown()
        panel.close()
        ms = lambda xs: f"{statistics.median(xs) * 1000:7.1f} ms"  # noqa: E731
        print(f"{family:12s} params {handle.model.num_params():>8,}  look_inside {ms(engine_s)}  "
              f"draw {ms(draw_s)}  refresh {ms(total_s)}  longest GUI gap {ms(stalls)}")


if __name__ == "__main__":
    main()
