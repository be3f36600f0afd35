"""Headless commands: `train`, `prepare` (engine/cli_prepare.py), `sample`, `tape`, `inspect`, `export`. Progress goes to stderr, the machine-readable result to stdout
as one JSON line. A PlaygroundError becomes `error: <message>` and exit status 2, never a traceback."""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import cli_prepare
from .checkpoint_schema import MAX_SEED
from .errors import BadUtf8Error, ConfigError, PlaygroundError
from .interrupt import StopOnSignal

_T0 = time.perf_counter()


def _key_values(pairs: list[str], flag: str) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects key=value, got {p!r}")
        out[key.strip()] = value.strip()
    return out


def _json_number(x: Any) -> Any:
    """JSON has no infinity; an infinite perplexity is written as the string "inf" (and explained on stderr)."""
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints in the form every other bad input gets: one `error: ...` line (after the
    usage), exit status 2. Sub-command parsers are made with the same class."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")




def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None


def _seed(text: str) -> int:
    """argparse type: a seed from 0 to 2^63-1 (argparse turns the ArgumentTypeError into `error:` and exit 2)."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and 2^63-1, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value


def _fraction(text: str) -> float:
    value = _float(text)
    if not 0 < value < 1:   # also refuses nan
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {text}")
    return value


def _loss_position(text: str) -> int | str:
    """argparse type for inspect --loss-position: "last", "mean" or a position 1 or more (its upper bound, the
    text's length, is checked once the text is tokenized)."""
    if text in ("last", "mean"):
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a position (1, 2, …), 'last' or 'mean', not {text!r}") from None


CHECKPOINT_HELP = "a checkpoint folder of this program, a Hugging Face GPT-2 folder, or a nanoGPT ckpt.pt"


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python main.py", description="LM Playground headless commands "
                "(run with no arguments to open the desktop app)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and write a checkpoint")
    # Options that define the model or data default to None here, so that with --resume one given explicitly can
    # be checked against the checkpoint instead of being ignored; a new run takes RunSpec's defaults.
    t.add_argument("--corpus", help="a .txt file, a folder of text files, or builtin:python-docs / "
                   "builtin:python-code (default builtin:python-docs)")
    t.add_argument("--data", default=None, metavar="DIR",
                   help="a folder written by `prepare`: train from its token files, memory-mapped (any size)")
    t.add_argument("--tokenizer", help="char, word or bpe (default char)")
    t.add_argument("--tok-set", action="append", default=[], metavar="KEY=VALUE",
                   help="tokenizer option, e.g. vocab_size=512 (bpe/word) or lowercase=true (word)")
    t.add_argument("--model", help="ngram, rnn, lstm, gru or transformer (default transformer)")
    t.add_argument("--preset", default=None, help="a preset from resources/presets (neural models)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any hyperparameter, e.g. order=3, n_layer=4, lr=3e-4; with --resume only "
                   "training settings (lr, batch_size, train.block_size, eval_interval, ...)")
    t.add_argument("--max-steps", type=_positive_int, default=None)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--seed", type=_seed, help="seeds initialisation and batches (default 1337)")
    t.add_argument("--val-fraction", type=_fraction, help="the last fraction of the text is validation (default 0.1)")
    t.add_argument("--max-corpus-mb", type=_positive_float, help="refuse corpora larger than this (default 50)")
    t.add_argument("--replace-bad-utf8", action="store_true",
                   help="replace invalid UTF-8 bytes with U+FFFD instead of refusing the file")
    t.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run saved in this checkpoint (same model, corpus and tokenizer; "
                   "--max-steps, --device and training --set values may change)")
    t.add_argument("--init-from", default=None, metavar="PATH",
                   help="fine-tune: start a new run on --corpus from this checkpoint's weights (or a GPT-2 folder's "
                   "or nanoGPT ckpt.pt's), keeping its tokenizer (training --set values, --max-steps and --seed "
                   "may change)")
    t.add_argument("--map-unknown", default=None, metavar="TOKEN",
                   help="with --init-from: map characters/words the checkpoint's tokenizer cannot encode to this "
                   "token (e.g. ' ' for char, '<unk>' for word) instead of refusing the corpus")
    t.add_argument("--out", default=None, metavar="DIR",
                   help="checkpoint folder (default runs/<model>-<time>); one that holds another run's checkpoint is "
                   "refused unless --overwrite (with --resume DIR, --out DIR continues in place)")
    t.add_argument("--overwrite", action="store_true",
                   help="let this run replace the run already in --out: its checkpoint, metrics.jsonl and "
                   "snapshots are removed once this run has loaded its corpus and is about to start")
    t.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    t.add_argument("--keep-snapshots", action="store_true",
                   help="keep up to 32 past models (log-spaced steps and every evaluation) in DIR/snapshots, for "
                   "scrubbing the loss curve in the window (File → Open run…)")

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("--checkpoint", required=True, metavar="PATH", help=CHECKPOINT_HELP)
    s.add_argument("--prompt", default="")
    s.add_argument("--strategy", default="sample", choices=["greedy", "sample", "beam"])
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=0)
    s.add_argument("--top-p", type=float, default=1.0)
    s.add_argument("--min-p", type=float, default=0.0)
    s.add_argument("--repetition-penalty", type=float, default=1.0)
    s.add_argument("--beam-width", type=int, default=4)
    s.add_argument("--length-penalty", type=float, default=1.0)
    s.add_argument("--max-new-tokens", type=int, default=200)
    s.add_argument("--stop", action="append", default=None, metavar="TEXT",
                   help="stop when this string appears (repeat for several)")
    s.add_argument("--compare", action="append", default=None, metavar="SPEC",
                   help="run up to 6 columns side by side on the prompt and seed, one JSON line each: greedy, "
                   "'sample:temperature=0.8,top_p=0.9', 'beam:width=4,length_penalty=1' (repeat the flag)")
    s.add_argument("--no-cache", action="store_true",
                   help="recompute the whole context for every token (no KV cache / carried RNN state)")
    s.add_argument("--check-cache", action="store_true",
                   help="also report the largest |logit difference| between cached and uncached decoding over "
                   "the generated text (JSON: cache_check; text: a line on stderr)")
    s.add_argument("--seed", type=_seed, default=None)
    s.add_argument("--json", action="store_true", help="print one JSON line instead of streaming text")
    s.add_argument("--explain", action="store_true", help="n-gram models: one JSON line per generated token "
                   "saying which order answered, with the counts, discount and weights behind its probability")

    e = sub.add_parser("export", help="write a checkpoint's run as one plain PyTorch script")
    e.add_argument("--checkpoint", required=True, metavar="PATH", help=CHECKPOINT_HELP)
    e.add_argument("--out", required=True, metavar="FILE.py",
                   help="the script to write; an existing file that is not an earlier export is refused")
    e.add_argument("--overwrite", action="store_true", help="replace --out even if it is not an earlier export")

    a = sub.add_parser("tape", help="replay a checkpoint's model on the autodiff tape and compare with torch")
    a.add_argument("--checkpoint", required=True, metavar="PATH", help=CHECKPOINT_HELP)
    a.add_argument("--text", required=True)
    a.add_argument("--check", action="store_true", help="also run finite-difference checks on a sample of nodes")

    cli_prepare.add_parser(sub, _fraction, "tokenizer option, e.g. vocab_size=512 (bpe/word) or lowercase=true "
                           "(word)")

    i = sub.add_parser("inspect", help="look inside a checkpoint's model on a text: logit lens, units that track "
                       "text features, attention entropies, BPTT gradient norms")
    i.add_argument("--checkpoint", required=True, metavar="PATH", help=CHECKPOINT_HELP)
    i.add_argument("--text", required=True)
    i.add_argument("--loss-position", default="last", metavar="N|last|mean", type=_loss_position,
                   help="whose loss the BPTT norms carry back: position N (1..tokens-1), the last (default) or "
                   "the mean over all positions")
    i.add_argument("--json", action="store_true", help="one JSON object (the only output form; kept explicit)")
    for cmd in (t, s, e, a, i):   # models trained elsewhere (engine/pretrained)
        cmd.add_argument("--tokenizer-file", default=None, metavar="PATH",
                         help="with a GPT-2 folder or nanoGPT ckpt.pt: its tokenizer (tokenizer.json, or a folder "
                         "with vocab.json and merges.txt) where it brings none")
        cmd.add_argument("--meta", default=None, metavar="PATH",
                         help="with a nanoGPT ckpt.pt: its char vocabulary meta.pkl (default: beside ckpt.pt)")
    return p


