"""File → Open run…: the window follows a run folder another process writes. A subprocess appends a real headless
run's metrics.jsonl lines to a folder while the window tails it: the curve grows as the lines come, windowed and
whole-split evaluations are told apart, and the checkpoint the run wrote becomes the tabs' model."""
import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from engine import api
from engine.cli import main as cli_main
from engine.metrics_log import METRICS_FILE, read_lines

from app.window.run_watcher import INLINE_BYTES, RunWatcher
from tests.app.conftest import RUN_TIMEOUT_MS

REPLAY = textwrap.dedent("""
    import pathlib, sys, time
    lines, target, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    lines = pathlib.Path(lines).read_text(encoding="utf-8").splitlines(keepends=True)
    half = int(sys.argv[4])
    for i, line in enumerate(lines):
        if i == half:
            while not go.exists():     # the test looks at the half-written run, then lets the rest come
                time.sleep(0.02)
        with open(target, "a", encoding="utf-8") as f:
            f.write(line[:20]); f.flush()  # a line arrives in two writes: the reader must wait for its end
            time.sleep(0.01)
            f.write(line[20:])
        time.sleep(0.02)
""")


@pytest.fixture(scope="module")
def headless_run(tmp_path_factory):
    """A real `main.py train` run (in this process): evaluations on 8 windows during training, the whole split at
    the end; its folder holds the checkpoint and metrics.jsonl."""
    folder = tmp_path_factory.mktemp("headless")
    words = "the king and queen walk to the castle where a knight waits for news of the war".split()
    (folder / "c.txt").write_text(" ".join(words[i * 7 % len(words)] for i in range(3000)), encoding="utf-8")
    out = folder / "run"
    args = ["train", "--corpus", str(folder / "c.txt"), "--preset", "tiny-cpu-transformer", "--max-steps", "24",
            "--device", "cpu", "--out", str(out), "--quiet", "--keep-snapshots"]
    for kv in ("n_layer=1", "n_embd=16", "n_head=2", "block_size=16", "batch_size=4", "steps_per_yield=2",
               "eval_interval=8", "eval_windows=8", "warmup_steps=2"):
        args += ["--set", kv]
    assert cli_main(args) == 0
    return out


def test_a_headless_run_writes_its_reports_and_checkpoints_as_it_goes(headless_run):
    records, _ = read_lines(headless_run / METRICS_FILE)
    events = [r["event"] for r in records]
    assert events[0] == "start" and events[-1] == "end" and records[-1]["status"] == 0
    assert records[0]["eval_scope"] == "8 windows" and records[0]["global_batch"] == 4
    evals = [r for r in records if "val_loss" in r and r["event"] in ("eval", "done")]
    assert [(r["step"], r["val_scope"]) for r in evals] == [(8, "8 windows"), (16, "8 windows"),
                                                             (24, "whole split")]
    # the checkpoint was rewritten at each evaluation during training and at the end
    assert [r["step"] for r in records if r["event"] == "checkpoint"] == [8, 16, 24]
    meta = api.load_checkpoint(headless_run).meta
    assert meta["summary"]["val_scope"] == "whole split" and meta["summary"]["val_step"] == 24
    assert [row[8] for row in meta["history"]["rows"] if row[6] is not None] == [8, 8, 0]   # the scopes
    kept = sorted(int(p.stem.split("-")[1]) for p in (headless_run / "snapshots").iterdir())
    assert {2, 8, 16, 24} <= set(kept)            # log-spaced reports and every evaluation, kept through the saves


