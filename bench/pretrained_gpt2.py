"""GPT-2 small (124M) on the CPU: time to load the folder, memory, and decoding speed, as figures.

    .venv/bin/python bench/pretrained_gpt2.py                  # a randomly initialised gpt2-sized model
    .venv/bin/python bench/pretrained_gpt2.py --folder PATH    # a real snapshot, e.g.
        ~/.cache/huggingface/hub/models--gpt2/snapshots/<hash>/

Without --folder it builds, with transformers (the test extra), GPT2LMHeadModel(GPT2Config()) — gpt2's exact
shapes, random weights — saved with save_pretrained, and a byte-level BPE of gpt2's size (50,257 tokens: the 256
bytes, 50,000 merges of byte pairs, <|endoftext|>) as vocab.json + merges.txt. Nothing is downloaded. The text
it samples is noise; the figures (load seconds, resident memory, tokens per second) are what the real weights
cost too."""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: kB


def make_folder(folder: Path) -> None:
    import torch
    from tokenizers import pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = []
    for a in alphabet:
        for b in alphabet:
            if len(merges) == 50_000:
                break
            merges.append(f"{a} {b}")
            vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab))).save_pretrained(str(folder))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", default=None, help="a GPT-2 folder (default: build a random gpt2-sized one)")
    p.add_argument("--tokens", type=int, default=50, help="tokens to sample")
    args = p.parse_args()
    import torch
    torch.set_num_threads(1)
    tmp = None
    folder = Path(args.folder) if args.folder else None
    if folder is None:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name)
        t = time.perf_counter()
        make_folder(folder)
        print(f"built a random gpt2-sized folder in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    base = rss_mb()
    from engine import api
    from engine.decode import DecodeConfig, generate
    from engine.threads import inference_threads
    t = time.perf_counter()
    handle = api.load_checkpoint(folder)
    load_s = time.perf_counter() - t
    torch.set_num_threads(inference_threads(handle.model) or torch.get_num_threads())
    print(f"load: {load_s:.2f} s, {handle.model.num_params() / 1e6:.1f}M parameters, "
          f"peak RSS {rss_mb():.0f} MB (before loading: {base:.0f} MB)")
    for strategy in ("greedy", "sample"):
        cfg = DecodeConfig(strategy=strategy, max_new_tokens=args.tokens, seed=0)
        t = time.perf_counter()
        first = None
        n = 0
        for ev in generate(handle.model, handle.tokenizer, "It is a truth universally acknowledged", cfg):
            if not ev.done:
                n += 1
                first = first or time.perf_counter() - t
        wall = time.perf_counter() - t
        print(f"{strategy}: {n} tokens in {wall:.2f} s ({n / wall:.1f} tok/s, first token {first:.2f} s), "
              f"peak RSS {rss_mb():.0f} MB")
    from engine.inside.inspect import look_inside
    t = time.perf_counter()
    look_inside(handle.model, handle.tokenizer, "It is a truth universally acknowledged, that a single man")
    print(f"inside (logit lens, attention, neurons) on one sentence: {time.perf_counter() - t:.2f} s")
    from engine.autodiff.report import model_tape_report
    t = time.perf_counter()
    rep = model_tape_report(handle.model, handle.tokenizer, "It is a truth", check=True, fd_nodes=8)
    print(f"tape on {rep['tokens']} tokens: {rep['nodes']:,} nodes, {rep['param_values'] / 1e6:.1f}M float64 "
          f"weights, forward+backward+torch check+{rep['fd_nodes_checked']} finite-difference checks in "
          f"{time.perf_counter() - t:.1f} s; |grad - torch| max {rep['max_abs_grad_diff_vs_torch']:.1e}, "
          f"fd rel. err max {rep['max_fd_rel_err']:.1e}; peak RSS {rss_mb():.0f} MB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
