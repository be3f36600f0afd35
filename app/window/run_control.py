"""The main window's run control, mixed into MainWindow (app/main_window.py) like CheckpointActions: Start, Pause,
Resume and Stop, going on with a loaded checkpoint, and the slots that take a training worker's signals (prepared,
reports, evaluating, failed, finished) on the GUI thread. The worker trains on its own QThread
(app/common/workers.py); everything here runs on the GUI thread and reads the window's state (run, worker, thread,
state, loss_plot, panel, keeper), which MainWindow sets up."""
from __future__ import annotations

from dataclasses import asdict

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QApplication

from engine import api
from engine.errors import PlaygroundError

from app.common.workers import TrainWorker, error_message, start_worker
from app.training.plot_axes import chars_per_token
from app.training.run_box import format_duration


class RunControl:
    # The worker's slots (_on_prepared, _on_reports, _on_evaluating, _on_failed, _on_finished) are plain methods, not
    # @Slot: PySide 6.11 does not register a @Slot defined in a class that is not a QObject on the window's
    # meta-object, and a queued connection from the worker's thread to one was then never delivered (@Slot(object))
    # or ran on the worker's thread (@Slot()). A plain bound method of the window is queued to the GUI thread
    # (tests/app/test_main_window.py::test_the_workers_signals_are_handled_on_the_gui_thread).
    @Slot()
    def start(self) -> None:
        box = self.panel.corpus_box
        if self.panel.check() or self.thread is not None or box.is_loading() or box.awaiting_prepare():
            return
        self.save_settings()
        self._launch(TrainWorker(self.panel.spec()))

    def resume_checkpoint(self) -> bool:
        """Go on training the loaded checkpoint (weights, optimizer, data position and RNG as saved) up to the
        form's max_steps, on the form's device, with the form's training settings (lr, batch_size, ...): the GUI's
        side of the CLI's --resume. Changed model settings, corpus or tokenizer are refused with the reason, and
        the checkpoint stays loaded."""
        if self.loaded is None or self.thread is not None:
            return False
        path, _ = self.loaded
        form = self.panel.spec()
        expect = {"family": form.family, "tokenizer": form.tokenizer, "corpus": form.corpus}
        try:
            spec = api.resume_spec(path, max_steps=form.max_steps, device=form.device, overrides=form.overrides,
                                   expect=expect)
        except (PlaygroundError, OSError) as e:
            why = error_message(e)   # a changed model or data can only be a new run; a too-low max_steps, raised
            self._set_notes(note=f"Cannot resume: {why}" + (". Start trains a new model with these settings."
                                                             if why.startswith("cannot resume with") else ""))
            return False
        self._launch(TrainWorker(spec, start_run=lambda s: api.resume_run(
            path, max_steps=s.max_steps, device=s.device, overrides=form.overrides, expect=expect)),
            continues_plot=True)
        return True

    def _launch(self, worker: TrainWorker, continues_plot: bool = False) -> None:
        """continues_plot: the run resumes the loaded checkpoint, whose history the plot shows; it carries on."""
        self.stop_following()   # a run of this window's own replaces a followed one
        if continues_plot:
            self._plotted = (asdict(worker.spec), (self._plotted[1] if self._plotted else "checkpoint") + ", resumed")
        else:
            self._new_plot(asdict(worker.spec))
        self.panel.corpus_box.clear_error()   # an old corpus error says nothing about this run
        self.notice.clear()                   # nor how the last run ended
        self.statusBar().clearMessage()       # nor does an earlier run's error
        self.run, self.last_report, self.unsaved, self._stop_requested = None, None, False, False
        self.loaded, self._saved_step, self.saved, self.past = None, None, None, None
        self._set_notes(error="", warning="", about="", note="", eval="")
        self.worker = worker
        worker.snapshot_folder = self.keeper.begin(worker.spec.family)
        self.worker.prepared.connect(self._on_prepared, Qt.QueuedConnection)
        self.worker.reports.connect(self._on_reports, Qt.QueuedConnection)
        self.worker.failed.connect(self._on_failed, Qt.QueuedConnection)
        self.worker.evaluating.connect(self._on_evaluating, Qt.QueuedConnection)
        self.worker.finished.connect(self._on_finished, Qt.QueuedConnection)
        self._set_state("preparing")
        self.thread = start_worker(self.worker, "train")

    def _new_plot(self, spec: dict, note: str = "") -> None:
        """The loss plot starts afresh for the next run or checkpoint (`spec`: its RunSpec as a dict); the run it
        showed stays on it as an earlier run to compare against."""
        if self._plotted is not None:
            self.loss_plot.keep_as_earlier_run(*self._plotted)
        self.loss_plot.clear()
        self._plotted = (spec, note)

    @Slot()
    def pause(self) -> None:
        r = self.last_report
        if r is not None and r.step >= r.max_steps:
            return   # the last step is done: the run is only finishing (a final evaluation), nothing to pause
        if self.worker is not None and self.state == "running":
            self.worker.pause()
            self._set_state("paused")   # the run pauses after its current step

    @Slot()
    def resume(self) -> None:
        if self.state == "loaded":
            self.resume_checkpoint()
        elif self.worker is not None and self.state == "paused":
            self.worker.resume()
            self._set_notes(note="")   # "paused at step N" is over
            self._set_state("running")

    @Slot()
    def stop(self) -> None:
        """Stop ends the run after its current step; pressed again during the final validation, it skips it."""
        if self.worker is not None and self.state in ("preparing", "running", "paused"):
            self._stop_requested = True
            self.worker.stop()
            self._set_state("stopping")
        elif self.worker is not None and self.state == "validating":
            self.worker.skip_evaluation()

    def _from_old_worker(self) -> bool:
        """Whether the signal being handled comes from a training worker that is no longer this window's.
        shutdown_run ends a run without the event loop, so that worker's last reports and its finished signal are
        still queued when the next run starts; they must not reach it (the old finished would make the GUI thread
        wait for the new run's thread to end). Such a worker is kept in _retired until its finished signal arrives:
        a deleted sender reads as None. A slot called directly is current whatever sender() says then (None, or
        the menu action whose close() led here)."""
        sender = self.sender()
        return isinstance(sender, TrainWorker) and sender is not self.worker

    def _on_evaluating(self) -> None:
        """The run has ended (it can be saved now); its final validation pass runs on the worker thread."""
        if self._from_old_worker():
            return
        if self.state == "stopping":
            self._set_state("validating")

    def _on_prepared(self, run: api.Run) -> None:
        if self._from_old_worker():
            return
        self.run = run
        self.source.set_run(run)
        self.loss_plot.set_train_chars_per_token(chars_per_token(run.summary()))
        self.status_device.setText(f"device: {run.summary()['device']}")
        self._set_notes(warning="; ".join(f"Warning: {w}" for w in run.warnings()))   # stays for the whole run
        self._describe_run()
        if self.state == "preparing":
            self._set_state("running")
            # the progress bar's "preparing…" would stay until the first report, under a status that says training
            if run.trainer is not None:   # an n-gram counts, it has no steps
                self.panel.progress.setFormat("training: the first steps…")

    def _on_reports(self, reports: list) -> None:
        if self._from_old_worker():
            return
        self.loss_plot.add_reports(reports)
        if self.run is not None:
            steps = self.run.snapshot_steps()
            if steps != self.loss_plot.kept_steps:   # the disk size stats every file: only when a step was kept
                self.loss_plot.set_kept_steps(steps, self.run.snapshot_disk_bytes())
            if any(e.val_loss is not None for e in reports):
                self.keeper.autosave(self.run)      # every evaluation: the run is never only in memory
        r = self.last_report = reports[-1]
        self.unsaved = self.unsaved or r.step != self._saved_step   # a final validation changes no weights
        self.panel.show_report(r, eta=self.state not in ("stopping", "validating"))
        self.status_step.setText(f"step {r.step:,}/{r.max_steps:,}")
        self.status_speed.setText(f"{r.tokens_per_s:,.0f} tok/s")
        self.status_eta.setText("ETA —" if r.eta_s is None or self.state in ("stopping", "validating")
                                else f"ETA {format_duration(r.eta_s)}")
        if self.state == "paused":
            self._show_paused()
        for e in reports:
            if e.message and e.event != "error":
                self._set_notes(note=e.message)
            if e.val_loss is not None:
                caveat = self.run.summary().get("val_bpc_note", "") if self.run is not None else ""
                self._set_notes(eval=f"step {e.step:,}: validation loss {e.val_loss:.4f} nats/token, "
                                     f"{e.val_bpc:.3f} bits/char, perplexity {e.val_ppl:,.2f} "
                                     f"({e.val_scope or 'whole split'})" + (f" ({caveat})" if caveat else ""))
                self.source.notify()
            if e.event == "done" and self.run is not None:
                self._describe_run()     # an n-gram's size is known once it has counted
            if e.event == "error":
                self._show_error(e.message)

    def _describe_run(self) -> None:
        s = self.run.summary()
        self._set_notes(about=f"{s['model']}: {s['params']:,} parameters, {s['tokenizer']} tokenizer with "
                              f"{s['vocab_size']:,} tokens, {s['train_tokens']:,} train / {s['val_tokens']:,} "
                              f"validation tokens")

    def _on_failed(self, message: str) -> None:
        if not self._from_old_worker():
            self._show_error(message)

    def _show_error(self, message: str) -> None:
        why = f"Training stopped: {message}" if self.run is not None else f"Could not start: {message}"
        self._set_notes(error=why,
                        note="The model so far can still be saved." if self.run is not None else "")
        self.statusBar().showMessage(f"error: {message}", 15000)
        self.state = "error"
        if self.run is None:   # it never started: nothing of "preparing…" or an earlier run's speed is true now
            self.panel.progress.setValue(0)
            self.panel.progress.setFormat("could not start")
            self.panel.set_speed(" ")
            for label in (self.status_step, self.status_speed, self.status_eta):
                label.setText("")

    def _on_finished(self) -> None:
        if self._from_old_worker():   # shutdown_run handled its end; this is the last of its signals
            self._retired = [w for w in self._retired if w is not self.sender()]
            return
        if self.thread is None:
            return
        if self.sender() is not self.worker:   # called by shutdown_run: the worker's finished is still queued
            self._retired.append(self.worker)
        self.thread.wait()
        self.thread, self.worker = None, None
        self.keeper.autosave(self.run, final=True)
        if self.state != "error":
            self._set_state("stopped" if self._stop_requested else "done")
        else:
            self._set_state("error")
        self.source.set_training(False)
        self._announce_end()

    def _announce_end(self) -> None:
        """The notice across the window and, when the window is not the active one, the platform's alert (a
        flashing taskbar entry): a run of minutes should not end unnoticed."""
        r = self.last_report
        at = f" at step {r.step:,} of {r.max_steps:,}" if r is not None else ""
        val = ""
        if self.run is not None and self.run.summary().get("val_loss") is not None:
            s = self.run.summary()
            val = (f"; validation loss {s['val_loss']:.4f} nats/token ({s['val_bpc']:.3f} bits/char, "
                   f"{s.get('val_scope', 'whole split')})")
        if self.state == "error":
            self.notice.show_notice("error", self._notes["error"] + (" The model so far can still be saved."
                                                                     if self.run is not None else ""))
        elif self.state == "stopped":
            self.notice.show_notice("stopped", f"Training stopped{at}{val}. Save checkpoint keeps the model.")
        else:
            self.notice.show_notice("done", f"Training finished{at}{val}.")
        QApplication.alert(self)

    def shutdown_run(self) -> None:
        """Stop the worker and wait for it: the run stops after its current step, and a final validation pass
        is skipped (or cut short within one batch), so closing never waits for a pass over the whole split."""
        if self.thread is not None:
            self._stop_requested = True
            self.worker.skip_evaluation()
            self.worker.stop()
            self.thread.wait()
            self._on_finished()
        self.keeper.finish_quietly()   # an autosave under way ends before the window can go
