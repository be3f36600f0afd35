"""Export a run as one plain PyTorch script: `main.py export --checkpoint DIR --out run.py`.

The script imports torch and numpy only (and, for a BPE run, the tokenizers library, which reads the tokenizer
JSON written beside it); nothing from this project. It rebuilds the tokenizer (a char or word vocabulary inline),
the model, AdamW with the warmup + cosine schedule, reads the corpus, trains from scratch and samples. It mirrors
engine/train.py and engine/models exactly — the same module construction order (so the same initial weights for a
seed), the same parameter groups, clipping order, batch sampling generator and learning rates — so for the same
seed on the CPU its losses equal the Trainer's (tests/engine/test_export.py checks 20 steps to 1e-5).

The corpus: a single UTF-8 file is read from its own path; anything else (a built-in corpus, a folder, a file with
a byte-order mark or another encoding) is written beside the script as NAME.corpus.txt, the exact text the run
trained on. The script's --corpus option reads another file instead."""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import checkpoint as ckpt
from .corpus import load_corpus
from .errors import CheckpointError, ConfigError
from .export_script import SCRIPT
from .tokenizers.word import TOKEN_RE
from .train_checkpoints import SETTING_OF, saved_precision

__all__ = ["export_script"]


def check_replaceable(out: Path, overwrite: bool = False) -> None:
    """ConfigError when the file `out` or a file an export writes beside it (NAME.tokenizer.json,
    NAME.corpus.txt, NAME.weights.pt) exists and `out` is not a script this program exported (its first line says
    "exported by LM Playground"), unless `overwrite`: a re-export replaces the last one and its side files, a
    user's own files are not replaced by surprise."""
    if overwrite or _is_export(out):
        return
    for f in (out, *(out.with_name(out.stem + side) for side in SIDE_FILES)):
        if f.exists() or f.is_symlink():
            raise ConfigError(f"{f} already exists and is not part of a script exported by LM Playground; choose "
                              f"another name, or add --overwrite to replace it")


SIDE_FILES = (".tokenizer.json", ".corpus.txt", ".weights.pt")


def _is_export(out: Path) -> bool:
    try:
        with open(out, "rb") as f:
            return out.is_file() and b"exported by LM Playground" in f.read(200).split(b"\n", 1)[0]
    except OSError:
        return False


def export_script(ckpt_dir, out_path, *, tokenizer_file=None, meta_file=None, overwrite: bool = False) -> dict:
    """Write the script for the checkpoint's run to `out_path` (and beside it the tokenizer JSON for BPE, the
    corpus text when it cannot be read from its own path). Returns {"script", "files", "corpus"}: the script's
    path, every file written, and the corpus path the script reads by default. Raises CheckpointError for an
    n-gram or a checkpoint without its run spec, CorpusError when the corpus cannot be read, OSError on write,
    ConfigError when `out_path` exists and is not an earlier export (`check_replaceable`) unless `overwrite`.

    A model trained elsewhere (engine.pretrained; tokenizer_file / meta_file as api.load_checkpoint takes them)
    has no run: its script gets the weights beside it (NAME.weights.pt) and samples from them
    (`--steps 0`, the default, with `--prompt`), or fine-tunes them on `--corpus` with the settings
    api.finetune_spec would use; "corpus" is then None."""
    from . import pretrained
    check_replaceable(Path(out_path), overwrite)
    if pretrained.kind_of(ckpt_dir) is not None:
        from .pretrained.export import export_pretrained
        return export_pretrained(ckpt_dir, Path(out_path), tokenizer_file, meta_file)
    meta = ckpt.load_meta(ckpt_dir)
    family = meta["family"]
    if family == "ngram":
        raise CheckpointError("an n-gram model is counted, not trained with PyTorch; there is no script to export")
    if "spec" not in meta or not meta.get("tokenizer") or "train" not in meta:
        raise CheckpointError(f"{ckpt_dir} has no run spec, tokenizer or training config, so its run cannot be "
                              f"written as a script")
    out = Path(out_path)
    if out.suffix != ".py":
        raise ConfigError(f"the script must be a .py file, not {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    spec, tok = meta["spec"], meta["tokenizer"]
    written = []
    corpus_path = _corpus_path(spec, out, written)
    # the script is one process: a run of W processes × grad_accum K becomes grad_accum W·K, whose window streams
    # 0 .. W·K-1 are the ones the processes drew (rank r, micro-batch m: stream r·K + m), so the batches match
    world = meta.get("world_size", 1) if type(meta.get("world_size", 1)) is int else 1
    train = dict(meta["train"], grad_accum=int(meta["train"].get("grad_accum", 1)) * max(1, world))
    # the precision the run trained in, not "auto" decided again wherever the script runs (a run from before
    # auto meant bf16 on this CPU, or from a machine without native bf16, would not be reproduced)
    was = saved_precision(meta)
    if was is not None:
        train["precision"] = SETTING_OF[was]
    settings = {
        "family": family, "model": meta["model"], "train": train, "seed": int(meta["train"]["seed"]),
        "val_fraction": float(spec.get("val_fraction", 0.1)), "corpus": str(corpus_path),
        "tokenizer": _tokenizer_settings(tok, out, written),
        "source": str(Path(ckpt_dir).resolve()),
    }
    text = SCRIPT.replace("@SETTINGS@", json.dumps(settings, indent=1, ensure_ascii=True))
    out.write_text(text, encoding="utf-8")
    written.insert(0, out)
    return {"script": str(out), "files": [str(p) for p in written], "corpus": str(corpus_path)}


def _tokenizer_settings(tok: dict, out: Path, written: list) -> dict:
    tok_json = None
    if tok["kind"] == "bpe":
        tok_json = out.with_name(out.stem + ".tokenizer.json")
        tok_json.write_text(tok["tokenizer_json"], encoding="utf-8")
        written.append(tok_json)
    return {"kind": tok["kind"], **({"chars": tok["chars"]} if tok["kind"] == "char" else {}),
            **({"tokens": tok["tokens"], "lowercase": bool(tok.get("lowercase")), "pattern": TOKEN_RE.pattern}
               if tok["kind"] == "word" else {}),
            **({"json": tok_json.name} if tok_json else {})}


def _corpus_path(spec: dict, out: Path, written: list) -> Path:
    corpus = load_corpus(spec["corpus"], max_bytes=int(spec.get("max_corpus_bytes", 50_000_000)),
                         on_bad_utf8=spec.get("on_bad_utf8", "error"))
    source = Path(corpus.source)
    if source.is_file():
        try:
            if source.read_bytes().decode("utf-8") == corpus.text:
                return source.resolve()
        except (OSError, UnicodeDecodeError):
            pass
    beside = out.with_name(out.stem + ".corpus.txt")
    if beside.exists() and source.exists() and os.path.samefile(beside, source):
        raise ConfigError(f"the script's copy of the corpus ({beside.name}) would replace the corpus file itself; "
                          f"give --out another name")
    with open(beside, "w", encoding="utf-8", newline="") as f:
        f.write(corpus.text)
    written.append(beside)
    return beside.resolve()