def _sources(args: argparse.Namespace) -> dict:
    """The --tokenizer-file and --meta options as load_checkpoint's keywords."""
    return {"tokenizer_file": args.tokenizer_file, "meta_file": args.meta}


def _train(args: argparse.Namespace) -> int:
    """Under torchrun, join the launch first (engine.distributed); a failure of another process reaches this one
    as a RuntimeError from a collective, reported as one error line instead of a traceback."""
    from . import distributed
    launch = distributed.init_from_env(args.device)
    if launch is not None and not launch.is_main:
        logging.getLogger().setLevel(logging.ERROR)   # rank 0 gives the warnings, once for the launch
    try:
        status = _train_run(args, launch)
        distributed.shutdown()
    except RuntimeError as e:
        if launch is None:
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"error: rank {launch.rank}: {first}", file=sys.stderr)
        return 1   # without leaving the process group: a peer may be inside a collective with this process
    return status


def _replaces_another_run(args: argparse.Namespace) -> bool:
    """Whether `train --out` names a folder (as a save resolves it: engine.checkpoint.save_path) that holds a
    checkpoint other than the one this run resumes (`--resume DIR --out DIR` continues in place). Without
    --overwrite that is a ConfigError, raised before anything is loaded: the run would replace it at its first
    save and carry its metrics.jsonl and snapshots over, mixing two runs."""
    from . import checkpoint as ckpt
    out = args.out
    if not out or not ckpt.holds_checkpoint(out):
        return False
    target = ckpt.save_path(out)
    if args.resume:
        resumed = Path(os.path.realpath(os.path.expanduser(args.resume)))
        if resumed == target or (resumed.exists() and os.path.samefile(resumed, target)):   # case-blind disks
            return False
    if args.overwrite:
        ckpt.check_save_target(target)   # a folder that holds other things too is refused now, not after loading
        return True
    try:
        meta = ckpt.load_meta(target)
    except PlaygroundError:
        meta = {}
    family = meta.get("family")
    what = "" if family is None else f" ({family}" + (f", step {meta['step']}" if family != "ngram" else "") + ")"
    resumable = family not in (None, "ngram")   # an n-gram model is counted in one pass
    hint = (f" (to continue that run: --resume {out} --out {out})"
            if resumable and not args.resume and not args.init_from else "")
    raise ConfigError(f"{out} already holds a checkpoint{what}, which this run would replace; give --out a new "
                      f"folder, or add --overwrite to remove it and its run's files first{hint}")


