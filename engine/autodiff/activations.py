"""Pointwise nonlinearities (tanh, σ, ReLU, GELU exact and tanh-approximate), the softmaxes over the last axis and the cross-entropy losses
built on them, as tape ops (the protocol is in modules.py)."""
from __future__ import annotations

import math

import numpy as np
import torch

from engine.autodiff.modules import Op


def _erf(x: np.ndarray) -> np.ndarray:
    """numpy has no erf; torch's float64 kernel (the one nn.GELU uses) runs on the array without a copy."""
    return torch.erf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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


class GELUTanh(Op):
    """GPT-2's tanh approximation of GELU (Hendrycks & Gimpel 2016, eq. in section 2; torch's
    gelu(approximate="tanh"), Hugging Face's "gelu_new"): b = ½a(1 + tanh u), u = √(2/π)(a + 0.044715a³)."""
    op = "GELU(tanh)"
    fwd_rule = "b = ½ a (1 + tanh u),  u = √(2/π)(a + 0.044715 a³)"
    bwd_rule = "g_a = g_b ⊙ (½(1 + tanh u) + ½ a (1 − tanh² u) √(2/π)(1 + 3·0.044715 a²))"
    K = math.sqrt(2.0 / math.pi)
    C = 0.044715

    def forward(self, a):
        t = np.tanh(self.K * (a + self.C * a ** 3))
        return 0.5 * a * (1.0 + t), {"tanh u": t}

    def backward(self, g, xs, out, saved):
        a, t = xs[0], saved["tanh u"]
        du = self.K * (1.0 + 3.0 * self.C * a * a)
        return [g * (0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * du)]

    def torch(self, a):
        return torch.nn.functional.gelu(a, approximate="tanh")


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
