"""Model families and building a model from a plain config dict (as found in presets and checkpoints).

The family modules are imported lazily: `ngram` is numpy-only and the torch families cost a second to import, so
code that only needs `FAMILIES` or a config class stays light."""
from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from typing import Any

from ..errors import ConfigError

FAMILIES = ("ngram", "rnn", "lstm", "gru", "transformer")
RNN_CELLS = ("rnn", "lstm", "gru")

# family -> (module, config class, model class)
_REGISTRY = {
    "ngram": ("ngram", "NGramConfig", "NGramLM"),
    "rnn": ("rnn", "RNNConfig", "RNNLM"),
    "transformer": ("transformer", "GPTConfig", "GPT"),
}


def check_finite(config, allow_inf: tuple[str, ...] = ()) -> None:
    """ConfigError naming the first setting of a config dataclass that is a float (or holds floats) and is not
    finite (the fields named in `allow_inf` may be +inf). Range checks written as `x < 0` or `x <= 1` let NaN
    through (every comparison with NaN is false), and an infinite lr, grad_clip or rope_base is never what was meant; each config's __post_init__ calls this first."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        for x in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(x, float) and not math.isfinite(x) and not (f.name in allow_inf and x == math.inf):
                raise ConfigError(f"{f.name} must be a finite number, not {x}")


class ConfigMixin:
    """`to_dict`/`from_dict` for the frozen model configs. `from_dict` rejects unknown keys by name so a typo in a
    preset or a `--set` override is a one-line ConfigError rather than a silently ignored setting."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        try:
            return cls(**d)
        except TypeError as e:  # a required field is missing
            raise ConfigError(f"{cls.__name__}: {e}") from None


def _entry(family: str):
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    mod_name, cfg_name, model_name = _REGISTRY["rnn" if family in RNN_CELLS else family]
    mod = importlib.import_module(f"{__name__}.{mod_name}")
    return getattr(mod, cfg_name), getattr(mod, model_name)


def config_class(family: str) -> type:
    return _entry(family)[0]


def config_from_dict(family: str, cfg: dict[str, Any]):
    """The family's frozen config; for rnn/lstm/gru the family names the cell, so `cell` is filled in from it."""
    cfg_cls, _ = _entry(family)
    cfg = dict(cfg)
    if family in RNN_CELLS:
        if cfg.setdefault("cell", family) != family:
            raise ConfigError(f"family {family!r} conflicts with cell={cfg['cell']!r}")
    return cfg_cls.from_dict(cfg)


def build_model(family: str, cfg: dict[str, Any]):
    _, model_cls = _entry(family)
    return model_cls(config_from_dict(family, cfg))


def coerce_value(cls: type, key: str, text: str) -> Any:
    """Parse a `key=value` override string into the type of `cls`'s field `key` (bool, int, float, str, or an
    optional of those, where 'none' means None)."""
    hints = typing.get_type_hints(cls)
    if key not in hints:
        raise ConfigError(f"unknown {cls.__name__} setting {key!r}")
    typ = hints[key]
    args = typing.get_args(typ)
    if type(None) in args:
        if text.strip().lower() in ("none", "null", ""):
            return None
        typ = next(a for a in args if a is not type(None))
    raw = text.strip()
    try:
        if typ is bool:
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        return typ(raw)
    except ValueError:
        raise ConfigError(f"{key}={text!r}: expected {getattr(typ, '__name__', typ)}") from None


def param_count(family: str, cfg) -> int:
    """The number of parameters a torch model of this config has (equal to `build_model(...).num_params()`),
    computed arithmetically: a config read from a file may describe a model far too large to build, and this
    answers in microseconds whatever n_layer says. `cfg` is a config object of the family; ngram: 0."""
    if family == "ngram":
        return 0
    if family == "transformer":
        c, b = cfg.n_embd, int(bool(cfg.bias))
        kv = cfg.kv_heads * (c // cfg.n_head)
        ln = c * (1 + b)
        attn = 2 * (c * c + b * c) + 2 * (c * kv + b * kv)
        mlp = (c * 4 * c + b * 4 * c) + (4 * c * c + b * c)
        block = 2 * ln + attn + mlp
        n = cfg.vocab_size * c + cfg.n_layer * block + ln
        if cfg.pos == "learned":
            n += cfg.block_size * c
        if not cfg.tie_weights:
            n += cfg.vocab_size * c
        return n
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cfg.cell]
    e, h, v = cfg.n_embd, cfg.n_hidden, cfg.vocab_size
    rnn = gates * h * (e + h + 2) + (cfg.n_layer - 1) * gates * h * (2 * h + 2)
    n = v * e + rnn + h * v + v
    if cfg.tie_weights:
        n -= v * e
    return n