def _train_run(args: argparse.Namespace, launch) -> int:
    from . import api
    from .headless import RunOutput

    replacing = _replaces_another_run(args)   # every rank: on several machines each would else train on alone

    asked = {"corpus": args.corpus, "tokenizer": args.tokenizer, "family": args.model, "preset": args.preset,
             "tokenizer_options": _key_values(args.tok_set, "--tok-set") if args.tok_set else None,
             "seed": args.seed, "val_fraction": args.val_fraction,
             "max_corpus_bytes": None if args.max_corpus_mb is None else max(1, int(args.max_corpus_mb * 1_000_000)),
             "on_bad_utf8": "replace" if args.replace_bad_utf8 else None}
    if args.data is not None:
        fixed = cli_prepare.data_conflicts(args)
        if fixed:
            raise ConfigError(f"{', '.join(fixed)}: --data DIR trains on a prepared corpus, whose text, tokenizer "
                              f"and split `prepare` fixed")
        asked["data"] = args.data
    asked = {k: v for k, v in asked.items() if v is not None}
    overrides = _key_values(args.set, "--set")
    if args.init_from:
        run = _finetune(args, asked, overrides)
    elif args.tokenizer_file or args.meta:
        raise ConfigError("--tokenizer-file and --meta apply to fine-tuning a model trained elsewhere (--init-from)")
    elif args.map_unknown is not None:
        raise ConfigError("--map-unknown applies to fine-tuning (--init-from DIR)")
    elif args.resume:
        run = api.resume_run(os.path.expanduser(args.resume), max_steps=args.max_steps, device=args.device,
                             overrides=overrides, expect=asked)
    else:
        spec = api.RunSpec(**asked, overrides=overrides, device=args.device,
                           max_steps=args.max_steps)
        run = api.start_run(spec)
    if launch is not None and not launch.is_main:   # only rank 0 prints and writes; the others train along
        return _train_along(run, args)
    if replacing:   # --overwrite, once the new run is ready to start: nothing of the old run is left to mix in
        from . import checkpoint as ckpt
        ckpt.clear(args.out)
    out_dir = api.prepare_output_dir(args.out or api.default_run_dir(run))
    output = RunOutput(run, out_dir, resumed=bool(args.resume), keep_snapshots=args.keep_snapshots)
    for warning in run.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    skipped = run.corpus.skipped
    if skipped:
        print(f"note: {len(skipped)} file(s) of the corpus folder were skipped: "
              + "; ".join(f"{path} ({why})" for path, why in skipped[:20])
              + (f"; and {len(skipped) - 20} more" if len(skipped) > 20 else ""), file=sys.stderr)
    info = run.summary()
    if not args.quiet:
        size = "counting n-grams" if info["model"] == "ngram" else f"{info['params']:,} params"
        print(f"training {info['model']} ({size}) on {info['device']}, "
              f"{info['tokenizer']} tokenizer, vocab {info['vocab_size']}, "
              f"{info['train_tokens']:,} train / {info['val_tokens']:,} val tokens", file=sys.stderr)
        if output.batch_line:
            print(output.batch_line, file=sys.stderr)
        where = f"checkpoint folder {out_dir}"
        if args.resume and not args.out:   # easy to miss: the resumed folder itself stays as it was
            where += f" (new; --out {args.resume} would continue in the resumed folder)"
        print(where, file=sys.stderr)
    last_print = 0.0
    final = None
    with StopOnSignal(run) as interrupt:
        try:
            for r in run.reports():
                final = r
                output.report(r)
                if interrupt.requested and info["model"] != "ngram" and launch is None:
                    break   # counting takes seconds: let it finish; under torchrun the processes stop together
                if _show_report(r, args.quiet, last_print):
                    last_print = time.perf_counter()
                if r.event == "error":
                    break
            status = _finish_train(run, out_dir, final, interrupt)
        except BaseException as e:   # a peer process failed, the disk, ...: a follower must not wait for ever
            output.end(1, error=(str(e).strip().splitlines() or [type(e).__name__])[0])
            raise
        output.end(status, error=final.message if final is not None and final.event == "error" else None)
        return status


