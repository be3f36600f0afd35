"""A model trained with nanoGPT (github.com/karpathy/nanoGPT), from the `ckpt.pt` its train.py writes, mapped onto
the engine's GPT.

ckpt.pt is a torch.save'd dict: `model` (the state dict; `_orig_mod.` prefixes when torch.compile wrapped the
model), `model_args` (n_layer, n_head, n_embd, block_size, bias, vocab_size, dropout), `iter_num`,
`best_val_loss`, `config` (the run's settings, among them `dataset`) and the optimizer state. It is read with
torch.load(weights_only=True), so it cannot run code (engine.pretrained.safe_pickle).

nanoGPT's GPT is the engine's GPT with learned positions, the exact GELU, LayerNorm ε 1e-5, biases everywhere or
nowhere (`bias`), the head tied to the token embeddings, and a fused attention projection `c_attn` (an nn.Linear
of (3·n_embd, n_embd)) that splits into the query, key and value projections in that order.

Its tokenizer: a char-level run (shakespeare_char) has `meta.pkl` with `stoi`/`itos` in data/DATASET/; it is
looked for beside ckpt.pt, then in ../data/DATASET/ next to the output folder (nanoGPT's own layout), or named
with `meta_file`. It is read with an unpickler that admits plain values only. A run on GPT-2's tokens has no
meta.pkl: it needs GPT-2's tokenizer files, named with `tokenizer_file`."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..tokenizers.char import CharTokenizer
from .common import build_gpt, check_memory, drop_padding, engine_config, file_size
from .safe_pickle import load_plain_pickle, load_torch_file
from .tokenizer_files import load_tokenizer

ARGS = {"n_layer": int, "n_head": int, "n_embd": int, "block_size": int, "bias": bool, "vocab_size": int,
        "dropout": (int, float)}
PREFIX = "_orig_mod."


GPT2_VOCAB = 50_257   # GPT-2's BPE vocabulary; nanoGPT pads it to 50,304


class NeedsTokenizer(CheckpointError):
    """The checkpoint was trained on a vocabulary it does not carry: the caller must name a tokenizer file."""


def ckpt_path(path: Path) -> Path | None:
    """The ckpt.pt a path names: the file itself (any .pt file that is not a folder's meta.json checkpoint), or a
    folder's ckpt.pt. None when it is neither."""
    if path.is_file() and path.suffix == ".pt":
        return path
    if path.is_dir() and (path / "ckpt.pt").is_file() and not (path / "meta.json").exists():
        return path / "ckpt.pt"
    return None


def _model_args(raw, where) -> dict:
    if not isinstance(raw, dict) or not all(type(k) is str for k in raw):
        raise CheckpointError(f"{where}: model_args is not a dict of settings")
    unknown = sorted(set(raw) - set(ARGS))
    if unknown:
        raise CheckpointError(f"{where}: model_args has settings nanoGPT's GPT does not have ({', '.join(unknown)}); "
                              f"a modified model cannot be mapped safely")
    missing = sorted(set(ARGS) - set(raw))
    if missing:
        raise CheckpointError(f"{where}: model_args lacks {', '.join(missing)}")
    for key, kind in ARGS.items():
        value = raw[key]
        if not isinstance(value, kind) or (kind is int and type(value) is bool):
            raise CheckpointError(f"{where}: model_args {key} = {value!r} is not of the right type")
    return {"vocab_size": raw["vocab_size"], "block_size": raw["block_size"], "n_layer": raw["n_layer"],
            "n_head": raw["n_head"], "n_embd": raw["n_embd"], "dropout": float(raw["dropout"]),
            "bias": raw["bias"], "pos": "learned", "tie_weights": True, "norm_eps": 1e-5, "gelu": "exact"}


def to_engine(state: dict, n_layer: int, where) -> dict[str, torch.Tensor]:
    """nanoGPT's state dict under the engine's names: `_orig_mod.` stripped, `transformer.` dropped, `h.i` as
    `blocks.i`, c_attn split into q_proj, k_proj and v_proj; the causal-mask buffer `attn.bias` of a run without
    flash attention is left out."""
    clean = {}
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{where}: the model state holds {type(v).__name__} under {k!r}, not a tensor")
        k = k[len(PREFIX):] if k.startswith(PREFIX) else k
        k = k[len("transformer."):] if k.startswith("transformer.") else k
        if re.fullmatch(r"h\.\d+\.attn\.bias", k) and v.dim() == 4:
            continue
        # a copy: torch.load memory-maps the file, and nanoGPT rewrites ckpt.pt in place while it trains (a
        # truncated mapping would crash the program on the next read of a weight)
        clean[re.sub(r"^h\.(\d+)\.", r"blocks.\1.", k)] = v.clone()
    out = {}
    for k, v in clean.items():
        m = re.fullmatch(r"blocks\.(\d+)\.attn\.c_attn\.(weight|bias)", k)
        if m is None:
            out[k] = v
            continue
        if v.shape[0] % 3:
            raise CheckpointError(f"{where}: {k} has shape {tuple(v.shape)}, not three stacked projections")
        for name, part in zip(("q", "k", "v"), v.chunk(3, dim=0)):
            out[f"blocks.{m.group(1)}.attn.{name}_proj.{m.group(2)}"] = part
    head = out.get("lm_head.weight")
    if head is not None and "wte.weight" in out and head.shape == out["wte.weight"].shape \
            and torch.equal(head, out["wte.weight"]):
        del out["lm_head.weight"]   # tied, as nanoGPT always ties them: the engine reads the head from wte
    return out


def find_meta(ckpt: Path, dataset) -> Path | None:
    """meta.pkl beside ckpt.pt, else nanoGPT's data/DATASET/meta.pkl next to the output folder."""
    if (ckpt.parent / "meta.pkl").is_file():
        return ckpt.parent / "meta.pkl"
    if isinstance(dataset, str) and re.fullmatch(r"[\w.-]+", dataset) and dataset not in (".", ".."):
        candidate = ckpt.parent.parent / "data" / dataset / "meta.pkl"
        if candidate.is_file():
            return candidate
    return None


def char_tokenizer(meta_path: Path) -> CharTokenizer:
    """The char vocabulary of nanoGPT's meta.pkl: `itos` (id -> character) for ids 0..n-1, each a distinct
    single character, agreeing with `stoi` and `vocab_size` where present. Raises CheckpointError."""
    meta = load_plain_pickle(meta_path, "vocabulary file")
    where = meta_path
    if not isinstance(meta, dict) or not isinstance(meta.get("itos"), dict):
        raise CheckpointError(f"{where} has no itos (the id -> character table of a char-level run)")
    itos = meta["itos"]
    if sorted(itos) != list(range(len(itos))) or not all(type(c) is str and len(c) == 1 for c in itos.values()):
        raise CheckpointError(f"{where}: itos must map the ids 0..n-1 to single characters")
    chars = "".join(itos[i] for i in range(len(itos)))
    stoi = meta.get("stoi")
    if stoi is not None and stoi != {c: i for i, c in enumerate(chars)}:
        raise CheckpointError(f"{where}: stoi and itos disagree")
    if meta.get("vocab_size", len(chars)) != len(chars):
        raise CheckpointError(f"{where}: vocab_size {meta['vocab_size']!r} is not the {len(chars)} characters of itos")
    try:
        return CharTokenizer(chars)
    except Exception as e:
        raise CheckpointError(f"{where}: {e}") from None


def load_nanogpt(path: str | Path, tokenizer_file: str | Path | None = None, meta_file: str | Path | None = None):
    """(model, tokenizer, meta) for nanoGPT's ckpt.pt at `path` (the file, or its folder). The tokenizer: the
    char vocabulary of `meta_file` or a meta.pkl found by find_meta, else `tokenizer_file`; with neither, a
    NeedsTokenizer error says what to name. meta is shaped like a checkpoint's meta.json, with `pretrained`
    saying where it came from. Raises CheckpointError."""
    path = Path(path)
    ckpt = ckpt_path(path)
    if ckpt is None:
        raise CheckpointError(f"{path} is not a nanoGPT checkpoint (a ckpt.pt file, or a folder holding one)")
    size = file_size(ckpt, "checkpoint file")
    raw = load_torch_file(ckpt, "checkpoint file")
    if not isinstance(raw, dict) or "model" not in raw or "model_args" not in raw:
        raise CheckpointError(f"{ckpt} is not a nanoGPT checkpoint: it needs 'model' and 'model_args'")
    cfg = _model_args(raw["model_args"], ckpt)
    config = engine_config(cfg, ckpt)
    check_memory(config, size, ckpt)
    if not isinstance(raw["model"], dict):
        raise CheckpointError(f"{ckpt}: 'model' is not a state dict")
    tensors = to_engine(raw["model"], cfg["n_layer"], ckpt)
    if "lm_head.weight" in tensors:   # a head that is not the embedding: keep it untied
        cfg["tie_weights"] = False
    dataset = (raw.get("config") or {}).get("dataset") if isinstance(raw.get("config"), dict) else None
    meta_path = Path(meta_file) if meta_file else (None if tokenizer_file else find_meta(ckpt, dataset))
    if meta_path is not None:
        tokenizer = char_tokenizer(meta_path)
        tok_source = str(meta_path.resolve())
        if tokenizer.vocab_size != cfg["vocab_size"]:   # nanoGPT's char runs use len(chars) exactly: no padding
            raise CheckpointError(f"{meta_path} has {tokenizer.vocab_size} characters but {ckpt} was trained on "
                                  f"{cfg['vocab_size']}: it is the vocabulary of another run (name the right one "
                                  f"with --meta)")
    elif tokenizer_file:
        tokenizer = load_tokenizer(tokenizer_file)
        tok_source = str(Path(tokenizer_file).resolve())
    elif cfg["vocab_size"] < 256:     # fewer tokens than a byte-level BPE's bytes: a character-level run
        raise NeedsTokenizer(f"{ckpt} has no character vocabulary (no meta.pkl beside it or in data/"
                             f"{dataset or 'DATASET'}/): its {cfg['vocab_size']} tokens make it a character-level "
                             f"run. Name that run's meta.pkl (--meta PATH/meta.pkl in the CLI)")
    else:
        raise NeedsTokenizer(f"{ckpt} has no character vocabulary (no meta.pkl beside it or in data/"
                             f"{dataset or 'DATASET'}/): with {cfg['vocab_size']:,} tokens it was trained on a "
                             f"BPE such as GPT-2's ({GPT2_VOCAB:,}, padded to 50,304). Name that tokenizer "
                             f"(tokenizer.json, or a folder with vocab.json and merges.txt; --tokenizer-file in the "
                             f"CLI), or a char vocabulary (--meta PATH/meta.pkl)")
    notes = drop_padding(cfg, tensors, tokenizer.vocab_size, ckpt)
    config = engine_config(cfg, ckpt)
    model = build_gpt(config, tensors, ckpt)
    step = raw.get("iter_num", 0)
    step = step if type(step) is int and step >= 0 else 0
    summary = {"params": int(model.num_params()), "step": step}
    best = raw.get("best_val_loss")
    if isinstance(best, torch.Tensor) and best.numel() == 1:
        best = float(best)
    if type(best) is float and best == best and abs(best) != float("inf"):
        summary["best_val_loss"] = best   # nanoGPT's estimate on random batches, not this program's whole split
    meta = {"family": "transformer", "model": config.to_dict(), "tokenizer": tokenizer.to_dict(), "step": step,
            "summary": summary,
            "pretrained": {"format": "nanogpt", "path": str(ckpt.resolve()), "tokenizer": tok_source,
                           "dataset": dataset if isinstance(dataset, str) else None, "notes": notes}}
    return model, tokenizer, meta
