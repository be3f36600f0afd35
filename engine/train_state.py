"""Checkpoint (de)serialisation for the Trainer: weights and AdamW state as flat tensor groups (no pickle), the
architecture check a resume runs first, and rebuilding a model from a checkpoint for sampling."""
from __future__ import annotations

import json

import torch
from torch.overrides import TorchFunctionMode

from . import checkpoint
from .device import resolve_device
from .errors import CheckpointError
from .models import build_model

__all__ = ["model_tensors", "load_model_tensors", "check_compatible", "load_model_from_checkpoint",
           "flatten_optimizer", "checked_optimizer_state",
           "checked_rng_state", "state_shapes"]


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


def state_shapes(model) -> dict[str, tuple]:
    """{name: shape} of the model's state_dict: what a checkpoint's weight file must hold exactly."""
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


class SkipInit(TorchFunctionMode):
    """Within the block (this thread only: torch's function modes are per thread), torch.nn.init's functions
    leave their tensor as it is: for a model whose weights are loaded right after. It saves the random
    initialisation (~0.3 s for the 10.7M nanogpt-char model) and, on the meta device, the import of torch._dynamo
    that torch's meta-tensor normal_ pulls in (~2-4 s of a CLI sample's start-up on this project's machine)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def load_model_from_checkpoint(ckpt_dir, device: str = "cpu", meta: dict | None = None):
    """(model in eval mode, meta) rebuilt from a checkpoint's config and weights. The weight file's header is
    checked against a model built on the meta device (no memory) before any weight is read: float dtypes only,
    the names and shapes the config implies. Raises CheckpointError."""
    meta = checkpoint.load_meta(ckpt_dir) if meta is None else meta
    with torch.device("meta"), SkipInit():
        shapes = state_shapes(build_model(meta["family"], meta["model"]))
    tensors = checkpoint.load_group(ckpt_dir, "model", meta=meta, expect=shapes)
    with SkipInit():   # every weight is overwritten next (load_model_tensors checks that all are there)
        model = build_model(meta["family"], meta["model"])
    load_model_tensors(model, tensors)
    return model.to(resolve_device(device)).eval(), meta


def flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, state = {}, {}
    for pid, entry in sd["state"].items():
        state[str(pid)] = {k: None if torch.is_tensor(v) else v for k, v in entry.items()}
        tensors.update({f"{pid}.{k}": v for k, v in entry.items() if torch.is_tensor(v)})
    return tensors, {"param_groups": json.loads(json.dumps(sd["param_groups"])), "state": state}


ADAM_STATE = ("exp_avg", "exp_avg_sq", "step")


def checked_optimizer_state(ckpt_dir, meta: dict, optimizer) -> dict:
    """The saved AdamW state as a state_dict for `optimizer` (built for the same model), after checking that it
    fits before anything is loaded: the layout's groups hold the same parameters, every state entry names a
    parameter and has exp_avg and exp_avg_sq of that parameter's shape and a step, all float and finite (and
    exp_avg_sq not negative). The groups' hyperparameters are the optimizer's own (the run's current settings).
    Raises CheckpointError saying what does not fit."""
    layout = meta.get("optimizer")
    if not isinstance(layout, dict) or not isinstance(layout.get("param_groups"), list) \
            or not isinstance(layout.get("state"), dict):
        raise CheckpointError("meta.json has no optimizer layout")
    current = optimizer.state_dict()["param_groups"]
    saved_groups = layout["param_groups"]
    if len(saved_groups) != len(current) or any(
            not isinstance(s, dict) or s.get("params") != c["params"] for s, c in zip(saved_groups, current)):
        raise CheckpointError("its parameter groups do not match this model's")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    expect = {}
    for pid, entry in layout["state"].items():
        if not (pid.isdigit() and int(pid) < len(params)) or not isinstance(entry, dict) \
                or set(entry) != set(ADAM_STATE):
            raise CheckpointError(f"its state entry {pid!r} is not AdamW state of a parameter of this model")
        for key in ADAM_STATE:
            value = entry[key]
            if value is None:
                expect[f"{pid}.{key}"] = () if key == "step" else tuple(params[int(pid)].shape)
            elif key != "step" or type(value) not in (int, float) or not 0 <= value < 2 ** 53:
                raise CheckpointError(f"its state {pid}.{key} is {value!r}")
    tensors = checkpoint.load_group(ckpt_dir, "optimizer", meta=meta, expect=expect)
    for name, t in tensors.items():
        if not bool(torch.isfinite(t).all()) or (name.endswith((".exp_avg_sq", ".step")) and bool((t < 0).any())):
            raise CheckpointError(f"its tensor {name} holds non-finite or negative values")
    state = {int(pid): {k: tensors[f"{pid}.{k}"] if v is None else v for k, v in entry.items()}
             for pid, entry in layout["state"].items()}
    return {"state": state, "param_groups": current}


def checked_rng_state(ckpt_dir, meta: dict) -> dict[str, torch.Tensor]:
    """The saved random states (uint8 tensors): `cpu` of torch's CPU generator size, and `batch`/`cuda` if
    present. Raises CheckpointError when the group is missing, damaged or of the wrong sizes."""
    rng = checkpoint.load_group(ckpt_dir, "rng", meta=meta, dtypes=("U8",))
    streams = {k for k in rng if k.startswith("batch") and (k == "batch" or k[5:].isdigit())}
    if set(rng) - {"cpu", "cuda"} - streams or "cpu" not in rng or "batch" not in rng:
        raise CheckpointError(f"its random states are {sorted(rng)[:6]}, not cpu and batch (and batchN)")
    if rng["cpu"].shape != torch.get_rng_state().shape:
        raise CheckpointError(f"its CPU random state has {rng['cpu'].numel()} bytes, not "
                              f"{torch.get_rng_state().numel()}")
    return rng