def _train_along(run, args) -> int:
    """A torchrun process other than rank 0: train (the steps' all-reduces need every process), print only an
    error, write nothing. Exit status as rank 0's: 1 after a training error, 128 + signal when stopped by one."""
    with StopOnSignal(run) as interrupt:
        for r in run.reports():
            if r.event == "error":
                print(f"error: {r.message}", file=sys.stderr)
                return 1
    return interrupt.exit_status


def _finetune(args: argparse.Namespace, asked: dict, overrides: dict):
    """`train --init-from DIR --corpus OTHER`: a new run from the checkpoint's weights (engine.api.finetune_run)."""
    from . import api
    if args.resume:
        raise ConfigError("give --resume DIR (continue a run) or --init-from DIR (fine-tune), not both")
    if not args.corpus:
        raise ConfigError("--init-from needs --corpus: the text to fine-tune on")
    fixed = [flag for flag, key in (("--tokenizer", "tokenizer"), ("--tok-set", "tokenizer_options"),
                                    ("--model", "family"), ("--preset", "preset")) if key in asked]
    if fixed:
        raise ConfigError(f"{', '.join(fixed)}: a fine-tuning run keeps the checkpoint's model and tokenizer")
    return api.finetune_run(args.init_from, args.corpus, map_unknown=args.map_unknown, max_steps=args.max_steps,
                            device=args.device, overrides=overrides, seed=args.seed,
                            val_fraction=args.val_fraction, max_corpus_bytes=asked.get("max_corpus_bytes"),
                            on_bad_utf8=asked.get("on_bad_utf8"), **_sources(args))


