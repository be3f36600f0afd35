"""`main.py prepare`: stream a corpus into token files once (engine/prepare.py), then `main.py train --data DIR`.

Progress goes to stderr (a line per stage and about one a second), the folder's meta.json to stdout as one JSON
line. Bad input is `error: <reason>` and exit status 2, as for every command (engine/cli.py)."""
from __future__ import annotations

import argparse
import json
import sys
import time

# flags of `train` that a prepared folder fixes: refused with --data, named in the message
DATA_FIXES = (("corpus", "--corpus"), ("tokenizer", "--tokenizer"), ("tok_set", "--tok-set"),
              ("val_fraction", "--val-fraction"), ("max_corpus_mb", "--max-corpus-mb"),
              ("replace_bad_utf8", "--replace-bad-utf8"), ("init_from", "--init-from"))


SMALL_VAL_TOKENS = 1000   # fewer validation tokens than this is warned about: a few windows give a noisy loss


def add_parser(sub, fraction, key_values_help: str) -> None:
    p = sub.add_parser("prepare", help="tokenize a corpus of any size once into train.bin/val.bin for train --data")
    p.add_argument("--corpus", required=True, help="a text file, a folder of text files, or builtin:NAME")
    p.add_argument("--tokenizer", default="char", choices=["char", "word", "bpe"])
    p.add_argument("--tok-set", action="append", default=[], metavar="KEY=VALUE", help=key_values_help)
    p.add_argument("--val-fraction", type=fraction, default=None,
                   help="the last fraction of the text is validation (default 0.1)")
    p.add_argument("--replace-bad-utf8", action="store_true",
                   help="replace invalid UTF-8 bytes with U+FFFD instead of refusing the file")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the folder to write (new, empty, or an earlier prepared folder, replaced when done)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def data_conflicts(args: argparse.Namespace) -> list[str]:
    """The flags given to `train --data DIR` that the prepared folder fixes."""
    return [flag for attr, flag in DATA_FIXES if getattr(args, attr, None) not in (None, False, [])]


def run(args: argparse.Namespace, key_values) -> int:
    from .corpus import VAL_FRACTION
    from .prepare import prepare
    last = [0.0, ""]

    def progress(frac: float, stage: str) -> None:
        now = time.perf_counter()
        if not args.quiet and (stage != last[1] or now - last[0] > 1.0):
            print(f"{stage}: {frac:.0%}", file=sys.stderr)
            last[0], last[1] = now, stage

    meta = prepare(args.corpus, args.tokenizer, args.out,
                   tokenizer_options=key_values(args.tok_set, "--tok-set") if args.tok_set else None,
                   val_fraction=args.val_fraction if args.val_fraction is not None else VAL_FRACTION,
                   on_bad_utf8="replace" if args.replace_bad_utf8 else "error", progress=progress)
    if meta["skipped"]:
        print(f"note: {len(meta['skipped'])} file(s) of the corpus folder were skipped: "
              + "; ".join(f"{p} ({why})" for p, why in meta["skipped"][:20]), file=sys.stderr)
    if meta["val"]["tokens"] < SMALL_VAL_TOKENS:
        print(f"warning: the validation split has only {meta['val']['tokens']:,} tokens (val_fraction "
              f"{meta['val_fraction']}): its loss will be noisy, and a model's block_size must be below it; "
              f"a larger --val-fraction gives a steadier figure", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {args.out}: {meta['train']['tokens']:,} train / {meta['val']['tokens']:,} val tokens "
              f"({meta['dtype']}), {meta['bytes'] / 1e6:,.1f} MB at {meta['mb_per_s']:,.1f} MB/s", file=sys.stderr)
    print(json.dumps(dict(meta, out=str(args.out))))
    return 0
