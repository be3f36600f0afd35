"""The schema of a checkpoint's meta.json: every field a loader reads, with its type and range, checked before
anything is built from it. A config is judged arithmetically (sizes capped, parameter count and memory computed
from the numbers), so a file claiming a million layers or a vocabulary of 10^12 is refused in microseconds,
before any allocation. Every problem is one CheckpointError naming the field."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .errors import CheckpointError, PlaygroundError

# Upper bounds on a stored config: the training form's own ranges, so a loaded checkpoint always fits the form.
CAPS = {"vocab_size": 4_000_000, "block_size": 65_536, "n_layer": 256, "n_head": 256, "n_kv_head": 256,
        "n_embd": 65_536, "n_hidden": 65_536}
MAX_HISTORY_ROWS = 100_000
MAX_SEED = 2 ** 63 - 1   # torch.manual_seed takes 64-bit seeds; a larger one is refused, not wrapped
MAX_COUNT = 2 ** 31 - 1   # steps and other training counts: what the window's spin boxes and progress bar hold
GROUPS = {"ngram": ("ngram",), "neural": ("model", "optimizer", "rng")}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _fail(where: Path, field: str, why: str) -> None:
    raise CheckpointError(f"{where / 'meta.json'}: {field} {why}")


def _is_int(x) -> bool:
    return type(x) is int


def _is_num(x) -> bool:
    return type(x) in (int, float)


def _need(meta: dict, key: str, kind: type | tuple, where: Path, *, optional: bool = False,
          prefix: str = "") -> Any:
    """meta[key] when its type is one of `kind` (exactly: true is not an integer here); CheckpointError otherwise,
    or when it is missing and not optional (then None)."""
    if key not in meta:
        if optional:
            return None
        _fail(where, prefix + key, "is missing")
    value = meta[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not any(type(value) is k for k in kinds) or (value is None and type(None) not in kinds):
        names = " or ".join("null" if k is type(None) else {"dict": "an object", "list": "a list", "str": "a string",
                                                             "int": "an integer", "float": "a number",
                                                             "bool": "true/false"}[k.__name__] for k in kinds)
        _fail(where, prefix + key, f"must be {names}, not {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_meta(meta: dict, where: Path) -> None:
    """Raise CheckpointError unless `meta` (a parsed meta.json, a dict) is one this version can load: known
    family, a buildable config within CAPS whose weights fit in memory, a tokenizer of the model's vocabulary size,
    tensor groups and their manifest, and, where present, step, train config, optimizer layout, run spec, history,
    summary and metrics of the right types."""
    from .models import FAMILIES, config_from_dict
    family = _need(meta, "family", str, where)
    if family not in FAMILIES:
        _fail(where, "family", f"{family!r} is not one of {', '.join(FAMILIES)}")
    model = _need(meta, "model", dict, where)
    for key, cap in CAPS.items():
        value = model.get(key)
        if _is_int(value) and value > cap:
            _fail(where, f"model.{key}", f"is {value:,}; at most {cap:,} is supported")
    try:
        cfg = config_from_dict(family, model)
    except (PlaygroundError, TypeError, ValueError, OverflowError) as e:
        _fail(where, "model", f"is not a valid {family} config: {e}")
    for key, value in model.items():
        if _is_num(value) and not math.isfinite(value):
            _fail(where, f"model.{key}", f"must be finite, not {value}")
    neural = family != "ngram"
    if neural:
        _check_weights_fit(family, cfg, where)
    tok = _need(meta, "tokenizer", (dict, type(None)), where)   # null in a bare Trainer's checkpoint
    if tok is not None:
        _check_tokenizer(tok, cfg.vocab_size, where)
    _check_groups(meta, "ngram" if not neural else "neural", where)
    if neural:
        if not _is_int(_need(meta, "step", int, where)) or meta["step"] < 0:
            _fail(where, "step", f"must be a whole number of steps, 0 or more, not {meta['step']}")
        tokens = _need(meta, "tokens", int, where, optional=True)
        if tokens is not None and tokens < 0:
            _fail(where, "tokens", f"must be 0 or more, not {tokens}")
        elapsed = _need(meta, "elapsed_s", (int, float), where, optional=True)
        if elapsed is not None and not (math.isfinite(elapsed) and elapsed >= 0):
            _fail(where, "elapsed_s", f"must be a finite number of seconds, not {elapsed}")
        if meta["step"] > MAX_COUNT:
            _fail(where, "step", f"is {meta['step']:,}; at most {MAX_COUNT:,} is supported")
        train = _need(meta, "train", dict, where)
        for key, value in train.items():
            if _is_int(value) and abs(value) > MAX_COUNT:
                _fail(where, f"train.{key}", f"is {value:,}; at most {MAX_COUNT:,} is supported")
        from .train import TrainConfig
        try:
            TrainConfig.from_dict(train)
        except (PlaygroundError, TypeError, ValueError, OverflowError) as e:
            _fail(where, "train", f"is not a valid training config: {e}")
        opt = _need(meta, "optimizer", dict, where, optional=True)
        if opt is not None and not (isinstance(opt.get("param_groups"), list) and isinstance(opt.get("state"), dict)):
            _fail(where, "optimizer", "must hold param_groups (a list) and state (an object)")
    spec = _need(meta, "spec", dict, where, optional=True)
    if spec is not None:
        check_spec(spec, family, where)
    history = _need(meta, "history", (dict, type(None)), where, optional=True)
    if history is not None:
        _check_history(history, where)
    parent = _need(meta, "parent", dict, where, optional=True)
    if parent is not None:   # a fine-tuned run's origin (engine.finetune.parent_record)
        if type(parent.get("checkpoint")) is not str or type(parent.get("corpus", "")) is not str:
            _fail(where, "parent", "must name the parent's checkpoint and corpus as text")
        for key in ("step", "offset"):
            if not _is_int(parent.get(key, 0)) or not 0 <= parent.get(key, 0) <= MAX_COUNT:
                _fail(where, f"parent.{key}", f"must be a whole number of steps, not {_short(parent.get(key))}")
        if parent.get("history") is not None:
            if not isinstance(parent["history"], dict):
                _fail(where, "parent.history", "must be an object")
            _check_history(parent["history"], where)
    for key in ("summary", "metrics"):
        block = _need(meta, key, dict, where, optional=True)
        for name, value in (block or {}).items():
            if value is not None and type(value) not in (int, float, str, bool):
                _fail(where, f"{key}.{name}", f"must be a number, text or null, not {_short(value)}")
            if name in ("step", "params", "train_tokens", "val_tokens", "vocab_size") and not (
                    _is_int(value) and value >= 0):
                _fail(where, f"{key}.{name}", f"must be a whole number, 0 or more, not {_short(value)}")
            if name.startswith(("val_", "train_loss")) and name not in ("val_bpc_note", "val_scope") \
                    and value is not None \
                    and not _is_num(value):
                _fail(where, f"{key}.{name}", f"must be a number or null, not {_short(value)}")
    _need(meta, "device", str, where, optional=True)


def _check_weights_fit(family: str, cfg, where: Path) -> None:
    from .device import available_memory, format_bytes
    from .models import param_count
    need = 4 * param_count(family, cfg)
    have = available_memory("cpu")
    if have is not None and need > have[0]:
        _fail(where, "model", f"describes a model of {format_bytes(need)} of weights, more than the "
                              f"{format_bytes(have[0])} of {have[1]} here")


def check_spec(spec: dict, family: str, where: Path) -> None:
    """The run spec (RunSpec as a dict): known fields of the right types and ranges."""
    from .api import RunSpec
    known = set(RunSpec.__dataclass_fields__)
    unknown = sorted(set(spec) - known)
    if unknown:
        _fail(where, "spec", f"has unknown field(s) {', '.join(map(str, unknown[:5]))}")
    scalar = (str, int, float, bool)
    for key, kinds in (("corpus", str), ("tokenizer", str), ("tokenizer_options", dict), ("family", str),
                       ("preset", (str, type(None))), ("overrides", dict), ("device", str), ("seed", int),
                       ("val_fraction", (float, int)), ("max_steps", (int, type(None))),
                       ("max_corpus_bytes", int), ("on_bad_utf8", str), ("data", (str, type(None))),
                       ("data_fingerprint", (str, type(None)))):
        if key in spec:
            _need(spec, key, kinds, where, prefix="spec.")
    if spec.get("family", family) != family:
        _fail(where, "spec.family", f"is {spec['family']!r} but the model is {family!r}")
    if "seed" in spec and not 0 <= spec["seed"] <= MAX_SEED:
        _fail(where, "spec.seed", f"must be between 0 and 2^63-1, not {spec['seed']}")
    if "val_fraction" in spec and not 0 < spec["val_fraction"] < 1:
        _fail(where, "spec.val_fraction", f"must be between 0 and 1, not {spec['val_fraction']}")
    if spec.get("max_steps") is not None and spec["max_steps"] < 1:
        _fail(where, "spec.max_steps", f"must be 1 or more, not {spec['max_steps']}")
    if "max_corpus_bytes" in spec and spec["max_corpus_bytes"] < 1:
        _fail(where, "spec.max_corpus_bytes", f"must be 1 or more, not {spec['max_corpus_bytes']}")
    if spec.get("on_bad_utf8", "error") not in ("error", "replace"):
        _fail(where, "spec.on_bad_utf8", f"must be 'error' or 'replace', not {_short(spec['on_bad_utf8'])}")
    for key in ("tokenizer_options", "overrides"):
        for name, value in (spec.get(key) or {}).items():
            if type(value) not in scalar and value is not None:
                _fail(where, f"spec.{key}.{name}", f"must be a number, text or true/false, not {_short(value)}")


def _check_tokenizer(tok: dict, vocab_size: int, where: Path) -> None:
    """The stored tokenizer: a known kind with the fields it is rebuilt from, of the model's vocabulary size."""
    kind = tok.get("kind")
    if kind == "char":
        chars = tok.get("chars")
        if type(chars) is not str or not chars:
            _fail(where, "tokenizer.chars", f"must be a non-empty string of characters, not {_short(chars)}")
        if len(set(chars)) != len(chars):
            _fail(where, "tokenizer.chars", "repeats a character")
        size = len(chars)
    elif kind == "word":
        tokens = tok.get("tokens")
        if type(tokens) is not list or not tokens or any(type(t) is not str or not t for t in tokens):
            _fail(where, "tokenizer.tokens", "must be a non-empty list of non-empty strings")
        if tokens[0] != "<unk>":
            _fail(where, "tokenizer.tokens", "must start with <unk>")
        if len(set(tokens)) != len(tokens):
            _fail(where, "tokenizer.tokens", "repeats a token")
        if type(tok.get("lowercase", False)) is not bool:
            _fail(where, "tokenizer.lowercase", "must be true or false")
        size = len(tokens)
    elif kind == "bpe":
        size = _check_bpe_json(tok.get("tokenizer_json"), where)
    else:
        _fail(where, "tokenizer.kind", f"must be char, word or bpe, not {_short(kind)}")
    if size != vocab_size:
        _fail(where, "tokenizer", f"has {size:,} tokens but the model's vocab_size is {vocab_size:,}")