def _show_report(r, quiet: bool, last_print: float) -> bool:
    """Print a progress line for an error, an eval, the end, or once a second; True when one was printed."""
    now = time.perf_counter()
    if r.event == "error":
        print(f"error: {r.message}", file=sys.stderr)
        return True
    if quiet:
        return False
    if r.event == "eval" or r.event == "done" or now - last_print > 1.0:
        line = f"step {r.step}/{r.max_steps}"
        if not math.isnan(r.train_loss):
            line += f"  loss {r.train_loss:.4f}  lr {r.lr:.2e}  {r.tokens_per_s:,.0f} tok/s"
        if r.val_loss is not None:
            line += f"  val {r.val_loss:.4f} ({r.val_bpc:.3f} bpc, {r.val_scope or 'whole split'})"
        if r.message:
            line += f"  {r.message}"
        print(line, file=sys.stderr)
        return True
    return False


def _finish_train(run, out_dir, final, interrupt: StopOnSignal) -> int:
    """Save the run and print its JSON line. Exit status: 0, 1 after a training error, 128 + signal number when
    a signal stopped it (the checkpoint then holds the last completed step), 2 when it could not be saved."""
    try:
        path = run.save(out_dir)
    except PlaygroundError as e:
        return _save_elsewhere(run, out_dir, e)
    result = run.summary()
    result.update(wall_s=round(time.perf_counter() - _T0, 3), checkpoint=str(path))
    if final is not None and final.event == "error":
        result["error"] = final.message
    if interrupt.requested:
        result["interrupted"] = True
        print(f"saved step {result.get('step', 0)} to {path}", file=sys.stderr)
    if isinstance(result.get("val_ppl"), float) and math.isinf(result["val_ppl"]):
        print("note: validation perplexity is infinite: the model gives probability 0 to some validation "
              "token (unsmoothed MLE meets an unseen n-gram); choose a smoothing method", file=sys.stderr)
    print(json.dumps({k: _json_number(v) for k, v in result.items()}))
    if interrupt.requested:
        return interrupt.exit_status
    return 1 if "error" in result else 0


def _save_elsewhere(run, out_dir, error: PlaygroundError) -> int:
    """The run trained but could not be saved where asked: save it in a rescue folder (the system's temporary
    folder, then the home folder) and say where, or say that it could not be saved at all. Exit status 2."""
    import tempfile
    from pathlib import Path
    from . import api
    name = f"lm-playground-rescue-{Path(out_dir).name}-{time.strftime('%Y%m%d-%H%M%S')}"
    tried = []
    for place in (Path(tempfile.gettempdir()), Path.home()):
        try:
            path = run.save(api.prepare_output_dir(place / name))
        except PlaygroundError as e:
            tried.append(f"{place / name}: {e}")
            continue
        print(f"error: {error}; the trained model was saved to {path} instead", file=sys.stderr)
        return 2
    print(f"error: {error}; the trained model could not be saved anywhere (also tried {'; '.join(tried)})",
          file=sys.stderr)
    return 2


def _sample(args: argparse.Namespace) -> int:
    from . import api
    from .threads import inference_threads, torch_threads

    handle = api.load_checkpoint(args.checkpoint, **_sources(args))
    with torch_threads(inference_threads(handle.model)):   # put back afterwards: main() may be called in-process
        return _sample_loaded(args, handle)


def _sample_loaded(args: argparse.Namespace, handle) -> int:
    from .decode import DecodeConfig, generate

    if args.compare:
        return _compare(args, handle)
    cfg = DecodeConfig(strategy=args.strategy, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                       min_p=args.min_p, repetition_penalty=args.repetition_penalty, beam_width=args.beam_width,
                       length_penalty=args.length_penalty, max_new_tokens=args.max_new_tokens, stop=args.stop,
                       seed=args.seed, use_cache=not args.no_cache)
    if args.explain:
        from .models.ngram_explain import require_ngram
        require_ngram(handle.model)
    t0 = time.perf_counter()
    tokens = []
    text = ""
    events = generate(handle.model, handle.tokenizer, args.prompt, cfg)   # checks the input before any output
    stream = not (args.json or args.explain) and args.strategy != "beam"  # a beam's best changes: print it at the end
    if stream:
        sys.stdout.write(args.prompt)   # a sampler shows the prompt it continues, as typed
    hypotheses = {}                       # beam: every hypothesis seen, by its token ids
    for ev in events:
        if not ev.done:
            tokens.append({"id": int(ev.token_id), "text": ev.text, "prob": float(ev.prob)})
            hypotheses.update((h.token_ids, h) for h in ev.beams or ())
        if stream and ev.text:
            sys.stdout.write(ev.text)
            sys.stdout.flush()
        if ev.done:
            text = ev.final_text
    took = time.perf_counter() - t0
    if args.strategy == "beam":
        tokens = _beam_tokens(hypotheses, text)
    check = _check_cache(args, handle, [t["id"] for t in tokens])
    if args.explain:
        from .models.ngram_explain import explain_generation
        for line in explain_generation(handle.model, handle.tokenizer, args.prompt, tokens):
            print(json.dumps(line))
    elif args.json:
        print(json.dumps({"prompt": args.prompt, "text": text, "strategy": args.strategy, "tokens": tokens,
                          "cache": cfg.use_cache, "tokens_per_s": len(tokens) / took if took > 0 else None,
                          **({"cache_check": check.as_dict()} if check else {})}))
    elif args.strategy == "beam":
        print(args.prompt + text)
    else:
        print()
    return 0


