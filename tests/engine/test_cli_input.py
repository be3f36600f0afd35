"""Issue 14's command-line cases: no traceback for bad input, no value ignored without a word, and a trained model
that cannot be saved where asked is saved elsewhere, saying where."""
import errno
import json

import pytest

from engine import api, checkpoint
from engine.corpus import load_corpus
from engine.errors import CorpusError
from engine.cli import main

TINY = ["--model", "transformer", "--preset", "tiny-cpu-transformer", "--set", "n_layer=1", "--set", "n_embd=16",
        "--set", "eval_interval=2", "--device", "cpu", "--quiet"]


@pytest.fixture
def corpus(tmp_path, small_text):
    p = tmp_path / "corpus.txt"
    p.write_text(small_text, encoding="utf-8")
    return p


def _run(capsys, *argv):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:   # argparse's own errors: usage, `error: ...`, exit 2
        rc = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


@pytest.mark.parametrize("args,needle", [
    (["--seed", "1180591620717411303424"], "seed must be between 0 and 2^63-1"),
    (["--seed", "-1"], "seed must be between"),
    (["--max-corpus-mb", "nan"], "--max-corpus-mb: must be a finite number"),
    (["--max-corpus-mb", "inf"], "--max-corpus-mb: must be a finite number"),
    (["--val-fraction", "nan"], "--val-fraction: must be between 0 and 1"),
    (["--max-steps", "0"], "--max-steps: must be 1 or more"),
    (["--set", "vocab_size=10"], "vocabulary size comes from the tokenizer"),
    (["--set", "model.vocab_size=10"], "vocabulary size comes from the tokenizer"),
    (["--set", "max_steps=5"], "max_steps is given twice, 2 (--max-steps) and 5"),
    (["--corpus", ""], "no corpus given"),
    (["--set", "n_layer=100000000"], "training this model needs about"),   # judged by arithmetic, not built
])
def test_bad_numbers_and_dropped_values_are_refused(capsys, tmp_path, corpus, args, needle):
    rc, out, err = _run(capsys, "train", "--corpus", corpus, *TINY, "--max-steps", "2", "--out", tmp_path / "o",
                        *args)
    assert rc == 2 and "error:" in err and needle in err, err
    assert not (tmp_path / "o" / "meta.json").exists()


def test_resume_refuses_two_different_max_steps(capsys, tmp_path, corpus):
    rc, _, err = _run(capsys, "train", "--corpus", corpus, *TINY, "--max-steps", "2", "--out", tmp_path / "ck")
    assert rc == 0, err
    rc, _, err = _run(capsys, "train", "--resume", tmp_path / "ck", "--max-steps", "4", "--set", "max_steps=6",
                      "--device", "cpu", "--out", tmp_path / "ck2")
    assert rc == 2 and "max_steps is given twice" in err
    rc, out, err = _run(capsys, "train", "--resume", tmp_path / "ck", "--set", "max_steps=4", "--device", "cpu",
                        "--quiet", "--out", tmp_path / "ck2")
    assert rc == 0 and json.loads(out)["step"] == 4


def _full_disk_at(monkeypatch, names):
    """Saves into a folder whose name is in `names` fail as on a full disk (the write of the first file)."""
    real = checkpoint._write_synced

    def write(path, data):
        if any(path.parent.name.startswith(f".{n}.saving") for n in names):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)
    monkeypatch.setattr(checkpoint, "_write_synced", write)


def test_a_full_disk_after_training_saves_the_model_elsewhere(capsys, tmp_path, corpus, monkeypatch):
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    _full_disk_at(monkeypatch, ["ck"])
    rc, out, err = _run(capsys, "train", "--corpus", corpus, *TINY, "--max-steps", "2", "--out", tmp_path / "ck")
    assert rc == 2 and "the disk is full" in err and "the trained model was saved to" in err, err
    rescued = err.split("the trained model was saved to ")[1].split(" instead")[0]
    assert rescued.startswith(str(tmp_path / "tmp" / "lm-playground-rescue-ck-"))
    assert api.load_checkpoint(rescued).meta["step"] == 2
    assert not (tmp_path / "ck" / "meta.json").exists()


def test_when_no_place_can_take_the_model_the_error_says_so(capsys, tmp_path, corpus, monkeypatch):
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path / "home")

    def write(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(checkpoint, "_write_synced", write)
    rc, out, err = _run(capsys, "train", "--corpus", corpus, *TINY, "--max-steps", "2", "--out", tmp_path / "ck")
    assert rc == 2 and "could not be saved anywhere" in err and str(tmp_path / "home") in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_skipped_corpus_files_are_listed(capsys, tmp_path, small_text):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text(small_text)
    (tmp_path / "c" / "pic.png").write_bytes(b"\x89PNG\x00\x00")
    rc, out, err = _run(capsys, "train", "--corpus", tmp_path / "c", *TINY, "--max-steps", "1",
                        "--out", tmp_path / "o")
    assert rc == 0, err
    assert "note: 1 file(s) of the corpus folder were skipped: pic.png (binary (NUL bytes))" in err


def test_a_run_trained_on_a_relative_path_resumes_and_exports_from_another_folder(capsys, tmp_path, small_text,
                                                                                   monkeypatch):
    """The checkpoint kept --corpus as typed ("corp/c.txt"), so resume and export from any other folder failed with
    "no such file or folder" although the file was there; it keeps the absolute path now."""
    (tmp_path / "corp").mkdir()
    (tmp_path / "corp" / "c.txt").write_text(small_text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    rc, _, err = _run(capsys, "train", "--corpus", "corp/c.txt", *TINY, "--max-steps", "2", "--out", "ck")
    assert rc == 0, err
    assert checkpoint.load_meta(tmp_path / "ck")["spec"]["corpus"] == str(tmp_path / "corp" / "c.txt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rc, out, err = _run(capsys, "train", "--resume", tmp_path / "ck", "--max-steps", "4", "--device", "cpu",
                        "--quiet", "--out", elsewhere / "resumed")
    assert rc == 0, err
    assert checkpoint.load_meta(elsewhere / "resumed")["step"] == 4
    rc, _, err = _run(capsys, "export", "--checkpoint", tmp_path / "ck", "--out", elsewhere / "train_it.py")
    assert rc == 0, err


def test_a_missing_relative_corpus_says_where_it_was_looked_for(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = _run(capsys, "train", "--corpus", "corp/none.txt", *TINY, "--max-steps", "2")
    assert rc == 2 and f"no such file or folder: {tmp_path / 'corp' / 'none.txt'}\n" in err
    with pytest.raises(CorpusError, match=f"corp/none.txt \\(a relative path: looked for from the current folder "
                                          f"{tmp_path}\\)"):
        load_corpus("corp/none.txt")   # the corpus box and export read a path as given