def _check_bpe_json(text, where: Path) -> int:
    """The vocabulary size of the stored BPE JSON, checked by structure before the library parses it."""
    from .errors import TokenizerError
    from .tokenizers.bpe import check_json
    try:
        return check_json(text)
    except TokenizerError as e:
        _fail(where, "tokenizer.tokenizer_json", f"is not usable: {e}")


def _check_groups(meta: dict, kind: str, where: Path) -> None:
    groups = _need(meta, "groups", list, where)
    allowed = GROUPS[kind]
    if any(type(g) is not str or g not in allowed for g in groups) or len(set(groups)) != len(groups):
        _fail(where, "groups", f"must list tensor groups among {', '.join(allowed)}, not {_short(groups)}")
    if allowed[0] not in groups:
        _fail(where, "groups", f"lacks the '{allowed[0]}' tensors")
    if meta["format_version"] >= 2:
        files = _need(meta, "files", dict, where)
        if set(files) != {f"{g}.safetensors" for g in groups}:
            _fail(where, "files", "does not list exactly the tensor files of its groups")
        for name, entry in files.items():
            if not (isinstance(entry, dict) and _is_int(entry.get("bytes")) and entry["bytes"] >= 8
                    and type(entry.get("sha256")) is str and _HEX64.fullmatch(entry["sha256"])):
                _fail(where, f"files.{name}", "must hold bytes (an integer) and sha256 (64 hex digits)")


def _check_history(history: dict, where: Path) -> None:
    from .history import COLUMNS
    columns, rows = history.get("columns"), history.get("rows")
    if type(columns) is not list or any(type(c) is not str for c in columns) or len(columns) > len(COLUMNS):
        _fail(where, "history.columns", "must be a list of column names")
    if type(rows) is not list or len(rows) > MAX_HISTORY_ROWS:
        _fail(where, "history.rows", f"must be a list of at most {MAX_HISTORY_ROWS:,} rows")
    if len(columns) < 7 or columns != list(COLUMNS[:len(columns)]):
        return   # an unknown layout: LossHistory.from_dict shows no curve rather than a wrong one
    for i, row in enumerate(rows):
        if type(row) is not list or len(row) != len(columns):
            _fail(where, f"history.rows[{i}]", f"must be a list of {len(columns)} values")
        if not (_is_int(row[0]) and row[0] >= 0 and _is_int(row[1]) and row[1] >= 0):
            _fail(where, f"history.rows[{i}]", "must start with a step and a token count (whole numbers)")
        if not _is_num(row[2]) or any(v is not None and not _is_num(v) for v in row[3:]) or row[4] is None:
            _fail(where, f"history.rows[{i}]", "must hold numbers (or null for a missing loss)")
