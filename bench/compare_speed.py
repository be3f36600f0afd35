"""Benchmark: the side-by-side view's cost (engine/decode_compare.py) on the nanogpt-cpu shape (0.80M params,
context 64, vocab 65, random weights) on one CPU thread.

Run: .venv/bin/python bench/compare_speed.py [--tokens 200] [--preset nanogpt-cpu] [--device auto]
Rows:
  each column alone          greedy, top-p sampling and beam width 4, one after another (generate)
  the columns interleaved    the same three through interleave, a token of each in turn, as the window runs them
  figures                    column_report for the three: one extra pass over each column's tokens (mean log-prob)
  cache check                check_cache over one column's tokens: the text with and without the cache
  cache on / off             greedy tokens/s with the KV cache and recomputing the context (what the switch shows)
"""
from __future__ import annotations

import argparse
import string
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.decode import DecodeConfig, generate  # noqa: E402
from engine.decode_compare import ColumnRecord, check_cache, column_config, column_report, interleave  # noqa: E402
from engine.device import device_name, resolve_device  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.presets import load_preset  # noqa: E402
from engine.tokenizers.char import CharTokenizer  # noqa: E402

CHARS = "\n " + string.ascii_letters + "!$&',-.3:;?"
SPECS = ("greedy", "sample:temperature=0.8,top_p=0.9", "beam:width=4,length_penalty=1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--preset", default="nanogpt-cpu")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tok = CharTokenizer(CHARS)
    device = resolve_device(args.device)
    preset = load_preset(args.preset)
    model = build_model("transformer", {**preset["model"], "vocab_size": 65, "dropout": 0.0}).to(device).eval()
    prompt = "ROMEO:\nWhat light "
    print(f"device: {device_name(device, 1)}; {args.preset}: {model.num_params() / 1e6:.2f}M params, block "
          f"{model.config.block_size}; {args.tokens} tokens per column")
    cfgs = [column_config(s, max_new_tokens=args.tokens, seed=0) for s in SPECS]
    for _ in generate(model, tok, prompt, DecodeConfig(strategy="greedy", max_new_tokens=8)):
        pass  # warm-up

    def row(name: str, steps: int, secs: float) -> None:
        print(f"{name:34s} {steps:7d} {secs:8.2f} {steps / secs:9.1f}")

    print(f"{'row':34s} {'steps':>7s} {'seconds':>8s} {'steps/s':>9s}")
    t0, steps = time.perf_counter(), 0
    for cfg in cfgs:
        steps += sum(not e.done for e in generate(model, tok, prompt, cfg))
    row("each column alone", steps, time.perf_counter() - t0)
    records = [ColumnRecord(c) for c in cfgs]
    t0 = time.perf_counter()
    for i, event, secs in interleave(model, tok, prompt, cfgs):
        records[i].add(event, secs)
    row("the columns interleaved", sum(len(r.events) for r in records), time.perf_counter() - t0)
    t0 = time.perf_counter()
    reports = [column_report(model, tok, prompt, r) for r in records]
    row("figures (one pass per column)", sum(len(r["token_ids"]) for r in reports), time.perf_counter() - t0)
    t0 = time.perf_counter()
    check = check_cache(model, tok, prompt, reports[1]["token_ids"])
    row("cache check (sample column)", check.positions, time.perf_counter() - t0)
    print(f"  max |dlogit| {check.max_abs_diff:.2e}, {check.past_window} positions past the window")
    for on in (True, False):
        t0 = time.perf_counter()
        n = sum(not e.done for e in generate(model, tok, prompt, DecodeConfig(strategy="greedy", use_cache=on,
                                                                             max_new_tokens=args.tokens)))
        row(f"greedy, cache {'on' if on else 'off'}", n, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
