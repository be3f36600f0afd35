"""The one-click BPTT comparison's model: the contrasting family, as wide, same tokenizer, really trained."""
from __future__ import annotations

import math

import pytest
import torch

from engine.errors import ConfigError
from engine.inside.contrast import contrast_family, train_contrast
from engine.models import build_model
from engine.tokenizers import build_tokenizer

TEXT = "to be or not to be, that is the question: whether 'tis nobler in the mind to suffer\n" * 12


def test_contrast_family():
    assert [contrast_family(f) for f in ("lstm", "gru", "rnn")] == ["rnn", "rnn", "lstm"]
    with pytest.raises(ConfigError, match="no recurrence"):
        contrast_family("transformer")


def test_train_contrast_trains_the_other_family_as_wide_and_stops_on_cancel():
    import threading
    tok = build_tokenizer("char", TEXT)
    torch.manual_seed(0)
    lstm = build_model("lstm", {"vocab_size": tok.vocab_size, "n_layer": 1, "n_embd": 8, "n_hidden": 24})
    calls = []
    family, handle, val = train_contrast(lstm, tok, TEXT, steps=40, progress=lambda k, n: calls.append((k, n)))
    assert family == "rnn" and handle.family == "rnn" and handle.tokenizer is tok
    c = handle.model.config
    assert (c.n_layer, c.n_embd, c.n_hidden) == (1, 8, 24) and not handle.model.training
    assert calls[-1] == (40, 40) and handle.meta["steps"] == 40
    assert val < math.log(tok.vocab_size) - 0.3                   # it learned something (uniform = ln V)
    cancel = threading.Event()
    cancel.set()
    _, stopped, _ = train_contrast(handle.model, tok, TEXT, steps=40, cancel=cancel)
    assert stopped.family == "lstm" and stopped.meta["steps"] < 40
    with pytest.raises(ConfigError, match="too short"):
        train_contrast(lstm, tok, TEXT[:10])
