"""A Hugging Face GPT-2 from a local folder (for example a snapshot in the Hugging Face cache), mapped onto the
engine's GPT. Nothing is downloaded.

The folder holds `config.json`, the weights as `model.safetensors` (or `pytorch_model.bin`, read with
torch.load(weights_only=True)) and the tokenizer (`tokenizer.json`, or `vocab.json` + `merges.txt`).

GPT-2 (Radford et al. 2019; Hugging Face's modeling_gpt2.py) is the engine's GPT with these options: learned
positions (`wpe`), biases in every linear layer and LayerNorm with ε = layer_norm_epsilon, the tanh approximation of
GELU ("gelu_new"), and the head tied to the token embeddings. Its attention and MLP are `Conv1D` layers, y = x W + b
with W stored as (in, out), the transpose of nn.Linear's weight; the attention's fused `c_attn` (n_embd, 3·n_embd)
splits into the query, key and value projections in that order."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError
from ..safe_read import parse_json, read_regular
from .common import (FLOAT_DTYPES, HF_CACHE_HINT, MAX_CONFIG_BYTES, build_gpt, check_memory, drop_padding,
                     engine_config, file_size, finite_float, safetensors_header)
from .safe_pickle import load_torch_file
from .tokenizer_files import find_tokenizer, load_tokenizer

# activation_function values that are GPT-2's tanh approximation (gelu_fast writes the same formula factored)
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
BUFFERS = (".attn.bias", ".attn.masked_bias")   # causal-mask buffers older files carry; not weights


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and not (path / "meta.json").exists()


def read_config(folder: Path) -> dict:
    """The engine GPTConfig dict (as a plain dict) for the folder's config.json, after checking that it is a
    GPT-2 this mapping reproduces exactly. Raises CheckpointError naming the setting."""
    where = folder / "config.json"
    raw = parse_json(read_regular(where, MAX_CONFIG_BYTES, "model config", CheckpointError), str(where),
                     CheckpointError, max_depth=8)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where} is not a JSON object")
    kind = raw.get("model_type")
    if kind != "gpt2":
        raise CheckpointError(f"{where} describes a {kind!r} model; only GPT-2 (model_type \"gpt2\") is read")
    act = raw.get("activation_function", "gelu_new")
    if act not in (*TANH_GELUS, "gelu"):
        raise CheckpointError(f"{where}: activation_function {act!r} is not one GPT-2's mapping reproduces "
                              f"(gelu_new or gelu)")
    for key, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                    ("add_cross_attention", False)):
        if raw.get(key, ok) is not ok:
            raise CheckpointError(f"{where}: {key} = {raw[key]!r} changes the attention; only {ok} is read")
    n_embd = raw.get("n_embd", 768)
    inner = raw.get("n_inner")
    if inner is not None and inner != (4 * n_embd if type(n_embd) is int else None):
        raise CheckpointError(f"{where}: n_inner {inner!r} is not 4 × n_embd, the only MLP width the engine has")
    tied = raw.get("tie_word_embeddings", True)
    if type(tied) is not bool:
        raise CheckpointError(f"{where}: tie_word_embeddings must be true or false, not {tied!r}")
    eps = finite_float(raw.get("layer_norm_epsilon", 1e-5), "layer_norm_epsilon", where)
    return {"vocab_size": raw.get("vocab_size", 50257), "block_size": raw.get("n_positions", raw.get("n_ctx", 1024)),
            "n_layer": raw.get("n_layer", 12), "n_head": raw.get("n_head", 12), "n_embd": n_embd,
            "dropout": 0.0, "bias": True, "pos": "learned", "tie_weights": tied, "norm_eps": eps,
            "gelu": "tanh" if act in TANH_GELUS else "exact"}


def _weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    if (folder / "model.safetensors.index.json").exists() or (folder / "pytorch_model.bin.index.json").exists():
        raise CheckpointError(f"{folder} holds weights split into shards; GPT-2's sizes ship as one file "
                              f"(model.safetensors), which this program reads")
    raise CheckpointError(f"{folder} has no model.safetensors or pytorch_model.bin; {HF_CACHE_HINT}")


def _normalise(name: str) -> str:
    return name[len("transformer."):] if name.startswith("transformer.") else name


def _read_weights(path: Path, wanted: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Tensors of the file under GPT-2's own names (without the `transformer.` prefix), checked against `wanted`
    (name -> shape) before the data of a safetensors file is read. The causal-mask buffers of older files and a
    head that repeats the tied embedding are left out."""
    if path.suffix == ".safetensors":
        header = {_normalise(k): (k, v) for k, v in safetensors_header(path).items()}
        _check_names(path, {k: v[1][1] for k, v in header.items()}, wanted)
        for name, (_, (dtype, _shape)) in header.items():
            if name in wanted and dtype not in FLOAT_DTYPES:
                raise CheckpointError(f"{path}: tensor {name} has dtype {dtype}, not a float type")
        from safetensors import safe_open
        try:
            with safe_open(str(path), framework="pt") as f:
                return {name: f.get_tensor(key) for name, (key, _) in header.items() if name in wanted}
        except Exception as e:   # safetensors' own error types for damaged data
            why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise CheckpointError(f"{path} is damaged: {why}") from None
    state = load_torch_file(path, "weights file")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path} does not hold a dict of named tensors")
    state = {_normalise(k): v for k, v in state.items()}
    _check_names(path, {k: tuple(v.shape) for k, v in state.items()}, wanted)
    return {k: v.clone() for k, v in state.items() if k in wanted}   # copies: torch.load memory-maps the file


