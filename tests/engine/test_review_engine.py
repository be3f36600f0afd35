"""Engine defects a review of the merged change found: a tiny pickle that would take hours to check, and a
prepared token file replaced under a running training."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from engine.errors import CheckpointError, CorpusError


def test_a_tiny_pickle_of_shared_lists_is_refused_quickly(tmp_path):
    from engine.pretrained.safe_pickle import load_plain_pickle
    leaf = list(range(300))
    mid = [leaf] * 300
    top = {"itos": [mid] * 300}          # 27 million values by reference, 2 KB on disk
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps(top))
    with pytest.raises(CheckpointError, match="more than"):
        load_plain_pickle(tmp_path / "meta.pkl", "vocabulary file")


def test_a_replaced_token_file_stops_the_run(tmp_path):
    from engine.data import _remember, fresh_map
    path = tmp_path / "train.bin"
    np.arange(1000, dtype=np.uint16).tofile(path)
    data = np.memmap(path, dtype=np.uint16, mode="r")
    _remember(path)
    assert int(fresh_map(data)[5]) == 5
    path.unlink()
    np.full(1000, 60000, dtype=np.uint16).tofile(path)    # prepared again: same size, other tokens
    with pytest.raises(CorpusError, match="replaced while training"):
        fresh_map(data)
