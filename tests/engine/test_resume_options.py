"""Resuming from the command line and the API."""
import pytest

from engine import api
from engine.cli import main
from engine.errors import ConfigError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 6-step one-layer transformer checkpoint and its corpus."""
    d = tmp_path_factory.mktemp("resume")
    corpus = d / "c.txt"
    corpus.write_text("the cat sat on the mat. the dog sat on the log. " * 60, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(corpus), preset="tiny-cpu-transformer", device="cpu", max_steps=6,
                                    overrides={"n_layer": "1", "n_embd": "32", "eval_interval": "50"}))
    list(run.reports())
    return run.save(d / "ck"), corpus


def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("max_steps", [3, 6])
def test_resume_at_or_past_max_steps_is_an_error(capsys, saved, tmp_path, max_steps):
    ck, _ = saved
    with pytest.raises(ConfigError, match="already at step 6; max_steps must be above that"):
        api.resume_run(str(ck), max_steps=max_steps, device="cpu")
    rc, out, err = _cli(capsys, "train", "--resume", str(ck), "--max-steps", str(max_steps), "--device", "cpu",
                        "--out", str(tmp_path / "o"))
    assert rc == 2 and out == "" and "already at step 6" in err
    assert not (tmp_path / "o").exists()
