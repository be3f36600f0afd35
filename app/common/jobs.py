"""Background work for the tabs: run a function on a worker thread and hand its result (or a one-line error) to
callbacks on the GUI thread. Recording a tape and finite-difference checks (Graph tab), counting tokens (Tokens tab,
whose pure-Python count the thread hands on to app.common.worker_process) and sampling over time go through here,
so no panel blocks."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.common.workers import error_message, start_worker


class Job(QObject):
    """Runs one function on a worker thread and sends its result (or a one-line error) back by queued signal,
    tagged so the runner knows which request it answers."""
    done = Signal(int, object)
    failed = Signal(int, str)
    finished = Signal()

    def __init__(self, tag: int, fn: Callable[[], object]):
        super().__init__()
        self.tag, self.fn = tag, fn

    @Slot()
    def run(self) -> None:
        try:
            self.done.emit(self.tag, self.fn())
        except BaseException as e:  # noqa: BLE001 — shown in the panel, never raised into Qt's event loop; a
            # BaseException too, or a lane (JobRunner.run_latest) would wait for this job for ever
            self.failed.emit(self.tag, error_message(e))
        finally:
            self.finished.emit()


class JobRunner(QObject):
    """Starts Jobs and calls their callbacks on the thread this runner lives on (create it on the GUI thread)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs: list[tuple[QThread, Job]] = []
        self._callbacks: dict[int, tuple[Callable, Callable]] = {}
        self._tag = 0
        self._lanes: dict[str, int] = {}                      # lane -> tag of its running job
        self._queued: dict[str, tuple[Callable, Callable, Callable]] = {}   # lane -> the next request

    def run(self, fn, on_done, on_failed) -> None:
        """Run `fn` on a worker thread; the callbacks run here on the GUI thread. The signals go to bound slots
        of this runner (not lambdas), which is what makes Qt queue them to the runner's thread."""
        self._tag += 1
        self._callbacks[self._tag] = (on_done, on_failed)
        job = Job(self._tag, fn)
        job.done.connect(self._job_done, Qt.QueuedConnection)
        job.failed.connect(self._job_failed, Qt.QueuedConnection)
        thread = start_worker(job, "graph-job")
        thread.finished.connect(self._job_ended, Qt.QueuedConnection)
        self._jobs.append((thread, job))

    def run_latest(self, lane: str, fn, on_done, on_failed) -> None:
        """As run, but one job at a time per `lane`: asked while one runs, the job waits for it to end, and a
        later request replaces a waiting one (which then never runs). Two pure-Python jobs at once (two tapes
        recorded) would also hand the GIL back and forth with the GUI thread: the scene drawn for the second
        tape waited for it at every call into Python, a 180-250 ms freeze (bench/gui_stalls.py graph_build)."""
        if lane in self._lanes:
            self._queued[lane] = (fn, on_done, on_failed)
            return
        self.run(fn, on_done, on_failed)
        self._lanes[lane] = self._tag

    def active(self) -> bool:
        """Whether any job's thread is still running."""
        return any(thread.isRunning() for thread, _ in self._jobs)

    def busy(self, lane: str) -> bool:
        """Whether a job of `lane` runs or waits."""
        return lane in self._lanes or lane in self._queued

    def _lane_ended(self, tag: int) -> None:
        for lane, running in list(self._lanes.items()):
            if running == tag:
                del self._lanes[lane]
                if lane in self._queued:
                    self.run_latest(lane, *self._queued.pop(lane))

    @Slot(int, object)
    def _job_done(self, tag: int, result) -> None:
        try:
            self._callbacks.pop(tag)[0](result)
        finally:
            self._lane_ended(tag)

    @Slot(int, str)
    def _job_failed(self, tag: int, message: str) -> None:
        try:
            self._callbacks.pop(tag)[1](message)
        finally:
            self._lane_ended(tag)

    @Slot()
    def _job_ended(self) -> None:
        for pair in [p for p in self._jobs if p[0].isFinished()]:
            pair[0].wait()
            self._jobs.remove(pair)

    def wait(self) -> None:
        """Block until every running job's thread has finished (waiting requests are dropped)."""
        self._queued.clear()
        for thread, _ in list(self._jobs):
            thread.wait()
