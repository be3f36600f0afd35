"""Ctrl+C and SIGTERM during a headless run: the first one stops the run between optimizer steps so the caller
can save a checkpoint at the last completed step; a second one exits at once (status 128 + signal number).

Only the main thread may install signal handlers, so this is for the CLI; the window has its own Stop."""
from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["StopOnSignal"]

_NAMES = {signal.SIGINT: "Ctrl+C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class StopOnSignal:
    """Context manager. `run` needs a `stop()` (engine.api.Run: takes effect between steps, a paused run wakes).

    After the first SIGINT/SIGTERM, `signum` holds its number and `exit_status` is 128 + that number (130 for
    Ctrl+C, 143 for SIGTERM); the caller stops iterating reports, saves, and returns `exit_status`. A second
    signal writes one line to stderr and ends the process with os._exit: nothing more is saved, and a save that
    was in progress leaves only a hidden temporary folder, which the next save at that place removes."""

    def __init__(self, run):
        self.run = run
        self.signum: int | None = None
        self._old: dict = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_status(self) -> int:
        return 128 + self.signum if self.signum is not None else 0

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is not threading.main_thread():
            return self   # only the main thread may set handlers; a caller on another thread keeps Python's own
        for s in _NAMES:
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            sys.stderr.write(f"\n{_NAMES[signum]} again: quitting without saving\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        sys.stderr.write(f"\n{_NAMES[signum]}: stopping after the current step and saving a checkpoint "
                         f"(press Ctrl+C again to quit without saving)\n")
        sys.stderr.flush()
        self.run.stop()
