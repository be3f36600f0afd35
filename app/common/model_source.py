"""Where the Graph and Sample panels get a model: the run being trained (a CPU snapshot of its weights, taken under
the run's lock so it is never half-updated) or a loaded checkpoint. Panels hold a ModelSource instead of the main
window or the run, so they work the same whether the model is training, finished, or came from disk."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.api import ModelHandle, Run


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


class ModelSource(QObject):
    """See docs/ARCHITECTURE.md "App panels". Only the main window calls the setters."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._run: Run | None = None
        self._handle: ModelHandle | None = None
        self._label = ""
        self._val_text = ""
        self._training = False
        self._past: ModelHandle | None = None   # a past step of the run chosen on the loss curve (scrubbing)
        self._past_step: int | None = None

    # -- for panels ------------------------------------------------------------------------------------------
    def snapshot(self) -> ModelHandle | None:
        """A fresh copy each call while a run is the source (it copies the weights: cache it until `changed`);
        the chosen past step's model while one is chosen."""
        if self._past is not None:
            return self._past
        if self._run is not None:
            return self._run.snapshot()
        return self._handle

    def has_model(self) -> bool:
        """Whether snapshot() would give a model, without copying any weights."""
        return self._past is not None or self._run is not None or self._handle is not None

    def tokenizer(self):
        """The model's tokenizer (it never changes while a run trains), or None: without a weight snapshot."""
        for owner in (self._past, self._run, self._handle):
            if owner is not None:
                return owner.tokenizer
        return None

    def validation_text(self) -> str:
        return self._val_text

    def is_training(self) -> bool:
        return self._training

    def past_step(self) -> int | None:
        """The step whose model is used instead of the newest (None: the newest)."""
        return self._past_step

    def describe(self) -> str:
        if self._past is not None:
            return (f"{self._past.family} {_params(int(self._past.model.num_params()))} params, "
                    f"{self._past.tokenizer.kind} tokenizer, as it was at step {self._past_step:,} "
                    f"(chosen on the loss curve; 'Newest model' goes back)")
        if self._run is not None:
            s = self._run.summary()
            r = self._run.last_report
            progress = f"step {r.step:,}/{r.max_steps:,}" if r is not None else "not started"
            state = " (training)" if self._training else ""
            return (f"{s['model']} {_params(s['params'])} params, {s['tokenizer']} tokenizer "
                    f"(vocab {s['vocab_size']:,}), {progress}{state}")
        if self._handle is not None:
            m = self._handle.meta
            summary = m.get("summary", {})
            step = summary.get("step")
            at = f", step {step:,}" if isinstance(step, int) else ""
            what = {"hf-gpt2": "GPT-2 folder", "nanogpt": "nanoGPT checkpoint"}.get(
                (m.get("pretrained") or {}).get("format"), "checkpoint")
            return (f"{what} {self._label}: {self._handle.family} "
                    f"{_params(int(self._handle.model.num_params()))} params, {self._handle.tokenizer.kind} "
                    f"tokenizer{at}")
        return "no model yet: train one or load a checkpoint"

    # -- for the main window ---------------------------------------------------------------------------------
    def set_past(self, handle: ModelHandle | None, step: int | None = None) -> None:
        """Use a past step's model (a kept snapshot, engine.snapshots) until set_past(None)."""
        self._past, self._past_step = handle, (step if handle is not None else None)
        self.changed.emit()

    def set_run(self, run: Run) -> None:
        self._past = self._past_step = None
        self._run, self._handle = run, None
        self._val_text = run.val_text
        self._training = True
        self.changed.emit()

    def set_checkpoint(self, handle: ModelHandle, path: str | Path, validation_text: str) -> None:
        self._past = self._past_step = None
        self._run, self._handle = None, handle
        self._label = Path(path).name
        self._val_text = validation_text
        self._training = False
        self.changed.emit()

    def clear(self) -> None:
        """No model: the tabs say so until a run or a checkpoint sets one (File → Open run, before the followed
        run's first checkpoint, must not present the previous model as its own)."""
        self._past = self._past_step = None
        self._run = self._handle = None
        self._training = False
        self.changed.emit()

    def set_validation_text(self, text: str) -> None:
        """The validation text of the model's corpus arrived (a checkpoint's corpus loads in the background)."""
        self._val_text = text
        self.changed.emit()

    def set_training(self, training: bool) -> None:
        """The run stopped or finished (False), or resumed (True)."""
        if training != self._training:
            self._training = training
            self.changed.emit()

    def notify(self) -> None:
        """The run's weights moved on in a way a panel may want to show (an evaluation happened)."""
        self.changed.emit()
