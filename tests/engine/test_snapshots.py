"""Past models of a run: kept at log-spaced steps and every evaluation, at most 32, as safetensors files; a kept
step's model is the weights the run had right after that step."""
import math

import pytest
import torch

from engine import api
from engine.errors import CheckpointError
from engine.snapshots import MAX_SNAPSHOTS, SnapshotKeeper

TINY = {"n_layer": "1", "n_embd": "16", "n_head": "2", "block_size": "16", "batch_size": "4", "eval_interval": "10",
        "steps_per_yield": "1"}


def test_a_run_keeps_log_spaced_and_evaluation_steps_with_their_weights(tmp_path, small_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(corpus), overrides=dict(TINY), device="cpu", max_steps=30))
    run.keep_snapshots(tmp_path / "snaps")
    live = {}
    for r in run.reports():
        if r.event in ("step", "eval"):
            live[r.step] = {k: v.clone() for k, v in run.trainer.raw_model.state_dict().items()}
    steps = run.snapshot_steps()
    assert steps[:6] == [1, 2, 3, 5, 8, 10]                # log-spaced (×1.5), plus the evaluation at 10
    assert {10, 20, 30} <= set(steps)                        # every evaluation
    assert len(list((tmp_path / "snaps").glob("*.safetensors"))) == len(steps)
    assert run.snapshot_disk_bytes() == sum(p.stat().st_size for p in (tmp_path / "snaps").iterdir())
    past = run.snapshot_at(5)
    assert past.meta["snapshot_step"] == 5 and not past.model.training
    for k, v in past.model.state_dict().items():
        torch.testing.assert_close(v, live[5][k], rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="step 4"):
        run.snapshot_at(4)


def test_at_most_32_snapshots_spread_in_log_steps(tmp_path):
    keeper = SnapshotKeeper(tmp_path)
    model = torch.nn.Linear(2, 2)
    model.family = "x"
    for step in range(1, 5001):
        keeper.offer(step, step % 100 == 0, model)
    steps = keeper.steps()
    assert len(steps) == MAX_SNAPSHOTS and steps[0] == 1 and steps[-1] == 5000
    assert len(list(tmp_path.glob("*.safetensors"))) == MAX_SNAPSHOTS
    gaps = [math.log(b) - math.log(a) for a, b in zip(steps, steps[1:])]
    assert max(gaps) < 4 * (math.log(5000) / (MAX_SNAPSHOTS - 1))   # no stretch of log(step) left bare
    assert SnapshotKeeper(tmp_path).steps() == steps              # a new keeper finds the files


def test_samples_over_time_use_one_prompt_and_seed_at_every_kept_step(tmp_path, small_text):
    from engine.decode import DecodeConfig, generate
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(corpus), overrides=dict(TINY), device="cpu", max_steps=12))
    run.keep_snapshots(tmp_path / "snaps")
    list(run.reports())
    rows = run.samples_over_time("The king", seed=3, max_new_tokens=20)
    assert [s for s, _ in rows] == run.snapshot_steps()
    step, text = rows[2]
    past = run.snapshot_at(step)
    cfg = DecodeConfig(strategy="sample", max_new_tokens=20, seed=3)
    again = [ev.final_text for ev in generate(past.model, past.tokenizer, "The king", cfg) if ev.done][0]
    assert text == again and len(text) > 0
    assert rows[0][1] != rows[-1][1]                 # training changed what the model writes
