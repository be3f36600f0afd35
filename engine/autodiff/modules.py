"""Tensor-valued modules: each op is one class holding its forward rule, its backward rule and a one-line human
form of both, in the notation of the seed lecture (input a, output b, upstream gradient g_b). An op object keeps
only static settings (an axis, a shape); values live on the tape's nodes.

`forward(*inputs) -> (output, saved)`; `backward(g_out, inputs, output, saved) -> [g per input or None]`.
`torch(*inputs)` restates the forward in torch so `check.check_against_torch` can let autograd judge the whole
tape. Shapes carry no batch axis: a sequence is (T, C), attention works on (H, T, D).

This file holds the protocol (`Op`) and the linear-algebra and shape ops; the nonlinearities, softmaxes and
losses are in activations.py, layer norm, the causal mask, RoPE and the GQA head repeat in transformer_ops.py."""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod

import numpy as np
import torch


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient over the axes numpy broadcast, so it has the shape of the input it belongs to."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


class Op(ABC):
    """One tape operation: `forward` computes the output (and what the backward needs, in `saved`), `backward`
    returns each input's gradient increment, `torch` is the same function in torch for the whole-tape check."""
    op = "Op"
    fwd_rule = ""
    bwd_rule = ""

    @abstractmethod
    def forward(self, *xs): ...

    @abstractmethod
    def backward(self, g, xs, out, saved): ...

    @abstractmethod
    def torch(self, *xs): ...

    def rule_symbols(self) -> tuple[tuple[str, ...], str] | None:
        """(the symbols the rules give the inputs, in argument order; the output's symbol), read from `forward`'s
        parameters and the forward rule, so a viewer can say which node each symbol is. None for a variable
        number of inputs (Concat)."""
        params = list(inspect.signature(self.forward).parameters.values())
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            return None
        names = {"w": "W" if "W" in self.fwd_rule else "ω", "gamma": "γ", "beta": "β", "p": "ŷ"}
        out = self.fwd_rule.split("=")[0].strip().split("_")[0]
        return tuple(names.get(p.name, p.name) for p in params), out


class Embedding(Op):
    op, fwd_rule, bwd_rule = "Embedding", "b_t = W[idx_t]", "g_W[idx_t] += g_b_t (rows of unused tokens stay 0)"

    def forward(self, idx, w):
        return w[idx], {}

    def backward(self, g, xs, out, saved):
        idx, w = xs
        gw = np.zeros_like(w)
        np.add.at(gw, idx, g)
        return [None, gw]

    def torch(self, idx, w):
        return w[idx]


class Linear(Op):
    """b = a ωᵀ (+ bias) on rows, like torch's nn.Linear (the lecture's b = ω a with a as a column)."""
    op = "Linear"
    fwd_rule = "b = a ωᵀ + c"
    bwd_rule = "g_a = g_b ω,  g_ω = g_bᵀ a,  g_c = Σ_t g_b"

    def __init__(self, bias: bool = True):
        self.bias = bias
        if not bias:
            self.fwd_rule, self.bwd_rule = "b = a ωᵀ", "g_a = g_b ω,  g_ω = g_bᵀ a"

    def forward(self, a, w, c=None):
        b = a @ w.T
        return (b + c if c is not None else b), {}

    def backward(self, g, xs, out, saved):
        a, w = xs[0], xs[1]
        g2 = g.reshape(-1, g.shape[-1])
        grads = [g @ w, g2.T @ a.reshape(-1, a.shape[-1])]
        if len(xs) == 3:
            grads.append(g2.sum(axis=0))
        return grads

    def torch(self, a, w, c=None):
        b = a @ w.T
        return b + c if c is not None else b


class Add(Op):
    op, fwd_rule, bwd_rule = "Add", "c = a + b", "g_a = g_c,  g_b = g_c (summed over broadcast axes)"

    def forward(self, a, b):
        return a + b, {}

    def backward(self, g, xs, out, saved):
        return [_unbroadcast(g, x.shape) for x in xs]

    def torch(self, a, b):
        return a + b


