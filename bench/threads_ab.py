"""A/B: torch CPU threads 1 against 2 for the work whose thread count engine/threads.py chooses.

    .venv/bin/python bench/threads_ab.py [--rounds 5] [--steps 20] [--tokens 40]

Rows (one process, rounds alternating 1 2 1 2 ..., medians):
  train nanogpt-cpu     optimizer steps of the nanogpt-cpu preset (learned positions), ms per step
  train fast-cpu-char   the same shape with RoPE (the fast-cpu-char preset), ms per step
  decode 0.80M          one cached decoding step of the nanogpt-cpu model (inside its 64-token window), ms/token
  decode 0.80M past     the same model past its window: every token re-runs the whole 64-token window
  decode nanogpt-char   the 10.7M, 256-context shape: cached inside the window and a full-window re-run past it
Before each round the load average and engine.threads.free_cores() are printed, so a row can be read against how
busy the machine was (it is shared). What engine.threads.choose_threads picks for each row is printed too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import string
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.decode import DecodeConfig, _AutoThreads, generate  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.presets import load_preset  # noqa: E402
from engine.threads import choose_threads, decode_flops, free_cores, torch_threads  # noqa: E402
from engine.tokenizers.char import CharTokenizer  # noqa: E402
from engine.train import Trainer, TrainConfig, step_flops  # noqa: E402

CHARS = "\n " + string.ascii_letters + "!$&',-.3:;?"
TEXT = (Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare.txt")


def trainer(preset: str, ids: list[int]) -> Trainer:
    p = load_preset(preset)
    torch.manual_seed(0)
    model = build_model("transformer", {**p["model"], "vocab_size": 65})
    cfg = TrainConfig(**{**p["train"], "device": "cpu", "threads": 1})
    n = int(len(ids) * 0.9)
    return Trainer(model, ids[:n], ids[n:], cfg, val_chars=len(ids) - n)


def time_steps(t: Trainer, steps: int) -> float:
    t._run_steps(2)                       # warm-up
    t0 = time.perf_counter()
    t._run_steps(steps)
    return (time.perf_counter() - t0) / steps * 1e3


def time_decode(model, tok, prompt: str, n: int) -> float:
    cfg = DecodeConfig(temperature=0.8, top_k=200, max_new_tokens=n, seed=0)
    list(generate(model, tok, prompt, DecodeConfig(temperature=0.8, max_new_tokens=2, seed=0)))
    t0 = time.perf_counter()
    list(generate(model, tok, prompt, cfg))
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=40)
    args = ap.parse_args()
    tok = CharTokenizer(CHARS)
    text = TEXT.read_text()[:200_000] if TEXT.exists() else CHARS * 3000
    ids = tok.encode("".join(c for c in text if c in CHARS))
    rows = {}
    for name in ("nanogpt-cpu", "fast-cpu-char"):
        t = trainer(name, ids)
        rows[f"train {name} (ms/step)"] = (lambda t=t: time_steps(t, args.steps), step_flops(t.model, t.cfg))
    torch.manual_seed(0)
    small = trainer("nanogpt-cpu", ids).model.eval()
    big = build_model("transformer", {**load_preset("nanogpt-char")["model"], "vocab_size": 65,
                                      "dropout": 0.0}).eval()
    prompt_full = "".join(tok.decode(ids[:300]))
    rows["decode 0.80M inside window (ms/token)"] = (lambda: time_decode(small, tok, "ROMEO:", args.tokens),
                                                     decode_flops(small))   # cached steps: one token per call
    rows["decode 0.80M past window (ms/token)"] = (lambda: time_decode(small, tok, prompt_full[:200], args.tokens),
                                                   decode_flops(small, small.config.block_size))
    rows["decode nanogpt-char inside window (ms/token)"] = (lambda: time_decode(big, tok, "ROMEO:", args.tokens),
                                                            decode_flops(big))
    rows["decode nanogpt-char past window (ms/token)"] = (lambda: time_decode(big, tok, prompt_full, args.tokens // 2),
                                                          decode_flops(big, big.config.block_size))
    # the rows set the count themselves: the runner's own choices (whole-window re-runs, cached steps on oneDNN)
    # are switched off here
    _AutoThreads.__call__ = lambda self: None
    times = {(r, n): [] for r in rows for n in (1, 2)}
    for k in range(args.rounds):
        print(f"round {k + 1}: load {os.getloadavg()[0]:.2f}, free cores {free_cores()}", flush=True)
        for n in ((1, 2) if k % 2 == 0 else (2, 1)):
            with torch_threads(n):
                for r, (fn, _) in rows.items():
                    times[(r, n)].append(fn())
    print(f"\n{'row':48s} {'1 thread':>9s} {'2 threads':>9s} {'2/1':>6s}  choose_threads(idle 2 cores)")
    for r, (_, flops) in rows.items():
        a, b = statistics.median(times[(r, 1)]), statistics.median(times[(r, 2)])
        print(f"{r:48s} {a:9.2f} {b:9.2f} {b / a:6.2f}  {choose_threads(flops, probe=lambda: 2)} "
              f"({flops / 1e9:.2f} GFLOP/call)")


if __name__ == "__main__":
    main()
