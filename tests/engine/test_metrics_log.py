"""metrics.jsonl: what a headless run appends to its folder, read back incrementally, and kept through the
checkpoint saves that swap that folder."""
import json
import math
import os

import numpy as np

from engine import checkpoint
from engine.metrics_log import METRICS_FILE, MetricsLog, read_lines, report_from_record
from engine.train import StepReport


def _report(step, val=None, scope=""):
    return StepReport(step=step, max_steps=10, tokens=step * 8, train_loss=2.0 - step / 100, lr=1e-3,
                      grad_norm=math.inf if step == 3 else 0.5, tokens_per_s=10.0, elapsed_s=step / 10, eta_s=None,
                      val_loss=val, val_bpc=None if val is None else val * 1.4, val_ppl=None,
                      event="eval" if val is not None else "step", val_scope=scope)


def test_reports_round_trip_and_lines_are_read_only_when_whole(tmp_path):
    log = MetricsLog(tmp_path, fresh=True)
    log.write("start", model="gru", global_batch=32)
    for r in (_report(1), _report(2, val=1.9, scope="8 windows"), _report(3)):
        log.report(r)
    records, offset = read_lines(tmp_path / METRICS_FILE)
    assert [r["event"] for r in records] == ["start", "step", "eval", "step"]
    assert "val_loss" not in records[1] and records[3]["grad_norm"] is None   # JSON has no infinity
    back = report_from_record(records[2])
    assert (back.step, back.val_loss, back.val_scope, back.event) == (2, 1.9, "8 windows", "eval")
    assert math.isnan(report_from_record(records[3]).grad_norm) and report_from_record(records[0]) is None
    with open(tmp_path / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write('{"event": "step", "st')                  # a line being written
    more, offset2 = read_lines(tmp_path / METRICS_FILE, offset)
    assert more == [] and offset2 == offset
    with open(tmp_path / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write('ep": 4}\nnot json\n')
    more, _ = read_lines(tmp_path / METRICS_FILE, offset)
    assert more == [{"event": "step", "step": 4}]        # the finished line; a damaged one is skipped
    MetricsLog(tmp_path, fresh=True)                      # a new run into the folder starts the file anew
    assert read_lines(tmp_path / METRICS_FILE, offset) == ([], 0)


def test_a_checkpoint_save_keeps_the_run_file_and_its_writer(tmp_path):
    out = checkpoint.prepare_dir(tmp_path / "run")
    log = MetricsLog(out, fresh=True)
    log.write("start")
    (out / "snapshots").mkdir()
    (out / "snapshots" / "step-000000001.safetensors").write_bytes(b"weights")
    groups = {"model": {"w": np.zeros(3, dtype=np.float32)}}
    meta = {"family": "ngram", "model": {"vocab_size": 2}, "tokenizer": None}
    checkpoint.save_checkpoint(out, meta, groups)         # the folder is swapped for a new one...
    inode = os.stat(out / METRICS_FILE).st_ino
    log.write("checkpoint", step=1)
    checkpoint.save_checkpoint(out, meta, groups)         # ...and again
    log.write("end")
    assert os.stat(out / METRICS_FILE).st_ino == inode    # the same file, hard-linked into each new folder
    assert (out / "snapshots" / "step-000000001.safetensors").read_bytes() == b"weights"   # past models too
    lines = (out / METRICS_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["event"] for x in lines] == ["start", "checkpoint", "end"]
    checkpoint.prepare_dir(out)                            # a run folder with its metrics is still a checkpoint
