"""`metrics.jsonl`: a headless run's reports, one JSON object per line, appended to its run folder as it trains,
so another process (the window's File → Open run…) can follow the run live by reading the file's new lines.

Every line has an "event":
- "start": a session began (also each resume): model, tokenizer, corpus, params, device, max_steps, step (where it
  starts), world_size, grad_accum, batch_size, global_batch (windows per optimizer step over all processes),
  block_size and eval_windows;
- "step" / "eval" / "done" / "error": one StepReport (step, max_steps, tokens, train_loss, lr, grad_norm,
  tokens_per_s, elapsed_s, and where an evaluation ran val_loss, val_bpc, val_ppl and val_scope, which says
  whether they cover "N windows" of the validation split or the "whole split");
- "checkpoint": a checkpoint of `step` was written to the folder (the reader may load it now);
- "end": the run is over (exit status, checkpoint path).

Non-finite numbers are written as null (JSON has none). A line is written whole with one write() of a file opened
for appending, and the file is reopened for each line, so a checkpoint save that swaps the folder (it carries the
file over, engine.checkpoint) never leaves the writer appending to a file that is gone."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

__all__ = ["METRICS_FILE", "MetricsLog", "read_lines", "report_from_record"]

METRICS_FILE = "metrics.jsonl"


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """Appends records to `folder`/metrics.jsonl. `fresh`: start the file anew (a new run into the folder);
    otherwise append (a resumed run continues its own file). OSError when the folder cannot be written."""

    def __init__(self, folder, *, fresh: bool):
        self.path = Path(folder) / METRICS_FILE
        if fresh:
            self.path.write_text("", encoding="utf-8")

    def write(self, event: str, **fields) -> None:
        record = {"event": event, "time": round(time.time(), 3)}
        record.update({k: _clean(v) for k, v in fields.items()})
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)

    def report(self, r) -> None:
        """One StepReport (engine.train.StepReport) as a record of its own event."""
        fields = asdict(r)
        event = fields.pop("event")
        if fields.get("val_loss") is None:
            for key in ("val_loss", "val_bpc", "val_ppl", "val_scope"):
                fields.pop(key, None)
        self.write(event, **fields)


def read_lines(path, offset: int = 0, max_bytes: int = 64 * 1024 * 1024) -> tuple[list[dict], int]:
    """(records, new offset): the complete lines of metrics.jsonl after byte `offset` (a line still being
    written, with no newline yet, is left for the next read). Lines that are not JSON objects are skipped. A file
    shorter than `offset` (started anew) is read from its beginning. OSError when the file cannot be read."""
    size = os.path.getsize(path)
    if size < offset:
        offset = 0
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(min(size - offset, max_bytes))
    end = data.rfind(b"\n") + 1
    records = []
    for raw in data[:end].splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            records.append(record)
    return records, offset + end


def report_from_record(record: dict):
    """The StepReport a "step"/"eval"/"done"/"error" record was written from (missing figures as NaN/None), or
    None for another kind of record or one without a whole step number."""
    from .train import StepReport
    if record.get("event") not in ("step", "eval", "done", "error") or type(record.get("step")) is not int:
        return None

    def num(key, default=math.nan):
        v = record.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default

    val = num("val_loss", None)
    return StepReport(step=record["step"], max_steps=int(num("max_steps", record["step"])),
                      tokens=int(num("tokens", 0)), train_loss=num("train_loss"), lr=num("lr", 0.0),
                      grad_norm=num("grad_norm"), tokens_per_s=num("tokens_per_s", 0.0),
                      elapsed_s=num("elapsed_s", 0.0), eta_s=num("eta_s", None), val_loss=val,
                      val_bpc=num("val_bpc", None) if val is not None else None,
                      val_ppl=num("val_ppl", None) if val is not None else None, event=record["event"],
                      message=str(record.get("message", "")), mfu=num("mfu", None),
                      val_scope=str(record.get("val_scope", "")) if val is not None else "")
