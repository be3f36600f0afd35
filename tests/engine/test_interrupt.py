"""Ctrl+C / SIGTERM on a headless `main.py train`: the run is saved at the last completed step, then the process
exits 128 + signal; a second signal exits at once without saving."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import api, checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _start_training(corpus: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "main.py", "train", "--corpus", str(corpus), "--preset", "tiny-cpu-transformer",
           "--max-steps", "1000000", "--set", "n_layer=1", "--set", "n_embd=16", "--set", "n_head=2",
           "--set", "block_size=16", "--set", "batch_size=4", "--set", "steps_per_yield=1",
           "--set", "eval_interval=1000000", "--device", "cpu", "--out", str(out)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(proc: subprocess.Popen) -> str:
    """Read stderr until a progress line for a step after the first (so the run has trained)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("step ") and not line.startswith("step 0/") and not line.startswith("step 1/"):
            return "".join(seen)
    raise AssertionError("the run ended before training: " + "".join(seen))


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_at_the_last_step(tmp_path, small_text, sig, status):
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text * 3, encoding="utf-8")
    out = tmp_path / "run"
    proc = _start_training(corpus, out)
    try:
        _wait_for_steps(proc)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["interrupted"] is True and result["checkpoint"] == str(out)
    meta = checkpoint.load_meta(out)
    assert meta["step"] >= 2 and meta["step"] == result["step"]
    assert meta["history"]["rows"][-1][0] == meta["step"]   # the curve reaches the saved step
    assert f"saved step {meta['step']}" in stderr
    handle = api.load_checkpoint(out)   # whole and loadable
    assert handle.model.num_params() > 0
    # it can be resumed: the run goes on from the saved step
    run = api.resume_run(str(out), max_steps=meta["step"] + 2, device="cpu")
    last = list(run.reports())[-1]
    assert last.step == meta["step"] + 2


def test_second_signal_exits_at_once(tmp_path):
    """The second Ctrl+C ends the process from inside the handler: code after it never runs."""
    script = textwrap.dedent("""
        import os, signal, sys
        from engine.interrupt import StopOnSignal
        class FakeRun:
            stopped = 0
            def stop(self):
                self.stopped += 1
        run = FakeRun()
        with StopOnSignal(run) as guard:
            os.kill(os.getpid(), signal.SIGINT)
            print("first", guard.requested, run.stopped, flush=True)
            os.kill(os.getpid(), signal.SIGINT)
            print("still running", flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130
    assert proc.stdout.split() == ["first", "True", "1"]
    assert "again: quitting without saving" in proc.stderr


def test_checkpoint_files_follow_the_umask(tmp_path):
    """Checkpoint files get the user's normal permissions (0644 under umask 022), not owner-only."""
    import torch
    old = os.umask(0o022)
    try:
        path = checkpoint.save_checkpoint(tmp_path / "ck", {"family": "x", "step": 0},
                                          {"model": {"w": torch.zeros(2)}})
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in path.iterdir()}
    assert modes == {"meta.json": 0o644, "model.safetensors": 0o644}
    assert path.stat().st_mode & 0o777 == 0o755
