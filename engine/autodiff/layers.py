"""Composite layers built from the primitive ops, so their insides show on the tape: an LSTM step is sixteen
nodes (gate splits, σ/tanh, products, sums), attention is projections, RoPE, scores, mask, softmax and the
weighted sum. Each function takes and returns tape nodes; weights arrive as param nodes, already on the tape.

The gate layouts are torch's (LSTM rows i, f, g, o; GRU rows r, z, n with b_hn inside r ⊙ (...)), because the
bridge feeds these functions a torch model's weights and must reproduce its numbers."""
from __future__ import annotations

import math

from engine.autodiff import modules as M
from engine.autodiff.activations import Sigmoid, Softmax, Tanh
from engine.autodiff.tape import Node, Tape
from engine.autodiff.transformer_ops import CausalMask, LayerNorm


def linear(tape: Tape, x: Node, w: Node, b: Node | None, label: str) -> Node:
    args = (x, w) if b is None else (x, w, b)
    return tape.apply(M.Linear(bias=b is not None), *args, label=label)


def layer_norm(tape: Tape, x: Node, w: Node, b: Node | None, eps: float, label: str) -> Node:
    args = (x, w) if b is None else (x, w, b)
    return tape.apply(LayerNorm(eps, bias=b is not None), *args, label=label)


def split(tape: Tape, x: Node, parts: int, axis: int, names: str) -> list[Node]:
    """x cut into `parts` equal pieces along `axis`, one Split node each; `names` labels them in order."""
    size = x.shape[axis] // parts
    return [tape.apply(M.Split(axis, k * size, (k + 1) * size), x, label=names[k]) for k in range(parts)]


def rnn_step(tape: Tape, xi: Node, h: Node, w_hh: Node, b_hh: Node) -> Node:
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh); xi is the input projection W_ih x + b_ih of this step."""
    hh = linear(tape, h, w_hh, b_hh, "Linear(W_hh)")
    return tape.apply(Tanh(), tape.apply(M.Add(), xi, hh, label="pre-activation"), label="h")


def lstm_step(tape: Tape, xi: Node, h: Node, c: Node, w_hh: Node, b_hh: Node) -> tuple[Node, Node]:
    """c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g),  h' = σ(o) ⊙ tanh(c')  with [i f g o] = W_ih x + b_ih + W_hh h + b_hh."""
    hh = linear(tape, h, w_hh, b_hh, "Linear(W_hh)")
    gates = tape.apply(M.Add(), xi, hh, label="gates")
    i, f, g, o = split(tape, gates, 4, axis=-1, names="ifgo")
    i = tape.apply(Sigmoid(), i, label="input gate σ(i)")
    f = tape.apply(Sigmoid(), f, label="forget gate σ(f)")
    g = tape.apply(Tanh(), g, label="candidate tanh(g)")
    o = tape.apply(Sigmoid(), o, label="output gate σ(o)")
    kept = tape.apply(M.Mul(), f, c, label="σ(f) ⊙ c")
    written = tape.apply(M.Mul(), i, g, label="σ(i) ⊙ tanh(g)")
    c = tape.apply(M.Add(), kept, written, label="c")
    h = tape.apply(M.Mul(), o, tape.apply(Tanh(), c, label="tanh(c)"), label="h")
    return h, c


def gru_step(tape: Tape, xi: Node, h: Node, w_hh: Node, b_hh: Node) -> Node:
    """r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r ⊙ h_n), h' = (1 − z) ⊙ n + z ⊙ h, where x_· are
    rows of W_ih x + b_ih and h_· rows of W_hh h + b_hh (so b_hn sits inside r ⊙ (...), as in torch)."""
    hh = linear(tape, h, w_hh, b_hh, "Linear(W_hh)")
    x_r, x_z, x_n = split(tape, xi, 3, axis=-1, names=("x_r", "x_z", "x_n"))
    h_r, h_z, h_n = split(tape, hh, 3, axis=-1, names=("h_r", "h_z", "h_n"))
    r = tape.apply(Sigmoid(), tape.apply(M.Add(), x_r, h_r, label="x_r + h_r"), label="reset gate r")
    z = tape.apply(Sigmoid(), tape.apply(M.Add(), x_z, h_z, label="x_z + h_z"), label="update gate z")
    gated = tape.apply(M.Mul(), r, h_n, label="r ⊙ h_n")
    n = tape.apply(Tanh(), tape.apply(M.Add(), x_n, gated, label="x_n + r ⊙ h_n"), label="candidate n")
    new = tape.apply(M.Mul(), tape.apply(M.OneMinus(), z, label="1 − z"), n, label="(1 − z) ⊙ n")
    old = tape.apply(M.Mul(), z, h, label="z ⊙ h")
    return tape.apply(M.Add(), new, old, label="h")


def heads(tape: Tape, x: Node, n_head: int, label: str) -> Node:
    """(T, n_head·D) -> (n_head, T, D)."""
    T, width = x.shape
    x = tape.apply(M.Reshape((T, n_head, width // n_head)), x, label=f"{label} split into heads")
    return tape.apply(M.Transpose((1, 0, 2)), x, label=f"{label} heads")


def causal_attention(tape: Tape, q: Node, k: Node, v: Node) -> Node:
    """softmax(mask(q kᵀ / √D)) v on (H, T, D) heads, then the heads side by side again: (T, H·D)."""
    H, T, D = q.shape
    with tape.group("scores"):
        kt = tape.apply(M.Transpose((0, 2, 1)), k, label="kᵀ")
        scores = tape.apply(M.MatMul(), q, kt, label="q kᵀ")
        scores = tape.apply(M.Scale(1.0 / math.sqrt(D), f"1/√{D}"), scores, label="q kᵀ / √D")
        scores = tape.apply(CausalMask(), scores, label="causal mask")
        att = tape.apply(Softmax(), scores, label="attention weights")
    with tape.group("weighted values"):
        y = tape.apply(M.MatMul(), att, v, label="weights · v")
        y = tape.apply(M.Transpose((1, 0, 2)), y, label="heads back to positions")
        return tape.apply(M.Reshape((T, H * D)), y, label="heads concatenated")
