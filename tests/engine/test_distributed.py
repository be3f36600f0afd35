"""`main.py train` under torchrun: two CPU processes with gloo train one model (DistributedDataParallel), rank 0
alone writes the checkpoint and metrics.jsonl, the result equals one process with grad_accum 2 (the same global
batch, drawn from the same window streams), the checkpoint resumes on one process, and a process that fails ends
the whole launch with a message instead of a hang."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine import api, checkpoint
from engine.distributed import FAIL_AT_ENV, stream_seed

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6
SETTINGS = {"n_layer": "1", "n_embd": "16", "n_head": "2", "block_size": "16", "batch_size": "4",
            "steps_per_yield": "2", "eval_interval": "4", "warmup_steps": "2"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(corpus: Path, out: Path, extra_env: dict | None = None, timeout: float = 240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "main.py", "train", "--corpus", str(corpus), "--preset",
           "tiny-cpu-transformer", "--max-steps", str(STEPS), "--device", "cpu", "--out", str(out)]
    for k, v in SETTINGS.items():
        cmd += ["--set", f"{k}={v}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", **(extra_env or {}))
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def corpus(tmp_path, small_text):
    path = tmp_path / "c.txt"
    path.write_text(small_text * 3, encoding="utf-8")
    return path


def test_stream_seeds():
    assert stream_seed(1337, 0) == 1337   # one process with grad_accum 1 samples as before torchrun existed
    seeds = {stream_seed(1337, j) for j in range(64)}
    assert len(seeds) == 64 and all(0 <= s < 2 ** 63 for s in seeds)


def test_two_processes_train_as_one_with_grad_accum_2_and_resume_on_one(tmp_path, corpus):
    out = tmp_path / "run"
    proc = _torchrun(corpus, out)
    assert proc.returncode == 0, proc.stderr[:5000]
    result = json.loads(proc.stdout.strip().splitlines()[-1])   # rank 0's line, the only one
    assert len([line for line in proc.stdout.splitlines() if line.startswith("{")]) == 1
    assert result["world_size"] == 2 and result["global_batch"] == 8 and result["val_scope"] == "whole split"
    assert "global batch 8 windows (128 tokens) per step = batch_size 4 × grad_accum 1 × 2 processes" in proc.stderr
    # exactly one checkpoint: rank 0's, in --out; nothing else written beside it (no runs/ folder, no rescue)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "run"]
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "metrics.jsonl", "model.safetensors",
                                                     "optimizer.safetensors", "rng.safetensors"]
    meta = checkpoint.load_meta(out)
    assert meta["step"] == STEPS and meta["world_size"] == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records].count("start") == 1 and records[0]["world_size"] == 2
    assert records[-1] == {**records[-1], "event": "end", "status": 0}

    # one process, grad_accum 2: the same global batch of 8 windows, from the same two window streams (stream j =
    # rank × grad_accum + micro-batch), so the same windows at every step
    single = api.start_run(api.RunSpec(corpus=str(corpus), preset="tiny-cpu-transformer", device="cpu",
                                       max_steps=STEPS, overrides=dict(SETTINGS, grad_accum="2")))
    reports = list(single.reports())
    assert single.summary()["global_batch"] == 8
    # Tolerance: DDP averages two ranks' gradients as (g0 + g1) / 2; one process sums the backward passes of l0/2
    # and l1/2. Scaling by 1/2 is exact in binary floating point and a backward pass is linear in its incoming
    # gradient, so both add the same two float32 numbers: the runs agree to the last bit or nearly (a different
    # summation order inside gloo could move the last bit of a float32 gradient, ~1e-7 relative). 1e-6 on losses
    # near 3-4 nats leaves room for that and nothing else: one different window moves the loss by ~1e-2.
    saved_rows = meta["history"]["rows"]
    assert [r[0] for r in saved_rows] == [r.step for r in reports if r.event in ("step", "eval")][:len(saved_rows)]
    for row, rep in zip(saved_rows, [r for r in reports if r.event in ("step", "eval")]):
        assert row[3] == pytest.approx(rep.train_loss, abs=1e-6)
    assert meta["summary"]["val_loss"] == pytest.approx(single.summary()["val_loss"], abs=1e-6)
    assert meta["tokens"] == single.trainer.tokens == STEPS * 8 * 16

    # the two-process checkpoint resumes on one process, with a warning about the smaller global batch
    resumed = api.resume_run(str(out), max_steps=STEPS + 2, device="cpu")
    assert any("written by 2 process(es) and resumes on 1" in w for w in resumed.warnings())
    last = list(resumed.reports())[-1]
    assert last.event == "done" and last.step == STEPS + 2 and last.val_loss is not None
    assert resumed.summary()["global_batch"] == 4


def test_a_failed_process_ends_the_whole_launch(tmp_path, corpus):
    proc = _torchrun(corpus, tmp_path / "run", {FAIL_AT_ENV: "1:3"}, timeout=180)   # a hang would time out
    assert proc.returncode != 0
    assert f"error: rank 1: failed on purpose at step 3 ({FAIL_AT_ENV}=1:3)" in proc.stderr
    assert "error: rank 0: " in proc.stderr   # rank 0 says it lost its peer, then torchrun names the failure
    assert not (tmp_path / "run" / "meta.json").exists()   # no evaluation came before the failure: no checkpoint
    # a window following the folder must learn that the launch is over, and why (it showed "running" for ever)
    import json
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "end" and records[-1]["status"] == 1 and records[-1]["error"], records[-1]
