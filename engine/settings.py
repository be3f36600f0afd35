"""Turning a family, a preset and `key=value` overrides into model and train configs, judging them and estimating
what they cost: what a run builds (engine.api) and what the training form checks as the user types, in one place.
The defaults live in the presets, the rules in the config classes."""
from __future__ import annotations

from typing import Any

from .errors import ConfigError

DEFAULT_PRESET = {"rnn": "tiny-cpu-rnn", "lstm": "tiny-cpu-lstm", "gru": "tiny-cpu-gru",
                  "transformer": "tiny-cpu-transformer"}
NGRAM_DEFAULTS = {"order": 3, "smoothing": "kneser-ney"}


def coerce(value: Any) -> Any:
    """A `--set` value as text -> bool, int, float, a comma list of those, or the text itself."""
    if not isinstance(value, str):
        return value
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if "," in value:
        return [coerce(v) for v in value.split(",")]
    return value


def list_presets(family: str | None = None) -> list[str]:
    from .presets import list_presets as _all, load_preset
    return [n for n in _all() if family is None or load_preset(n)["family"] == family]


def resolve_config(family: str, preset: str | None, overrides: dict, vocab_size: int) -> tuple[dict, dict]:
    """The model and train config dicts exactly as start_run builds them (preset, then overrides); ConfigError
    when a value cannot be parsed. Combination checks are validate_config's job."""
    if family == "ngram":
        cfg = dict(NGRAM_DEFAULTS)
        cfg.update({k: coerce(v) for k, v in overrides.items()})
        return dict(cfg, vocab_size=vocab_size), {}
    from .presets import apply_overrides, load_preset
    p = load_preset(preset or DEFAULT_PRESET[family], family)
    p = apply_overrides(p, {k: str(v) for k, v in overrides.items()})
    return dict(p["model"], vocab_size=vocab_size), dict(p["train"])


def validate_config(family: str, model: dict, train: dict) -> list[tuple[str, str]]:
    """(field, reason) for what is wrong with this combination; empty when it can start. The config classes own
    the rules; the field is the first setting the reason names."""
    from .models import config_from_dict
    from .train import TrainConfig
    problems = []
    checks = [(lambda: config_from_dict(family, model), list(model))]
    if family != "ngram":
        checks.append((lambda: TrainConfig.from_dict(train), list(train)))
    for build, names in checks:
        try:
            build()
        except ConfigError as e:
            msg = str(e)
            hit = [n for n in names if n in msg]
            problems.append((min(hit, key=msg.index) if hit else "", msg))
    if family == "transformer" and not problems and train.get("block_size", 0) > model.get("block_size", 0):
        problems.append(("block_size", f"training windows ({train['block_size']}) cannot be longer than the "
                                       f"model's context ({model['block_size']})"))
    return problems


def estimate(family: str, model: dict, train: dict, vocab_size: int, train_tokens: int = 0) -> dict:
    """Parameter count (exact, computed arithmetically from the config: nothing is built, so a config of a
    million layers is judged in microseconds) and a rough training memory estimate: fp32 weights, grads and two
    AdamW moments, plus the main activations of one batch. ConfigError for an invalid config."""
    if family == "ngram":
        order = int(model.get("order", 3))
        entries = train_tokens * order
        return {"params": entries, "memory_bytes": entries * 24}
    from .models import config_from_dict, param_count
    cfg = config_from_dict(family, dict(model, vocab_size=vocab_size))
    params = param_count(family, cfg)
    b, t = int(train.get("batch_size", 1)), int(train.get("block_size", 1))
    if family == "transformer":
        act = b * t * (cfg.n_layer * 16 * cfg.n_embd + 2 * vocab_size)
    else:
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[family]
        act = b * t * (cfg.n_layer * (gates + 2) * cfg.n_hidden + 2 * vocab_size)
    return {"params": params, "memory_bytes": 4 * (4 * params + act)}


def full_config(family: str, preset: str | None, overrides: dict, vocab_size: int) -> tuple[dict, dict]:
    """resolve_config, then the config classes' own defaults for every setting it leaves out: the model and train
    config dicts with a value for every field (train is {} for an n-gram). What choosing a preset in the training
    form writes into every field, so nothing typed before survives the choice unseen."""
    from .models import config_from_dict
    from .train import TrainConfig
    model, train = resolve_config(family, preset, overrides, vocab_size)
    train = TrainConfig.from_dict(train).to_dict() if family != "ngram" else {}
    return config_from_dict(family, model).to_dict(), train


def all_settings(family: str, preset: str | None, overrides: dict) -> dict:
    """Every model and train setting a run trains with, one flat dict: preset, then overrides, then the config
    classes' defaults (what resolve_config leaves out). For telling two runs apart by what differs."""
    model, train = full_config(family, preset, overrides, 2)
    return {**model, **train}