def _check_cache(args: argparse.Namespace, handle, ids: list[int]):
    if not args.check_cache:
        return None
    from .decode_compare import check_cache
    check = check_cache(handle.model, handle.tokenizer, args.prompt, ids)
    if not args.json:
        print(f"cache check: {check.summary()}", file=sys.stderr)
    return check


def _compare(args: argparse.Namespace, handle) -> int:
    """--compare: the columns side by side, one JSON line each (engine/decode_compare.py)."""
    from .decode_compare import run_columns
    defaults = _parser().parse_args(["sample", "--checkpoint", "x"])
    for name in ("strategy", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "beam_width",
                 "length_penalty"):
        if getattr(args, name) != getattr(defaults, name):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} does not go with --compare: each column names its own settings, e.g. "
                              f"--compare 'sample:temperature=0.8,top_p=0.9' --compare 'beam:width=4'")
    for report in run_columns(handle.model, handle.tokenizer, args.prompt, args.compare, check=args.check_cache,
                              max_new_tokens=args.max_new_tokens, stop=args.stop, seed=args.seed,
                              use_cache=not args.no_cache):
        print(json.dumps({"prompt": args.prompt, **report}))
    return 0


def _beam_tokens(hypotheses: dict, text: str) -> list[dict]:
    """The tokens of the hypothesis beam search returned (the events follow whichever beam leads at each step,
    not the final answer). Its prefixes were live beams at earlier steps, so each token's probability is the
    ratio of successive prefix probabilities (under the beam's scoring: the model's softmax after the repetition
    penalty), and its text what it added to the prefix's text."""
    best = max((h for h in hypotheses.values() if h.finish in ("stop", "max_tokens") and h.text == text),
               key=lambda h: h.score)
    out, prev_lp, prev_text = [], 0.0, ""
    for n in range(1, len(best.token_ids) + 1):
        prefix = hypotheses[best.token_ids[:n]]
        added = prefix.text[len(os.path.commonprefix([prev_text, prefix.text])):]
        out.append({"id": int(best.token_ids[n - 1]), "text": added,
                    "prob": math.exp(prefix.logprob - prev_lp)})
        prev_lp, prev_text = prefix.logprob, prefix.text
    return out


def _export(args: argparse.Namespace) -> int:
    from .export import export_script
    result = export_script(args.checkpoint, args.out, overwrite=args.overwrite, **_sources(args))
    print(json.dumps(result))
    return 0


def _tape(args: argparse.Namespace) -> int:
    from .autodiff.report import tape_report

    report = tape_report(args.checkpoint, args.text, check=args.check, **_sources(args))
    print(json.dumps({k: _json_number(v) for k, v in report.items()}))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .inside.report import inspect_report

    print(json.dumps(inspect_report(args.checkpoint, args.text, args.loss_position, **_sources(args))))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        if args.command == "prepare":
            return cli_prepare.run(args, _key_values)
        return {"train": _train, "sample": _sample, "tape": _tape, "inspect": _inspect,
                "export": _export}[args.command](args)
    except BadUtf8Error as e:
        print(f"error: {e}; add --replace-bad-utf8 to read such bytes as U+FFFD (�)", file=sys.stderr)
        return 2
    except PlaygroundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:   # a file the user named could not be read or written
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
