"""Backpropagation through time, measured: ‖∂L/∂h_t‖ for every time step t and layer of a recurrent model.

Which loss flows back matters. With the mean loss over all positions every h_t gets its own direct term (the loss
right after it), so the norms stay flat whatever happens to older gradients. With one position's loss (by default
the last) the only way to reach h_t for t earlier than it is back through the recurrence, so the bars show how fast
the gradient shrinks (vanishes) or grows (explodes) with distance: Bengio, Simard & Frasconi (1994); Pascanu,
Mikolov & Bengio, "On the difficulty of training recurrent neural networks" (2013)."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import PlaygroundError
from engine.inside.activations import rnn_unrolled


class InsideError(PlaygroundError):
    """The model or the text cannot be looked inside (an n-gram, too short a text, a bad loss position)."""


@dataclass
class BPTT:
    """norms (n_layer, T) float64: ‖∂L/∂h_t‖ (Euclidean, over the n_hidden units) for t = 1..T, layer 1 first.
    L is `loss_at`'s loss in nats: the cross-entropy of predicting token t+1 from tokens 1..t at the position
    `loss_at` (1..T), or the mean over all T positions when loss_at == "mean". h_t after loss_at gets 0."""
    norms: np.ndarray
    loss_at: int | str
    loss: float
    tokens: list[str]            # the T input tokens, display form


def resolve_loss_at(loss_at, n_positions: int) -> int | str:
    """"last" -> n_positions; "mean" stays; an int (or digit string) must be 1..n_positions."""
    if loss_at in (None, "last"):
        return n_positions
    if loss_at == "mean":
        return "mean"
    try:
        t = int(loss_at)
    except (TypeError, ValueError):
        raise InsideError(f"the loss position must be a number 1..{n_positions}, 'last' or 'mean', "
                          f"not {loss_at!r}") from None
    if not 1 <= t <= n_positions:
        raise InsideError(f"the loss position must be between 1 and {n_positions} (the text has {n_positions} "
                          f"positions with a next token), not {t}")
    return t


def bptt_norms(model, ids, loss_at="last", tokens: list[str] | None = None) -> BPTT:
    """‖∂L/∂h_t‖ for an RNNLM on token ids (inputs ids[:-1], targets ids[1:]), computed by torch.autograd through
    the step-by-step forward (rnn_unrolled's probe): the total derivative, through every later time step, that
    truncated BPTT would carry back to h_t. Computed in float64 on a copy of the model: a tanh RNN's gradient
    falls below float32's smallest number (1e-45) within a couple of hundred steps, and a 0 there would read as
    "no dependence" rather than "vanished". A norm of exactly 0 before the loss position means it fell below
    float64's ~1e-308. The model itself is left as it was (no .grad, same dtype)."""
    return bptt_and_sites(model, ids, loss_at, tokens)[0]


def bptt_and_sites(model, ids, loss_at="last", tokens: list[str] | None = None):
    """bptt_norms, plus what the same forward pass computed over all of ids (the last token too, which no loss
    reads, so its h gets no gradient and leaving it out of the norms is exact): (BPTT, sites) with the sites
    detached, as rnn_unrolled returns them. One pass instead of two for the Inside tab."""
    if len(ids) < 2:
        raise InsideError(f"the text must be at least 2 tokens long (an input and its next token); got {len(ids)}")
    T = len(ids) - 1
    at = resolve_loss_at(loss_at, T)
    p = next(model.parameters())
    if p.dtype != torch.float64:
        model = copy.deepcopy(model).to(torch.float64)
        p = next(model.parameters())
    idx = torch.as_tensor(np.asarray(ids), device=p.device)
    probe = torch.zeros(model.config.n_layer, T + 1, model.config.n_hidden, dtype=p.dtype, device=p.device,
                        requires_grad=True)
    with torch.enable_grad():
        logits, sites = rnn_unrolled(model, idx, probe)
        losses = F.cross_entropy(logits[:-1], idx[1:], reduction="none")     # (T,)
        loss = losses.mean() if at == "mean" else losses[at - 1]
        (grad,) = torch.autograd.grad(loss, probe)
    norms = grad[:, :T].detach().to("cpu", torch.float64).norm(dim=-1).numpy()
    tokens = tokens if tokens is not None else [str(i) for i in ids[:-1]]
    return BPTT(norms, at, float(loss.detach()), tokens), {k: v.detach() for k, v in sites.items()}
