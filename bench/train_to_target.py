"""Wall time to a validation-loss target with a preset, char tokenizer, 90/10 split (nanoGPT's shakespeare_char).

    .venv/bin/python bench/train_to_target.py --preset nanogpt-cpu --target 1.886 --max-time 300 --threads 2
    .venv/bin/python bench/train_to_target.py --preset fast-gpu-char --device cuda      # target 1.47

Prints a timeline (step, wall seconds since process start, train loss, val loss) at every evaluation, then the
wall time to target, tokens/s and MFU. Validation is the whole validation split, every token, at each eval."""
from __future__ import annotations

import argparse
import sys
import time

T_START = time.perf_counter()  # "wall since process start" includes imports, data prep and compilation

from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.corpus import split_text  # noqa: E402
from engine.errors import PlaygroundError  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.tokenizers import build_tokenizer  # noqa: E402
from engine.presets import apply_overrides, load_preset  # noqa: E402
from engine.train import TrainConfig, Trainer  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="fast-gpu-char")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"))
    ap.add_argument("--target", type=float, default=1.47, help="validation loss (nats/char) to reach")
    ap.add_argument("--max-time", type=float, default=600.0, help="give up after this many wall seconds")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = dict(kv.split("=", 1) for kv in args.set)
    preset = apply_overrides(load_preset(args.preset), overrides)
    text = Path(args.corpus).read_text(encoding="utf-8")
    tokenizer = build_tokenizer("char", text)  # vocabulary over the whole text, as nanoGPT's prepare.py does
    train_text, val_text = split_text(text, 0.1)
    torch.manual_seed(preset["train"].get("seed", 1337))
    model = build_model(preset["family"], dict(preset["model"], vocab_size=tokenizer.vocab_size))
    cfg = TrainConfig.from_dict(dict(preset["train"], device=args.device))
    trainer = Trainer(model, tokenizer.encode(train_text), tokenizer.encode(val_text), cfg,
                      val_chars=len(val_text), tokenizer=tokenizer)
    print(f"preset {args.preset}: {preset['family']}, {model.num_params() / 1e6:.2f}M params, "
          f"{model.flops_per_token() / 1e6:.1f} MFLOP/token, batch {cfg.batch_size}x{cfg.block_size}, "
          f"max_steps {cfg.max_steps}, target val {args.target}")
    print(f"device: {trainer.device_label} ({trainer.peak_label}), torch threads {torch.get_num_threads()}")
    print(f"{'step':>6} {'wall_s':>8} {'train':>7} {'val':>7}")
    hit, last, best = None, None, None
    for r in trainer.reports():
        last = r
        wall = time.perf_counter() - T_START
        if r.event == "error":
            print(f"error: {r.message}")
            return 1
        if r.val_loss is not None:
            print(f"{r.step:>6} {wall:>8.1f} {r.train_loss:>7.4f} {r.val_loss:>7.4f}")
            best = r.val_loss if best is None else min(best, r.val_loss)
            if r.val_loss <= args.target:
                hit = (r, wall)
                break
        if wall > args.max_time:
            print(f"max time {args.max_time:.0f} s reached at step {r.step}")
            break
    tps = last.tokens / last.elapsed_s if last.elapsed_s else 0.0
    mfu = (f"{model.flops_per_token() * tps / trainer.peak_flops:.1%} of {trainer.peak_label}"
           if trainer.peak_flops else f"n/a ({trainer.peak_label})")
    if hit:
        r, wall = hit
        print(f"reached val {r.val_loss:.4f} <= {args.target} at step {r.step}: {wall:.1f} s wall since process "
              f"start, {r.elapsed_s:.1f} s in the trainer")
    else:
        print(f"target {args.target} not reached; best val {best if best is None else round(best, 4)} "
              f"after {last.step} steps, {time.perf_counter() - T_START:.1f} s wall")
    print(f"throughput {tps:,.0f} tokens/s over the run (evals included), {last.tokens_per_s:,.0f} tokens/s in "
          f"the last training steps; MFU {mfu}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PlaygroundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
