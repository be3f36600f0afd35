"""Checkpoint (de)serialisation for the Trainer: weights and AdamW state as flat tensor groups (no pickle), the
architecture check a resume runs first, and rebuilding a model from a checkpoint for sampling."""
from __future__ import annotations

import json

import torch

from . import checkpoint
from .device import resolve_device
from .errors import CheckpointError
from .models import build_model

__all__ = ["model_tensors", "load_model_tensors", "check_compatible", "load_model_from_checkpoint",
           "flatten_optimizer", "unflatten_optimizer"]


def model_tensors(model) -> dict[str, torch.Tensor]:
    """The state_dict, with tied tensors copied apart: safetensors refuses shared storage, and keeping every
    name lets a plain strict `load_state_dict` read the file."""
    seen, out = set(), {}
    for name, t in model.state_dict().items():
        out[name] = t.detach().clone() if t.data_ptr() in seen else t.detach()
        seen.add(t.data_ptr())
    return out


def load_model_tensors(model, tensors: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"checkpoint weights do not fit this model (missing {missing[:3]}, "
                              f"unexpected {extra[:3]})")
    for name, t in expected.items():
        if tuple(tensors[name].shape) != tuple(t.shape):
            raise CheckpointError(f"checkpoint weight {name} has shape {tuple(tensors[name].shape)}, "
                                  f"the model expects {tuple(t.shape)}")
    model.load_state_dict(tensors)


def check_compatible(meta: dict, model) -> None:
    """CheckpointError naming the differing settings when a checkpoint was saved from another architecture."""
    saved, have = meta.get("model", {}), model.config.to_dict()
    diff = [f"{k}={saved.get(k)!r} (here {have.get(k)!r})" for k in sorted(set(saved) | set(have))
            if saved.get(k) != have.get(k)]
    if meta.get("family") != model.family or diff:
        raise CheckpointError(f"checkpoint is a {meta.get('family')} model that does not match this "
                              f"{model.family}: {', '.join(diff) or 'different family'}")


def load_model_from_checkpoint(ckpt_dir, device: str = "cpu"):
    """(model in eval mode, meta) rebuilt from a checkpoint's config and weights."""
    meta = checkpoint.load_meta(ckpt_dir)
    model = build_model(meta["family"], meta["model"])
    load_model_tensors(model, checkpoint.load_group(ckpt_dir, "model"))
    return model.to(resolve_device(device)).eval(), meta


def flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, state = {}, {}
    for pid, entry in sd["state"].items():
        state[str(pid)] = {k: None if torch.is_tensor(v) else v for k, v in entry.items()}
        tensors.update({f"{pid}.{k}": v for k, v in entry.items() if torch.is_tensor(v)})
    return tensors, {"param_groups": json.loads(json.dumps(sd["param_groups"])), "state": state}


def unflatten_optimizer(tensors: dict, layout: dict, optimizer) -> dict:
    state = {int(pid): {k: tensors[f"{pid}.{k}"] if v is None else v for k, v in entry.items()}
             for pid, entry in layout["state"].items()}
    groups = []
    for saved, current in zip(layout["param_groups"], optimizer.param_groups):
        g = dict(saved, betas=tuple(saved["betas"]))
        # keep this device's implementation, and the settings the resumed run asks for (a resume may change the
        # betas or the weight decay; the lr is set from the schedule every step)
        for key in ("fused", "foreach", "capturable", "differentiable", "betas", "weight_decay"):
            if key in current:
                g[key] = current[key]
        groups.append(g)
    return {"state": state, "param_groups": groups}
