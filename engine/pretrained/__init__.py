"""Models trained elsewhere, opened where the program's own checkpoints are: a Hugging Face GPT-2 folder
(hf_gpt2.py) and a nanoGPT ckpt.pt (nanogpt.py), both mapped onto the engine's GPT, so sampling, the tape, the
Inside tab, fine-tuning and export use them as any other transformer. Nothing is downloaded, and no file can run
code while it is read (safe_pickle.py).

`kind_of(path)` says which a path is (None for the program's own checkpoint folders and anything else);
`load_pretrained` reads it. Options a loader may need: `tokenizer_file` (a tokenizer.json, or a folder with
vocab.json + merges.txt) and `meta_file` (nanoGPT's char vocabulary, meta.pkl)."""
from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError
from .hf_gpt2 import is_hf_folder
from .nanogpt import NeedsTokenizer, ckpt_path

__all__ = ["kind_of", "load_pretrained", "sources_of", "NeedsTokenizer"]

KINDS = ("hf-gpt2", "nanogpt")


def kind_of(path) -> str | None:
    """'hf-gpt2' for a folder with config.json (and no meta.json), 'nanogpt' for a .pt file or a folder holding
    ckpt.pt, None otherwise (a checkpoint folder of this program, or nothing known). A Hugging Face file named
    inside its folder (config.json, model.safetensors, ...) counts as its folder."""
    if not str(path).strip():
        return None
    p = Path(path)
    if p.is_file() and p.suffix != ".pt" and is_hf_folder(p.parent):
        return "hf-gpt2"
    if is_hf_folder(p):
        return "hf-gpt2"
    if ckpt_path(p) is not None:
        return "nanogpt"
    return None


def load_pretrained(path, *, tokenizer_file=None, meta_file=None):
    """(model, tokenizer, meta) for the GPT-2 folder or nanoGPT checkpoint at `path` (see kind_of). meta is
    shaped like a checkpoint's meta.json (family, model, tokenizer, step, summary) plus `pretrained`: format,
    path, tokenizer source and notes. Raises CheckpointError (NeedsTokenizer when a tokenizer file must be named)."""
    kind = kind_of(path)
    if kind == "hf-gpt2":
        from .hf_gpt2 import load_hf_gpt2
        p = Path(path)
        if meta_file:
            raise CheckpointError("--meta names nanoGPT's char vocabulary; a GPT-2 folder brings its own tokenizer")
        return load_hf_gpt2(p if p.is_dir() else p.parent, tokenizer_file)
    if kind == "nanogpt":
        from .nanogpt import load_nanogpt
        return load_nanogpt(path, tokenizer_file, meta_file)
    raise CheckpointError(f"{path} is neither a checkpoint of this program, a GPT-2 folder nor a nanoGPT ckpt.pt")


def sources_of(meta: dict) -> dict:
    """load_pretrained's tokenizer_file / meta_file that read the model of `meta` (a handle's) again with the same
    tokenizer; {} for a checkpoint of this program."""
    info = meta.get("pretrained") or {}
    if not info.get("tokenizer"):
        return {}
    if info.get("format") == "nanogpt" and (meta.get("tokenizer") or {}).get("kind") == "char":
        return {"meta_file": info["tokenizer"]}
    return {"tokenizer_file": info["tokenizer"]}
