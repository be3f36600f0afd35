"""Background work for the Graph tab: run a function on a worker thread and hand its result (or a one-line error)
to callbacks on the GUI thread. Recording a tape and finite-difference checks go through here, so the panel never
blocks while the stepper stays on the GUI thread."""
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
        except Exception as e:  # noqa: BLE001 — shown in the panel, never raised into Qt's event loop
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

    @Slot(int, object)
    def _job_done(self, tag: int, result) -> None:
        self._callbacks.pop(tag)[0](result)

    @Slot(int, str)
    def _job_failed(self, tag: int, message: str) -> None:
        self._callbacks.pop(tag)[1](message)

    @Slot()
    def _job_ended(self) -> None:
        for pair in [p for p in self._jobs if p[0].isFinished()]:
            pair[0].wait()
            self._jobs.remove(pair)

    def wait(self) -> None:
        """Block until every running job's thread has finished."""
        for thread, _ in list(self._jobs):
            thread.wait()
