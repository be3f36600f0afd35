"""The main window's checkpoint commands, Save and Load, kept apart from the run control in main_window.py.
`CheckpointActions` is mixed into MainWindow and uses its run, form, plot and ModelSource."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine import api
from engine.errors import PlaygroundError
from engine.history import LossHistory

from app.common.workers import error_message
from app.training.model_form import checkpoint_eval_line, checkpoint_settings


class CheckpointActions:
    # -- checkpoints -----------------------------------------------------------------------------------------
    @Slot()
    def save_checkpoint(self, path: str | None = None) -> Path | None:
        if self.run is None:
            return None
        if path is None:
            step = self.last_report.step if self.last_report is not None else 0
            default = f"runs/{self.run.spec.family}-step{step}-{time.strftime('%Y%m%d-%H%M%S')}"
            path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint (a folder)", default)
            if not path:
                return None
        try:
            out = self.run.save(path)
        except (PlaygroundError, OSError) as e:
            self._set_notes(error=f"Could not save: {error_message(e)}")
            return None
        self.unsaved = False
        self._saved_step = self.last_report.step if self.last_report is not None else None
        if self._notes["error"].startswith("Could not"):
            self._set_notes(error="")
        self.statusBar().showMessage(f"saved checkpoint to {out}", 10000)
        return out

    @Slot()
    def load_checkpoint(self, path: str | None = None) -> bool:
        """Make the checkpoint the window's model: the form shows its settings, the loss plot and progress start
        from it, Save is off (the run it came from is gone; the checkpoint is already on disk) and Resume trains
        it further. An unsaved run is offered for saving first, since loading replaces it."""
        if self.thread is not None:
            return False
        if path is None:
            path = QFileDialog.getExistingDirectory(self, "Load checkpoint folder", "runs")
            if not path:
                return False
        try:
            handle = api.load_checkpoint(path)
        except (PlaygroundError, OSError) as e:
            self._set_notes(error=f"Could not load: {error_message(e)}")   # what is on screen stays described
            return False
        if self.run is not None and self.unsaved:
            answer = self.ask_save_before_load()
            if answer == QMessageBox.Cancel or (answer == QMessageBox.Save and self.save_checkpoint() is None):
                return False
        meta = handle.meta
        corpus = meta.get("spec", {}).get("corpus")
        if corpus and corpus != self.panel.corpus_box.spec():
            self.panel.corpus_box.load(corpus)   # in the background; _on_corpus_loaded/_failed finish the job
        self.panel.apply_settings(checkpoint_settings(meta))
        self.run, self.last_report, self.unsaved, self.loaded = None, None, False, (path, meta)
        self._new_plot(meta.get("spec", {}), f"checkpoint {Path(path).name}")
        step = int(meta.get("step", meta.get("summary", {}).get("step", 0)) or 0)
        max_steps = int(meta.get("train", {}).get("max_steps", step) or step)
        self.loss_plot.add_reports(LossHistory.from_dict(meta.get("history")).reports(max_steps))
        self.source.set_checkpoint(handle, path, self.panel.corpus_box.validation_text())
        self.panel.progress.setMaximum(max(max_steps, 1))
        self.panel.progress.setValue(min(step, max_steps))
        self.panel.progress.setFormat(f"checkpoint at step {step:,} / {max_steps:,}")
        self.panel.speed.setText(" ")
        self.status_step.setText(f"step {step:,}")
        self.status_speed.setText("")
        self.status_eta.setText("ETA —")
        further = "Resume trains it further, up to max_steps" + (f" (above {step:,})." if step >= max_steps else ".")
        self._set_notes(error="", about=self.source.describe(), eval=checkpoint_eval_line(meta),
                        note=further if meta.get("family") != "ngram" else "")
        self._set_state("loaded")
        self.statusBar().showMessage(f"loaded checkpoint {path}", 10000)
        return True

    def ask_save_before_load(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel. Tests replace this method to answer without a dialog."""
        return QMessageBox.question(self, "Save the model?",
                                    "Loading a checkpoint replaces the current run, which has not been saved. "
                                    "Save it first?",
                                    QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
