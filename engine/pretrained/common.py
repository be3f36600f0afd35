"""What the GPT-2 and nanoGPT loaders share: the size checks on a config read from a file, the memory check before
any weight is read, reading a safetensors header without its data, and building the engine's GPT from weights
already renamed to the engine's names (docs/ARCHITECTURE.md), with names, shapes and values checked first.

Every problem is a CheckpointError naming the file and what is wrong; nothing is built from a file that fails."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..checkpoint_schema import CAPS
from ..errors import CheckpointError, ConfigError

MAX_CONFIG_BYTES = 1024 * 1024          # GPT-2's config.json is under 1 kB
MAX_WEIGHT_BYTES = 64 * 1024 ** 3       # beyond any GPT-2 (gpt2-xl: 6.4 GB in float32)
FLOAT_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}
HF_CACHE_HINT = ("a GPT-2 fetched earlier with the Hugging Face libraries is in "
                 "~/.cache/huggingface/hub/models--gpt2/snapshots/<hash>/ (this program never downloads)")


def check_sizes(cfg: dict, where) -> None:
    """CheckpointError unless each size in `cfg` (engine GPTConfig keys) is a whole number from 1 to the cap a
    checkpoint of this program may have (checkpoint_schema.CAPS), so a file claiming 10^9 layers is refused before
    anything is built."""
    for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
        value = cfg.get(key)
        if type(value) is not int or value < 1:
            raise CheckpointError(f"{where}: {key} must be a whole number of 1 or more, not {value!r}")
        if value > CAPS[key]:
            raise CheckpointError(f"{where}: {key} is {value:,}; at most {CAPS[key]:,} is supported")


def engine_config(cfg: dict, where):
    """The engine's GPTConfig for `cfg`, after check_sizes; ConfigError becomes CheckpointError naming `where`."""
    from ..models.transformer import GPTConfig
    check_sizes(cfg, where)
    try:
        return GPTConfig.from_dict(cfg)
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: not a model this program can build: {e}") from None


def check_memory(config, file_bytes: int, where) -> None:
    """Refuse, before any weight is read, a model whose float32 weights (4 bytes per parameter, counted from the
    config: models.param_count) plus the file being read would not fit in the RAM available (device.
    available_memory), as checkpoint_schema does for the program's own checkpoints."""
    from ..device import available_memory, format_bytes
    from ..models import param_count
    params = param_count("transformer", config)
    need = 4 * params + file_bytes
    have = available_memory("cpu")
    if have is not None and need > have[0]:
        raise CheckpointError(f"{where}: loading it needs about {format_bytes(need)} ({params:,} parameters in "
                              f"float32 and the file), more than the {format_bytes(have[0])} of {have[1]} here")


def file_size(path: Path, what: str) -> int:
    """The size of a regular file at most MAX_WEIGHT_BYTES; CheckpointError otherwise."""
    from ..safe_read import regular_stat
    st = regular_stat(path, what, CheckpointError)
    if st.st_size > MAX_WEIGHT_BYTES:
        raise CheckpointError(f"{what} {path} is {st.st_size:,} bytes, more than a GPT-2 can be")
    return st.st_size


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple]]:
    """{name: (dtype, shape)} from a safetensors file's header, read without its data and checked (bounded size,
    every tensor's bytes inside the file, no overlaps): the checkpoint module's own header check. Raises
    CheckpointError."""
    from ..checkpoint import read_header
    return read_header(path, file_size(path, "weights file"), "is not a safetensors file")


def build_gpt(config, tensors: dict[str, torch.Tensor], where):
    """The engine GPT (eval mode, float32, CPU) holding `tensors` (engine names; the head is read from wte when
    tied). Names and shapes must be exactly the model's, every value finite. Raises CheckpointError."""
    from ..models.transformer import GPT
    from ..train_state import state_shapes
    with torch.device("meta"):
        shapes = state_shapes(GPT(config))
    if config.tie_weights:
        shapes.pop("lm_head.weight", None)
    missing, extra = sorted(set(shapes) - set(tensors)), sorted(set(tensors) - set(shapes))
    if missing or extra:
        raise CheckpointError(f"{where}: the weights do not fit the model its config describes (missing "
                              f"{', '.join(missing[:3]) or 'none'}; unexpected {', '.join(extra[:3]) or 'none'})")
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"{where}: weight {name} has shape {tuple(tensors[name].shape)}, the config "
                                  f"needs {shape}")
    for name, t in tensors.items():
        if not t.is_floating_point():
            raise CheckpointError(f"{where}: weight {name} holds {t.dtype}, not floating-point numbers")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{where}: weight {name} holds NaN or infinite values")
    with torch.device("meta"):   # no random initialisation of weights about to be replaced (2 s for gpt2)
        model = GPT(config)
    state = {k: v.to(torch.float32).contiguous() for k, v in tensors.items()}
    if config.tie_weights:
        state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state, assign=True)
    if config.tie_weights:   # one Parameter read twice, as GPT.__init__ ties them
        model.lm_head.weight = model.wte.weight
    return model.eval()


def drop_padding(cfg: dict, tensors: dict[str, torch.Tensor], vocab: int, where) -> list[str]:
    """A model whose vocabulary is larger than its tokenizer's (nanoGPT pads GPT-2's 50,257 tokens to 50,304 for
    speed) keeps the tokenizer's rows only: the extra rows are ids no text encodes to, and a sampler could otherwise
    pick an id the tokenizer cannot decode. The logits of every real token are unchanged; their softmax then sums
    over real tokens only. Changes `cfg` and `tensors` in place and returns a note, or [] when nothing was cut.
    CheckpointError when the tokenizer is the larger one."""
    have = cfg["vocab_size"]
    if vocab > have:
        raise CheckpointError(f"{where}: the tokenizer has {vocab:,} tokens but the model only {have:,}: they do "
                              f"not belong together")
    if vocab == have:
        return []
    for name in ("wte.weight", "lm_head.weight"):
        if name in tensors and tensors[name].shape[:1] == (have,):
            tensors[name] = tensors[name][:vocab]
    cfg["vocab_size"] = vocab
    return [f"the model's vocabulary of {have:,} was cut to the tokenizer's {vocab:,} (the last "
            f"{have - vocab:,} rows are padding no text encodes to)"]


def finite_float(value, what: str, where) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise CheckpointError(f"{where}: {what} must be a finite number, not {value!r}")
    return float(value)
