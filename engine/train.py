"""The trainer: AdamW with warmup + cosine decay, a generator of plain-CPU StepReports, and resumable checkpoints
(their tensor layout lives in train_state.py; presets and overrides in presets.py).

`Trainer.reports()` runs `steps_per_yield` optimizer steps per `next()`. The caller owns the thread: a GUI worker
iterates it and calls pause()/resume()/stop() from the GUI thread. While paused, the generator yields one
event="paused" report and then blocks (on a threading.Event) inside the following next() until resume() or stop(),
so a paused run costs nothing and its model is quiescent: save() and snapshots are safe from the GUI thread.

On CUDA the steps between yields run without a host sync: losses and grad norms are summed on the device, and a
non-finite loss raises a sticky on-device flag that the fused AdamW reads as `found_inf` and skips its update for,
so the weights stay those of the last finite step until the flag is read at the next yield."""
from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Iterator

import torch

from . import distributed
from .data import as_token_array, eval_batches, gather, sample_windows, to_device
from .device import cpu_has_native_bf16, device_name, is_out_of_memory, peak_flops, resolve_device
from .errors import ConfigError, TrainingError
from .history import LossHistory
from .models import ConfigMixin, check_finite
from .rollback import Rollback
from .threads import Recheck, torch_threads
from .train_checkpoints import BF16_LABEL, FP32_LABEL, TrainerCheckpoints

