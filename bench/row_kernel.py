"""A/B: MKL (F.linear) against oneDNN for the one-row products of a cached decoding step, on this machine.

    .venv/bin/python bench/row_kernel.py [--rounds 7] [--tokens 250] [--no-gpt2]

Part 1, the products alone: for each model shape, one "sweep" multiplies a row by every weight matrix of the
model in turn (q, k, v, c_proj, c_fc, c_proj per layer, then the head), as a cached step does; the matrices are
too many to stay in cache once they pass its size. Kernels and thread counts alternate within each round; medians
of the rounds, ms per sweep and the GB/s of weights that makes. A plain sum over the same matrices shows what the
memory gives one core.

Part 2, whole decoding: tokens/s of engine.decode.generate from the nanogpt-char shape (10.7M, context 256, random
weights), 250 tokens inside its window, the model's Linear layers on MKL or on oneDNN (engine/models/linear.py's
set_row_kernel), alternating in one process (separate processes on this VM run at one of two speeds at random),
with the thread count the engine chooses for each. The generated texts must be the same.

engine/models/linear.py's rule (oneDNN past half the last-level cache) comes from part 1's crossover.
"""
from __future__ import annotations

import argparse
import statistics
import string
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.decode import DecodeConfig, generate  # noqa: E402
from engine.models import build_model, linear  # noqa: E402
from engine.tokenizers.char import CharTokenizer  # noqa: E402

SHAPES = [  # (label, n_embd, n_layer, vocab)
    ("nanogpt-cpu 0.80M", 128, 4, 65),
    ("d256 L4 3.2M", 256, 4, 65),
    ("d256 L6 4.7M", 256, 6, 65),
    ("nanogpt-char 10.7M", 384, 6, 65),
    ("GPT-2 small 124M", 768, 12, 50257),
]


def timed(fn, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def products(rounds: int, gpt2: bool) -> None:
    print("== part 1: one row times every weight matrix of a model, ms per sweep (GB/s of weights) ==")
    print(f"last-level cache here: {linear.last_level_cache_bytes() / 2**20:.0f} MiB; oneDNN from "
          f"{linear.LLC_SHARE * linear.last_level_cache_bytes() / 1e6:.0f} MB of weights")
    for label, d, L, V in SHAPES:
        if not gpt2 and V > 1000:
            continue
        g = torch.Generator().manual_seed(0)
        ws = [torch.randn(o, i, generator=g) for o, i in [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)] * L + [(V, d)]]
        xs = {d: torch.randn(1, 1, d, generator=g), 4 * d: torch.randn(1, 1, 4 * d, generator=g)}
        gb = sum(w.numel() for w in ws) * 4 / 1e9
        reps = max(3, int(0.2 / gb))
        kinds = {
            "mkl": lambda: [F.linear(xs[w.shape[1]], w) for w in ws],
            "onednn": lambda: [linear._onednn_linear(xs[w.shape[1]], w, None) for w in ws],
            "sum": lambda: [w.sum() for w in ws],
        }
        times = {(k, t): [] for k in kinds for t in (1, 2)}
        with torch.inference_mode():
            for _ in range(rounds):
                for (k, t) in times:
                    torch.set_num_threads(t)
                    kinds[k]()
                    times[(k, t)].append(timed(kinds[k], reps))
        cells = [f"{k} {t}t {statistics.median(v) * 1e3:7.3f} ({gb / statistics.median(v):4.1f})"
                 for (k, t), v in times.items()]
        rule = "oneDNN" if gb * 1e9 > linear.LLC_SHARE * linear.last_level_cache_bytes() else "MKL"
        print(f"{label:20s} {gb * 1e3:5.1f} MB [rule: {rule:6s}]  " + "  ".join(cells), flush=True)


def decoding(rounds: int, n_tokens: int) -> None:
    print(f"\n== part 2: generate {n_tokens} tokens from the nanogpt-char shape, tokens/s (threads as the engine "
          f"chooses them) ==")
    torch.manual_seed(0)
    model = build_model("transformer", dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384,
                                            dropout=0.0, bias=False, pos="learned")).eval()
    tok = CharTokenizer("\n " + string.ascii_letters + "!$&',-.3:;?")
    cfg = DecodeConfig(temperature=0.8, top_k=200, max_new_tokens=n_tokens, seed=0)
    torch.set_num_threads(1)   # engine.threads.inference_threads' choice for this model; the runner takes more
    rates, texts = {"mkl": [], "onednn": []}, {}
    for _ in range(rounds):
        for kind in rates:
            linear.set_row_kernel(model, kind == "onednn")
            t0 = time.perf_counter()
            events = list(generate(model, tok, "ROMEO:", cfg))
            rates[kind].append(n_tokens / (time.perf_counter() - t0))
            texts.setdefault(kind, events[-1].text)
    for kind, v in rates.items():
        print(f"{kind:7s} median {statistics.median(v):6.1f} tok/s  rounds " + " ".join(f"{r:.0f}" for r in v))
    print(f"speed-up {statistics.median(rates['onednn']) / statistics.median(rates['mkl']):.2f}x; same text: "
          f"{texts['mkl'] == texts['onednn']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--no-gpt2", action="store_true", help="skip GPT-2 small's shape (0.5 GB of weights)")
    args = ap.parse_args()
    if not linear.onednn_available():
        print("this torch has no oneDNN linear kernel: the engine uses F.linear everywhere")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default")
    products(args.rounds, not args.no_gpt2)
    decoding(args.rounds, args.tokens)


if __name__ == "__main__":
    main()
