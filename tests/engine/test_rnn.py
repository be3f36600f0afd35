"""RNN/LSTM/GRU language models: names, state handling, incremental steps, tying, learning."""
import pytest
import torch

from engine.errors import ConfigError
from engine.models import build_model, config_from_dict
from engine.models.rnn import RNNConfig, RNNLM
from tests.engine.helpers import char_data, loss_curve

V = 17
CELLS = ["rnn", "lstm", "gru"]


def tiny(cell, **kw):
    return build_model(cell, dict(vocab_size=V, n_layer=2, n_embd=12, n_hidden=16, **kw))


@pytest.mark.parametrize("cell", CELLS)
def test_modules_and_shapes(seed, cell):
    m = tiny(cell)
    assert isinstance(m.rnn, {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell])
    assert m.family == cell and m.config.cell == cell
    assert {"wte", "rnn", "drop", "lm_head"} <= {n for n, _ in m.named_children()}
    if cell == "rnn":
        assert m.rnn.nonlinearity == "tanh"
    idx = torch.randint(V, (3, 10))
    logits, loss = m(idx, idx)
    assert logits.shape == (3, 10, V) and loss.ndim == 0


@pytest.mark.parametrize("cell", CELLS)
def test_step_by_step_equals_full_forward(seed, cell):
    m = tiny(cell).double().eval()
    idx = torch.randint(V, (2, 9))
    full, _ = m(idx)
    state, outs = None, []
    for t in range(9):
        logits, state = m.step(idx[:, t:t + 1], state)
        outs.append(logits)
    torch.testing.assert_close(torch.cat(outs, dim=1), full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_reorder_state_picks_rows(seed, cell):
    m = tiny(cell).double().eval()
    idx = torch.randint(V, (3, 5))
    _, state = m.step(idx, None)
    order = torch.tensor([1, 1, 0])
    nxt = torch.randint(V, (3, 1))
    got, _ = m.step(nxt, m.reorder_state(state, order))
    want, _ = m(torch.cat([idx[order], nxt], dim=1))
    torch.testing.assert_close(got[:, -1], want[:, -1], rtol=0, atol=1e-12)


def test_forward_with_state_continues_a_sequence(seed):
    m = tiny("lstm").double().eval()
    idx = torch.randint(V, (2, 8))
    _, state = m.step(idx[:, :5], None)
    second, _ = m(idx[:, 5:], state=state)
    torch.testing.assert_close(second, m(idx)[0][:, 5:], rtol=0, atol=1e-12)


def test_tied_weights(seed):
    m = build_model("gru", dict(vocab_size=V, n_embd=16, n_hidden=16, tie_weights=True))
    assert m.lm_head.weight is m.wte.weight
    with pytest.raises(ConfigError, match="n_hidden == n_embd"):
        build_model("gru", dict(vocab_size=V, n_embd=12, n_hidden=16, tie_weights=True))


def test_params_and_flops(seed):
    m = tiny("lstm")
    n = sum(p.numel() for p in m.parameters())
    assert m.num_params() == n
    assert m.flops_per_token() == 6 * (n - V * 12)  # the embedding lookup is not a matrix product


def test_config_round_trip_and_errors():
    cfg = RNNConfig(vocab_size=5, cell="gru", dropout=0.1)
    assert config_from_dict("gru", cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="n_hiden"):
        config_from_dict("lstm", {"vocab_size": 5, "n_hiden": 3})
    with pytest.raises(ConfigError, match="conflicts"):
        config_from_dict("lstm", {"vocab_size": 5, "cell": "gru"})
    with pytest.raises(ConfigError, match="dropout"):
        RNNConfig(vocab_size=5, dropout=1.5)
    with pytest.raises(ConfigError, match="family"):
        build_model("mamba", {"vocab_size": 5})


@pytest.mark.parametrize("cell", CELLS)
def test_loss_falls_on_small_corpus(seed, small_text, cell):
    chars, data = char_data(small_text)
    m = RNNLM(RNNConfig(vocab_size=len(chars), cell=cell, n_layer=1, n_embd=16, n_hidden=48))
    losses = loss_curve(m, data, lr=1e-2)
    assert sum(losses[-10:]) / 10 < 0.75 * sum(losses[:10]) / 10
