"""From a trained engine model to the same computation on the tape: every weight becomes a float64 param node
(named as in `model.named_parameters()`), every torch operation of the forward pass becomes tape nodes, and the
loss is the model's mean cross-entropy of predicting idx[1:] from idx[:-1]. Dropout is left out (eval mode), so
the tape's loss and parameter gradients equal torch.autograd's on `model.double()` to rounding.

Only the RNN family and GPT have a tape: an n-gram model is a table of counts, not a differentiable function."""
from __future__ import annotations

import numpy as np
import torch

from engine.autodiff import layers as L
from engine.autodiff import modules as M
from engine.autodiff.activations import CrossEntropy, GELU, GELUTanh
from engine.autodiff.tape import Node, Tape, TapeProgram
from engine.autodiff.transformer_ops import RepeatKV, Rope
from engine.errors import PlaygroundError
from engine.models.rnn import RNNLM
from engine.models.transformer import GPT, rope_tables, sinusoidal_table

MAX_RNN_STEPS = 512   # an unrolled step is ~16 nodes; beyond this the tape is too long to look at


class TapeError(PlaygroundError):
    """The model or text cannot be put on the tape."""


def max_tape_tokens(model) -> int:
    """The most tokens build_tape takes from this model: inputs plus the last target."""
    return model.config.block_size + 1 if isinstance(model, GPT) else MAX_RNN_STEPS + 1


def build_tape(model, tokenizer, text: str) -> TapeProgram:
    """The tape of `model`'s loss on `text` (inputs idx[:-1], targets idx[1:])."""
    if not isinstance(model, (RNNLM, GPT)):
        if getattr(model, "family", None) == "ngram" or type(model).__name__ == "NGramLM":
            raise TapeError("an n-gram model has no tape: it looks probabilities up in count tables, so there is "
                            "no differentiable computation to record; pick an RNN, LSTM, GRU or transformer")
        raise TapeError(f"no tape for a {type(model).__name__}; only RNN/LSTM/GRU and transformer models have one")
    idx = tokenizer.encode(text)   # TokenizerError names unknown characters
    limit = max_tape_tokens(model)
    if len(idx) < 2:
        raise TapeError(f"the text must be at least 2 tokens long (an input and its next token); got {len(idx)}")
    if len(idx) > limit:
        what = "the model's context (block_size + 1)" if isinstance(model, GPT) else "the tape's RNN limit"
        raise TapeError(f"the text is {len(idx)} tokens, longer than {what} of {limit} tokens; shorten it")
    builder = _Builder(model)
    inputs, targets = np.array(idx[:-1]), np.array(idx[1:])
    with builder.tape.group("embedding"):
        x = builder.tape.input(inputs, "idx")
        x = builder.tape.apply(M.Embedding(), x, builder.param("wte.weight", "wte"), label="Embedding(wte)")
    x = builder.gpt(x) if isinstance(model, GPT) else builder.rnn(x)
    with builder.tape.group("lm head"):
        head_w = "wte.weight" if model.lm_head.weight is model.wte.weight else "lm_head.weight"
        head_b = builder.param("lm_head.bias", "lm_head bias") if model.lm_head.bias is not None else None
        logits = L.linear(builder.tape, x, builder.param(head_w, "lm_head"), head_b, "Linear(lm_head)")
    with builder.tape.group("loss"):
        y = builder.tape.input(targets, "targets")
        loss = builder.tape.apply(CrossEntropy(), logits, y, label="CrossEntropy")
    family = "transformer" if isinstance(model, GPT) else model.config.cell
    return TapeProgram(builder.tape, loss.id, builder.params, [tokenizer.token_str(i) for i in idx[:-1]],
                       f"{family} on {len(inputs)} tokens")


