"""The headless commands as a user runs them: one JSON line on success, `error: ...` and exit 2 on bad input."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRAIN_KEYS = {"model", "tokenizer", "vocab_size", "train_tokens", "val_tokens", "val_loss", "val_bpc", "val_ppl",
              "wall_s", "checkpoint"}


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def corpus_file(tmp_path, small_text):
    p = tmp_path / "corpus.txt"
    p.write_text(small_text, encoding="utf-8")
    return p


def test_ngram_train_prints_json_and_writes_checkpoint(capsys, corpus_file, tmp_path):
    out_dir = tmp_path / "kn3"
    rc, out, err = _run(capsys, "train", "--corpus", str(corpus_file), "--tokenizer", "word", "--model", "ngram",
                        "--set", "order=3", "--set", "smoothing=kneser-ney", "--out", str(out_dir))
    assert rc == 0, err
    res = _last_json(out)
    assert TRAIN_KEYS <= set(res)
    assert res["model"] == "ngram" and res["tokenizer"] == "word"
    assert 0 < res["val_loss"] < math.log(res["vocab_size"])  # better than uniform on this repetitive text
    assert res["val_ppl"] == pytest.approx(math.exp(res["val_loss"]), rel=1e-6)
    assert (out_dir / "meta.json").exists()


def test_ngram_mle_unseen_reports_infinite_perplexity(capsys, tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abcabcabcabcabcabcabcabcabcabc" * 3 + "cba", encoding="utf-8")
    rc, out, err = _run(capsys, "train", "--corpus", str(p), "--model", "ngram", "--set", "order=2",
                        "--set", "smoothing=mle", "--val-fraction", "0.1", "--out", str(tmp_path / "o"))
    assert rc == 0, err
    res = _last_json(out)
    assert res["val_ppl"] == "inf" and "infinite" in err


def test_neural_train_and_resume(capsys, corpus_file, tmp_path, monkeypatch):
    out_dir = tmp_path / "gpt"
    rc, out, err = _run(capsys, "train", "--corpus", str(corpus_file), "--model", "transformer",
                        "--preset", "tiny-cpu-transformer", "--max-steps", "6", "--set", "n_layer=1",
                        "--set", "eval_interval=3", "--device", "cpu", "--out", str(out_dir))
    assert rc == 0, err
    res = _last_json(out)
    assert TRAIN_KEYS | {"params", "device", "tokens_per_s"} <= set(res)
    assert res["step"] == 6 and math.isfinite(res["val_loss"])
    rc, out, err = _run(capsys, "train", "--resume", str(out_dir), "--max-steps", "9", "--device", "cpu",
                        "--out", str(out_dir))
    assert rc == 0, err
    assert _last_json(out)["step"] == 9 and f"checkpoint folder {out_dir}\n" in err
    monkeypatch.chdir(tmp_path)      # without --out a resumed run goes to a new folder: said, since it is easy to miss
    rc, out, err = _run(capsys, "train", "--resume", str(out_dir), "--max-steps", "10", "--device", "cpu")
    assert rc == 0, err
    new = _last_json(out)["checkpoint"]
    assert new != str(out_dir) and f"checkpoint folder {new} (new; --out {out_dir} would continue" in err


def test_a_new_run_does_not_replace_another_runs_checkpoint_unless_asked(capsys, corpus_file, tmp_path):
    ngram = ["train", "--corpus", str(corpus_file), "--model", "ngram"]
    first, other = tmp_path / "first", tmp_path / "other"
    assert _run(capsys, *ngram, "--set", "order=2", "--out", str(first))[0] == 0
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    rc, out, err = _run(capsys, *ngram, "--set", "order=3", "--out", str(first))
    assert rc == 2 and "already holds a checkpoint (ngram)," in err and "--overwrite" in err
    assert "--resume" not in err                               # an n-gram model is counted once: no resuming
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before   # untouched
    # a resumed run may go back into its own folder, or through a link to it; not into another run's
    assert _run(capsys, *ngram, "--set", "order=2", "--out", str(other))[0] == 0
    gpt = tmp_path / "gpt"
    tiny = ["--preset", "tiny-cpu-transformer", "--max-steps", "2", "--set", "n_layer=1", "--device", "cpu"]
    assert _run(capsys, "train", "--corpus", str(corpus_file), *tiny, "--out", str(gpt))[0] == 0
    (tmp_path / "link").symlink_to(gpt)
    rc, out, err = _run(capsys, "train", "--resume", str(tmp_path / "link"), "--max-steps", "3", "--device", "cpu",
                        "--out", str(gpt))
    assert rc == 0, err
    rc, out, err = _run(capsys, "train", "--resume", str(gpt), "--max-steps", "4", "--device", "cpu",
                        "--out", str(other))
    assert rc == 2 and "already holds" in err
    rc, out, err = _run(capsys, "train", "--corpus", str(corpus_file), *tiny, "--out", str(gpt))
    assert rc == 2 and f"--resume {gpt} --out {gpt}" in err   # how to continue that run instead
    rc, out, err = _run(capsys, "train", "--init-from", str(gpt), "--corpus", str(corpus_file), "--out", str(gpt))
    assert rc == 2 and "already holds" in err and "--resume" not in err   # a fine-tune is not a resume
    # 'deep/../other' is opened through the link as the OS resolves it: the save goes where the check looked
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "other").symlink_to(gpt)                  # a/other is the run resumed below
    (tmp_path / "deep").symlink_to(tmp_path / "a" / "b")
    rc, out, err = _run(capsys, "train", "--resume", str(gpt), "--max-steps", "4", "--device", "cpu",
                        "--out", str(tmp_path / "deep" / ".." / "other"))
    assert rc == 0, err                                         # deep/../other is a/other: the resumed run itself
    assert json.loads((gpt / "meta.json").read_text())["step"] == 4
    assert {p.name: p.read_bytes() for p in other.iterdir()} and (other / "meta.json").is_file()
    # --overwrite removes the old run, its log and past models included, and replaces it
    rc, out, err = _run(capsys, *ngram, "--set", "order=3", "--out", str(first), "--overwrite")
    assert rc == 0, err
    assert json.loads((first / "meta.json").read_text())["model"]["order"] == 3


def test_overwrite_leaves_nothing_of_the_old_run(capsys, corpus_file, tmp_path):
    tiny = ["train", "--corpus", str(corpus_file), "--preset", "tiny-cpu-transformer", "--set", "n_layer=1",
            "--device", "cpu", "--set", "eval_interval=2", "--keep-snapshots"]
    run = tmp_path / "run"
    assert _run(capsys, *tiny, "--max-steps", "6", "--out", str(run))[0] == 0
    old_steps = sorted(p.name for p in (run / "snapshots").iterdir())
    assert old_steps
    rc, out, err = _run(capsys, *tiny, "--max-steps", "2", "--seed", "5", "--set", "n_embd=16", "--out", str(run),
                        "--overwrite")
    assert rc == 0, err
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log].count("start") == 1 and max(r.get("step", 0) for r in log) == 2
    from safetensors import safe_open
    kept = sorted((run / "snapshots").glob("step-*.safetensors"))
    assert kept and len(kept) < len(old_steps)                 # the old run's steps 3-6 are gone
    for f in kept:                                             # and those left are the new, 16-wide model's
        with safe_open(str(f), "pt") as t:
            assert [t.get_slice(k).get_shape()[1] for k in t.keys() if k.endswith("wte.weight")] == [16], f.name


def test_a_checkpoint_left_between_a_saves_two_renames_counts_as_held(tmp_path):
    from engine import checkpoint as ckpt
    ckpt.save_checkpoint(tmp_path / "run", {"family": "x"}, {"model": {"w": torch.zeros(2)}})
    (tmp_path / "run").rename(tmp_path / ".run.old-cafebabe")   # a save killed between its two renames
    (tmp_path / "lnk").symlink_to(tmp_path / "run")              # named through a link to it
    assert ckpt.holds_checkpoint(tmp_path / "run") and ckpt.holds_checkpoint(tmp_path / "lnk")
    assert not ckpt.holds_checkpoint(tmp_path / "elsewhere")
    ckpt.recover(tmp_path / "lnk")                               # and through the link it is put back
    assert (tmp_path / "run" / "meta.json").is_file()


def test_clear_swaps_the_old_run_out_whole_and_refuses_other_things(tmp_path):
    from engine import checkpoint as ckpt
    from engine.errors import CheckpointError
    run = tmp_path / "run"
    ckpt.save_checkpoint(run, {"family": "x"}, {"model": {"w": torch.zeros(2)}})
    (run / "metrics.jsonl").write_text('{"event": "start"}\n')
    (run / "snapshots").mkdir()
    (run / "snapshots" / "step-000000001.safetensors").write_bytes(b"x")
    ckpt.clear(run)
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl"] and (run / "metrics.jsonl").read_text() == ""
    assert not list(tmp_path.glob(".run.*"))                     # nothing left beside it
    (tmp_path / ".run.cleared-1-dead").mkdir()                   # what a failed delete would leave ...
    ckpt.save_checkpoint(run, {"family": "x"}, {"model": {"w": torch.zeros(2)}})
    assert not list(tmp_path.glob(".run.*"))                     # ... goes with the next save there
    (run / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="holds other things"):
        ckpt.clear(run)
    assert (run / "notes.txt").read_text() == "mine" and (run / "meta.json").is_file()


def test_a_new_run_drops_past_models_a_killed_run_left_without_a_checkpoint(capsys, corpus_file, tmp_path):
    tiny = ["train", "--corpus", str(corpus_file), "--preset", "tiny-cpu-transformer", "--set", "n_layer=1",
            "--device", "cpu", "--set", "eval_interval=2", "--keep-snapshots", "--max-steps", "4"]
    run = tmp_path / "run"
    assert _run(capsys, *tiny, "--out", str(run))[0] == 0
    for f in run.glob("*.safetensors"):                          # as if killed before its first save
        f.unlink()
    (run / "meta.json").unlink()
    assert _run(capsys, *tiny, "--set", "n_embd=16", "--out", str(run))[0] == 0
    from safetensors import safe_open
    for f in sorted((run / "snapshots").glob("step-*.safetensors")):
        with safe_open(str(f), "pt") as t:
            assert [t.get_slice(k).get_shape()[1] for k in t.keys() if k.endswith("wte.weight")] == [16], f.name


def test_out_and_resume_expand_a_quoted_tilde(capsys, corpus_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    tiny = ["--preset", "tiny-cpu-transformer", "--max-steps", "2", "--set", "n_layer=1", "--device", "cpu"]
    assert _run(capsys, "train", "--corpus", str(corpus_file), *tiny, "--out=~/r")[0] == 0
    assert (tmp_path / "r" / "meta.json").is_file()
    rc, out, err = _run(capsys, "train", "--resume=~/r", "--out=~/r", "--max-steps", "3", "--device", "cpu")
    assert rc == 0, err
    rc, out, err = _run(capsys, "train", "--corpus", str(corpus_file), *tiny, "--out=~/r")
    assert rc == 2 and "(transformer, step 3)" in err


@pytest.mark.parametrize("setup,args,needle", [
    (lambda d: (d / "e.txt").write_text(""), ["--corpus", "{d}/e.txt"], "empty"),
    (lambda d: (d / "b.txt").write_bytes(b"abc\x00def" * 10), ["--corpus", "{d}/b.txt"], "binary"),
    (lambda d: (d / "u.txt").write_bytes(b"hello \xff world" * 10), ["--corpus", "{d}/u.txt"], "offset"),
    (lambda d: (d / "f").mkdir(), ["--corpus", "{d}/f"], "no text"),
    (lambda d: (d / "big.txt").write_text("x" * 30_000), ["--corpus", "{d}/big.txt", "--max-corpus-mb", "0.01"],
     "MB"),
    (lambda d: None, ["--corpus", "{d}/missing.txt"], "missing.txt"),
    (lambda d: None, ["--corpus", "builtin:nope"], "python-docs"),
    (lambda d: None, ["--model", "ngram", "--set", "order=9"], "order"),
    (lambda d: None, ["--model", "bigram"], "unknown model"),
    (lambda d: None, ["--tokenizer", "morse"], "morse"),
    (lambda d: (d / "file").write_text("x"), ["--model", "ngram", "--out", "{d}/file"], "is a file"),
    (lambda d: (d / "s.txt").write_text("tiny text here\n"), ["--corpus", "{d}/s.txt", "--preset",
                                                               "tiny-cpu-transformer"], "short"),
    (lambda d: None, ["--set", "n_head=5", "--set", "n_embd=64"], "divisible"),
    (lambda d: None, ["--set", "lr=-1"], "lr"),
    (lambda d: None, ["--preset", "tiny-cpu-lstm"], "preset tiny-cpu-lstm is for lstm, not transformer"),
    (lambda d: None, ["--model", "gru", "--preset", "tiny-cpu-transformer"], "is for transformer, not gru"),
])
def test_bad_input_is_one_line_error(capsys, tmp_path, corpus_file, setup, args, needle):
    setup(tmp_path)
    argv = ["train", "--corpus", str(corpus_file), "--device", "cpu", "--max-steps", "1",
            "--out", str(tmp_path / "out")]
    argv += [a.format(d=tmp_path) for a in args]
    rc, out, err = _run(capsys, *argv)
    assert rc == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in err


def test_replace_bad_utf8_option_trains(capsys, tmp_path, small_text):
    p = tmp_path / "u.txt"
    p.write_bytes(small_text.encode() + b"\xff\xfe tail of the text\n")
    rc, out, err = _run(capsys, "train", "--corpus", str(p), "--model", "ngram", "--out", str(tmp_path / "o"))
    assert rc == 2 and err.strip().splitlines()[-1] == (
        f"error: {p} is not valid UTF-8 at byte offset {len(small_text.encode())} (byte 0xff); "
        f"add --replace-bad-utf8 to read such bytes as U+FFFD (�)")
    rc, out, err = _run(capsys, "train", "--corpus", str(p), "--model", "ngram", "--replace-bad-utf8",
                        "--out", str(tmp_path / "o"))
    assert rc == 0, err


def test_subprocess_builtin_corpus_end_to_end(tmp_path):
    """What a newcomer types: a real process, the built-in corpus, a char trigram."""
    out = subprocess.run([sys.executable, "main.py", "train", "--corpus", "builtin:python-docs", "--model", "ngram",
                          "--set", "order=3", "--out", str(tmp_path / "kn")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["train_tokens"] > 100_000 and 1.0 < res["val_bpc"] < 4.0


@pytest.mark.parametrize("argv", [["trian", "--corpus", "x"], ["--corpus", "x"], ["Train"]])
def test_mistyped_command_is_an_error_not_the_window(capsys, monkeypatch, argv):
    import types

    import main as entry
    opened = []
    monkeypatch.setitem(sys.modules, "app.launch", types.SimpleNamespace(launch=lambda a: opened.append(a) or 0))
    assert entry.main(argv) == 2
    assert capsys.readouterr().err.strip() == (f"error: unknown command {argv[0]!r}; use train, prepare, sample, "
                                               f"tape, inspect or export, or no arguments for the window")
    assert opened == []
    assert entry.main([]) == 0 and opened == [[]]   # no arguments still opens the window


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A one-layer transformer trained for a few steps on repetitive text: enough for decoding to have a shape."""
    from engine import api
    d = tmp_path_factory.mktemp("ck")
    (d / "c.txt").write_text("the cat sat on the mat. the dog sat on the log. " * 60, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(d / "c.txt"), preset="tiny-cpu-transformer", device="cpu",
                                    overrides={"n_layer": "1", "n_embd": "32", "eval_interval": "50"}, max_steps=30))
    list(run.reports())
    return run.save(d / "gpt")