class Mul(Op):
    op, fwd_rule, bwd_rule = "Mul", "c = a ⊙ b", "g_a = g_c ⊙ b,  g_b = g_c ⊙ a"

    def forward(self, a, b):
        return a * b, {}

    def backward(self, g, xs, out, saved):
        a, b = xs
        return [_unbroadcast(g * b, a.shape), _unbroadcast(g * a, b.shape)]

    def torch(self, a, b):
        return a * b


class OneMinus(Op):
    op, fwd_rule, bwd_rule = "OneMinus", "b = 1 − a", "g_a = −g_b"

    def forward(self, a):
        return 1.0 - a, {}

    def backward(self, g, xs, out, saved):
        return [-g]

    def torch(self, a):
        return 1.0 - a


class Scale(Op):
    op, bwd_rule = "Scale", "g_a = s · g_b"

    def __init__(self, s: float, text: str | None = None):
        self.s = float(s)
        self.fwd_rule = f"b = s · a,  s = {text or f'{self.s:.4g}'}"

    def forward(self, a):
        return a * self.s, {}

    def backward(self, g, xs, out, saved):
        return [g * self.s]

    def torch(self, a):
        return a * self.s


class MatMul(Op):
    op, fwd_rule, bwd_rule = "MatMul", "c = a b", "g_a = g_c bᵀ,  g_b = aᵀ g_c"

    def forward(self, a, b):
        return a @ b, {}

    def backward(self, g, xs, out, saved):
        a, b = xs
        return [_unbroadcast(g @ np.swapaxes(b, -1, -2), a.shape),
                _unbroadcast(np.swapaxes(a, -1, -2) @ g, b.shape)]

    def torch(self, a, b):
        return a @ b


class Transpose(Op):
    op, bwd_rule = "Transpose", "g_a = g_b with the axes put back"

    def __init__(self, axes: tuple[int, ...]):
        self.axes = tuple(axes)
        self.inverse = tuple(np.argsort(self.axes))
        self.fwd_rule = f"b = a with axes permuted to {self.axes}"

    def forward(self, a):
        return np.transpose(a, self.axes), {}

    def backward(self, g, xs, out, saved):
        return [np.transpose(g, self.inverse)]

    def torch(self, a):
        return a.permute(*self.axes)


class Reshape(Op):
    op, bwd_rule = "Reshape", "g_a = g_b reshaped back to a's shape"

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.fwd_rule = f"b = a reshaped to {self.shape}"

    def forward(self, a):
        return a.reshape(self.shape), {}

    def backward(self, g, xs, out, saved):
        return [g.reshape(xs[0].shape)]

    def torch(self, a):
        return a.reshape(self.shape)


class Split(Op):
    """One piece of a split: b = a[..., start:stop] along `axis` (a split into k parts is k of these nodes)."""
    op, bwd_rule = "Split", "g_a = g_b in the piece's slice, 0 elsewhere"

    def __init__(self, axis: int, start: int, stop: int):
        self.axis, self.start, self.stop = axis, start, stop
        self.fwd_rule = f"b = a[{start}:{stop}] along axis {axis}"

    def _index(self, ndim):
        index = [slice(None)] * ndim
        index[self.axis] = slice(self.start, self.stop)
        return tuple(index)

    def forward(self, a):
        return a[self._index(a.ndim)].copy(), {}

    def backward(self, g, xs, out, saved):
        ga = np.zeros_like(xs[0])
        ga[self._index(ga.ndim)] = g
        return [ga]

    def torch(self, a):
        return a[self._index(a.dim())]


class Concat(Op):
    op, fwd_rule, bwd_rule = "Concat", "c = [a₁, a₂, …] along an axis", "g_aₖ = the slice of g_c where aₖ sits"

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *xs):
        return np.concatenate(xs, axis=self.axis), {}

    def backward(self, g, xs, out, saved):
        bounds = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return list(np.split(g, bounds, axis=self.axis))

    def torch(self, *xs):
        return torch.cat(xs, dim=self.axis)