class _Builder:
    """Holds the tape and turns torch parameters into param nodes on first use, so each weight sits in the group
    of the layer that reads it first (a tied weight is one node read twice)."""

    def __init__(self, model):
        self.model = model
        self.tape = Tape()
        self.weights = dict(model.named_parameters())   # tied weights appear once, under their first name
        self.params: dict[str, int] = {}

    def param(self, name: str, label: str) -> Node:
        if name not in self.params:
            value = self.weights[name].detach().to("cpu", torch.float64).numpy()
            self.params[name] = self.tape.param(value, name, label).id
        return self.tape.nodes[self.params[name]]

    def optional(self, name: str, label: str) -> Node | None:
        return self.param(name, label) if name in self.weights else None

    def rnn(self, x: Node) -> Node:
        cfg = self.model.config
        T = x.shape[0]
        for layer in range(cfg.n_layer):
            s = f"_l{layer}"
            with self.tape.group(f"RNN layer {layer + 1} / input projection"):
                xi = L.linear(self.tape, x, self.param("rnn.weight_ih" + s, "W_ih" + s),
                              self.param("rnn.bias_ih" + s, "b_ih" + s), "Linear(W_ih)")
            with self.tape.group(f"RNN layer {layer + 1} / initial state"):
                h = self.tape.input(np.zeros((1, cfg.n_hidden)), "h₀", constant=True)
                c = self.tape.input(np.zeros((1, cfg.n_hidden)), "c₀", constant=True) if cfg.cell == "lstm" else None
            outputs = []
            for t in range(T):
                with self.tape.group(f"RNN layer {layer + 1} / RNN step {t + 1}"):
                    w_hh = self.param("rnn.weight_hh" + s, "W_hh" + s)
                    b_hh = self.param("rnn.bias_hh" + s, "b_hh" + s)
                    xi_t = self.tape.apply(M.Split(0, t, t + 1), xi, label=f"W_ih x_{t + 1} + b_ih")
                    if cfg.cell == "lstm":
                        h, c = L.lstm_step(self.tape, xi_t, h, c, w_hh, b_hh)
                    elif cfg.cell == "gru":
                        h = L.gru_step(self.tape, xi_t, h, w_hh, b_hh)
                    else:
                        h = L.rnn_step(self.tape, xi_t, h, w_hh, b_hh)
                    outputs.append(h)
            with self.tape.group(f"RNN layer {layer + 1} / outputs"):
                x = self.tape.apply(M.Concat(0), *outputs, label=f"h_1 … h_{T}")
        return x

    def gpt(self, x: Node) -> Node:
        cfg = self.model.config
        T, hs = x.shape[0], cfg.n_embd // cfg.n_head
        rope = None
        with self.tape.group("positions"):
            if cfg.pos == "learned":
                pos = self.tape.input(np.arange(T), "positions")
                pe = self.tape.apply(M.Embedding(), pos, self.param("wpe.weight", "wpe"), label="Embedding(wpe)")
                x = self.tape.apply(M.Add(), x, pe, label="token + position")
            elif cfg.pos == "sinusoidal":
                x = self.tape.apply(M.Scale(self.model.embd_scale, "√n_embd"), x, label="token · √n_embd")
                table = sinusoidal_table(0, T, cfg.n_embd, "cpu", torch.float64).numpy()
                pe = self.tape.input(table, "sinusoidal table", constant=True)
                x = self.tape.apply(M.Add(), x, pe, label="token + position")
            else:
                cos, sin = (t.numpy() for t in rope_tables(0, T, hs, cfg.rope_base, "cpu", torch.float64))
                rope = (self.tape.input(cos, "RoPE cos", constant=True),
                        self.tape.input(sin, "RoPE sin", constant=True))
        for b in range(cfg.n_layer):
            with self.tape.group(f"block {b + 1}"):
                x = self._block(x, f"blocks.{b}.", rope)
        with self.tape.group("final norm"):
            return L.layer_norm(self.tape, x, self.param("ln_f.weight", "ln_f γ"),
                                self.optional("ln_f.bias", "ln_f β"), self.model.ln_f.eps, "LayerNorm(ln_f)")

    def _block(self, x: Node, p: str, rope) -> Node:
        cfg, tape = self.model.config, self.tape
        blk = self.model.blocks[int(p.split(".")[1])]
        with tape.group("attention"):
            with tape.group("ln_1"):
                a = L.layer_norm(tape, x, self.param(p + "ln_1.weight", "ln_1 γ"),
                                 self.optional(p + "ln_1.bias", "ln_1 β"), blk.ln_1.eps, "LayerNorm(ln_1)")
            qkv = {}
            for name, n_head in (("q", cfg.n_head), ("k", cfg.kv_heads), ("v", cfg.kv_heads)):
                with tape.group(f"{name} projection"):
                    w = p + f"attn.{name}_proj."
                    y = L.linear(tape, a, self.param(w + "weight", f"{name}_proj"),
                                 self.optional(w + "bias", f"{name}_proj bias"), f"Linear({name}_proj)")
                    qkv[name] = L.heads(tape, y, n_head, name)
            if rope is not None:
                with tape.group("rope"):
                    for name in ("q", "k"):
                        qkv[name] = tape.apply(Rope(), qkv[name], *rope, label=f"RoPE({name})")
            if cfg.kv_heads != cfg.n_head:
                with tape.group("grouped kv heads"):
                    for name in ("k", "v"):
                        qkv[name] = tape.apply(RepeatKV(cfg.n_head // cfg.kv_heads), qkv[name],
                                               label=f"{name} heads repeated")
            y = L.causal_attention(tape, qkv["q"], qkv["k"], qkv["v"])
            with tape.group("output projection"):
                y = L.linear(tape, y, self.param(p + "attn.c_proj.weight", "attn c_proj"),
                             self.optional(p + "attn.c_proj.bias", "attn c_proj bias"), "Linear(c_proj)")
                x = tape.apply(M.Add(), x, y, label="residual + attention")
        with tape.group("mlp"):
            a = L.layer_norm(tape, x, self.param(p + "ln_2.weight", "ln_2 γ"),
                             self.optional(p + "ln_2.bias", "ln_2 β"), blk.ln_2.eps, "LayerNorm(ln_2)")
            a = L.linear(tape, a, self.param(p + "mlp.c_fc.weight", "c_fc"),
                         self.optional(p + "mlp.c_fc.bias", "c_fc bias"), "Linear(c_fc)")
            tanh = cfg.gelu == "tanh"
            a = tape.apply(GELUTanh() if tanh else GELU(), a, label="GELU(tanh)" if tanh else "GELU")
            a = L.linear(tape, a, self.param(p + "mlp.c_proj.weight", "mlp c_proj"),
                         self.optional(p + "mlp.c_proj.bias", "mlp c_proj bias"), "Linear(c_proj)")
            return tape.apply(M.Add(), x, a, label="residual + mlp")
