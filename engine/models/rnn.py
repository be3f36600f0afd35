"""Recurrent language models: vanilla tanh RNN, LSTM and GRU over token embeddings.

They use torch's fused recurrent modules (cuDNN on a GPU) rather than a Python loop over time, so a char-rnn sized
LSTM trains at a useful speed; the autodiff tape rebuilds the same computation step by step from these weights,
which is why the module names (`wte`, `rnn`, `drop`, `lm_head`) are part of the contract."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from . import RNN_CELLS, ConfigMixin, check_finite

_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class RNNConfig(ConfigMixin):
    vocab_size: int              # number of token ids the embedding and the head cover
    cell: str = "lstm"           # "rnn" (tanh), "lstm" or "gru"
    block_size: int = 64         # training window length (truncated backpropagation through time)
    n_layer: int = 2             # stacked recurrent layers
    n_embd: int = 128            # token embedding width (the first layer's input size)
    n_hidden: int = 128          # hidden state width of every layer
    dropout: float = 0.0         # after the embedding, between layers and before the head
    tie_weights: bool = False    # share the embedding matrix with the head (needs n_hidden == n_embd)

    def __post_init__(self):
        check_finite(self)
        if self.cell not in RNN_CELLS:
            raise ConfigError(f"cell must be one of {', '.join(RNN_CELLS)}, not {self.cell!r}")
        for name in ("vocab_size", "block_size", "n_layer", "n_embd", "n_hidden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.tie_weights and self.n_hidden != self.n_embd:
            raise ConfigError(f"tie_weights needs n_hidden == n_embd (got {self.n_hidden} and {self.n_embd})")


class RNNLM(nn.Module):
    """Embedding -> stacked RNN/LSTM/GRU -> linear head. The recurrent state is (h) for rnn/gru and (h, c) for
    lstm, each (n_layer, B, n_hidden), exactly as torch's modules take and return it."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        kwargs = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        # torch applies its own dropout only between layers (and warns when there is just one layer)
        self.rnn = _MODULES[config.cell](config.n_embd, config.n_hidden, config.n_layer, batch_first=True,
                                         dropout=config.dropout if config.n_layer > 1 else 0.0, **kwargs)
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.n_hidden, config.vocab_size)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight

    @property
    def family(self) -> str:
        return self.config.cell

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, state=None):
        logits, _ = self._run(idx, state)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def step(self, idx: torch.Tensor, state=None):
        """Advance the state over idx (B, T), usually one new token: returns logits (B, T, V) and the new state."""
        return self._run(idx, state)

    def _run(self, idx, state):
        x = self.drop(self.wte(idx))        # (B, T, n_embd)
        out, state = self.rnn(x, state)     # (B, T, n_hidden)
        return self.lm_head(self.drop(out)), state  # (B, T, V)

    @staticmethod
    def reorder_state(state, index: torch.Tensor):
        """Pick batch rows of a state (beam search keeps the hypotheses' states in step with their tokens)."""
        if state is None:
            return None
        if isinstance(state, tuple):
            return tuple(s.index_select(1, index) for s in state)
        return state.index_select(1, index)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """6N training FLOPs per token, counting only weights used in matrix products (an untied embedding is a
        lookup, not a product). The cost per token does not depend on the window length `seq_len`."""
        n = self.num_params()
        if not self.config.tie_weights:
            n -= self.wte.weight.numel()
        return 6.0 * n
