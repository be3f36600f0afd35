"""File → Open run…: the window follows a run that another process trains (`main.py train --out DIR`, also under
torchrun), mixed into MainWindow like CheckpointActions. Its loss curve grows live from DIR/metrics.jsonl (read by
window/run_watcher.py), with the validation points marked windowed or whole split as they were computed; each
checkpoint the run writes (at every evaluation and at its end) is read on a worker thread and becomes the model of
the Sample, Graph and Inside tabs, as a loaded checkpoint does (CheckpointActions.show_checkpoint)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine import api
from engine.checkpoint import META
from engine.metrics_log import METRICS_FILE, report_from_record

from app.window.run_watcher import RunWatcher


# records shown per turn of the event loop: a long run's backlog (100,000 lines) is drawn in slices, so the window
# stays responsive while it catches up
RECORDS_PER_TURN = 500


class RunFollowing:
    watcher: RunWatcher | None = None
    _follow_queue: list | None = None              # records read but not shown yet
    _follow_ckpt: tuple[str, int] | None = None    # (folder, step) of a checkpoint to read once the reader is free
    _follow_reading = False
    _follow_step = -1                              # the step of the checkpoint shown

    def ask_run_path(self) -> str:
        """The run folder to follow ("" when the dialog is cancelled). Tests replace this method."""
        start = Path("runs") if Path("runs").is_dir() else Path.cwd()
        return QFileDialog.getExistingDirectory(self, "Open run folder (main.py train --out)", str(start))

    @Slot()
    def open_run(self, path: str | None = None) -> bool:
        """Follow the run in `path` (asked for when None). A folder without metrics.jsonl that holds a checkpoint
        is loaded as one; any other folder is refused with the reason. False when nothing started (a local run
        trains, the dialog was cancelled, the user kept an unsaved run, the folder is not a run)."""
        if self.thread is not None:
            self.statusBar().showMessage("Stop the current run before opening another one.", 15000)
            return False
        if self._loading:   # the checkpoint being read would show over the followed run when it arrives
            self.statusBar().showMessage("A checkpoint is being loaded: open the run when it is shown.", 15000)
            return False
        path = path or self.ask_run_path()
        if not path:
            return False
        folder = Path(path)
        if not (folder / METRICS_FILE).is_file():
            if (folder / META).is_file():
                return self.load_checkpoint(str(folder))
            self._set_notes(error=f"Could not open the run: {folder} has no {METRICS_FILE} (the file "
                                  f"`main.py train --out {folder.name}` writes as it trains)")
            return False
        if self.run is not None and self.unsaved:
            answer = self.ask_save_before_load()
            if answer == QMessageBox.Cancel or (answer == QMessageBox.Save and self.save_checkpoint() is None):
                return False
        self.stop_following()
        self._new_plot({}, f"run {folder.name}")
        self.run, self.last_report, self.unsaved, self.loaded, self.past = None, None, False, None, None
        self.source.clear()   # until its first checkpoint, the tabs have no model (not the previous one)
        self._follow_ckpt, self._follow_reading, self._follow_step = None, False, -1
        self.notice.clear()
        self._set_notes(error="", warning="", about=f"Following the run in {folder}", eval="",
                        note="Its loss curve grows as it trains; its model loads at each checkpoint it writes.")
        self._set_state("idle")
        self.status_state.setText("following a run")
        self.watcher = RunWatcher(folder, self.jobs, self)
        self._follow_queue = []
        self.watcher.records.connect(self._queue_run_records)
        self.watcher.failed.connect(lambda why: self._set_notes(error=f"Stopped following: {why}"))
        self.watcher.start()
        return True

    def stop_following(self) -> None:
        self._follow_queue = []
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher.deleteLater()
            self.watcher = None

    def _queue_run_records(self, records: list) -> None:
        """Show new records in file order, RECORDS_PER_TURN at a time."""
        start = not self._follow_queue
        self._follow_queue.extend(records)
        if start:
            self._drain_run_records()

    def _drain_run_records(self) -> None:
        if self.watcher is None or not self._follow_queue:
            return
        batch = self._follow_queue[:RECORDS_PER_TURN]
        self._on_run_records(batch)
        del self._follow_queue[:len(batch)]
        if self._follow_queue:
            QTimer.singleShot(0, self._drain_run_records)

    def _on_run_records(self, records: list) -> None:
        reports = []
        for rec in records:
            event = rec.get("event")
            if event == "start":
                if rec.get("step") == 0:   # a new run into the folder (a resume starts past 0 and carries on)
                    reports.clear()
                    self.loss_plot.clear()
                self._on_run_start(rec)
            elif event == "checkpoint" and isinstance(rec.get("step"), int):
                self._read_followed_checkpoint(rec["step"])
            elif event == "end":
                status = rec.get("status")
                why = f": {rec['error']}" if isinstance(rec.get("error"), str) else ""
                self.notice.show_notice("done" if status == 0 else "error",
                                        f"The followed run ended at step {rec.get('step', 0):,} "
                                        f"(exit status {status}){why}.")
                self.status_state.setText("followed run ended" if status == 0 else "followed run failed")
            else:
                r = report_from_record(rec)
                if r is not None:
                    reports.append(r)
        if not reports:
            return
        self.loss_plot.add_reports(reports)
        last = reports[-1]
        self.panel.show_report(last, eta=last.event not in ("done", "error"))
        self.status_step.setText(f"step {last.step:,}")
        self.status_speed.setText(f"{last.tokens_per_s:,.0f} tok/s")
        for r in reports:
            if r.val_loss is not None:
                self._set_notes(eval=f"step {r.step:,}: validation loss {r.val_loss:.4f} nats/token, "
                                     f"{r.val_bpc:.3f} bits/char ({r.val_scope or 'whole split'})")
            if r.event == "error":
                self._set_notes(error=f"The followed run failed: {r.message}")

    def _on_run_start(self, rec: dict) -> None:
        batch = ""
        if rec.get("global_batch"):
            world = rec.get("world_size", 1)
            batch = (f", global batch {rec['global_batch']:,} = {rec.get('batch_size')} × grad_accum "
                     f"{rec.get('grad_accum', 1)} × {world} process{'es' if world != 1 else ''}")
        evals = f"; evaluations during training on {rec['eval_scope']}" if rec.get("eval_scope") else ""
        params = f" ({rec['params']:,} params)" if isinstance(rec.get("params"), int) else ""
        self._set_notes(about=f"Following {self.watcher.folder}: {rec.get('model', '?')}{params} on "
                              f"{rec.get('device', '?')}{batch}{evals}")

    def _read_followed_checkpoint(self, step: int) -> None:
        """Read the run folder's checkpoint on a worker; one read at a time, and only the newest one waiting."""
        if self.watcher is None:
            return
        self._follow_ckpt = (str(self.watcher.folder), step)
        if self._follow_reading:
            return
        folder, step = self._follow_ckpt
        self._follow_ckpt, self._follow_reading = None, True
        watcher = self.watcher

        def done(handle: api.ModelHandle) -> None:
            self._follow_reading = False
            if watcher is self.watcher and self.thread is None:
                self._follow_step = int(handle.meta.get("step", step))
                self.show_checkpoint(folder, handle, following=True)
                self.status_state.setText(f"following a run · model of step {self._follow_step:,}")
            self._next_followed_checkpoint()

        def failed(message: str) -> None:   # the run may be rewriting it right now: the next one will do
            self._follow_reading = False
            self.statusBar().showMessage(f"could not read the followed run's checkpoint: {message}", 10000)
            self._next_followed_checkpoint()
        self.jobs.run(lambda: api.load_checkpoint(folder), done, failed)

    def _next_followed_checkpoint(self) -> None:
        if self._follow_ckpt is not None:
            self._read_followed_checkpoint(self._follow_ckpt[1])
