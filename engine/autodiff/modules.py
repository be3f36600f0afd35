"""Tensor-valued modules: each op is one class holding its forward rule, its backward rule and a one-line human
form of both, in the notation of the seed lecture (input a, output b, upstream gradient g_b). An op object keeps
only static settings (an axis, a shape); values live on the tape's nodes.

`forward(*inputs) -> (output, saved)`; `backward(g_out, inputs, output, saved) -> [g per input or None]`.
`torch(*inputs)` restates the forward in torch so `check.check_against_torch` can let autograd judge the whole
tape. Shapes carry no batch axis: a sequence is (T, C), attention works on (H, T, D)."""
from __future__ import annotations

import math

import numpy as np
import torch


def _erf(x: np.ndarray) -> np.ndarray:
    """numpy has no erf; torch's float64 kernel (the one nn.GELU uses) runs on the array without a copy."""
    return torch.erf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient over the axes numpy broadcast, so it has the shape of the input it belongs to."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Op:
    op = "Op"
    fwd_rule = ""
    bwd_rule = ""

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, g, xs, out, saved):
        raise NotImplementedError

    def torch(self, *xs):
        raise NotImplementedError


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


class Tanh(Op):
    op, fwd_rule, bwd_rule = "Tanh", "b = tanh(a)", "g_a = g_b ⊙ (1 − b²)"

    def forward(self, a):
        return np.tanh(a), {}

    def backward(self, g, xs, out, saved):
        return [g * (1.0 - out * out)]

    def torch(self, a):
        return a.tanh()


class Sigmoid(Op):
    op, fwd_rule, bwd_rule = "Sigmoid", "b = σ(a)", "g_a = g_b ⊙ b ⊙ (1 − b)"

    def forward(self, a):
        # σ(a) = (1 + tanh(a/2)) / 2 never overflows, unlike 1 / (1 + e^{−a}) for very negative a
        return 0.5 * (1.0 + np.tanh(0.5 * a)), {}

    def backward(self, g, xs, out, saved):
        return [g * out * (1.0 - out)]

    def torch(self, a):
        return a.sigmoid()


class ReLU(Op):
    op, fwd_rule, bwd_rule = "ReLU", "b = max(0, a)", "g_a = g_b ⊙ [a > 0]"

    def forward(self, a):
        return np.maximum(a, 0.0), {}

    def backward(self, g, xs, out, saved):
        return [g * (xs[0] > 0)]

    def torch(self, a):
        return a.relu()


class GELU(Op):
    """The exact form, b = a Φ(a) with Φ the standard normal CDF (torch's default nn.GELU)."""
    op, fwd_rule, bwd_rule = "GELU", "b = a Φ(a),  Φ(a) = ½(1 + erf(a/√2))", "g_a = g_b ⊙ (Φ(a) + a φ(a))"

    def forward(self, a):
        cdf = 0.5 * (1.0 + _erf(a * (1.0 / math.sqrt(2.0))))
        return a * cdf, {"Φ": cdf}

    def backward(self, g, xs, out, saved):
        a = xs[0]
        pdf = np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
        return [g * (saved["Φ"] + a * pdf)]

    def torch(self, a):
        return torch.nn.functional.gelu(a)


class Softmax(Op):
    """Over the last axis. The seed's backward g_bᵀ(diag(b) − b bᵀ) equals b ⊙ (g_b − Σ g_b ⊙ b), which needs
    no D×D matrix."""
    op, fwd_rule, bwd_rule = "Softmax", "b = softmax(a) = eᵃ / Σ eᵃ", "g_a = b ⊙ (g_b − Σ g_b ⊙ b)"

    def forward(self, a):
        return _softmax(a), {}

    def backward(self, g, xs, out, saved):
        return [out * (g - (g * out).sum(axis=-1, keepdims=True))]

    def torch(self, a):
        return a.softmax(dim=-1)


class LogSoftmax(Op):
    op, fwd_rule, bwd_rule = "LogSoftmax", "b = a − log Σ eᵃ", "g_a = g_b − softmax(a) Σ g_b"

    def forward(self, a):
        shifted = a - a.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)), {}

    def backward(self, g, xs, out, saved):
        return [g - np.exp(out) * g.sum(axis=-1, keepdims=True)]

    def torch(self, a):
        return a.log_softmax(dim=-1)


