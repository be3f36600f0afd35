"""The Graph tab's stepping: Step, Back, Forward/Backward to the phase's end, Play, Reset and End through the
tape's Stepper, repainting only the items a step changed, with End's long tail on a worker (see run_to_end).
A mixin of GraphPanel (graph_view.py), which owns the widgets, the scene and the stepper this code drives."""
from __future__ import annotations

import threading
import time

from app.graph.rule_text import convention, readable, symbol_key

END_INLINE_S = 0.05   # End runs this long on the GUI thread before handing the rest of the steps to a worker


class Stepping:
    """Expects of its GraphPanel: stepper, program, lay, scene, view, current, inspector, tape_stack, buttons,
    timer, jobs, counter, sentence, loss_label, titles, _h_nodes, _end_cancel, _end_timer and the source-row
    widgets, plus _refresh_units, _refresh_all, _light_last_step, _update_strip and show_message."""

    def _step(self, fn) -> None:
        if self.stepper is None:
            return
        try:
            info = fn()
        except ValueError as e:    # a step the stepper cannot take now (the button state lags a timer tick)
            self.sentence.setText(str(e))
            return
        self._after(info, undone=False)

    def step_back(self) -> None:
        if self.stepper is not None and self.stepper.can_step_back:
            self._after(self.stepper.step_back(), undone=True)

    def _after(self, info, undone: bool) -> None:
        """Repaint just the stepped node, its inputs and the old and new current node."""
        touched = {info.node_id, *self.program.nodes[info.node_id].inputs}
        if self.current is not None:
            touched.add(self.current)
        self.current = self.stepper.history[-1].node_id if self.stepper.history else None
        if self.current is not None:
            touched.add(self.current)
        self._refresh_units({int(self.lay.unit_of[i]) for i in touched})
        self._light_last_step()
        self._update_labels(undone=info if undone else None)
        self.tape_stack.update_state()
        if self.inspector.node_id in touched:
            self.inspector.refresh()
        if touched & self._h_nodes:
            self._update_strip()
        if self.current is not None:
            self.view.follow(self.scene.unit_item(self.current))

    def _jump(self, fn) -> None:
        """Reset / run to end: many nodes change, so every item is refreshed."""
        if self.stepper is None:
            return
        self.pause()
        fn()
        self._refresh_all()
        self.tape_stack.update_state()
        if self.current is not None:     # End lands on the last backward step: show it, as a step would
            self.view.follow(self.scene.unit_item(self.current))
        self.inspector.refresh()
        self._update_strip()

    def run_to_end(self) -> None:
        """End: finish the forward and backward pass. Up to END_INLINE_S of steps run here; a longer tape (an
        LSTM on 257 characters is 8,000 steps, ~10 s) goes on on a worker with progress and a Cancel, while the
        stepping controls and the graph wait. The Stepper is not thread-safe, so nothing on this thread touches
        it until the worker is done; a cancelled run stops between two steps, a state like any other."""
        if self.stepper is None:
            return
        if self._end_cancel is not None:          # the End button reads Cancel while the worker runs
            self._end_cancel.set()
            return
        self.pause()
        s = self.stepper
        deadline = time.perf_counter() + END_INLINE_S
        while s.phase != "done" and time.perf_counter() < deadline:
            s.step()
        if s.phase == "done":
            self._jump(lambda: None)
            return
        cancel = self._end_cancel = threading.Event()

        def finish():
            while s.phase != "done" and not cancel.is_set():
                s.step()
                if s.position % 16 == 0:
                    time.sleep(0.0002)    # hand the GIL to the GUI thread often: the steps are small numpy ops
            return s

        self._set_end_busy(True)
        self.jobs.run(finish, self._end_done, self._end_failed)

    def _set_end_busy(self, busy: bool) -> None:
        end = self.buttons["end"]
        end.setText("Cancel" if busy else "End")
        end.setToolTip("Stop running to the end; the steps done so far stay done" if busy else
                       "Run to end: finish the forward and the backward pass (End)")
        for key, btn in self.buttons.items():
            if key != "end":
                btn.setEnabled(not busy)
        for w in (self.inspector, self.tape_stack, self.strip_box, self.build_btn, self.what, self.text, self.length,
                  self.random_btn, self.refresh_btn, self.lecture_btn):   # nothing may replace the stepper meanwhile
            w.setEnabled(not busy)
        self.view.setInteractive(not busy)   # no clicks on nodes; disabling the view would repaint 4,000 items
        if busy:
            self._end_timer.start()
            self._end_progress()
        else:
            self._end_timer.stop()

    def _end_progress(self) -> None:
        s = self.stepper
        if s is None or self._end_cancel is None:
            return
        done = s.position                         # an int read: safe while the worker steps
        self.counter.setText(f"running to the end: step {done:,} / {s.n_steps:,} ({100 * done // s.n_steps}%)")
        self.sentence.setText("Running the rest of the tape on a worker thread, so the window stays responsive; "
                              "Cancel stops after the current step.")

    def _end_done(self, stepper) -> None:
        self._end_cancel = None
        self._set_end_busy(False)
        if stepper is not self.stepper:           # a new graph was built meanwhile
            return
        self._jump(lambda: None)

    def _end_failed(self, message: str) -> None:
        self._end_cancel = None
        self._set_end_busy(False)
        self.show_message(message)
        if self.stepper is not None:
            self._jump(lambda: None)

    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.pause()
        elif self.stepper is not None and self.stepper.phase != "done":
            self.timer.start()
            self.buttons["play"].setText("⏸ Pause")

    def pause(self) -> None:
        self.timer.stop()
        self.buttons["play"].setText("▶ Play")

    def _tick(self) -> None:
        if self.stepper is None or self.stepper.phase == "done":
            self.pause()
        else:
            self._step(self.stepper.step)

    def _update_labels(self, undone=None) -> None:
        s = self.stepper
        phase = s.history[-1].phase if s.history else "ready"
        done = " ✓" if s.phase == "done" else ""
        self.counter.setText(f"step {s.position} / {s.n_steps} · {phase}{done}")
        self.loss_label.setText("loss J = —" if s.loss is None else f"loss J = {s.loss:.6f}")
        if undone is not None:
            self.sentence.setText(readable(f"↶ Undid: {undone.description}") + self._key(undone))
        elif s.history:
            self.sentence.setText(readable(s.history[-1].description) + self._key(s.history[-1]))
        else:
            self.sentence.setText(f"{self.program.title}. Press → (Step) to compute the first node.")
        self._update_controls()

    def _key(self, info) -> str:
        """Which node each of the rule's symbols is (and, for a Linear on one vector, the row convention), so the
        rule's generic a and b do not read as the lecture's a and b."""
        node = self.program.nodes[info.node_id]
        parts = [p for p in (symbol_key(node, self.program.nodes, self.titles),
                             convention(node, self.program.nodes)) if p]
        return f"  [{'; '.join(parts)}]" if parts else ""

    def _update_controls(self) -> None:
        if self._end_cancel is not None:   # End's worker owns the stepper: _set_end_busy decides what is enabled
            return
        s = self.stepper
        b = self.buttons
        b["forward"].setEnabled(bool(s and s.can_step_forward))
        b["backward"].setEnabled(bool(s and s.can_step_backward))
        b["step"].setEnabled(bool(s and s.phase != "done"))
        b["back"].setEnabled(bool(s and s.can_step_back))
        b["reset"].setEnabled(bool(s and s.can_step_back))
        b["end"].setEnabled(bool(s and s.phase != "done"))
        b["play"].setEnabled(bool(s and (s.phase != "done" or self.timer.isActive())))
        b["fit"].setEnabled(s is not None)
        if s and s.phase == "done":
            self.pause()
