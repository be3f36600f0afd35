"""Presets (resources/presets/NAME.json) and `--set key=value` overrides applied on top of them."""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .models import coerce_value, config_class, config_from_dict
from .train import TrainConfig

__all__ = ["PRESET_DIR", "list_presets", "load_preset", "apply_overrides"]

PRESET_DIR = Path(__file__).resolve().parents[1] / "resources" / "presets"
MAX_PRESET_BYTES = 1_000_000


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str, family: str | None = None) -> dict:
    """{"family", "model": {...}, "train": {...}, "description"} from resources/presets/NAME.json. With `family`,
    a preset for another family is refused by name (its settings would otherwise read as unknown ones)."""
    path = PRESET_DIR / f"{name}.json"
    if not isinstance(name, str) or name not in list_presets():   # also refuses a path such as ../x
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    from .safe_read import parse_json, read_regular
    preset = parse_json(read_regular(path, MAX_PRESET_BYTES, "preset file", ConfigError), f"preset {path}",
                        ConfigError)
    if not (isinstance(preset, dict) and isinstance(preset.get("family"), str)
            and isinstance(preset.get("model"), dict) and isinstance(preset.get("train"), dict)):
        raise ConfigError(f"preset {path} must be an object with family (text), model and train (objects)")
    if family is not None and preset["family"] != family:
        raise ConfigError(f"preset {name} is for {preset['family']}, not {family}")
    config_from_dict(preset["family"], {"vocab_size": 1, **preset["model"]})  # fail early on a bad preset
    TrainConfig.from_dict(preset["train"])
    return preset


def apply_overrides(preset: dict, overrides: dict[str, str]) -> dict:
    """A copy of `preset` with `--set key=value` strings applied, each parsed to its field's type. A key may be
    prefixed ("model.dropout", "train.lr"); a bare key goes to whichever config has it, and block_size, which
    both have, is set in both."""
    out = {**preset, "model": dict(preset.get("model", {})), "train": dict(preset.get("train", {}))}
    sections = {"model": config_class(preset["family"]), "train": TrainConfig}
    fields = {s: set(cls.__dataclass_fields__) for s, cls in sections.items()}
    for key, text in overrides.items():
        section, _, name = key.rpartition(".")
        targets = [section] if section else [s for s in sections if name in fields[s]]
        if section and section not in sections:
            raise ConfigError(f"unknown setting section {section!r} in {key!r}; use model.NAME or train.NAME")
        if not targets or any(name not in fields[s] for s in targets):
            raise ConfigError(f"unknown setting {key!r}; model settings: {', '.join(sorted(fields['model']))}; "
                              f"train settings: {', '.join(sorted(fields['train']))}")
        for s in targets:
            out[s][name] = coerce_value(sections[s], name, text)
    return out
