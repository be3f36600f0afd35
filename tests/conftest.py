"""Shared fixtures. Tests run on CPU with tiny configs; the Qt tests use the offscreen platform."""
import os
import random
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # the CI machine has two cores; one test process should not take both

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def runs_location(tmp_path_factory, monkeypatch):
    """The window's default runs location (engine/runs_dir.py) in a fresh temporary folder for every test, so
    no test writes into the user's data folder or sees another test's runs."""
    root = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("LM_PLAYGROUND_RUNS", str(root))
    monkeypatch.setenv("LM_PLAYGROUND_PREPARED", str(root / "prepared"))   # engine.prepare.prepared_root
    return root


@pytest.fixture
def seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return 0


@pytest.fixture
def shakespeare_text():
    if not SHAKESPEARE.exists():
        pytest.skip("../shared/corpora/tinyshakespeare.txt is not present")
    return SHAKESPEARE.read_text(encoding="utf-8")


@pytest.fixture
def small_text():
    """A few KB of English-like text, made here, for tests that need a corpus."""
    words = ("the king and queen walk to the castle where a knight waits for news of the war while "
             "rain falls on the old stone walls and the people sing songs of hope").split()
    rng = random.Random(7)
    lines = []
    for _ in range(300):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))).capitalize() + ".")
    return "\n".join(lines) + "\n"
