"""Which device to train on, what to call it, and its peak throughput for model-FLOPs-utilisation estimates."""
from __future__ import annotations

import torch

from .errors import ConfigError

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, matched against the CUDA device name.
PEAK_BF16_FLOPS = (
    ("H200", 989e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
)


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple MPS, then the CPU; an explicit device that is not there is a ConfigError."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda was asked for but torch sees no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"no {device}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps was asked for but it is not available")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def device_name(device: torch.device) -> str:
    """A readable name for reports: the GPU model, "Apple MPS", or "CPU (N threads)"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


def peak_flops(device: torch.device) -> tuple[float, str] | None:
    """(peak FLOP/s, label naming the figure) for a known GPU, or None where no honest peak is known (CPU, MPS)."""
    if device.type != "cuda":
        return None
    gpu = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS:
        if key in gpu:
            return flops, f"{key} bf16 dense {flops / 1e12:.0f} TFLOP/s"
    return None
