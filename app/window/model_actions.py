"""What the window does with a model it already has: fine-tune it on the form's corpus, export it as a script,
switch the tabs to a past step chosen on the loss curve, show samples over time, and offer a run a crash left
behind. A mixin of MainWindow (app/main_window.py), which owns the state these read (loaded, run, past, jobs,
the panels) and _launch / _set_state / _set_notes."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine import api
from engine.errors import PlaygroundError
from engine.export import export_script
from engine.finetune import describe_unencodable
from engine.pretrained import sources_of
from engine.pretrained.finetune import PRETRAINED_FINETUNE

from app.common.workers import TrainWorker, error_message
from app.training.finetune_action import default_replacement, missing_symbols, start_step
from app.training.samples_over_time import SamplesOverTime


class ModelActions:
    """Fine-tune, export, scrub, samples over time and crash recovery, for MainWindow."""

    def checkpoint_in_use(self) -> tuple[str, dict] | None:
        """(folder, meta) of the checkpoint Fine-tune and Export act on: the loaded one, or else this window's run
        once it has ended and been saved as it is (a run saved and trained on, or not saved, has none; nor has a
        followed run or a loaded checkpoint that replaced the run that was saved)."""
        chosen = self.loaded
        if chosen is None and self.saved is not None and self.saved[2] is self.run and self.thread is None \
                and not self.unsaved:
            chosen = self.saved[:2]
        return chosen if chosen is not None and chosen[1].get("family") != "ngram" else None

    @Slot()
    def finetune_checkpoint(self) -> bool:
        """Start a new run from the weights of the checkpoint in use (checkpoint_in_use) on the form's corpus, with
        its tokenizer and model and the form's training settings (the GUI's side of `train --init-from`). Symbols
        the tokenizer cannot encode are named in a question that offers to map them to one token; the new curve
        continues after the checkpoint's on the step axis, its curve kept on the plot as an earlier run."""
        chosen = self.checkpoint_in_use()
        if chosen is None or self.thread is not None or self.panel.corpus_box.corpus is None:
            return False
        path, meta = chosen
        form = self.panel.spec()
        overrides = dict(form.overrides)
        if "pretrained" in meta:   # the form shows the from-scratch preset: its lr would undo what the model knows
            for key in PRETRAINED_FINETUNE:
                overrides.pop(key, None)
            self._set_notes(note=f"A model trained elsewhere fine-tunes at lr {PRETRAINED_FINETUNE['lr']} "
                                 f"(min_lr {PRETRAINED_FINETUNE['min_lr']}), a tenth of the preset's, as "
                                 f"`train --init-from` does.")
        try:
            spec, _ = api.finetune_spec(path, form.corpus, max_steps=form.max_steps, device=form.device,
                                        overrides=overrides, seed=form.seed, meta=meta)
        except (PlaygroundError, OSError) as e:
            self._set_notes(note=f"Cannot fine-tune: {error_message(e)}")
            return False
        corpus = self.panel.corpus_box.corpus
        self.panel.finetune_button.setEnabled(False)   # one check at a time; _set_state enables it again
        self.statusBar().showMessage(f"checking what the checkpoint's tokenizer cannot encode in {corpus.name}…")

        def checked(result) -> None:   # back on the GUI thread: ask, then start
            self.statusBar().clearMessage()
            if self.thread is None:
                self._set_state(self.state)   # the Fine-tune button again
            tok, missing = result
            now = self.checkpoint_in_use()
            if now is None or now[0] != path or self.thread is not None:
                return                 # another checkpoint or a run came first
            mapping = None
            if missing:
                mapping = self.ask_map_unknown(describe_unencodable(tok, missing, corpus.name),
                                               default_replacement(tok))
                if mapping is None:
                    return
            self._launch(TrainWorker(spec, start_run=lambda s: api.finetune_run(
                path, s.corpus, map_unknown=mapping, max_steps=s.max_steps, device=s.device,
                overrides=overrides, seed=s.seed, **sources_of(meta))))
            self.loss_plot.step_offset = start_step(meta)
            self._plotted = (self._plotted[0], f"fine-tuned from {Path(path).name}")

        def failed(message: str) -> None:
            self.statusBar().clearMessage()
            if self.thread is None:
                self._set_state(self.state)   # the Fine-tune button again
            self._set_notes(note=f"Cannot fine-tune: {message}")

        # one pass over the whole corpus (about 0.1 s per MB): on a worker thread, never the GUI's
        self.jobs.run(lambda: missing_symbols(meta, corpus.text), checked, failed)
        return True

    @Slot()
    def export_checkpoint(self, path: str | None = None) -> bool:
        """Write the checkpoint in use's run (checkpoint_in_use) as a plain PyTorch script (engine.export), on a
        worker thread since it reads the corpus; the status bar says where it went, or why not. False when there
        is none or the dialog was cancelled."""
        chosen = self.checkpoint_in_use()
        if chosen is None:
            return False
        folder, meta = chosen
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the run as a PyTorch script",
                                                  str(Path(folder).with_suffix(".py")), "Python (*.py)")
            if not path:
                return False

        def done(result: dict) -> None:
            self.statusBar().showMessage(f"exported {result['script']} (reads {result['corpus']})", 15000)
            self.exported.emit(result["script"])

        def failed(message: str) -> None:
            self._set_notes(error=f"Could not export: {message}")
            self.exported.emit("")

        sources = sources_of(meta)   # a model trained elsewhere: its tokenizer as it was loaded
        # the save dialog asked before an existing file was chosen (Qt's own confirmation)
        self.jobs.run(lambda: export_script(folder, path, overwrite=True, **sources), done, failed)
        return True

    @Slot(int)
    def _on_step_chosen(self, step: int) -> None:
        """The scrub marker was dropped on kept step `step` (-1: back to the newest): the Sample and Graph tabs
        use that step's model, read from the run's snapshots."""
        source = self.run if self.run is not None else self.past
        self._scrub_request += 1
        request = self._scrub_request
        if step < 0 or source is None:
            was_past = self.source.past_step() is not None
            self.source.set_past(None)
            if was_past:   # "now use the model of step N" would stay up, untrue, for its 10 s
                self.statusBar().showMessage("the Sample and Graph tabs use the newest model again", 5000)
            return

        def done(handle) -> None:      # the newest choice wins; a run or another checkpoint that replaced `source` too
            now = self.run if self.run is not None else self.past
            same = now is source or (self.run is None and now is not None and getattr(now, "folder", None) is not None
                                     and now.folder == getattr(source, "folder", None))   # a followed run re-read
            if request == self._scrub_request and same:
                self.source.set_past(handle, step)
                self.statusBar().showMessage(f"the Sample and Graph tabs now use the model of step {step:,}",
                                             10000)

        def failed(message: str) -> None:
            if request == self._scrub_request:
                self.statusBar().showMessage(f"cannot use step {step}: {message}", 15000)

        # reading the snapshot file and building the model take tens of ms: on a worker thread
        self.jobs.run(lambda: source.snapshot_at(step), done, failed)

    @Slot()
    def show_samples_over_time(self) -> SamplesOverTime | None:
        """Open the samples-over-time view for the current run's kept past models."""
        source = self.run if self.run is not None else self.past
        if source is None or not source.snapshot_steps():
            return None
        dialog = SamplesOverTime(source, self)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.show()
        return dialog

    @Slot()
    def offer_recovery(self) -> bool:
        """A run whose window died (its folder still marked running, its process gone) is offered for loading
        from its last autosave; either answer settles it. True when a load started."""
        found = self.keeper.unfinished()
        if not found or self.thread is not None:
            return False
        folder = found[0]
        yes = self.ask_recover(folder)
        self.keeper.settle(folder, yes)
        return bool(yes) and self.load_checkpoint(str(folder / "checkpoint"))

    def ask_recover(self, folder: Path) -> bool:
        """Whether to load the autosave of a run a crash left behind. Tests replace this method."""
        answer = QMessageBox.question(self, "Recover a run", f"The window closed unexpectedly while training the "
                                      f"run in {folder}.\nLoad its last autosave (at its latest evaluation)?",
                                      QMessageBox.Yes | QMessageBox.No)
        return answer == QMessageBox.Yes

    def ask_map_unknown(self, message: str, replacement: str) -> str | None:
        """The token to map unencodable symbols to, or None to cancel. Tests replace this method."""
        shown = "a space" if replacement == " " else repr(replacement)
        answer = QMessageBox.question(self, "Fine-tune", f"{message.split('. Map them')[0]}.\n\nMap them to "
                                      f"{shown} and fine-tune?", QMessageBox.Yes | QMessageBox.Cancel)
        return replacement if answer == QMessageBox.Yes else None