def test_the_window_follows_a_run_folder_live(qtbot, window, headless_run, tmp_path):
    followed = tmp_path / "followed"
    followed.mkdir()
    for f in headless_run.iterdir():
        if f.is_dir():
            shutil.copytree(f, followed / f.name)
        elif f.name != METRICS_FILE:
            (followed / f.name).write_bytes(f.read_bytes())
    (followed / METRICS_FILE).write_text("", encoding="utf-8")
    source_lines = headless_run / METRICS_FILE
    records, _ = read_lines(source_lines)
    half = next(i for i, r in enumerate(records) if r["event"] == "checkpoint" and r["step"] == 8) + 1
    go = tmp_path / "go"
    writer = subprocess.Popen([sys.executable, "-c", REPLAY, str(source_lines), str(followed / METRICS_FILE),
                               str(go), str(half)])
    try:
        assert window.open_run(str(followed))
        first_half = [r for r in records[:half] if r["event"] in ("step", "eval")]
        qtbot.waitUntil(lambda: window.loss_plot.train.n == len(first_half), timeout=RUN_TIMEOUT_MS)
        assert writer.poll() is None                      # the curve grew while the run was still being written
        window.loss_plot.redraw()
        assert window.loss_plot.val.n == 1 and window.loss_plot._win_legend.startswith("this run: validation, 8 ")
        qtbot.waitUntil(lambda: window.loaded is not None, timeout=RUN_TIMEOUT_MS)   # its checkpoint loaded
        go.touch()
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    train_points = [r for r in records if r["event"] in ("step", "eval", "done")]
    qtbot.waitUntil(lambda: window.loss_plot.train.n == len({r["step"] for r in train_points}),
                    timeout=RUN_TIMEOUT_MS)
    plot = window.loss_plot
    assert plot.train["step"].tolist() == sorted({r["step"] for r in train_points})
    assert plot.val["step"].tolist() == [8, 16, 24] and plot.val["windows"].tolist() == [8, 8, 0]
    plot.redraw()
    whole, windowed = plot.val_curve.getData(), plot.val_win_curve.getData()
    assert whole[0].tolist() == [24] and windowed[0].tolist() == [8, 16]
    assert "whole split, step 24" in plot.describe_at(24) and "8 windows, step 8" in plot.describe_at(8)
    # the run's model is the tabs' model: the checkpoint it wrote, weight for weight
    assert window.loaded[0] == str(followed) and window.state == "loaded"
    shown = window.source.snapshot()
    saved = api.load_checkpoint(headless_run)
    for name, t in saved.model.state_dict().items():
        torch.testing.assert_close(shown.model.state_dict()[name], t, rtol=0, atol=0)
    # its kept past models can be scrubbed as a window run's: the marker on a kept step gives that step's model
    assert plot.kept_steps == window.past.snapshot_steps() and 8 in plot.kept_steps and 24 in plot.kept_steps
    plot.choose_step(8)
    qtbot.waitUntil(lambda: window.source.past_step() == 8, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=RUN_TIMEOUT_MS)    # the end is announced
    assert "step 24" in window.notice.label.text() and window.notice.kind == "done"
    assert "whole split" in window._notes["eval"]
    # a new run into the same folder starts its file anew: the curve starts again with it
    (followed / METRICS_FILE).write_text("\n".join(json.dumps(r) for r in records[:3]) + "\n", encoding="utf-8")
    qtbot.waitUntil(lambda: window.loss_plot.train.n == 2, timeout=RUN_TIMEOUT_MS)


def test_open_run_refuses_a_folder_that_is_not_a_run(window, tmp_path):
    assert not window.open_run(str(tmp_path))
    assert "has no metrics.jsonl" in window._notes["error"] and window.watcher is None


def test_a_large_backlog_is_parsed_off_the_gui_thread(qtbot, window, tmp_path):
    line = json.dumps({"event": "step", "step": 0, "train_loss": 2.0, "padding": "x" * 200}) + "\n"
    lines = [line.replace('"step": 0', f'"step": {i}') for i in range(1, 2001)]
    (tmp_path / METRICS_FILE).write_text("".join(lines) + '{"event": "step", "st', encoding="utf-8")
    assert (tmp_path / METRICS_FILE).stat().st_size > INLINE_BYTES
    got = []
    watcher = RunWatcher(tmp_path, window.jobs, window)
    watcher.records.connect(got.extend)
    watcher.poll()
    assert watcher._busy and not got                     # handed to a worker, not parsed here
    qtbot.waitUntil(lambda: len(got) == 2000, timeout=RUN_TIMEOUT_MS)
    assert [r["step"] for r in got] == list(range(1, 2001))   # the unfinished last line waits for its end
