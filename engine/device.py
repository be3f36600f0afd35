"""Which device to train on, what to call it, its peak throughput for model-FLOPs-utilisation estimates, and
how much memory a run may use there."""
from __future__ import annotations

import contextlib
import os

import torch

from .errors import ConfigError

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, matched in order against the CUDA device name (so the PCIe
# and NVL H100s, with lower clocks, come before the SXM part's plain "H100").
PEAK_BF16_FLOPS = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
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


def device_name(device: torch.device, threads: int | None = None) -> str:
    """A readable name for reports: the GPU model, "Apple MPS", or "CPU (N threads)" (N: `threads`, or torch's
    current intra-op thread count)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads() if threads is None else threads
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX, as torch's oneDNN detects them).
    There a bf16 matmul runs at about twice float32's rate (bench/vs_nanogpt.py's machine, an AMD EPYC with
    AVX512-BF16: 200-217 against 90-102 GFLOP/s at nanogpt-cpu's shapes, one thread); elsewhere torch converts
    and multiplies in float32, slower than float32 alone."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def peak_flops(device: torch.device) -> tuple[float, str] | None:
    """(peak FLOP/s, label naming the figure) for a known GPU, or None where no honest peak is known (CPU, MPS)."""
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device))


def peak_for_name(gpu: str) -> tuple[float, str] | None:
    for key, flops in PEAK_BF16_FLOPS:
        if key in gpu:
            return flops, f"{key} bf16 dense {flops / 1e12:.0f} TFLOP/s"
    return None


# -- memory: what a run needs against what the device has ----------------------------------------------------
# What torch says when an allocation fails: CPU (DefaultCPUAllocator), CUDA and MPS.
OOM_MESSAGES = ("can't allocate memory", "out of memory")
SHRINK = "use a smaller model (n_layer, n_embd or n_hidden), batch_size or block_size"


def is_out_of_memory(e: BaseException) -> bool:
    """A failed allocation: MemoryError, torch's OutOfMemoryError, or the plain RuntimeError the CPU allocator
    raises ("DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(e, (MemoryError, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))):
        return True
    return isinstance(e, RuntimeError) and any(m in str(e) for m in OOM_MESSAGES)


def format_bytes(n: float) -> str:
    """1536 -> "1.5 KB" (binary units), up to PB so an absurd estimate still reads as a number."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def available_memory(device: str = "auto") -> tuple[int, str] | None:
    """(bytes, what) a run on this device can use: on CUDA the GPU's free memory plus what this process's torch
    already holds there; otherwise the RAM the system counts as available (MemAvailable, which includes
    reclaimable caches), capped by what an address-space limit (ulimit -v) leaves. None where nothing says."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return free + torch.cuda.memory_reserved(dev), "free GPU memory"
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    have = None
    try:
        with open("/proc/meminfo") as f:
            have = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            have = os.sysconf("SC_AVPHYS_PAGES") * page
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * page
            have = min(have if have is not None else limit, max(0, limit - used))
    return None if have is None else (have, "available RAM")


def memory_problem(estimate_bytes: int, device: str = "auto") -> str:
    """Why a run needing about `estimate_bytes` (api.estimate()'s memory_bytes) cannot start on this device, or ""
    when it fits or the platform cannot say. The estimate is rough, so only a clear excess is refused: otherwise
    torch would fail mid-allocation, or the machine would swap."""
    have = available_memory(device)
    if have is None or estimate_bytes <= have[0]:
        return ""
    return (f"training this model needs about {format_bytes(estimate_bytes)} (weights, gradients, AdamW moments "
            f"and a batch's activations) but there is {format_bytes(have[0])} of {have[1]}: {SHRINK}")
