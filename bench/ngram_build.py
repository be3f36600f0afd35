"""Benchmark: how long a trigram takes to count on ~1 MB of text, and how good Kneser-Ney trigrams are.

Run: .venv/bin/python bench/ngram_build.py [--order 3] [--repeat 3]
Uses tinyshakespeare (../shared/corpora) when present, else builtin:python-docs. Prints, per tokenizer, the time
to tokenize, to count (best of --repeat) and to evaluate the whole validation split, then the validation loss in
nats/token, bits per character (total nats / (val chars * ln 2), comparable across tokenizers) and perplexity; and
a second table with every smoothing's validation loss at the same order.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.corpus import load_corpus, split_text  # noqa: E402
from engine.models.ngram import SMOOTHINGS, NGramConfig, NGramLM  # noqa: E402
from engine.tokenizers import build_tokenizer  # noqa: E402

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare.txt"
TOKENIZERS = (("char", {}), ("word", {}), ("bpe", {"vocab_size": 1024}))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    corpus = load_corpus(str(SHAKESPEARE) if SHAKESPEARE.exists() else "builtin:python-docs")
    train_text, val_text = split_text(corpus.text)
    print(f"corpus {corpus.name}: {len(corpus.text.encode('utf-8')) / 1e6:.2f} MB, "
          f"train {len(train_text):,} chars, val {len(val_text):,} chars; order {args.order}")
    print(f"{'tokenizer':9} {'vocab':>6} {'train tok':>10} {'tokenize s':>10} {'count s':>8} {'eval s':>7} "
          f"{'KN loss':>8} {'bpc':>6} {'ppl':>8} {'n-grams':>9}")
    smoothing_rows = []
    for kind, opts in TOKENIZERS:
        tok, t_train = timed(lambda: build_tokenizer(kind, train_text, **opts))
        (train_ids, val_ids), t_enc = timed(lambda: (np.array(tok.encode(train_text)), np.array(tok.encode(val_text))))
        cfg = NGramConfig(vocab_size=tok.vocab_size, order=args.order, smoothing="kneser-ney")
        fits = [timed(lambda: NGramLM(cfg).fit(train_ids)) for _ in range(args.repeat)]
        model, t_fit = fits[0][0], min(t for _, t in fits)
        loss, t_eval = timed(lambda: model.evaluate(val_ids))
        bpc = loss * len(val_ids) / (len(val_text) * math.log(2))
        print(f"{kind:9} {tok.vocab_size:6d} {len(train_ids):10,d} {t_train + t_enc:10.2f} {t_fit:8.3f} "
              f"{t_eval:7.3f} {loss:8.4f} {bpc:6.3f} {math.exp(loss):8.2f} {model.num_params():9,d}")
        if kind == "word":
            unk = float(np.mean(val_ids == 0))
            print(f"{'':9} (word: {unk:.1%} of val tokens are <unk>, words never seen in training)")
        row = []
        for s in SMOOTHINGS:
            m = NGramLM.from_arrays(NGramConfig(vocab_size=tok.vocab_size, order=args.order, smoothing=s),
                                    model.state_arrays())
            row.append(m.evaluate(val_ids))
        smoothing_rows.append((kind, row))
    print(f"\nval loss (nats/token) by smoothing, order {args.order}:")
    print(f"{'tokenizer':9} " + " ".join(f"{s:>14}" for s in SMOOTHINGS))
    for kind, row in smoothing_rows:
        print(f"{kind:9} " + " ".join(f"{x:14.4f}" for x in row))


if __name__ == "__main__":
    main()