def test_sample_prints_the_prompt_then_the_continuation(capsys, tiny_checkpoint):
    for strategy in ("sample", "beam"):
        rc, out, err = _run(capsys, "sample", "--checkpoint", str(tiny_checkpoint), "--prompt", "the cat",
                            "--strategy", strategy, "--max-new-tokens", "12", "--seed", "1")
        assert rc == 0, err
        rc, js, err = _run(capsys, "sample", "--checkpoint", str(tiny_checkpoint), "--prompt", "the cat",
                           "--strategy", strategy, "--max-new-tokens", "12", "--seed", "1", "--json")
        res = _last_json(js)
        assert res["prompt"] == "the cat" and res["text"]
        assert out == "the cat" + res["text"] + "\n"


def test_beam_json_tokens_are_the_returned_hypothesis(capsys, tiny_checkpoint):
    from engine import api
    tok = api.load_checkpoint(tiny_checkpoint).tokenizer
    for width, new in ((4, 20), (5, 25)):   # settings where the leading beam changes on the way (checked)
        rc, out, err = _run(capsys, "sample", "--checkpoint", str(tiny_checkpoint), "--prompt", "the d",
                            "--strategy", "beam", "--beam-width", str(width), "--max-new-tokens", str(new),
                            "--json")
        assert rc == 0, err
        res = _last_json(out)
        ids = [t["id"] for t in res["tokens"]]
        assert tok.decode(ids) == res["text"] and "".join(t["text"] for t in res["tokens"]) == res["text"]
        assert all(0 < t["prob"] <= 1 for t in res["tokens"])
