"""Never lose a run in the window: each run gets a folder under the default runs location (engine/runs_dir.py),
where its past models are kept (snapshots/, for scrubbing) and the run is autosaved at every evaluation and at its
end (checkpoint/). Saving happens on a worker thread (the run's lock makes it safe while training goes on); a
save still under way when the next evaluation comes is not doubled. A run whose window died leaves its folder
marked "running"; the next window offers to load its last autosave."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.common.jobs import JobRunner
from engine import runs_dir

log = logging.getLogger(__name__)


class RunKeeper(QObject):
    saved = Signal(str)        # an autosave finished: the checkpoint folder
    failed = Signal(str)       # an autosave or the run folder failed: why

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.folder: Path | None = None     # the current run's folder
        self._jobs = JobRunner(self)
        self._saving = False
        self._again = None                  # a run to save once the save under way ends
        self._end_after_save = False

    def begin(self, family: str) -> Path | None:
        """A new run starts: make its folder; returns where its snapshots go (None when the runs location
        cannot be written: the run goes on, unsaved, and `failed` says why)."""
        self.finish_quietly()
        try:
            self.folder = runs_dir.new_run_folder(family)
        except OSError as e:
            self.folder = None
            self.failed.emit(f"no run folder under {runs_dir.runs_root()}: {e.strerror or e}")
            return None
        return self.folder / "snapshots"

    def checkpoint_dir(self) -> Path | None:
        return None if self.folder is None else self.folder / "checkpoint"

    def autosave(self, run, final: bool = False) -> None:
        """Save `run` into the run folder's checkpoint/ (off the GUI thread). final: the run ended; once saved,
        its folder is marked ended, so it is not offered for recovery."""
        if self.folder is None or run is None:
            return
        self._end_after_save = self._end_after_save or final
        if self._saving:
            self._again = run
            return
        self._saving = True
        folder, target = self.folder, self.checkpoint_dir()
        self._jobs.run(lambda: run.save(target), lambda path: self._on_saved(path, folder),
                       lambda message: self._on_failed(message, folder))

    def _on_saved(self, path, folder: Path) -> None:
        if folder is not self.folder:   # an earlier run's save, answered after the next run began: settled already
            return
        self._saving = False
        self.saved.emit(str(path))
        self._next()

    def _on_failed(self, message: str, folder: Path) -> None:
        if folder is not self.folder:
            return
        self._saving = False
        self.failed.emit(f"autosave failed: {message}")
        self._next()

    def _next(self) -> None:
        if self._again is not None:
            run, self._again = self._again, None
            self.autosave(run)
        elif self._end_after_save and self.folder is not None:
            self._mark("ended")
            self._end_after_save = False

    def finish_quietly(self) -> None:
        """Wait for a save under way; the folder of the run left behind is marked ended."""
        self._jobs.wait()
        self._saving, self._again, self._end_after_save = False, None, False   # nothing carries over to a new run
        if self.folder is not None:
            self._mark("ended")

    def _mark(self, state: str) -> None:
        try:
            runs_dir.mark(self.folder, state)
        except OSError as e:
            log.warning("could not mark %s %s: %s", self.folder, state, e)

    @staticmethod
    def unfinished() -> list[Path]:
        return runs_dir.unfinished_runs()

    @staticmethod
    def settle(folder: Path, recovered: bool) -> None:
        """The user answered the recovery offer for `folder`: it is not offered again."""
        try:
            runs_dir.mark(folder, "recovered" if recovered else "dismissed")
        except OSError as e:
            log.warning("could not mark %s: %s", folder, e)