def _check_names(path: Path, have: dict[str, tuple], wanted: dict[str, tuple]) -> None:
    extra = sorted(k for k in set(have) - set(wanted) if not k.endswith(BUFFERS) and k != "lm_head.weight")
    missing = sorted(set(wanted) - set(have))
    if missing or extra:
        raise CheckpointError(f"{path} does not fit its config.json (missing {', '.join(missing[:3]) or 'none'}; "
                              f"unexpected {', '.join(extra[:3]) or 'none'})")
    for name, shape in wanted.items():
        if tuple(have[name]) != shape:
            raise CheckpointError(f"{path}: tensor {name} has shape {tuple(have[name])}, config.json needs {shape}")


def _gpt2_shapes(cfg: dict) -> dict[str, tuple]:
    C, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["block_size"]
    out = {"wte.weight": (V, C), "wpe.weight": (P, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        out.update({p + "ln_1.weight": (C,), p + "ln_1.bias": (C,), p + "ln_2.weight": (C,), p + "ln_2.bias": (C,),
                    p + "attn.c_attn.weight": (C, 3 * C), p + "attn.c_attn.bias": (3 * C,),
                    p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
                    p + "mlp.c_fc.weight": (C, 4 * C), p + "mlp.c_fc.bias": (4 * C,),
                    p + "mlp.c_proj.weight": (4 * C, C), p + "mlp.c_proj.bias": (C,)})
    if not cfg["tie_weights"]:
        out["lm_head.weight"] = (V, C)
    return out


def to_engine(hf: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """GPT-2's tensors under the engine's names: Conv1D weights transposed to nn.Linear's (out, in), c_attn split
    into q_proj, k_proj, v_proj."""
    out = {"wte.weight": hf["wte.weight"], "wpe.weight": hf["wpe.weight"], "ln_f.weight": hf["ln_f.weight"],
           "ln_f.bias": hf["ln_f.bias"]}
    if "lm_head.weight" in hf:
        out["lm_head.weight"] = hf["lm_head.weight"]
    for i in range(n_layer):
        h, b = f"h.{i}.", f"blocks.{i}."
        for ln in ("ln_1", "ln_2"):
            out[b + ln + ".weight"], out[b + ln + ".bias"] = hf[h + ln + ".weight"], hf[h + ln + ".bias"]
        w, bias = hf[h + "attn.c_attn.weight"], hf[h + "attn.c_attn.bias"]
        for name, wp, bp in zip(("q", "k", "v"), w.chunk(3, dim=1), bias.chunk(3)):
            out[b + f"attn.{name}_proj.weight"] = wp.t().contiguous()
            out[b + f"attn.{name}_proj.bias"] = bp
        for src, dst in (("attn.c_proj", "attn.c_proj"), ("mlp.c_fc", "mlp.c_fc"), ("mlp.c_proj", "mlp.c_proj")):
            out[b + dst + ".weight"] = hf[h + src + ".weight"].t().contiguous()
            out[b + dst + ".bias"] = hf[h + src + ".bias"]
    return out


def load_hf_gpt2(folder: str | Path, tokenizer_file: str | Path | None = None):
    """(model, tokenizer, meta) for the GPT-2 in `folder`. The tokenizer comes from the folder unless
    `tokenizer_file` names one (engine.pretrained.tokenizer_files). meta is shaped like a checkpoint's meta.json
    (family, model, tokenizer, step, summary) with `pretrained` saying where it came from. Raises
    CheckpointError (every file is checked before anything is built; memory is checked before weights are read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; {HF_CACHE_HINT}")
    cfg = read_config(folder)
    config = engine_config(cfg, folder / "config.json")
    weights = _weights_file(folder)
    check_memory(config, file_size(weights, "weights file"), weights)
    tok_path = Path(tokenizer_file) if tokenizer_file else find_tokenizer(folder)
    if tok_path is None:
        raise CheckpointError(f"{folder} has no tokenizer.json (or vocab.json and merges.txt); a Hugging Face "
                              f"snapshot holds them beside config.json, or name one with --tokenizer-file")
    tokenizer = load_tokenizer(tok_path)
    tensors = to_engine(_read_weights(weights, _gpt2_shapes(cfg)), cfg["n_layer"])
    notes = drop_padding(cfg, tensors, tokenizer.vocab_size, weights)
    config = engine_config(cfg, folder / "config.json")
    model = build_gpt(config, tensors, weights)
    meta = {"family": "transformer", "model": config.to_dict(), "tokenizer": tokenizer.to_dict(), "step": 0,
            "summary": {"params": int(model.num_params())},
            "pretrained": {"format": "hf-gpt2", "path": str(folder.resolve()), "weights": weights.name,
                           "tokenizer": str(Path(tok_path).resolve()), "notes": notes}}
    return model, tokenizer, meta
