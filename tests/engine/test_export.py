"""`main.py export`: a checkpoint's run as one plain PyTorch script. Run on the CPU in a bare interpreter (no
project on its path), its per-step losses equal the project's Trainer's for the same seed."""
import json
import re
import subprocess
import sys

import pytest

from engine import api
from engine.cli import main
from engine.errors import CheckpointError

TINY = {"n_layer": "1", "n_embd": "16", "n_head": "2", "block_size": "16", "batch_size": "4", "eval_interval": "10",
        "steps_per_yield": "1", "warmup_steps": "3"}


def _trainer_losses(spec: api.RunSpec) -> tuple[list[float], api.Run]:
    run = api.start_run(spec)
    by_step = {}
    for r in run.reports():
        if r.event in ("step", "eval"):
            by_step.setdefault(r.step, r.train_loss)
    return [by_step[s] for s in sorted(by_step)], run


@pytest.mark.parametrize("family, tokenizer, extra", [
    ("transformer", "char", {}),
    ("transformer", "char", {"pos": "sinusoidal"}),
    ("transformer", "bpe", {"pos": "learned", "dropout": "0.1"}),
    ("lstm", "word", {"n_hidden": "16"}),
    ("transformer", "char", {"grad_accum": "2"}),
])
def test_exported_script_reproduces_the_trainers_losses(tmp_path, small_text, family, tokenizer, extra):
    corpus = tmp_path / "c.txt"
    # words the simple pattern \w+ would split: combining marks, a decomposed accent, emoji sequences
    corpus.write_text(small_text * 2 + "\nनमस्ते दुनिया cafe\u0301 👍🏽 👨\u200d👩\u200d👧 🇫🇷\n" * 3, encoding="utf-8")
    overrides = dict(TINY, **extra)
    if family != "transformer":
        overrides.pop("n_head")
    spec = api.RunSpec(corpus=str(corpus), tokenizer=tokenizer, family=family, seed=7, device="cpu", max_steps=20,
                       preset=None, overrides=overrides,
                       tokenizer_options={"vocab_size": "300"} if tokenizer == "bpe" else {})
    losses, run = _trainer_losses(spec)
    assert len(losses) == 20
    ck = run.save(tmp_path / "ck")
    script = tmp_path / "out" / "run.py"
    assert main(["export", "--checkpoint", str(ck), "--out", str(script)]) == 0
    text = script.read_text()
    imports = set(re.findall(r"^\s*(?:from|import) (\w+)", text, re.M))
    assert imports <= {"argparse", "json", "math", "re", "sys", "pathlib", "numpy", "torch", "tokenizers"}
    proc = subprocess.run([sys.executable, "-I", str(script), "--steps", "20", "--losses", "--sample-tokens", "20"],
                          cwd=tmp_path / "out", capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    exported = json.loads(proc.stdout.strip().splitlines()[-1])
    assert exported == pytest.approx(losses, abs=1e-5, rel=0)
    # the run's own precision is written in, not "auto" decided again where the script runs
    used = "bf16" if run.trainer.precision_label.startswith("bf16") else "fp32"
    assert f'"precision": "{used}"' in text and ('"precision": "auto"' not in text)
    assert "step 20: train loss" in proc.stderr          # it trains, evaluates and samples
    assert (tmp_path / "out" / "run.tokenizer.json").exists() == (tokenizer == "bpe")


def test_the_exported_script_reads_windows_line_endings_as_the_project_does(tmp_path, small_text):
    """The project reads \r\n as \n; the script's --corpus kept the \r, so the same file gave other tokens."""
    corpus = tmp_path / "w.txt"
    corpus.write_bytes((small_text * 2).replace("\n", "\r\n").encode("utf-8"))
    overrides = dict(TINY)
    spec = api.RunSpec(corpus=str(corpus), tokenizer="char", seed=7, device="cpu", max_steps=6, preset=None,
                       overrides=overrides)
    losses, run = _trainer_losses(spec)
    assert "\r" not in run.tokenizer.to_dict()["chars"]
    script = tmp_path / "out" / "run.py"
    assert main(["export", "--checkpoint", str(run.save(tmp_path / "ck")), "--out", str(script)]) == 0
    proc = subprocess.run([sys.executable, "-I", str(script), "--corpus", str(corpus), "--steps", "6", "--losses",
                           "--sample-tokens", "5"], cwd=tmp_path / "out", capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == pytest.approx(losses, abs=1e-5, rel=0)


def test_export_refuses_an_ngram(tmp_path, small_text, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(corpus), family="ngram", device="cpu"))
    list(run.reports())
    ck = run.save(tmp_path / "ng")
    assert main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "x.py")]) == 2
    assert "n-gram" in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        from engine.export import export_script
        export_script(ck, tmp_path / "y.py")


def test_export_replaces_an_earlier_export_but_not_a_users_file(tmp_path, small_text, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(small_text, encoding="utf-8")
    spec = api.RunSpec(corpus=str(corpus), tokenizer="char", seed=7, device="cpu", max_steps=2, preset=None,
                       overrides=dict(TINY))
    run = api.start_run(spec)
    list(run.reports())
    ck = str(run.save(tmp_path / "ck"))
    mine = tmp_path / "mine.py"
    mine.write_text("my own script\n")
    assert main(["export", "--checkpoint", ck, "--out", str(mine)]) == 2
    assert "already exists and is not part of a script exported by LM Playground" in capsys.readouterr().err
    assert mine.read_text() == "my own script\n"
    assert main(["export", "--checkpoint", ck, "--out", str(mine), "--overwrite"]) == 0
    assert "exported by LM Playground" in mine.read_text().splitlines()[0]
    assert main(["export", "--checkpoint", ck, "--out", str(mine)]) == 0   # a re-export replaces the last one
    # a file an export would write beside the script is the user's too while no export is there
    (tmp_path / "new.corpus.txt").write_text("notes\n")
    assert main(["export", "--checkpoint", ck, "--out", str(tmp_path / "new.py")]) == 2
    assert "new.corpus.txt already exists" in capsys.readouterr().err and not (tmp_path / "new.py").exists()


def test_the_corpus_copy_never_replaces_the_corpus_itself(tmp_path, capsys):
    """A corpus read with its bad bytes replaced is copied beside the script; when the corpus file has that
    copy's name, even --overwrite must not write the replaced text over it."""
    corpus = tmp_path / "x.corpus.txt"
    raw = ("hello world, a corpus with one bad byte \xff here.\n" * 40).encode("latin-1")
    corpus.write_bytes(raw)
    spec = api.RunSpec(corpus=str(corpus), tokenizer="char", seed=7, device="cpu", max_steps=2, preset=None,
                       overrides=dict(TINY), on_bad_utf8="replace")
    run = api.start_run(spec)
    list(run.reports())
    ck = str(run.save(tmp_path / "ck"))
    assert main(["export", "--checkpoint", ck, "--out", str(tmp_path / "x.py"), "--overwrite"]) == 2
    assert "would replace the corpus file itself" in capsys.readouterr().err
    assert corpus.read_bytes() == raw
