"""How many CPU threads torch uses for a piece of work, chosen from the work's size and the cores free right now,
and set only for as long as the work runs.

Small ops gain nothing from a second thread, and a second thread that waits for a core another process is using
stalls every op (the window once decoded 120 tokens in 103 s with 2 threads on a busy machine, 1.2 s with 1). On
an idle machine, though, nanoGPT's CPU recipe steps ~10-25% faster on 2 threads than on 1. So: one thread below
MIN_FLOPS_PER_THREAD of work per call, otherwise as many threads as there are idle cores (measured over a short
probe of /proc/stat), capped by the work's size.

torch.set_num_threads is per OS thread in part and process-wide in part (OpenMP's setting belongs to the calling
thread, MKL's and new threads' defaults are global), so every user sets it inside `torch_threads`, which puts the
previous count back afterwards."""
from __future__ import annotations

import contextlib
import os
import time

# Below this many FLOPs per call (one optimizer step, one decoding forward) a second thread is not worth it.
# nanogpt-cpu's step (~4 GFLOP) gains from 2 threads on an idle 2-core machine; decoding a token through the
# 0.80M model (~5 MFLOP) does not (bench/threads_ab.py measures both).
MIN_FLOPS_PER_THREAD = 1e9
# A whole-window decoding re-run (every token past the context) is one forward of block_size positions, no
# backward, no optimizer: the 0.80M model's (~0.1 GFLOP) already runs ~0.75x as long on 2 idle cores as on 1,
# while a cached step of the 10.7M nanogpt-char model (~0.02 GFLOP, one row per matmul) gains nothing through
# MKL's one-row product.
MIN_WINDOW_FLOPS_PER_THREAD = 5e7
# Through oneDNN's, though (engine/models/linear.py: a model whose weights do not fit in cache), that step reads its
# weights ~1.6x faster on 2 idle cores than on 1: its matmuls took 3.4 ms on 1 thread, 2.1 on 2 (bench/row_kernel.py).
MIN_STEP_FLOPS_PER_THREAD = 5e6
PROBE_S = 0.05          # how long free_cores watches the CPUs
IDLE_SHARE = 0.7        # a core counts as free when it was idle this share of the probe
PROBE_REUSE_S = 2.0     # how long one look at the CPUs answers for every chooser (recent_free_cores)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> dict[int, tuple[int, int]]:
    """{cpu index: (idle ticks incl. iowait, all ticks)} from /proc/stat."""
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *ticks = line.split()
                t = [int(v) for v in ticks[:8]]   # user nice system idle iowait irq softirq steal
                times[int(name[3:])] = (t[3] + t[4], sum(t))
    return times


def free_cores(probe_s: float = PROBE_S) -> int:
    """How many of this process's cores were idle (at least IDLE_SHARE of the time) over the next `probe_s`
    seconds, from /proc/stat; where that file is missing, usable cores minus the 1-minute load average. At least
    1 (the caller's own core) and at most usable_cores()."""
    usable = usable_cores()
    try:
        mine = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        mine = None
    try:
        a = _cpu_times()
        time.sleep(probe_s)
        b = _cpu_times()
    except (OSError, ValueError):
        with contextlib.suppress(AttributeError, OSError):
            return max(1, min(usable, round(usable - os.getloadavg()[0])))
        return 1
    idle = 0.0
    for cpu, (idle_b, all_b) in b.items():
        if (mine is None or cpu in mine) and cpu in a and all_b > a[cpu][1]:
            idle += (idle_b - a[cpu][0]) / (all_b - a[cpu][1])
    return max(1, min(usable, int(idle + (1 - IDLE_SHARE))))


_last_probe: tuple = (None, 0.0, 1)    # (the probe function, monotonic time, its answer)


def recent_free_cores(max_age_s: float = PROBE_REUSE_S) -> int:
    """free_cores(), reusing an answer from the last `max_age_s` seconds: a dialog that samples 32 past models,
    or the decoding lab's columns, start one decoding each, and each would otherwise watch the CPUs for PROBE_S
    (50 ms) before its first whole-window re-run."""
    global _last_probe
    fn, at, answer = _last_probe
    now = time.monotonic()
    if fn is free_cores and now - at < max_age_s:
        return answer
    answer = free_cores()
    _last_probe = (free_cores, time.monotonic(), answer)
    return answer


def choose_threads(flops_per_call: float, probe=None, per_thread: float | None = None) -> int:
    """Threads for CPU work of `flops_per_call` FLOPs per call (an optimizer step: 6N FLOPs per token × tokens; a
    decoding forward: a third of that): 1 below 2 × `per_thread` (MIN_FLOPS_PER_THREAD when None; the cores are
    not probed then), else the free cores, at most one per `per_thread` FLOPs of work."""
    per_thread = MIN_FLOPS_PER_THREAD if per_thread is None else per_thread
    if not flops_per_call >= 2 * per_thread:
        return 1
    return max(1, min((probe or free_cores)(), int(flops_per_call // per_thread)))


def decode_flops(model, tokens: int = 1) -> float | None:
    """FLOPs of a decoding forward of `tokens` positions through `model` at its full context (forward only: a
    third of the training FLOPs per token): tokens=1 is a cached step, tokens=block_size the whole-window re-run
    that every token past the window costs. None for a model that is not a torch model on the CPU (the n-gram
    model is numpy; a GPU's threads are not torch's CPU threads)."""
    import torch
    flops = getattr(model, "flops_per_token", None)
    if not isinstance(model, torch.nn.Module) or flops is None:
        return None
    p = next(model.parameters(), None)
    if p is None or p.device.type != "cpu":
        return None
    return flops(getattr(model.config, "block_size", 1)) / 3 * tokens


def inference_threads(model) -> int | None:
    """The threads to decode from `model` with, one token at a time (see choose_threads: one, short of a huge
    model), or None to leave torch's setting. engine/decode.py's runner takes more, for as long as each call lasts,
    for a whole-window re-run large enough to gain from them, and for the cached steps oneDNN runs
    (engine/models/linear.py)."""
    work = decode_flops(model)
    return None if work is None else choose_threads(work)


class Recheck:
    """An auto thread count kept right while long work runs: `due()` says when RECHECK_S have passed since the
    last choice, `choose()` probes the cores again. Work that took a second core while it was idle gives it back
    once another process wants it (a second thread waiting for a busy core makes every op several times slower:
    bench/threads_ab.py measured 8x on nanogpt-cpu's steps)."""

    RECHECK_S = 10.0

    def __init__(self, flops_per_call: float, ceiling: int, probe=None, per_thread: float | None = None):
        self.flops, self.ceiling, self.probe, self.per_thread = flops_per_call, ceiling, probe, per_thread
        self.last = time.monotonic()

    def choose(self) -> int:
        self.last = time.monotonic()
        return 1 if self.ceiling <= 1 else min(self.ceiling, choose_threads(self.flops, self.probe, self.per_thread))

    def due(self) -> bool:
        return self.ceiling > 1 and time.monotonic() - self.last >= self.RECHECK_S


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with torch's intra-op threads set to `n` (None or 0: unchanged), then put back the count
    the calling thread had before."""
    import torch
    before = torch.get_num_threads()
    if n and n != before:
        torch.set_num_threads(n)
    try:
        yield before if not n else n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
