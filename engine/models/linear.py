"""nn.Linear with a second kernel for decoding: few-row inference calls on the CPU can go to oneDNN instead of MKL.

A cached decoding step multiplies one row (beam search: one per beam) by every weight matrix of the model, so it
reads all the weights once per token. On this project's 2-core AMD EPYC VM (torch 2.13), for a model whose
weights do not fit in the caches, MKL's one-row product (what F.linear calls) read them at about 11 GB/s on 1
thread or 2, where a plain sum over the same bytes ran at 35 GB/s on one core. oneDNN's (torch.ops.mkldnn.
_linear_pointwise, a registered op of torch's oneDNN integration; private, so `onednn_available` checks once that
it is there and agrees with F.linear) read them at about 20 GB/s on 2 threads. In bench/row_kernel.py's sweep
(one row times every matrix of the model in turn, 2026-12-01 05:40) the 10.7M nanogpt-char model's 37 matrices
took 3.7 ms through MKL and 2.1 ms through oneDNN on 2 threads (3.4 on 1), GPT-2 small's 36.4 and 19.1 ms. For
weights that stay in cache MKL's lower cost per call wins (the 0.80M model: 0.13 against 0.35 ms), and the two
crossed between 13 and 19 MB of weights there, about half the 32 MB last-level cache.

Both kernels compute the same float32 products and differ only in the order they add them (~1e-5 relative): a
cached step's logits equal the uncached forward's to float32 rounding either way, as before. Calls that record
gradients, run under autocast, are not float32 on the CPU, or have more than ROWS_MAX rows always take F.linear,
and so does everything while torch.backends.mkldnn is switched off. Only x86-64 was measured, so the size rule
picks oneDNN there alone."""
from __future__ import annotations

import functools
import os
import platform

import torch
import torch.nn as nn
import torch.nn.functional as F

ROWS_MAX = 8                    # up to this many rows a call is a "few-row" call (decoding's batch: beams)
LLC_SHARE = 0.5                 # oneDNN from this share of the last-level cache in weights (crossover measured above)
DEFAULT_LLC_BYTES = 32 << 20    # when the OS does not say (no /sys): this project's machines


@functools.lru_cache(maxsize=1)
def last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """Size in bytes of CPU 0's highest-level data or unified cache, from Linux's sysfs (`root`);
    DEFAULT_LLC_BYTES where that is missing or unreadable."""
    best = (0, 0)
    try:
        for name in os.listdir(root):
            if not name.startswith("index"):
                continue
            with open(os.path.join(root, name, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(root, name, "level")) as f:
                level = int(f.read())
            with open(os.path.join(root, name, "size")) as f:
                size = f.read().strip()
            units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
            n = int(size[:-1]) * units[size[-1]] if size[-1:] in units else int(size)
            best = max(best, (level, n))
    except (OSError, ValueError):
        return DEFAULT_LLC_BYTES
    return best[1] or DEFAULT_LLC_BYTES


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether this torch has oneDNN's linear kernel and it agrees with F.linear on a small random product (checked
    once a process). False on builds without oneDNN, or where the private op has gone or changed."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=g) for s in ((2, 1, 24), (40, 24), (40,)))
        with torch.inference_mode():
            return bool(torch.allclose(_onednn_linear(x, w, b), F.linear(x, w, b), rtol=1e-5, atol=1e-5))
    except Exception:   # a missing op is AttributeError or RuntimeError depending on the build: either means no
        return False


try:
    torch.is_autocast_enabled("cpu")
    def _autocast_cpu() -> bool:
        return torch.is_autocast_enabled("cpu")
except TypeError:   # torch < 2.4 takes no device
    _autocast_cpu = torch.is_autocast_cpu_enabled


class Linear(nn.Linear):
    """nn.Linear (same parameters, state_dict, initialisation, autograd and hooks) whose few-row inference calls
    go to oneDNN when `few_rows_onednn` is set (see the module docstring; `set_row_kernel` sets it for a model).

    x (..., in_features) -> (..., out_features). oneDNN takes a call only when all of these hold: the flag is set,
    oneDNN is available, grad mode is off, CPU autocast is off, x is float32 on the CPU, and x has at most ROWS_MAX
    rows. Everything else is F.linear."""

    few_rows_onednn = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x's dtype and device stand for the weight's: F.linear refuses a mix, and autocast (the one thing that
        # mixes them) is checked
        if (self.few_rows_onednn and not torch.is_grad_enabled() and x.numel() <= ROWS_MAX * self.in_features
                and x.dtype == torch.float32 and x.device.type == "cpu" and not _autocast_cpu()
                and torch.backends.mkldnn.enabled and onednn_available()):
            return _onednn_linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


def linear_weight_bytes(model: nn.Module) -> int:
    """Bytes of the weight matrices of `model`'s Linear layers: what a cached decoding step reads."""
    return sum(m.weight.numel() * m.weight.element_size() for m in model.modules() if isinstance(m, nn.Linear))


def set_row_kernel(model: nn.Module, onednn: bool | None = None) -> bool:
    """Send `model`'s few-row inference calls to oneDNN (True), to MKL through F.linear (False), or choose by size
    (None): oneDNN on an x86-64 CPU when its Linear weights take more than LLC_SHARE of the last-level cache. Sets
    the flag on every `Linear` of the model and returns it. Most of oneDNN's gain needs a second core (see the
    module docstring): engine/decode.py gives cached steps of such a model the idle cores."""
    if onednn is None:
        onednn = (platform.machine().lower() in ("x86_64", "amd64")
                  and linear_weight_bytes(model) > LLC_SHARE * last_level_cache_bytes())
    for m in model.modules():
        if isinstance(m, Linear):
            m.few_rows_onednn = bool(onednn)
    return bool(onednn)


def uses_onednn_rows(model: nn.Module) -> bool:
    """Whether `model` has a Linear whose few-row inference calls go to oneDNN (its flag is set, and oneDNN is
    available here and not switched off in torch.backends.mkldnn)."""
    return (any(isinstance(m, Linear) and m.few_rows_onednn for m in model.modules())
            and torch.backends.mkldnn.enabled and onednn_available())
