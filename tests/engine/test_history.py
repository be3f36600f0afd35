"""The loss history a checkpoint carries: recorded from the trainer's reports, saved, continued by a resume
exactly as an uninterrupted run records it, thinned without losing evaluations, replayed as reports."""
from __future__ import annotations

import math

import pytest

from engine.checkpoint import load_meta
from engine.history import MAX_ROWS, LossHistory
from engine.train import StepReport, Trainer

from . import test_train

data = test_train.data     # the fixture: a small corpus as train/val ids
make = test_train.make     # a small trainer on it


def _report(step, loss, val=None, event="step"):
    return StepReport(step=step, max_steps=10_000, tokens=step * 8, train_loss=loss, lr=1e-3, grad_norm=0.5,
                      tokens_per_s=1.0, elapsed_s=step / 10, eta_s=None, val_loss=val, event=event)


def test_checkpoint_history_is_the_run_so_far_and_a_resume_continues_it(seed, data, tmp_path):
    kw = dict(max_steps=20, eval_interval=10)
    straight = make(data, **kw)
    reports = list(straight.reports())
    first = make(data, **kw)
    gen = first.reports()
    while next(gen).step < 10:
        pass
    first.save(tmp_path / "half")
    rows = load_meta(tmp_path / "half")["history"]["rows"]
    evals = [r for r in reports if r.val_loss is not None]
    assert [r[0] for r in rows] == [5, 10]
    assert rows[1][6] == pytest.approx(evals[0].val_loss) and rows[0][6] is None   # the eval at step 10
    assert rows[0][3] == pytest.approx(reports[0].train_loss)

    resumed = Trainer.resume_from(tmp_path / "half", None, data["train"], data["val"], val_chars=data["val_chars"])
    list(resumed.reports())
    resumed.save(tmp_path / "end")
    rows = load_meta(tmp_path / "end")["history"]["rows"]
    # the same steps, losses and evaluations as the uninterrupted run recorded (the resume is bit-exact)
    assert [r[:2] + r[3:] for r in rows] == [r[:2] + r[3:] for r in straight.history.rows]
    assert [r[0] for r in rows] == [5, 10, 15, 20] and rows[-1][6] == pytest.approx(reports[-1].val_loss)

    replay = LossHistory.from_dict(load_meta(tmp_path / "end")["history"]).reports(20)
    assert [r.step for r in replay] == [5, 10, 15, 20]
    assert [r.event for r in replay] == ["step", "eval", "step", "eval"]
    assert replay[2].train_loss == pytest.approx(reports[2].train_loss)


def test_history_thins_plain_rows_but_keeps_every_evaluation():
    h = LossHistory()
    for step in range(1, 5001):
        h.add(_report(step, 2.0 + math.sin(step), val=1.5 if step % 250 == 0 else None))
        if step % 250 == 0:
            h.add(_report(step, 2.0, val=1.5, event="eval"))     # the eval report after the step's own
    assert len(h.rows) <= MAX_ROWS
    assert [r[0] for r in h.rows if r[6] is not None] == list(range(250, 5001, 250))
    assert h.rows[-1][0] == 5000 and h.rows[0][0] == 1
    steps = [r[0] for r in h.rows]
    assert steps == sorted(set(steps))


def test_history_of_an_old_or_odd_checkpoint_is_empty_and_bad_numbers_are_none():
    assert LossHistory.from_dict(None).rows == []
    assert LossHistory.from_dict({"columns": ["x"], "rows": [[1]]}).rows == []
    h = LossHistory()
    h.add(_report(1, math.nan))
    h.add(_report(1, 2.0, val=math.inf, event="done"))
    assert h.rows == [[1, 8, 0.1, None, 1e-3, 0.5, None, None, None]]
    assert math.isnan(h.reports(1)[0].train_loss)


def test_history_records_bits_per_character_and_reads_older_layouts():
    h = LossHistory()
    h.add(_report(5, 2.0))
    h.add(StepReport(step=5, max_steps=10, tokens=40, train_loss=2.0, lr=1e-3, grad_norm=0.5, tokens_per_s=1.0,
                     elapsed_s=0.5, eta_s=None, val_loss=1.5, val_bpc=2.1, event="eval", val_scope="160 windows"))
    assert h.rows[-1][6:] == [1.5, 2.1, 160] and h.reports(10)[-1].val_bpc == 2.1
    assert h.reports(10)[-1].val_scope == "160 windows"
    h.add(StepReport(step=6, max_steps=10, tokens=48, train_loss=2.0, lr=1e-3, grad_norm=0.5, tokens_per_s=1.0,
                     elapsed_s=0.6, eta_s=None, val_loss=1.4, val_bpc=2.0, event="done", val_scope="whole split"))
    assert h.rows[-1][8] == 0 and h.reports(10)[-1].val_scope == "whole split"
    older = {"columns": ["step", "tokens", "elapsed_s", "train_loss", "lr", "grad_norm", "val_loss"],
             "rows": [[5, 40, 0.5, 2.0, 1e-3, 0.5, 1.5]]}
    assert LossHistory.from_dict(older).rows == [[5, 40, 0.5, 2.0, 1e-3, 0.5, 1.5, None, None]]
    assert LossHistory.from_dict(older).reports(10)[0].val_scope == ""   # recorded before scopes were


def test_saved_history_keeps_spikes_and_dips_past_the_thinning_threshold(seed, data, tmp_path):
    """A 9.0 spike and a 0.5 dip among 2.0s survive several thinnings and a save + load through a checkpoint,
    like the live plot's min/max downsampling keeps them."""
    h = LossHistory()
    n = 3 * MAX_ROWS
    for step in range(1, n + 1):
        loss = 9.0 if step == 1000 else 0.5 if step == 4001 else 2.0
        h.add(_report(step, loss, val=1.5 if step % 997 == 0 else None))
    assert len(h.rows) <= MAX_ROWS
    trainer = make(data)
    trainer.history = h
    trainer.step = n
    trainer.save(tmp_path / "ck")
    loaded = LossHistory.from_dict(load_meta(tmp_path / "ck")["history"])
    by_step = {r[0]: r[3] for r in loaded.rows}
    assert by_step[1000] == 9.0 and by_step[4001] == 0.5
    assert max(by_step.values()) == 9.0 and min(by_step.values()) == 0.5
    assert sum(1 for r in loaded.rows if r[6] is not None) == n // 997   # every evaluation
    assert loaded.rows[-1][0] == n
