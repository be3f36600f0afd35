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