class CrossEntropy(Op):
    """From logits z (T, V) and integer targets y (T,), mean over positions, like torch's F.cross_entropy."""
    op = "CrossEntropy"
    fwd_rule = "J = −(1/T) Σ_t log softmax(z_t)[y_t]"
    bwd_rule = "g_z = g_J (softmax(z) − onehot(y)) / T"

    def forward(self, z, y):
        shifted = z - z.max(axis=-1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        rows = np.arange(len(y))
        return np.array(-logp[rows, y].mean()), {"p": np.exp(logp)}

    def backward(self, g, xs, out, saved):
        z, y = xs
        gz = saved["p"].copy()
        gz[np.arange(len(y)), y] -= 1.0
        return [gz * (g / len(y)), None]

    def torch(self, z, y):
        return torch.nn.functional.cross_entropy(z, y)


class ProbCrossEntropy(Op):
    """The lecture's module: gold one-hot y and predicted probabilities ŷ, J = −yᵀ log ŷ (mean over rows)."""
    op, fwd_rule, bwd_rule = "CrossEntropy", "J = −yᵀ log ŷ", "g_ŷ = −g_J (y ÷ ŷ)"

    def forward(self, y, p):
        rows = 1 if p.ndim == 1 else p.shape[0]
        return np.array(-(y * np.log(p)).sum() / rows), {}

    def backward(self, g, xs, out, saved):
        y, p = xs
        rows = 1 if p.ndim == 1 else p.shape[0]
        return [None, -g * (y / p) / rows]

    def torch(self, y, p):
        rows = 1 if p.dim() == 1 else p.shape[0]
        return -(y * p.log()).sum() / rows


class LayerNorm(Op):
    """Over the last axis: x̂ = (a − μ)/√(σ² + ε), b = x̂ ⊙ γ (+ β)."""
    op = "LayerNorm"
    bwd_rule = "g_x̂ = g_b ⊙ γ,  g_a = (g_x̂ − mean(g_x̂) − x̂ ⊙ mean(g_x̂ ⊙ x̂)) / √(σ² + ε),  g_γ = Σ_t g_b ⊙ x̂"

    def __init__(self, eps: float = 1e-5, bias: bool = True):
        self.eps = eps
        self.fwd_rule = "b = (a − μ)/√(σ² + ε) ⊙ γ" + (" + β" if bias else "")
        if bias:
            self.bwd_rule += ",  g_β = Σ_t g_b"

    def forward(self, a, gamma, beta=None):
        mu = a.mean(axis=-1, keepdims=True)
        inv = 1.0 / np.sqrt(((a - mu) ** 2).mean(axis=-1, keepdims=True) + self.eps)
        xhat = (a - mu) * inv
        out = xhat * gamma
        return (out + beta if beta is not None else out), {"x̂": xhat, "1/σ": inv}

    def backward(self, g, xs, out, saved):
        xhat, inv = saved["x̂"], saved["1/σ"]
        gx = g * xs[1]
        ga = (gx - gx.mean(axis=-1, keepdims=True) - xhat * (gx * xhat).mean(axis=-1, keepdims=True)) * inv
        g2 = g.reshape(-1, g.shape[-1])
        grads = [ga, (g2 * xhat.reshape(g2.shape)).sum(axis=0)]
        if len(xs) == 3:
            grads.append(g2.sum(axis=0))
        return grads

    def torch(self, a, gamma, beta=None):
        return torch.nn.functional.layer_norm(a, a.shape[-1:], gamma, beta, self.eps)


class CausalMask(Op):
    """Scores (…, T, T): a query may not look at later keys, so those scores become −∞ (softmax weight 0)."""
    op, fwd_rule, bwd_rule = "CausalMask", "b_ij = a_ij if j ≤ i else −∞", "g_a = g_b where j ≤ i, 0 elsewhere"

    def forward(self, a):
        future = np.triu(np.ones(a.shape[-2:], dtype=bool), k=1)
        return np.where(future, -np.inf, a), {}

    def backward(self, g, xs, out, saved):
        future = np.triu(np.ones(g.shape[-2:], dtype=bool), k=1)
        return [np.where(future, 0.0, g)]

    def torch(self, a):
        future = torch.ones(a.shape[-2:], dtype=torch.bool).triu(1)
        return a.masked_fill(future, float("-inf"))


def _rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _rotate_half_t(x):
    """The transpose of rotate_half (its inverse): [u₁, u₂] ↦ [u₂, −u₁]."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., half:], -x[..., :half]], axis=-1)


class Rope(Op):
    """Rotary position embedding, rotate-half convention: inputs x (H, T, D), cos and sin tables (T, D)."""
    op = "RoPE"
    fwd_rule = "b = a ⊙ cos + rotate_half(a) ⊙ sin,  rotate_half([a₁, a₂]) = [−a₂, a₁]"
    bwd_rule = "g_a = g_b ⊙ cos + rotate_halfᵀ(g_b ⊙ sin),  rotate_halfᵀ([u₁, u₂]) = [u₂, −u₁]"

    def forward(self, a, cos, sin):
        return a * cos + _rotate_half(a) * sin, {}

    def backward(self, g, xs, out, saved):
        _, cos, sin = xs
        return [g * cos + _rotate_half_t(g * sin), None, None]

    def torch(self, a, cos, sin):
        half = a.shape[-1] // 2
        return a * cos + torch.cat([-a[..., half:], a[..., :half]], dim=-1) * sin


class RepeatKV(Op):
    """Grouped-query attention: each of the H_kv key/value heads serves n_rep consecutive query heads."""
    op, bwd_rule = "RepeatKV", "g_a = g_b summed over each head's n_rep copies"

    def __init__(self, n_rep: int):
        self.n_rep = n_rep
        self.fwd_rule = f"b = every head of a repeated {n_rep}× (H_kv → H)"

    def forward(self, a):
        return np.repeat(a, self.n_rep, axis=0), {}

    def backward(self, g, xs, out, saved):
        return [g.reshape(xs[0].shape[0], self.n_rep, *g.shape[1:]).sum(axis=1)]

    def torch(self, a):
        return a.repeat_interleave(self.n_rep, dim=0)
