"""`main.py export` of a model trained elsewhere (engine/export.py writes the script): it has no run to
reproduce, so the script gets the weights beside it as NAME.weights.pt (engine names, the tied head left
out) and samples from them, or fine-tunes them on a corpus it is given."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from ..export import _tokenizer_settings
from ..export_script import SCRIPT


def export_pretrained(path, out: Path, tokenizer_file=None, meta_file=None) -> dict:
    """The script of a model trained elsewhere, with its weights (engine names, the tied head left out) in
    NAME.weights.pt beside it."""
    import torch

    from ..api import load_checkpoint
    from .finetune import pretrained_spec
    from ..presets import apply_overrides, load_preset
    from ..train import TrainConfig
    if out.suffix != ".py":
        raise ConfigError(f"the script must be a .py file, not {out.name}")
    handle = load_checkpoint(path, tokenizer_file=tokenizer_file, meta_file=meta_file)
    spec = pretrained_spec(handle.meta, "")
    preset = apply_overrides(load_preset("tiny-cpu-transformer", "transformer"), spec.overrides)
    train = TrainConfig.from_dict(dict(preset["train"], seed=spec.seed)).to_dict()
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    weights = out.with_name(out.stem + ".weights.pt")
    state = {k: v.detach().contiguous() for k, v in handle.model.state_dict().items()
             if not (k == "lm_head.weight" and handle.model.config.tie_weights)}
    torch.save(state, weights)   # read back with torch.load(weights_only=True): the script needs torch only
    written.append(weights)
    settings = {"family": "transformer", "model": handle.meta["model"], "train": train, "seed": spec.seed,
                "val_fraction": spec.val_fraction, "corpus": None,
                "tokenizer": _tokenizer_settings(handle.meta["tokenizer"], out, written),
                "weights": weights.name, "source": str(Path(path).resolve())}
    out.write_text(SCRIPT.replace("@SETTINGS@", json.dumps(settings, indent=1, ensure_ascii=True)),
                   encoding="utf-8")
    written.insert(0, out)
    return {"script": str(out), "files": [str(p) for p in written], "corpus": None}
