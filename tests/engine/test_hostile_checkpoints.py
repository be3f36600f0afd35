"""Every hostile checkpoint from tests/engine/hostile.py, thrown at `sample`, `tape`, `train --resume` and the
window's api-level Load: each gets one clear error (or, for a damaged optimizer/RNG state, a resume that starts it
fresh with a warning), never a traceback, a hang or a wrong answer. The cases are built here, on the fly."""
import pytest

from tests.engine import hostile


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return hostile.build_good(tmp_path_factory.mktemp("hostile"))


def test_the_good_checkpoint_loads_everywhere(good, tmp_path):
    for name, loader in hostile.LOADERS.items():
        outcome, message = hostile.run_loader(loader, good, tmp_path)
        assert outcome == "ok" and "warning" not in message, (name, message)


@pytest.mark.parametrize("name,mutate,expect", hostile.CASES, ids=[c[0] for c in hostile.CASES])
def test_hostile_checkpoint(good, tmp_path, name, mutate, expect):
    case = hostile.make_case(good, tmp_path / "case", mutate)
    wrong = {}
    for loader_name, loader in hostile.LOADERS.items():
        outcome, message = hostile.run_loader(loader, case, tmp_path)
        if not hostile.judge(expect, loader_name, outcome, message):
            wrong[loader_name] = (outcome, message)
    assert not wrong, wrong


@pytest.fixture(scope="module")
def good_ngram(tmp_path_factory):
    from engine import api
    d = tmp_path_factory.mktemp("hostile-ngram")
    (d / "c.txt").write_text(hostile.TEXT, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(d / "c.txt"), family="ngram", overrides={"order": "3"}))
    list(run.reports())
    return run.save(d / "kn3")


NGRAM_CASES = [
    ("counts negative", hostile._tensors(lambda t: dict(t, counts_1=-t["counts_1"]), "ngram")),
    ("counts float", hostile._tensors(lambda t: dict(t, counts_1=t["counts_1"].double()), "ngram")),
    ("an order's arrays missing", hostile._tensors(lambda t: {k: v for k, v in t.items() if not k.endswith("_3")},
                                                   "ngram")),
    ("keys unsorted", hostile._tensors(lambda t: dict(t, keys_2=t["keys_2"].flip(0).contiguous()), "ngram")),
    ("keys beyond the vocabulary", hostile._tensors(lambda t: dict(t, keys_1=t["keys_1"] + 10 ** 6), "ngram")),
    ("arrays 2-D", hostile._tensors(lambda t: {k: v.reshape(1, -1).contiguous() for k, v in t.items()}, "ngram")),
    ("order 9", hostile._set("model.order", 9)),
    ("smoothing unknown", hostile._set("model.smoothing", "magic")),
    ("groups say model", hostile._set("groups", ["model"])),
]


@pytest.mark.parametrize("name,mutate", NGRAM_CASES, ids=[c[0] for c in NGRAM_CASES])
def test_hostile_ngram_checkpoint(good_ngram, tmp_path, name, mutate):
    """An n-gram checkpoint's count arrays are checked like weights: dtype, shape, order, range."""
    from engine import api
    from engine.errors import CheckpointError
    api.load_checkpoint(good_ngram)
    case = hostile.make_case(good_ngram, tmp_path / "case", mutate)
    with pytest.raises(CheckpointError):
        api.load_checkpoint(case)
    outcome, message = hostile.run_loader(hostile.load_sample, case, tmp_path)
    assert outcome == "error", message
