"""The app's one way of running long work: a QObject moved to a QThread, talking back by queued signals that carry
plain data. Widgets are touched only by the slots those signals reach, on the GUI thread.

`TrainWorker` builds the run (tokenizing the corpus, building the model and its optimizer, which lazily imports
torch._dynamo for about a second) and then iterates `run.reports()`. Reports are batched and emitted at most
~25 times a second, because a tiny model steps up to hundreds of times a second and one queued signal per step would
flood the GUI's event queue; evals, pauses, errors and the end are forwarded at once."""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engine import api
from engine.errors import PlaygroundError

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 1 / 25
TRAIN_CPU_THREADS = 1     # torch threads a run on the CPU uses (see TrainWorker._limit_cpu_threads)
URGENT_EVENTS = ("eval", "paused", "done", "error")
# While a run trains, Python hands the GIL between threads after this long instead of its default 5 ms. A
# training step is hundreds of short torch calls, each of which gives up the GIL for its kernel and needs it back
# afterwards; when the GUI thread is painting the plot in Python, each of those waits could last a whole switch
# interval, which cost about a third of the throughput with the Loss tab visible (bench/gui_latency.py).
TRAIN_SWITCH_INTERVAL_S = 0.0005


def start_worker(worker: QObject, name: str) -> QThread:
    """Move `worker` (which has a `run` slot and a `finished` signal) to a new thread and start it there. The
    caller keeps both objects until the thread has finished (then `thread.wait()` before dropping them)."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit, Qt.DirectConnection)  # quit() is thread-safe; a queued one could sit
    # behind a GUI slot that is already waiting for this thread to end
    thread.start()
    return thread


def error_message(e: BaseException) -> str:
    """A user mistake is already a one-line message; anything else (out of memory, a bug) gets its type name."""
    if isinstance(e, PlaygroundError):
        return str(e)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


class TrainWorker(QObject):
    """Runs one training run on its own thread. pause/resume/stop may be called from the GUI thread at any time,
    also while the run is still being prepared."""

    prepared = Signal(object)   # the api.Run, once corpus, tokenizer, model and optimizer exist
    reports = Signal(list)      # a batch of engine.train.StepReport, in order
    failed = Signal(str)        # a one-line message; the run (if it was built) is kept for saving
    evaluating = Signal()       # the run has ended; its final validation pass starts (skip_evaluation ends it)
    finished = Signal()         # always last

    def __init__(self, spec: api.RunSpec, start_run: Callable[[api.RunSpec], api.Run] | None = None):
        super().__init__()
        self.spec = spec
        self._start_run = start_run or api.start_run
        self.snapshot_folder = None   # set before starting: the run keeps its past models there (scrubbing)
        self._run: api.Run | None = None
        self._stopping = threading.Event()
        self._skip_eval = threading.Event()
        self._resumed = threading.Event()
        self._resumed.set()

    # -- called from the GUI thread --------------------------------------------------------------------------
    def pause(self) -> None:
        self._resumed.clear()
        if self._run is not None:
            self._run.pause()

    def resume(self) -> None:
        if self._run is not None:
            self._run.resume()
        self._resumed.set()

    def stop(self) -> None:
        self._stopping.set()
        if self._run is not None:
            self._run.stop()
        self._resumed.set()  # wake a paused loop so it can see the stop

    def skip_evaluation(self) -> None:
        """No final validation pass after a stop, or end the one running (within one batch of windows)."""
        self._skip_eval.set()

    # -- runs on the worker thread ---------------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        batch: list = []
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, TRAIN_SWITCH_INTERVAL_S))
        try:
            self._limit_cpu_threads()
            run = self._start_run(self.spec)
            if self.snapshot_folder is not None:   # before the first report, so step 1 is kept too
                run.keep_snapshots(self.snapshot_folder)
            self._run = run
            if self._stopping.is_set():
                run.stop()
            elif not self._resumed.is_set():
                run.pause()
            self.prepared.emit(run)
            last_emit = time.monotonic()
            ended = False
            for report in run.reports():
                if report.event == "paused" and (ended or report.step >= report.max_steps):
                    # Pause pressed just as the last step ran: the run has nothing left to do, so a pause now
                    # would only park a finished run at 100% waiting for Resume. Let it end instead.
                    run.resume()
                    continue
                ended = report.event == "done"
                batch.append(report)
                now = time.monotonic()
                if report.event in URGENT_EVENTS or now - last_emit >= EMIT_INTERVAL_S:
                    self.reports.emit(batch)
                    batch, last_emit = [], now
                if report.event == "paused":
                    self._wait_while_paused()
                elif report.event == "error":
                    # the trainer keeps the last good weights (out of memory: paused; NaN: ended); end the run
                    # so it settles with those weights, ready to be saved, instead of blocking while paused
                    run.stop()
            if batch:
                self.reports.emit(batch)
                batch = []
            self._final_evaluation(run)
        except Exception as e:  # noqa: BLE001 — whatever happens in a run must reach the user, not kill the app
            if not isinstance(e, PlaygroundError):
                log.exception("training failed")
            if batch:
                self.reports.emit(batch)
            self.failed.emit(error_message(e))
        finally:
            sys.setswitchinterval(switch_interval)
            self.finished.emit()

    def _final_evaluation(self, run: api.Run) -> None:
        """A stopped run ends at once, unvalidated (the GUI can save it meanwhile); its whole-split validation
        runs here, after the end, and is cancelled by skip_evaluation (Stop again, or closing the window)."""
        if self._skip_eval.is_set() or not run.needs_final_evaluation():
            return
        self.evaluating.emit()
        report = run.final_evaluation(cancel=self._skip_eval.is_set)
        if report is not None:
            self.reports.emit([report])

    def _wait_while_paused(self) -> None:
        """Sleep here, between two `next()` calls, rather than inside the trainer: the run's lock is free, so the
        GUI can snapshot or save the paused model."""
        self._resumed.wait()  # stop() sets it too

    def _limit_cpu_threads(self) -> None:
        """On the CPU one intra-op thread for training leaves the other core(s) to the GUI thread; on a 2-core
        machine two torch threads make the window stutter for a few percent more throughput."""
        import torch
        from engine.device import resolve_device
        if resolve_device(self.spec.device).type == "cpu":
            torch.set_num_threads(TRAIN_CPU_THREADS)


def run_device_label(choice: str) -> str:
    """The device a run started with the form's `choice` (auto, cpu, cuda, mps) trains on, threads included, as
    the run will report it: the status bar shows it before a run starts."""
    from engine.device import device_name, resolve_device
    try:
        device = resolve_device(choice)
    except PlaygroundError as e:
        return str(e)
    return device_name(device, TRAIN_CPU_THREADS if device.type == "cpu" else None)
