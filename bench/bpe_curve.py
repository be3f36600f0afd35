"""BPE size against length on a corpus: characters per token after m merges, and how long the curve takes.

    .venv/bin/python bench/bpe_curve.py [--corpus ../shared/corpora/tinyshakespeare.txt] [--vocab 2000]

Prints the train split's characters per token at a few vocabulary sizes (each from the cut tokenizer's own
encoding), then the time `length_curve` takes for every merge count (what the Tokens tab computes) and `sampled_curve`
for its default 33 points."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.corpus import load_corpus, split_text  # noqa: E402
from engine.tokenizers import build_tokenizer  # noqa: E402
from engine.tokenizers.bpe_curve import length_curve, merge_count, sampled_curve, truncated  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/corpora/tinyshakespeare.txt"))
    p.add_argument("--vocab", type=int, default=2000)
    args = p.parse_args()
    train, _ = split_text(load_corpus(args.corpus).text)
    t0 = time.perf_counter()
    tok = build_tokenizer("bpe", train, vocab_size=args.vocab)
    print(f"trained BPE {tok.vocab_size} ({merge_count(tok)} merges) in {time.perf_counter() - t0:.2f} s")
    for v in sorted({256, 512, 1000, tok.vocab_size}):
        if v <= tok.vocab_size:
            n = len(truncated(tok, v - 256).encode(train))
            print(f"vocab {v:>6,}: {n:>9,} tokens, {len(train) / n:.2f} chars/token")
    for f in (length_curve, sampled_curve):
        t0 = time.perf_counter()
        curve = f(tok, train)
        print(f"{f.__name__}: {len(curve.merges)} points in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
