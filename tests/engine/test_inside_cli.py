"""`main.py inspect` prints the same numbers the engine computes (and the Inside tab draws)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import api
from engine.cli import main
from engine.inside import bptt_norms, look_inside

TEXT = "the cat sat on the mat. the dog sat on the log. "


def _checkpoint(tmp_path_factory, preset, name, overrides):
    d = tmp_path_factory.mktemp(name)
    (d / "c.txt").write_text(TEXT * 60, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(d / "c.txt"), family=preset.split("-")[-1], preset=preset,
                                    device="cpu",
                                    overrides={"eval_interval": "50", **overrides}, max_steps=20))
    list(run.reports())
    return str(run.save(d / name))


@pytest.fixture(scope="module")
def lstm_ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory, "tiny-cpu-lstm", "lstm", {"n_hidden": "32", "n_embd": "16"})


@pytest.fixture(scope="module")
def gpt_ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory, "tiny-cpu-transformer", "gpt", {"n_layer": "2", "n_embd": "32"})


def _inspect(capsys, *argv):
    try:
        rc = main(["inspect", *argv])
    except SystemExit as e:       # argparse's own refusals: `error:` and exit 2
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_inspect_lstm_prints_bptt_and_units(capsys, lstm_ckpt):
    rc, out, err = _inspect(capsys, "--checkpoint", lstm_ckpt, "--text", "the dog sat on", "--json",
                            "--loss-position", "5")
    assert rc == 0, err
    report = json.loads(out)
    handle = api.load_checkpoint(lstm_ckpt)
    ids = handle.tokenizer.encode("the dog sat on")
    want = bptt_norms(handle.model, ids, 5).norms[0]
    got = report["bptt"]["grad_norms"]["layer 1"]
    assert report["bptt"]["loss_position"] == 5 and len(got) == len(ids) - 1
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[5:] == [0.0] * (len(ids) - 6) and min(got[:5]) > 0
    assert set(report["top_units"]) >= {"inside quotes", "position in line", "vowel", "space"}
    assert all(abs(u["r"]) <= 1 and u["site"].startswith("layer 1 ") for u in report["top_units"]["space"])
    assert "logit_lens" not in report and "residual stream" in report["missing"]["lens"]

    rc, out, _ = _inspect(capsys, "--checkpoint", lstm_ckpt, "--text", "the dog sat on", "--json",
                          "--loss-position", "mean")
    mean = json.loads(out)["bptt"]
    assert mean["loss_position"] == "mean" and min(mean["grad_norms"]["layer 1"]) > 0


def test_inspect_transformer_prints_lens_and_entropies(capsys, gpt_ckpt):
    rc, out, err = _inspect(capsys, "--checkpoint", gpt_ckpt, "--text", "the cat sat", "--json")
    assert rc == 0, err
    report = json.loads(out)
    handle = api.load_checkpoint(gpt_ckpt)
    ins = look_inside(handle.model, handle.tokenizer, "the cat sat")
    lens = report["logit_lens"]
    assert lens["layers"] == ["embeddings", "after block 1", "after block 2"]
    pos = lens["positions"][3]
    assert pos["token"] == ins.tokens[3] and pos["next_in_text"] == ins.tokens[4]
    assert pos["model_top_prob_per_layer"] == pytest.approx(ins.lens.final_probs[:, 3].tolist())
    assert pos["top_per_layer"][-1]["prob"] == pytest.approx(float(ins.lens.top_probs[-1, 3]))
    assert pos["model_top_token"] == pos["top_per_layer"][-1]["token"]
    assert lens["positions"][-1]["next_in_text_prob_per_layer"][-1] is None
    ent = report["attention_entropy"]
    assert list(ent) == ["layer 1", "layer 2"] and len(ent["layer 1"]) == 4
    assert ent["layer 2"] == pytest.approx(ins.head_entropy[1].tolist())
    assert "bptt" not in report and "recurrence" in report["missing"]["bptt"]


@pytest.mark.parametrize("position,needle", [("0", "a position"), ("x", "a position"), ("99", "between 1 and")])
def test_inspect_bad_loss_position_is_one_line_error(capsys, lstm_ckpt, position, needle):
    rc, out, err = _inspect(capsys, "--checkpoint", lstm_ckpt, "--text", "the cat", "--loss-position", position)
    last = err.strip().splitlines()[-1]     # argparse puts its usage line above its own refusals
    assert rc == 2 and out == "" and last.startswith("error: ") and needle in last and "Traceback" not in err


def test_a_malformed_loss_position_is_an_error_for_a_transformer_too(capsys, gpt_ckpt):
    """A transformer has no BPTT figures to carry the position to; a value that is no position is still refused,
    not silently ignored."""
    rc, out, err = _inspect(capsys, "--checkpoint", gpt_ckpt, "--text", "the cat", "--loss-position", "abc")
    assert rc == 2 and out == "" and err.strip().splitlines()[-1].startswith("error: ") and "'abc'" in err
    rc, out, err = _inspect(capsys, "--checkpoint", gpt_ckpt, "--text", "the cat", "--loss-position", "99")
    assert rc == 2 and out == "" and err.startswith("error: ") and "between 1 and" in err


def test_main_py_runs_inspect(lstm_ckpt):
    """The entry point itself knows the command (main.py keeps its own list of headless commands)."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "main.py", "inspect", "--checkpoint", lstm_ckpt, "--text", "the cat",
                          "--json"], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["bptt"]["loss_position"] == 6
