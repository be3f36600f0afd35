"""Benchmark: decoding speed of the nanogpt-char architecture (6 layers, 6 heads, 384 wide, 256 context, vocab 65,
random weights) through engine.decode.generate, with and without the KV cache, and batched beam search.

Run: .venv/bin/python bench/decode_speed.py [--device auto|cpu|cuda] [--tokens 100] [--past 40] [--threads 1]
Rows:
  greedy/sample, cache on/off   short prompt, --tokens new tokens (all inside the 256-token window)
  past the window               a full 256-token prompt: every token re-runs the last 256 (see decode.py), so the
                                cache cannot help there; this is the slide's cost
  beam width W                  W hypotheses as one batch; "hyp tok/s" counts every hypothesis' token
Each row is timed once after a short warm-up; tokens/s includes the per-token numpy work (softmax, sorting,
truncation, text decoding) that a GUI sees.
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
from engine.device import device_name, resolve_device  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.tokenizers.char import CharTokenizer  # noqa: E402
from engine.presets import load_preset  # noqa: E402

# 65 symbols like tinyshakespeare's vocabulary: newline, space, letters, and some punctuation
CHARS = "\n " + string.ascii_letters + "!$&',-.3:;?"


def timed_run(model, tok, prompt: str, **cfg) -> tuple[int, float]:
    """(tokens generated, seconds) for one full generation; for beam search a token is one step of every beam."""
    t0 = time.perf_counter()
    n = 0
    for ev in generate(model, tok, prompt, DecodeConfig(**cfg)):
        n += not ev.done
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tokens", type=int, default=100, help="new tokens per row inside the window")
    ap.add_argument("--past", type=int, default=40, help="new tokens for the past-the-window rows")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--beam-width", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tok = CharTokenizer(CHARS)
    assert tok.vocab_size == 65
    preset = load_preset("nanogpt-char")
    device = resolve_device(args.device)
    model = build_model("transformer", {**preset["model"], "vocab_size": 65, "dropout": 0.0}).to(device).eval()
    block = model.config.block_size
    short = "ROMEO:\nWhat light "
    full = ("".join(CHARS[2 + (i * 7) % 52] for i in range(block - 1)) + " ")[-block:]
    print(f"device: {device_name(device)}; model: {model.num_params() / 1e6:.2f}M params, "
          f"{model.config.n_layer} layers, {model.config.n_head} heads, {model.config.n_embd} wide, block {block}")
    timed_run(model, tok, short, strategy="greedy", max_new_tokens=8)  # warm-up (allocations, kernels)

    W = args.beam_width
    rows = [
        ("greedy, KV cache", short, dict(strategy="greedy", max_new_tokens=args.tokens)),
        ("greedy, no cache", short, dict(strategy="greedy", max_new_tokens=args.tokens, use_cache=False)),
        ("sample top-k 40 top-p 0.9, cache", short,
         dict(seed=0, top_k=40, top_p=0.9, temperature=0.8, max_new_tokens=args.tokens)),
        ("greedy past the window, cache", full, dict(strategy="greedy", max_new_tokens=args.past)),
        ("greedy past the window, no cache", full, dict(strategy="greedy", max_new_tokens=args.past, use_cache=False)),
        (f"beam width {W}, KV cache", short, dict(strategy="beam", beam_width=W, length_penalty=0.0,
                                                  max_new_tokens=args.tokens)),
        (f"beam width {W}, no cache", short, dict(strategy="beam", beam_width=W, length_penalty=0.0,
                                                  max_new_tokens=args.tokens, use_cache=False)),
    ]
    print(f"{'mode':36s} {'tokens':>7s} {'seconds':>8s} {'tok/s':>8s} {'hyp tok/s':>10s}")
    for name, prompt, cfg in rows:
        n, secs = timed_run(model, tok, prompt, **cfg)
        hyp = n * cfg.get("beam_width", 1)
        print(f"{name:36s} {n:7d} {secs:8.2f} {n / secs:8.1f} {hyp / secs:10.1f}")


if __name__ == "__main__":
    main()
