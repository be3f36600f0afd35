"""The main window's checkpoint commands, Save and Load, kept apart from the run control in main_window.py.
`CheckpointActions` is mixed into MainWindow and uses its run, form, plot, ModelSource and JobRunner. The Save
button (and Save when closing) writes on a worker thread, and a checkpoint is read and checked on a worker thread too;
MainWindow's `load_finished(bool)` signal says how a load ended."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine import api
from engine.checkpoint import load_meta
from engine.errors import PlaygroundError
from engine.pretrained import NeedsTokenizer
from engine.history import LossHistory
from engine.runs_dir import runs_root

from app.common.workers import error_message
from app.training.plot_axes import chars_per_token
from app.training.model_form import checkpoint_eval_line, checkpoint_settings


def _read_model(path: str, sources: dict):
    """The worker's part of a load: the ModelHandle, or the NeedsTokenizer error itself (returned, not raised, so
    the window can ask for the tokenizer file and try again)."""
    try:
        return api.load_checkpoint(path, **sources)
    except NeedsTokenizer as e:
        return e


class CheckpointActions:
    # -- checkpoints -----------------------------------------------------------------------------------------
    def ask_save_path(self) -> str:
        """The folder to save the run in ("" when the dialog is cancelled). Tests replace this method."""
        step = self.last_report.step if self.last_report is not None else 0
        default = str(runs_root() / f"{self.run.spec.family}-step{step}-{time.strftime('%Y%m%d-%H%M%S')}")
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint (a folder)", default)
        return path

    @Slot()
    def save_checkpoint(self, path: str | None = None) -> Path | None:
        """Save here and now, on this thread (for callers that need the result at once); the Save button and
        closing with Save use save_in_background."""
        if self.run is None:
            return None
        path = path or self.ask_save_path()
        if not path:
            return None
        try:
            out, meta = _save(self.run, path)
        except (PlaygroundError, OSError) as e:
            self._save_failed(error_message(e))
            return None
        self._saved(self.last_report.step if self.last_report is not None else None, out, meta)
        self._set_state(self.state)   # Fine-tune and Export can use it now
        return out

    @Slot()
    def save_in_background(self, then=None) -> bool:
        """Ask for a folder, then write the checkpoint on a worker thread: a 10M-parameter model with its AdamW
        moments is over 100 MB and took ~0.3 s, a frozen window, on the GUI thread. `then()` runs once it is
        saved. False when nothing was started (no run, a save already running, the dialog cancelled)."""
        if self.run is None or self._saving:
            return False
        path = self.ask_save_path()
        if not path:
            return False
        run, step = self.run, self.last_report.step if self.last_report is not None else None
        self._saving = True
        self.panel.save_button.setEnabled(False)
        self.statusBar().showMessage(f"saving checkpoint to {path}…")

        def done(result: tuple[Path, dict]) -> None:
            if run is self.run:
                self._saved(step, *result)
            self._save_ended()   # Save back as the state allows; Fine-tune and Export can use the folder now
            if then is not None:
                then()
            elif self._close_when_saved:
                self.close()

        def failed(message: str) -> None:
            self._save_ended()
            self._close_when_saved = False   # the window stays, saying why the save failed
            self._save_failed(message)
        self.jobs.run(lambda: _save(run, path), done, failed)
        return True

    def _save_ended(self) -> None:
        self._saving = False
        self._set_state(self.state)   # Save back as the state allows

    def _saved(self, step: int | None, out: Path, meta: dict) -> None:
        """step: the run's step when the save began (a run that trained on meanwhile is still unsaved)."""
        self._saved_step = step
        self.saved = (str(out), meta, self.run)
        self.unsaved = self.last_report is not None and self.last_report.step != step
        if self._notes["error"].startswith("Could not"):
            self._set_notes(error="")
        self.statusBar().showMessage(f"saved checkpoint to {out}", 10000)

    def _save_failed(self, message: str) -> None:
        self.statusBar().clearMessage()
        self._set_notes(error=f"Could not save: {message}")

    @Slot()
    def load_checkpoint(self, path: str | None = None, sources: dict | None = None) -> bool:
        """Start loading a checkpoint on a worker thread (reading and checking its files, building the model); the
        window stays responsive and `load_finished(bool)` tells how it ended. True when a load started; False when
        a run is active, another load is under way, or the folder dialog was cancelled. A refused checkpoint (any
        CheckpointError) leaves the window as it was, with the reason shown. The path may also be a model trained
        elsewhere (engine.pretrained: a GPT-2 folder, a nanoGPT ckpt.pt); `sources` are load_checkpoint's
        tokenizer_file / meta_file, asked for when such a model brings no tokenizer."""
        if self.thread is not None or self._loading:
            return False
        path = path or self.ask_load_path()
        if not path:
            return False
        path = str(path)
        self.stop_following()   # a checkpoint chosen by hand replaces a followed run
        self._loading = path
        self.panel.load_button.setEnabled(False)
        self.statusBar().showMessage(f"loading checkpoint {path}…")
        self.jobs.run(lambda: _read_model(path, sources or {}), self._on_checkpoint_read, self._on_checkpoint_refused)
        return True

    @Slot()
    def open_model(self, path: str | None = None) -> bool:
        """File → Open model…: a model trained elsewhere, picked as a file (nanoGPT's ckpt.pt, or config.json or
        model.safetensors inside a Hugging Face GPT-2 folder); loaded as load_checkpoint does."""
        if self.thread is not None or self._loading:
            return False
        path = path or self.ask_model_path()
        if path and Path(path).is_file() and Path(path).suffix != ".pt":   # a file of a GPT-2 folder: the folder
            path = str(Path(path).parent)
        return self.load_checkpoint(path)

    def ask_model_path(self) -> str:
        """The file naming a model trained elsewhere ("" when cancelled). Tests replace this method."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model: nanoGPT's ckpt.pt, or config.json in a Hugging Face GPT-2 folder", str(Path.home()),
            "Models (*.pt config.json *.safetensors *.bin);;All files (*)")
        return path

    def ask_tokenizer_path(self, message: str) -> str:
        """A tokenizer for a model that brings none (nanoGPT on GPT-2's tokens): tokenizer.json, vocab.json (its
        folder is used, with merges.txt) or nanoGPT's meta.pkl; "" when cancelled. Tests replace this method."""
        QMessageBox.information(self, "The model needs its tokenizer", message)
        path, _ = QFileDialog.getOpenFileName(self, "Its tokenizer: tokenizer.json, vocab.json or meta.pkl",
                                              str(Path.home()), "Tokenizers (*.json *.pkl);;All files (*)")
        return path

    def ask_load_path(self) -> str:
        """The checkpoint folder to load ("" when the dialog is cancelled). Tests replace this method."""
        return QFileDialog.getExistingDirectory(self, "Load checkpoint folder", str(runs_root()))

    @Slot()
    def load_in_background(self) -> bool:
        """The Load button and File → Load: ask for a folder, then load it (see load_checkpoint)."""
        return self.load_checkpoint()

    def _load_ended(self) -> None:
        self._loading = None
        self.statusBar().clearMessage()
        self._set_state(self.state)

    def _on_checkpoint_refused(self, message: str) -> None:
        self._load_ended()
        self._set_notes(error=f"Could not load: {message}")   # what is on screen stays described
        self.statusBar().showMessage(f"could not load the checkpoint: {message}", 15000)
        self.load_finished.emit(False)

    def _on_checkpoint_read(self, handle) -> None:
        path = self._loading
        self._load_ended()
        if isinstance(handle, NeedsTokenizer):   # ask for the tokenizer, then read the model again with it
            chosen = self.ask_tokenizer_path(str(handle))
            if not chosen:
                self._on_checkpoint_refused(str(handle))
                return
            chosen = Path(chosen)
            sources = ({"meta_file": str(chosen)} if chosen.suffix == ".pkl" else
                       {"tokenizer_file": str(chosen.parent if chosen.name == "vocab.json" else chosen)})
            self.load_checkpoint(path, sources)
            return
        self.load_finished.emit(self.show_checkpoint(path, handle))

    def show_checkpoint(self, path: str, handle: api.ModelHandle, following: bool = False) -> bool:
        """Make a read checkpoint the window's model: the form shows its settings, the loss plot and progress
        start from it, Save is off (the run it came from is gone; the checkpoint is already on disk) and Resume
        trains it further. An unsaved run is offered for saving first, since loading replaces it. False when the
        user keeps the run, or a run started while the checkpoint was read. `following`: the checkpoint of a run
        the window follows (window/run_follow.py), whose metrics.jsonl already draws the plot and the progress:
        those are left as they are."""
        if self.thread is not None:
            self.statusBar().showMessage(f"checkpoint {path} not shown: a run started meanwhile", 15000)
            return False
        if self.run is not None and self.unsaved:
            answer = self.ask_save_before_load()
            if answer == QMessageBox.Cancel or (answer == QMessageBox.Save and self.save_checkpoint() is None):
                return False
        meta = handle.meta
        corpus, read_as = meta.get("spec", {}).get("corpus"), meta.get("spec", {}).get("on_bad_utf8", "error")
        data = meta.get("spec", {}).get("data")
        if data and self.panel.corpus_box.open_prepared(data, meta["spec"].get("data_fingerprint")):
            pass   # trained from a prepared folder that still holds its data: used as it is, the text is not read
        elif corpus and (corpus, read_as) != (self.panel.corpus_box.spec(), self.panel.corpus_box.on_bad_utf8()):
            # in the background, read as the run read it; _on_corpus_loaded/_failed finish the job
            self.panel.corpus_box.load(corpus, on_bad_utf8=read_as)
        unshown = self.panel.apply_settings(checkpoint_settings(meta))
        self.run, self.last_report, self.unsaved, self.loaded = None, None, False, (path, meta)
        step = int(meta.get("step", meta.get("summary", {}).get("step", 0)) or 0)
        max_steps = int(meta.get("train", {}).get("max_steps", step) or step)
        if not following:
            self._new_plot(meta.get("spec", {}), f"checkpoint {Path(path).name}")
            self.loss_plot.show_parent(meta.get("parent"))   # a fine-tuned checkpoint: its parent's curve first
        self.loss_plot.set_train_chars_per_token(chars_per_token(meta.get("summary", {})))
        self.past = api.past_models(path, handle)     # a window run's folder: its past models can be scrubbed
        if self.past is not None:
            self.loss_plot.set_kept_steps(self.past.snapshot_steps(), self.past.snapshot_disk_bytes())
        if not following:
            self.loss_plot.add_reports(LossHistory.from_dict(meta.get("history")).reports(max_steps))
        self.source.set_checkpoint(handle, path, self.panel.corpus_box.validation_text())
        if following:
            self._set_state("loaded")
            return True
        self.panel.progress.setMaximum(max(max_steps, 1))
        self.panel.progress.setValue(min(step, max_steps))
        self.panel.progress.setFormat(f"checkpoint at step {step:,} / {max_steps:,}")
        self.panel.set_speed(" ")
        self.status_step.setText(f"step {step:,}")
        self.status_speed.setText("")
        self.status_eta.setText("ETA —")
        further = "Resume trains it further, up to max_steps" + (f" (above {step:,})." if step >= max_steps else ".")
        further = further if meta.get("family") != "ngram" else ""
        if "pretrained" in meta:   # no run of ours to resume
            self.panel.progress.setFormat(f"trained elsewhere, step {step:,}" if step else "trained elsewhere")
            notes = meta["pretrained"].get("notes") or []
            further = ("Trained elsewhere: sample it, look inside, step its tape; Fine-tune on this corpus trains a "
                       "copy of it." + "".join(f" Note: {n}." for n in notes))
        if unshown:
            further += " Not shown in the form (outside its ranges): " + "; ".join(unshown) + "."
        self._set_notes(error="", warning="", about=self.source.describe(), eval=checkpoint_eval_line(meta),
                        note=further.strip())
        self._set_state("loaded")
        self.statusBar().showMessage(f"loaded checkpoint {path}", 10000)
        return True

    def ask_save_before_load(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel. Tests replace this method to answer without a dialog."""
        return QMessageBox.question(self, "Save the model?",
                                    "Loading a checkpoint replaces the current run, which has not been saved. "
                                    "Save it first?",
                                    QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)


def _save(run: api.Run, path) -> tuple[Path, dict]:
    """Write the run's checkpoint and read back its meta (on the caller's thread: a worker's for the Save button),
    which Fine-tune and Export use as a loaded checkpoint's."""
    out = run.save(path)
    return out, load_meta(out)
