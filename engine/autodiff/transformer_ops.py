"""The ops a transformer block adds to the basic ones: layer norm, the causal mask, rotary position embedding and
the key/value head repeat of grouped-query attention (the protocol is in modules.py)."""
from __future__ import annotations

import numpy as np
import torch

from engine.autodiff.modules import Op


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
