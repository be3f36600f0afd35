"""Scrubbing the Loss tab's run: a marker on the step axis that snaps to the steps whose models the run keeps
(engine.snapshots); dropping it on one asks for that step's model (`step_chosen`), Newest model goes back. A mixin
of LossPlot (loss_plot.py), which owns the marker, the labels and the buttons."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Slot


class Scrubbing:
    """Expects of its LossPlot: marker, kept_steps, chosen_step, step_offset, kept_label, x_axis, over_time,
    latest and the step_chosen signal."""

    def set_kept_steps(self, steps: list[int], disk_bytes: int = 0) -> None:
        """The steps whose models the run keeps (engine.snapshots); the marker snaps to them. Shown on the step
        axis only, where a kept step has one place."""
        if steps == self.kept_steps:
            return
        self.kept_steps = list(steps)
        from engine.device import format_bytes
        self.kept_label.setText(f"Past models: {len(steps)} kept ({format_bytes(disk_bytes)} on disk); drag the "
                                f"marker on the curve to use one" if steps else "")
        if self.chosen_step is None and steps:
            self.marker.setValue(steps[-1] + self.step_offset)   # signals on: the line's label follows its value
        self._show_marker(bool(steps) and self.x_axis.currentText() == "step")
        self.over_time.setEnabled(bool(steps))

    def _show_marker(self, visible: bool) -> None:
        """Show or hide the marker; a shown one's label is brought up to date, since pyqtgraph's line label
        ignores position changes made while it was hidden (it would still read "model at step 0")."""
        self.marker.setVisible(visible)
        if visible:
            self.marker.label.valueChanged()

    def nearest_kept(self, x: float) -> int | None:
        """The kept step nearest to x on the step axis (x includes a fine-tune's step offset)."""
        if not self.kept_steps:
            return None
        steps = np.asarray(self.kept_steps)
        return int(steps[np.argmin(np.abs(steps + self.step_offset - x))])

    @Slot()
    def _snap_marker(self) -> None:
        step = self.nearest_kept(self.marker.value())
        if step is not None and self.marker.value() != step + self.step_offset:
            self.marker.setValue(step + self.step_offset)

    @Slot()
    def _on_marker_dropped(self) -> None:
        step = self.nearest_kept(self.marker.value())
        if step is None:
            return
        self.choose_step(step)

    def choose_step(self, step: int) -> None:
        """Use the model of kept step `step` (the marker moves there); the newest kept step of a finished run
        is the run's own model."""
        self.chosen_step = step
        self.marker.setValue(step + self.step_offset)   # signals on: the line's label follows its value
        self.latest.setEnabled(True)
        self.step_chosen.emit(step)

    @Slot()
    def back_to_newest(self) -> None:
        self.chosen_step = None
        self.latest.setEnabled(False)
        if self.kept_steps:
            self.marker.setValue(self.kept_steps[-1] + self.step_offset)   # signals on: the line's label follows its value
        self.step_chosen.emit(-1)
