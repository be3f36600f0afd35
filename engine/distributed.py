"""Training one model over several processes with PyTorch's DistributedDataParallel, as `torchrun` launches them.

torchrun starts one process per GPU (or per share of a CPU) and sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR
and MASTER_PORT in each one's environment; `init_from_env` reads them and calls
`torch.distributed.init_process_group` (NCCL between GPUs, gloo on the CPU). Nothing here is home-made
communication: the gradients are averaged by DDP's own all-reduce, and the few figures the trainer shares (the
loss, whether to stop, the window samplers' states) go through torch.distributed collectives.

Window sampling. A step's global batch is `batch_size × grad_accum × world_size` windows, drawn as
`grad_accum × world_size` micro-batches; micro-batch m of rank r is drawn by its own random generator, stream
j = r·grad_accum + m, seeded by `stream_seed(seed, j)`. Stream 0's seed is the run's seed, so one process with
grad_accum 1 samples exactly as before; and any launch with the same grad_accum × world_size draws the same
windows at every step (2 processes × grad_accum 1 draw what 1 process × grad_accum 2 draws)."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from .errors import ConfigError

__all__ = ["DistContext", "init_from_env", "current", "shutdown", "stream_seed", "launched_by_torchrun",
           "FAIL_AT_ENV"]

# A test hook: "RANK:STEP" makes that rank raise when it reaches that optimizer step, to check that one failed
# process ends the whole launch with a message instead of leaving the others waiting.
FAIL_AT_ENV = "LM_PLAYGROUND_FAIL_AT"
_MASK = (1 << 63) - 1


def stream_seed(seed: int, stream: int) -> int:
    """The seed of window-sampling stream `stream` (0 -> `seed` itself; others a fixed mix of the two, 0..2^63-1,
    so streams of one run do not repeat another seed's stream 0 by accident)."""
    if stream == 0:
        return seed
    return (seed * 6364136223846793005 + stream * 1442695040888963407 + 1) & _MASK


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun launch."""
    rank: int            # 0..world_size-1; rank 0 evaluates, prints and writes checkpoints
    local_rank: int      # the process's index on its machine (its GPU)
    world_size: int
    backend: str         # "nccl" or "gloo"
    device: str          # "cuda:LOCAL_RANK" or "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """All-reduce `t` in place to the sum over ranks (gloo has no average) and return it."""
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of `t` over ranks (a new tensor; `t` unchanged)."""
        return self.sum_(t.detach().clone()) / self.world_size

    def any(self, flag: bool, device) -> bool:
        """True on every rank when `flag` is true on any: how the ranks agree to stop at the same step."""
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def gather_objects(self, obj) -> list:
        """Every rank's `obj` (picklable), in rank order, on every rank."""
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def fail_hook(self, step: int) -> None:
        """Raise RuntimeError when FAIL_AT_ENV names this rank and `step` (the test hook above)."""
        spec = os.environ.get(FAIL_AT_ENV, "")
        rank, _, at = spec.partition(":")
        if spec and rank.strip() == str(self.rank) and at.strip() == str(step):
            raise RuntimeError(f"failed on purpose at step {step} ({FAIL_AT_ENV}={spec})")


_current: DistContext | None = None


def current() -> DistContext | None:
    """The launch this process is part of, once init_from_env joined it; None for a plain single process."""
    return _current


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        raise ConfigError(f"torchrun's {name} is missing or not a number ({os.environ.get(name)!r})") from None


def init_from_env(device: str = "auto", timeout_s: float = 1800.0) -> DistContext | None:
    """Join the torchrun launch this process belongs to, from the environment torchrun sets. Returns None (and
    does nothing) when there is no launch or it has one process. `device`: auto uses this process's GPU
    (LOCAL_RANK) with NCCL when CUDA is available, else the CPU with gloo; "cuda" and "cpu" choose. A collective
    that waits longer than `timeout_s` (a peer that hangs) raises instead of waiting for ever. ConfigError for a
    device a launch cannot use (MPS, cuda:N, more processes on a machine than GPUs)."""
    global _current
    if _current is not None:
        return _current
    if not launched_by_torchrun():
        return None
    world = _env_int("WORLD_SIZE")
    if world <= 1:
        return None
    rank, local = _env_int("RANK"), int(os.environ.get("LOCAL_RANK", "0") or 0)
    kind = device.split(":")[0]
    if device.startswith("cuda:"):
        raise ConfigError(f"--device {device}: under torchrun each process takes the GPU of its LOCAL_RANK; "
                          f"give --device cuda (or auto)")
    if kind == "mps":
        raise ConfigError("MPS cannot train across processes; use --device cpu under torchrun on a Mac")
    if kind not in ("auto", "cuda", "cpu"):
        raise ConfigError(f"unknown device {device!r}; choose auto, cpu or cuda")
    use_cuda = kind == "cuda" or (kind == "auto" and torch.cuda.is_available())
    if use_cuda:
        count = torch.cuda.device_count()
        if local >= count:
            raise ConfigError(f"this machine has {count} GPU(s) but torchrun started a process with LOCAL_RANK "
                              f"{local}: use --nproc_per_node={count} or fewer")
        torch.cuda.set_device(local)
        backend, dev = "nccl", f"cuda:{local}"
    else:
        backend, dev = "gloo", "cpu"
    kwargs = {"device_id": torch.device(dev)} if use_cuda else {}
    torch.distributed.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    _current = DistContext(rank=rank, local_rank=local, world_size=world, backend=backend, device=dev)
    return _current


def shutdown() -> None:
    """Leave the launch once every process is done (a barrier: rank 0 finishes its last evaluation and save
    while the others wait, so no process tears its connections down while a peer may still be using them), then
    destroy the process group. Safe to call when none was joined. RuntimeError when a peer died meanwhile."""
    global _current
    if _current is not None and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    _current = None