__all__ = ["TrainConfig", "StepReport", "Trainer", "resolve_device", "device_name"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    max_steps: int = 2000          # optimizer steps in the whole run
    batch_size: int = 32           # windows per micro-batch (per process under torchrun)
    grad_accum: int = 1            # micro-batches whose gradients are summed into one optimizer step; the global
                                   # batch is batch_size × grad_accum × processes (engine.distributed)
    block_size: int = 128          # tokens per window (at most the model's block_size for a transformer)
    lr: float = 1e-3               # peak learning rate, reached after warmup
    min_lr: float = 1e-4           # cosine decay ends here at max_steps
    warmup_steps: int = 100        # linear warmup from ~0 to lr
    weight_decay: float = 0.1      # AdamW decay on matrices and embeddings only (not biases or norms)
    grad_clip: float = 1.0         # clip the global gradient norm to this; 0 turns clipping off
    beta1: float = 0.9             # AdamW first-moment decay
    beta2: float = 0.99            # AdamW second-moment decay (0.99 suits small-batch char models)
    eval_interval: int = 250       # steps between validation passes (one over the whole split always ends a run)
    eval_windows: int = 0          # validation windows scored by the evaluations during training (evenly spaced,
                                   # the same ones every time); 0 = the whole split. The final one is always whole
    eval_batch_size: int = 0       # windows per validation forward; 0 means 4 × batch_size
    steps_per_yield: int = 10      # optimizer steps per report
    device: str = "auto"           # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N", "mps"
    precision: str = "auto"        # "auto" (bf16 autocast for a transformer on CUDA or a CPU with native bf16,
    #                                   else fp32), "bf16", "fp32"
    compile: bool = False          # torch.compile the model for training (worth it on a GPU)
    seed: int = 1337               # seeds batch sampling and dropout
    threads: int = 0               # torch CPU threads while the run runs; 0 = auto (engine/threads.py: from the
                                   # step size and the idle cores); ignored on a GPU

    def __post_init__(self):
        check_finite(self)
        for name in ("max_steps", "batch_size", "grad_accum", "block_size", "eval_interval", "steps_per_yield"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)!r}")
        if self.warmup_steps < 0 or self.eval_batch_size < 0 or self.eval_windows < 0 or self.threads < 0:
            raise ConfigError("warmup_steps, eval_batch_size, eval_windows and threads must not be negative")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, not {self.lr}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"min_lr must be between 0 and lr ({self.lr}), not {self.min_lr}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("weight_decay and grad_clip must not be negative")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError(f"beta1 and beta2 must be in [0, 1), not {self.beta1} and {self.beta2}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, not {self.precision!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate for the step that follows `step` completed steps."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / (self.warmup_steps + 1)
        span = max(1, self.max_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)


@dataclass
class StepReport:
    """What one next() produced: plain Python numbers, safe to hand to another thread."""
    step: int                      # optimizer steps completed
    max_steps: int
    tokens: int                    # training tokens consumed so far
    train_loss: float              # mean loss over the steps since the last report
    lr: float
    grad_norm: float               # mean pre-clipping gradient norm since the last report
    tokens_per_s: float
    elapsed_s: float               # time spent training (pauses excluded)
    eta_s: float | None
    val_loss: float | None = None  # mean nats per token over the validation windows val_scope names
    val_bpc: float | None = None   # bits per character, comparable across tokenizers
    val_ppl: float | None = None
    event: str = "step"            # "step" | "eval" | "paused" | "done" | "error"
    message: str = ""
    mfu: float | None = None       # model FLOPs utilisation against the device's peak (None when unknown)
    val_scope: str = ""            # what val_loss covers: "whole split" or "N windows" ("" without val_loss)


class _NonFinite(Exception):
    pass


def step_flops(model, cfg: TrainConfig) -> float:
    """FLOPs of one optimizer step (forward and backward over batch_size × block_size tokens)."""
    return model.flops_per_token(cfg.block_size) * cfg.batch_size * cfg.block_size


# Batch losses of an evaluation are read to the host every this many batches: one device sync per 64 batches, and
# no thousands of small tensors alive between the batches' large ones, which kept the CPU allocator from giving
# memory back (a whole-split pass over 10M tokens grew by 2 GB before this).
EVAL_READ_EVERY = 64


class Trainer(TrainerCheckpoints):
    def __init__(self, model, train_ids, val_ids, cfg: TrainConfig, *, val_chars: int, tokenizer=None,
                 sync_free: bool | None = None):
        """train_ids/val_ids: token ids (sequence, numpy array, np.memmap of a prepared folder, or tensor), kept
        on the host; windows are drawn from them by engine.data.sample_windows. val_chars: characters in the validation
        text, for bits per character. sync_free: run steps without host syncs (needs the fused AdamW); None means
        on CUDA only."""
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"{type(model).__name__} is fitted by counting, not trained with the Trainer")
        self.cfg, self.tokenizer = cfg, tokenizer
        n_train, n_val = len(train_ids), len(val_ids)
        model_block = getattr(model.config, "block_size", None)
        if model.family == "transformer" and cfg.block_size > model_block:
            raise ConfigError(f"train block_size {cfg.block_size} exceeds the model's block_size {model_block}")
        if cfg.block_size >= n_train:
            raise ConfigError(f"the corpus is too short for one training window: block_size {cfg.block_size} "
                              f"needs a train split longer than {cfg.block_size} tokens; it has {n_train}")
        if n_val < 2:
            raise ConfigError(f"the validation split has {n_val} token(s); it needs at least 2")
        if val_chars < 1:
            raise ConfigError("val_chars must be positive")
        self.dist = distributed.current()       # None: one process, as without torchrun
        rank, world = (self.dist.rank, self.dist.world_size) if self.dist else (0, 1)
        self.world_size = world
        self.device = resolve_device(self.dist.device if self.dist else cfg.device)
        # CPU threads for the run, set only while reports() runs (engine/threads.py): auto never exceeds what the
        # caller's torch is set to (the window lowers it on purpose, to leave a core to the GUI)
        self.threads, self._recheck = None, None
        if self.device.type == "cpu":
            self.threads = cfg.threads
            if not cfg.threads:
                self._recheck = Recheck(step_flops(model, cfg), torch.get_num_threads())
                self.threads = self._recheck.choose()
        self.device_label = device_name(self.device, self.threads)
        peak = peak_flops(self.device)
        self.peak_flops, self.peak_label = peak if peak else (None, "no peak speed on record for this device")
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(cfg.seed + rank)      # dropout masks differ between processes
        self.model = model.to(self.device).train()
        # numpy arrays on the host, in memory or memory-mapped (engine.data): windows are gathered from them per
        # batch, so a prepared corpus of several GB is never read whole
        self.train_data, self.val_data = as_token_array(train_ids), as_token_array(val_ids)
        self.val_chars = val_chars
        # one window sampler per micro-batch this process draws: streams rank·K .. rank·K + K-1 (see
        # engine.distributed); stream 0 is seeded with the run's seed, as the one sampler was before. They draw the
        # windows' start positions on the CPU whatever the device (engine.data.sample_windows)
        self.streams = list(range(rank * cfg.grad_accum, (rank + 1) * cfg.grad_accum))
        self._gens = [torch.Generator() for _ in self.streams]
        for g, j in zip(self._gens, self.streams):
            g.manual_seed(distributed.stream_seed(cfg.seed, j))
        self._gen = self._gens[0]
        self._gathered_streams: tuple[int, dict] | None = None   # (step, {stream: state}) of every process
        self.step_tokens = cfg.batch_size * cfg.block_size * cfg.grad_accum * world   # tokens per optimizer step
        self.sync_free = self.device.type == "cuda" if sync_free is None else sync_free
        # The fused AdamW is one kernel for all parameters on CUDA and on the CPU too (torch >= 2.4), instead of
        # ~8 small ops per parameter tensor; on the CPU without it torch would even pick the per-tensor loop.
        fused = self.sync_free or self.device.type in ("cpu", "cuda")
        params = list(self.model.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None)
        self._ddp = None   # the DistributedDataParallel wrapper under torchrun: it averages the gradients
        if self.dist:
            from torch.nn.parallel import DistributedDataParallel
            self._ddp = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        wrapped = self._ddp if self._ddp is not None else self.model
        self._fwd = torch.compile(wrapped) if cfg.compile else wrapped
        # auto: bf16 autocast for transformers on CUDA, and on a CPU that multiplies bf16 in hardware: there
        # nanogpt-cpu's step took 34-35 ms against 49-50 in fp32 (2 threads; attention itself stays float32, see
        # CausalSelfAttention), tiny-cpu-transformer's 17 against 19 on one thread, with train losses equal to
        # 4 digits after 150-300 steps. Recurrent models stay fp32/TF32, where cuDNN's fused RNN kernels are fast
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and model.family == "transformer"
                                           and (self.device.type == "cuda"
                                                or (self.device.type == "cpu" and cpu_has_native_bf16())))
        self.precision_label = BF16_LABEL if bf16 else FP32_LABEL
        self._autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if bf16 \
            else contextlib.nullcontext
        self.step, self.tokens = 0, 0
        self._val_scope = "whole split"
        self._elapsed_before = 0.0  # training time of the run this one resumes
        self.last_report: StepReport | None = None
        self.last_eval: StepReport | None = None  # the latest report carrying validation figures
        self.history = LossHistory()                # every report, thinned; saved with checkpoints
        self.resume_warnings: list[str] = []        # what a resume had to start fresh (load_state)
        self._bad = torch.zeros((), device=self.device)              # sticky: a non-finite step happened
        self._bad_step = torch.zeros((), dtype=torch.long, device=self.device)
        self._bad_figures = torch.zeros(2, device=self.device)       # (loss, grad norm) at the first bad step
        self._rollback = Rollback(self.optimizer)                    # the weights before the latest update
        # Held around each optimizer update; a caller that copies weights from another thread (engine.api's
        # snapshots) sets its own lock here, so a copy never sees half an update and never waits for an eval.
        self.update_lock = contextlib.nullcontext()
        self._running, self._stop = threading.Event(), threading.Event()
        self._running.set()
        log.info("training %s (%d params) on %s", model.family, model.num_params(), self.device_label)

    # -- control (any thread) -------------------------------------------------------------------------------
    def pause(self):
        self._running.clear()

    def resume(self):
        self._running.set()

    def stop(self):
        self._stop.set()
        self._running.set()  # wake a paused generator so it can finish

    @property
    def raw_model(self):
        """The model itself (not the torch.compile wrapper): what save() writes and snapshots copy."""
        return self.model

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- the loop -------------------------------------------------------------------------------------------
    def reports(self) -> Iterator[StepReport]:
        """The run's reports; torch's CPU threads are the run's own while it runs and restored when it ends."""
        with torch_threads(self.threads):
            for report in self._reports():
                yield report
                if self._recheck and self._recheck.due():   # auto: the idle cores may have changed meanwhile
                    self.threads = self._recheck.choose()
                    torch.set_num_threads(self.threads)

    def _reports(self) -> Iterator[StepReport]:
        cfg = self.cfg
        active, session_steps, step_time = 0.0, 0, 0.0   # step_time: in optimizer steps only (no evals, no pauses)
        while True:
            stopped = self._stop.is_set()
            if self.dist:   # every process stops at the same step, or the others would wait for it for ever
                stopped = self.dist.any(stopped, self.device)
            finishing = stopped or self.step >= cfg.max_steps
            if not finishing and not self._running.is_set():
                yield self._report(0.0, None, active, session_steps, "paused", None, f"paused at step {self.step}")
                self._running.wait()
                continue
            n = min(cfg.steps_per_yield, cfg.max_steps - self.step,
                    cfg.eval_interval - self.step % cfg.eval_interval)
            t0 = time.perf_counter()
            sums, val, dt, oom = None, None, 0.0, False
            try:
                if not finishing:
                    sums = self._run_steps(n)
                    dt = time.perf_counter() - t0
                evaluating = not finishing and self.step % cfg.eval_interval == 0 and self.step < cfg.max_steps
                if self.dist and (finishing or evaluating):
                    self._gather_streams()   # where checkpoints are written: every process is at this step
                if self.dist and not self.dist.is_main:
                    pass   # only rank 0 evaluates; the others go on to the next step's all-reduce and wait there
                elif finishing and not stopped:
                    val = self.evaluate(cancel=self._stop.is_set)   # None when a stop cut it short
                elif evaluating:
                    val = self.evaluate(cfg.eval_windows, cancel=self._stop.is_set)
            except (MemoryError, RuntimeError) as e:   # CUDA/MPS OutOfMemoryError; the CPU allocator's RuntimeError
                if not is_out_of_memory(e):
                    raise
                oom = True  # handled below: the exception's traceback holds the failed step's activations
            except _NonFinite as e:
                yield self._report(0.0, None, active, session_steps, "error", None, str(e))
                return
            if oom:  # outside the except block, so a paused run does not keep that memory alive
                self._recover_from_oom()
                msg = (f"out of memory after step {self.step}: try a smaller batch_size, block_size or "
                       f"eval_batch_size")
                if self.dist:   # the other processes cannot wait while this one pauses: end the launch
                    raise TrainingError(f"rank {self.dist.rank}: {msg}")
                if finishing:
                    yield self._report(0.0, None, active, session_steps, "done", None, msg)
                    return
                self.pause()
                yield self._report(0.0, None, active, session_steps, "error", None,
                                   msg + f"; paused with the weights of step {self.step}")
                continue
            active += time.perf_counter() - t0
            if sums:
                session_steps += sums[0]
                step_time += dt
            if finishing:
                # the whole session's throughput, not the last report's (which may have been a single step)
                tps = session_steps * self.step_tokens / step_time if step_time else None
                yield self._report(0.0, None, active, session_steps, "done", val,
                                   "finished" if self.step >= cfg.max_steps else f"stopped at step {self.step}", tps)
                return
            yield self._report(dt, sums, active, session_steps, "eval" if val else "step", val,
                               "" if self.last_report else self._hello())

    def _hello(self) -> str:
        """The first report's remark: the device and precision, whether MFU (model FLOPs utilisation: the share of
        the device's peak arithmetic speed the training uses) can be shown, and any warning from resuming."""
        warnings = "".join(f"; warning: {w}" for w in self.resume_warnings)
        if self.peak_flops:
            return (f"training on {self.device_label}, {self.precision_label}; MFU (share of peak speed used) "
                    f"against {self.peak_label}"
                    f"{warnings}")
        return (f"training on {self.device_label}, {self.precision_label}; no MFU (share of peak speed used): "
                f"no peak speed on record for this device{warnings}")

    def _run_steps(self, n: int) -> tuple[int, float, float]:
        """n optimizer steps; returns (steps, summed loss, summed grad norm), reading the device once."""
        cfg, opt = self.cfg, self.optimizer
        params = [p for g in opt.param_groups for p in g["params"]]
        loss_sum = torch.zeros((), device=self.device)    # summed on the device when sync-free
        norm_sum = torch.zeros((), device=self.device)
        host_loss, host_norm = 0.0, 0.0                      # else on the host
        first = self.step
        for i in range(n):
            if i and not self.dist and (self._stop.is_set() or not self._running.is_set()):
                break  # honour stop/pause between steps, not only between reports (under torchrun: between
                # reports, where the processes agree on it)
            if self.dist:
                self.dist.fail_hook(first + i + 1)
            lr = cfg.lr_at(first + i)
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = self._windows(self._gens[0])
            loss, norm = self._forward_backward(x, y, params)
            if self.sync_free:
                bad = ~(torch.isfinite(loss) & torch.isfinite(norm))
                figures = torch.stack([loss.detach().float(), norm.detach().float()])
                new_bad = bad & (self._bad == 0)
                self._bad_step = torch.where(new_bad, first + i + 1, self._bad_step)
                self._bad_figures = torch.where(new_bad, figures, self._bad_figures)
                self._bad = torch.maximum(self._bad, bad.float())
                opt.found_inf = self._bad  # fused AdamW skips the update (and its step count) when set
                self._rollback.keep(first + i, 1.0 - self._bad)
            else:
                # read on the host: two reads instead of a dozen tiny tensor ops per step (each one a GIL round
                # trip, which the window's painting thread competes for); free on the CPU, which has no queue
                loss_f, norm_f = loss.item(), norm.item()
                if not (math.isfinite(loss_f) and math.isfinite(norm_f)):
                    opt.zero_grad(set_to_none=True)
                    self._bad_step.fill_(first + i + 1)
                    self._bad_figures = torch.tensor([loss_f, norm_f])
                    self._bad.fill_(1.0)
                    break
                self._rollback.keep(first + i)
            with self.update_lock:
                opt.step()
                self.step += 1
                self.tokens += self.step_tokens
            opt.zero_grad(set_to_none=True)
            if self.sync_free:
                good = 1.0 - self._bad
                loss_sum += torch.nan_to_num(loss.detach().float()) * good
                norm_sum += torch.nan_to_num(norm.float()) * good
            else:
                host_loss += loss_f
                host_norm += norm_f
        if self._bad.item():
            raise _NonFinite(self._roll_back(int(self._bad_step.item())))
        if not self.sync_free:
            return self.step - first, host_loss, host_norm
        return self.step - first, float(loss_sum.item()), float(norm_sum.item())

    def _roll_back(self, bad_step: int) -> str:
        """After a non-finite loss or gradient norm at `bad_step`: go back to the last weights whose loss and
        gradients were finite (those from before the update that produced the bad ones, see engine.rollback) and
        say what went non-finite, where, and which step's weights are kept."""
        loss, norm = (float(v) for v in self._bad_figures.tolist())
        with self.update_lock:
            kept = self._rollback.restore()
            kept = bad_step - 1 if kept is None else kept
            # tokens counted back from the current count: a resumed run may have used another batch shape before
            self.tokens = max(0, self.tokens - (self.step - kept) * self.step_tokens)
            self.step = kept
            self.optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(loss):
            what = f"the loss became {loss}"
        else:
            what = f"the gradient norm became {norm} (the loss was finite, {loss:.4g})"
        return (f"{what} at step {bad_step}; stopped with the weights of step {self.step}, the last whose loss "
                f"and gradients were finite: try a lower lr or a stronger grad_clip")

    def _windows(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One micro-batch drawn by `gen`: inputs and targets, (batch_size, block_size) each, on the device."""
        cfg = self.cfg
        batch = to_device(sample_windows(self.train_data, gen, cfg.batch_size, cfg.block_size), self.device)
        return batch[:, :-1], batch[:, 1:]            # (B, T+1) -> inputs and next-token targets

    def _forward_backward(self, x, y, params) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of one optimizer step: grad_accum micro-batches on this process, the first one (x, y) and
        the others drawn here by their own samplers, each loss scaled by 1/grad_accum so the summed gradient is
        that of their mean; under torchrun DDP averages the gradients over the processes in the last
        micro-batch's backward (the others skip that all-reduce, `no_sync`). Returns (the step's mean loss over
        every process's micro-batches, the global gradient norm before clipping)."""
        k = self.cfg.grad_accum
        total = None
        for m in range(k):
            if m:
                x, y = self._windows(self._gens[m])
            last = m == k - 1
            sync = self._ddp.no_sync() if self._ddp is not None and not last else contextlib.nullcontext()
            with sync:
                with self._autocast():
                    _, loss = self._fwd(x, y)
                (loss / k if k > 1 else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
        if k > 1:
            total = total / k
        if self.dist:
            total = self.dist.mean(total.float())
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        return total, torch.nn.utils.clip_grad_norm_(params, clip)

    def _recover_from_oom(self):
        self.optimizer.zero_grad(set_to_none=True)
        self.model.train()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        log.warning("out of memory after step %d", self.step)

    def _report(self, dt, sums, active, session_steps, event, val, message, tps=None) -> StepReport:
        cfg = self.cfg
        last = self.last_report
        if sums and sums[0]:
            steps, loss_sum, norm_sum = sums
            train_loss, grad_norm = loss_sum / steps, norm_sum / steps
            tps = steps * self.step_tokens / dt
        else:
            train_loss = last.train_loss if last else math.nan
            grad_norm = last.grad_norm if last else math.nan
            tps = tps if tps is not None else last.tokens_per_s if last else 0.0
        eta = (cfg.max_steps - self.step) * active / session_steps if session_steps else None
        mfu = (self.raw_model.flops_per_token(self.cfg.block_size) * tps / self.peak_flops
               if self.peak_flops and tps else None)
        rep = StepReport(self.step, cfg.max_steps, self.tokens, train_loss, cfg.lr_at(max(0, self.step - 1)),
                         grad_norm, tps, self._elapsed_before + active, eta, *(val or (None, None, None)), event,
                         message, mfu, self._val_scope if val else "")
        self.last_report = rep
        self.history.add(rep)
        if val:
            self.last_eval = rep
        return rep

    # -- validation -----------------------------------------------------------------------------------------
    def final_evaluation(self, cancel=None) -> StepReport | None:
        """The whole-split validation that a stopped run skips, so Stop ends the run at once (on a 50 MB corpus
        the pass takes half a minute): run it afterwards, cancellably, while the model can already be saved.
        Returns an event="eval" report for the current step (kept as last_report, last_eval and in the history),
        or None when `cancel()` turned true first."""
        last = self.last_report
        val = self.evaluate(cancel=cancel)
        if val is None or last is None:
            return None
        rep = replace(last, val_loss=val[0], val_bpc=val[1], val_ppl=val[2], event="eval",   # message: the end's
                      val_scope=self._val_scope)
        self.last_report = self.last_eval = rep
        self.history.add(rep)
        return rep

    @torch.no_grad()
    def evaluate(self, windows: int = 0, cancel=None) -> tuple[float, float, float] | None:
        """(val_loss, val_bpc, val_ppl). windows 0: over every validation token, in non-overlapping block_size
        windows (the last one shorter), each starting from an empty context, so the figure does not depend on
        sampling. windows k > 0: over k block_size windows spread evenly over the split, the same ones at every
        call (so a curve of them is not noisy), at k/(split/block_size) of the cost; bits per character then use
        the whole split's characters per token. Sets `_val_scope` to say which one it was.
        cancel: a callable checked between batches of windows; None is returned once it is true."""
        T = self.cfg.block_size
        eb = self.cfg.eval_batch_size or 4 * self.cfg.batch_size
        data = self.val_data
        n = len(data) - 1  # every token after the first is predicted once
        plan, scored, self._val_scope = eval_batches(data, T, eb, windows)
        self.model.eval()
        sums, host = [], []
        try:
            for starts, length in plan:
                if cancel is not None and cancel():
                    return None
                x, y = gather(data, starts, length, self.device)
                with self._autocast():
                    logits, _ = self.model(x)
                sums.append(torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten(),
                                                              reduction="sum"))
                if len(sums) == EVAL_READ_EVERY:
                    host.extend(torch.stack(sums).tolist())
                    sums.clear()
        finally:
            self.model.train()
        if sums:
            host.extend(torch.stack(sums).tolist())
        nats = math.fsum(host)  # summed in float64 on the host: MPS has no float64
        chars = self.val_chars * n / (n + 1)
        if self.tokenizer is not None:  # the first token is context only, so its characters are not scored
            chars = self.val_chars - len(self.tokenizer.decode([int(data[0])]))
        loss = nats / scored
        bpc = loss * n / (max(chars, 1) * math.log(2))
        return loss, bpc, math.exp(min(loss, 700.0))

    @property
    def global_batch(self) -> int:
        """Windows per optimizer step over all processes: batch_size × grad_accum × world size."""
        return self.cfg.batch_size * self.cfg.grad_accum * self.world_size

    def _warn(self, message: str) -> None:
        """A resume warning: kept for the caller to show once (the CLI's `warning:` line, the window's first report),
        and logged at INFO only, so the CLI's WARNING log does not say it a second time."""
        log.info("resume: %s", message)
        self.resume_warnings.append(message)
