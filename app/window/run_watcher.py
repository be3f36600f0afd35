"""Following a run that another process writes: `RunWatcher` polls a run folder's metrics.jsonl (engine.metrics_log)
on a QTimer and hands the records that appeared since the last poll to the GUI thread. A timer poll, not a
QFileSystemWatcher: appends to a file on some file systems (network mounts, some containers) send no change
notification, and a poll of an unchanged file costs one stat(). New bytes are parsed here when they are few (a
report line is ~300 bytes, a poll brings a handful); a large backlog (opening a long run's file: 100,000 lines is
~30 MB) is parsed on a worker thread, so the window never stalls on it."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from engine.metrics_log import METRICS_FILE, read_lines

__all__ = ["RunWatcher", "INLINE_BYTES"]

INLINE_BYTES = 64 * 1024     # parse up to this many new bytes on the GUI thread (~5 ms; 256 KB took 18 ms here)
HEAD_BYTES = 80              # the start line's first bytes, with its time: they tell one run's file from the next


class RunWatcher(QObject):
    """Emits `records(list[dict])` with each poll's new complete lines, in file order, and `failed(str)` once
    when the file cannot be read (it stops then). `jobs`: the window's JobRunner, for large backlogs."""
    records = Signal(object)   # a list of dicts (as `object`: a `list` signal would convert every dict to a QVariantMap)
    failed = Signal(str)

    def __init__(self, folder, jobs, parent: QObject | None = None, interval_ms: int = 500):
        super().__init__(parent)
        self.folder = Path(folder)
        self.path = self.folder / METRICS_FILE
        self.offset = 0            # bytes of the file already handed on
        self._jobs = jobs
        self._busy = False         # a worker is parsing a backlog
        self._stopped = False      # stop() was called: a backlog still being parsed is dropped when it arrives
        self._size = -1            # the size at the last poll: an unchanged file is not read
        self._head = b""           # the file's first bytes: other ones mean it was started anew
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)

    def start(self) -> None:
        self._stopped = False
        self.poll()
        self.timer.start()

    def stop(self) -> None:
        self._stopped = True
        self.timer.stop()

    @property
    def active(self) -> bool:
        return self.timer.isActive()

    def poll(self) -> None:
        if self._busy:
            return
        try:
            size = os.path.getsize(self.path)
        except OSError as e:
            self._fail(f"cannot read {self.path}: {e.strerror or e}")
            return
        if size == self._size:
            return
        self._size = size
        try:
            with open(self.path, "rb") as f:
                head = f.read(HEAD_BYTES)
        except OSError as e:
            self._fail(f"cannot read {self.path}: {e.strerror or e}")
            return
        if size < self.offset or not head.startswith(self._head[:len(head)]):
            self.offset = 0   # started anew (a new run into the same folder): read it from the top
        self._head = head
        if size - self.offset <= INLINE_BYTES:
            try:
                found, self.offset = read_lines(self.path, self.offset)
            except OSError as e:
                self._fail(f"cannot read {self.path}: {e.strerror or e}")
                return
            if found:
                self.records.emit(found)
            return
        self._busy = True
        path, offset = self.path, self.offset
        self._jobs.run(lambda: read_lines(path, offset), self._parsed, self._parse_failed)

    def _parsed(self, result) -> None:
        self._busy = False
        if self._stopped:    # following ended (another run, a checkpoint) while the worker read: drop it
            return
        found, self.offset = result
        self._size = -1   # more may have come while the worker read: look again at the next tick
        if found:
            self.records.emit(found)

    def _parse_failed(self, message: str) -> None:
        self._busy = False
        if not self._stopped:
            self._fail(message)

    def _fail(self, message: str) -> None:
        self.stop()
        self.failed.emit(message)
