"""What a trained model computes inside, for one text: every unit's activation per token, every attention head's
weights, and the logit lens. Plain torch (float32 unless the model is float64), no Qt; results leave as numpy.

Recurrent models are re-run here one time step at a time from the fused torch module's own weights, because
torch's nn.LSTM/nn.GRU return neither the cell state c_t of every step nor the gates. The equations are torch's
(see the nn.LSTM / nn.GRU docs): gate blocks in torch's order (LSTM i, f, g, o; GRU r, z, n), and the GRU's reset
gate multiplies W_hn h + b_hn. Tests check every step against the fused module.

A transformer is run by its own forward with hooks (the residual stream into and out of every block, the MLP
neurons after GELU, the attention's normalised input); the attention weights, which torch's fused
scaled_dot_product_attention never materialises, are recomputed from the hooked input and the block's q/k
projection weights, with the RoPE tables the block itself received."""
from __future__ import annotations

import math
import threading

import numpy as np
import torch
import torch.nn.functional as F

from engine.models.transformer import apply_rope

LSTM_GATES = ("i", "f", "g", "o")     # input, forget, cell candidate, output (torch's row-block order)
GRU_GATES = ("r", "z", "n")           # reset, update, new-state candidate

# what each site's name means, for labels and tooltips
SITE_HELP = {
    "h": "hidden state h_t (what the layer passes up and to the next step)",
    "c": "cell state c_t (the LSTM's memory)",
    "i": "input gate i_t = σ(·): how much of the candidate g_t enters the cell",
    "f": "forget gate f_t = σ(·): how much of c_{t−1} is kept",
    "g": "cell candidate g_t = tanh(·)",
    "o": "output gate o_t = σ(·): how much of tanh(c_t) becomes h_t",
    "r": "reset gate r_t = σ(·): how much of h_{t−1} the candidate sees",
    "z": "update gate z_t = σ(·): how much of h_{t−1} is kept",
    "n": "new-state candidate n_t = tanh(·)",
    "mlp": "MLP neuron after GELU (4·n_embd per block)",
    "resid": "residual stream dimension after the block (layer 0: the embeddings going in)",
}


def _layer_weights(rnn: torch.nn.Module, k: int):
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
    b_ih = getattr(rnn, f"bias_ih_l{k}", None)
    b_hh = getattr(rnn, f"bias_hh_l{k}", None)
    return w_ih, w_hh, b_ih, b_hh


def rnn_unrolled(model, idx: torch.Tensor, probe: torch.Tensor | None = None):
    """Run an RNNLM over idx (T,) one step at a time from zero state.

    Returns (logits (T, V), sites) where sites maps "layer k NAME" (k from 1) to a (T, n_hidden) tensor: h for
    every cell, c and the gates i, f, g, o for an LSTM, the gates r, z, n for a GRU. `probe` (n_layer, T, n_hidden),
    normally zeros that require grad, is added to every h_t as it is made, so probe.grad after a backward pass is
    the total ∂L/∂h_t, through the output at t and through every later step (what BPTT carries back)."""
    cell = model.config.cell
    H = model.config.n_hidden
    x = model.wte(idx)                                   # (T, n_embd)
    T = x.shape[0]
    sites: dict[str, torch.Tensor] = {}
    for k in range(model.config.n_layer):
        w_ih, w_hh, b_ih, b_hh = _layer_weights(model.rnn, k)
        xin = x @ w_ih.T                                 # (T, G·H): the input part of every step at once
        if b_ih is not None:
            xin = xin + b_ih
        h = x.new_zeros(H)
        c = x.new_zeros(H)
        hs, cs, gates = [], [], []
        # one unbind, not probe[k, t] per step: each indexing's backward would write a full-size zero gradient,
        # making the backward pass quadratic in T (4 s instead of 0.5 s at 2,000 steps)
        steps = probe[k].unbind(0) if probe is not None else None
        for t in range(T):
            hh = h @ w_hh.T
            if b_hh is not None:
                hh = hh + b_hh
            if cell == "lstm":
                i, f, g, o = (xin[t] + hh).chunk(4)
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                c = f * c + i * g
                h = o * torch.tanh(c)
                cs.append(c)
                gates.append((i, f, g, o))
            elif cell == "gru":
                xr, xz, xn = xin[t].chunk(3)
                hr, hz, hn = hh.chunk(3)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                n = torch.tanh(xn + r * hn)
                h = (1 - z) * n + z * h
                gates.append((r, z, n))
            else:
                h = torch.tanh(xin[t] + hh)
            if steps is not None:
                h = h + steps[t]
            hs.append(h)
        name = f"layer {k + 1}"
        sites[f"{name} h"] = torch.stack(hs)
        if cell == "lstm":
            sites[f"{name} c"] = torch.stack(cs)
        names = LSTM_GATES if cell == "lstm" else GRU_GATES if cell == "gru" else ()
        for j, g in enumerate(names):
            sites[f"{name} {g}"] = torch.stack([step[j] for step in gates])
        x = sites[f"{name} h"]
    return model.lm_head(x), sites


def transformer_pass(model, idx: torch.Tensor):
    """The GPT's own forward on idx (T,) with hooks. Returns (logits (T, V), resid list of (T, C) — the
    embeddings going into block 1, then each block's output —, mlp list of (T, 4C) after GELU per block,
    attention (n_layer, n_head, T, T) with rows over keys summing to 1)."""
    blocks = model.blocks
    resid_in, resid_out, ln1, mlp, ropes = {}, {}, {}, {}, {}
    handles = []
    # Hooks belong to the module, not to this call: the app shares one model object between tabs, and a Sample
    # tab decoding (or a second Inside request) on another thread would fire them too. Only this thread's forward
    # pass is recorded.
    me = threading.get_ident()

    def keep(store, i, what="out"):
        if what == "pre":
            def hook(mod, args, kwargs):
                if threading.get_ident() == me:
                    store[i] = args[0] if args else kwargs["x"]
                    ropes[i] = args[1] if len(args) > 1 else kwargs.get("rope")
            return hook

        def hook(mod, args, out):
            if threading.get_ident() == me:
                store[i] = out
        return hook

    try:
        for i, b in enumerate(blocks):
            handles.append(b.register_forward_pre_hook(keep(resid_in, i, "pre"), with_kwargs=True))
            handles.append(b.register_forward_hook(keep(resid_out, i)))
            handles.append(b.ln_1.register_forward_hook(keep(ln1, i)))
            handles.append(b.mlp.gelu.register_forward_hook(keep(mlp, i)))
        logits, _ = model(idx[None])
    finally:
        for h in handles:
            h.remove()
    resid = [resid_in[0][0]] + [resid_out[i][0] for i in range(len(blocks))]
    att = torch.stack([attention_weights(b.attn, ln1[i][0], ropes[i]) for i, b in enumerate(blocks)])
    return logits[0], resid, [mlp[i][0] for i in range(len(blocks))], att


def attention_weights(attn, x: torch.Tensor, rope) -> torch.Tensor:
    """softmax(q kᵀ / √head_size) with the causal mask, per query head: (n_head, T, T) from the attention's input
    x (T, C) (the block's ln_1 output). Grouped key/value heads are shared as the module shares them (query head h
    reads key head h // (n_head / n_kv_head))."""
    T = x.shape[0]
    hs = attn.head_size
    q = attn.q_proj(x).view(T, attn.n_head, hs).transpose(0, 1)       # (nh, T, hs)
    k = attn.k_proj(x).view(T, attn.n_kv_head, hs).transpose(0, 1)    # (nkv, T, hs)
    if rope is not None:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    if attn.n_kv_head != attn.n_head:
        k = k.repeat_interleave(attn.n_head // attn.n_kv_head, dim=0)
    scores = q @ k.transpose(1, 2) / math.sqrt(hs)                    # (nh, T, T)
    mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    return F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def logit_lens(model, resid: list[torch.Tensor]) -> torch.Tensor:
    """The logit lens (nostalgebraist, "interpreting GPT: the logit lens", LessWrong 2020; TransformerLens calls it
    accumulated residual + ln_final + unembed): each residual stream (T, C) read out through the model's final
    LayerNorm and lm_head as if the later blocks were not there. Returns log-probabilities (L+1, T, V); the last
    layer's are exactly the model's."""
    return torch.stack([F.log_softmax(model.lm_head(model.ln_f(r)), dim=-1) for r in resid])


def entropy_per_head(att: torch.Tensor) -> np.ndarray:
    """Mean over query positions of each head's attention entropy in nats: (n_layer, n_head) float64 from
    (L, H, T, T). A head that always looks at one token scores 0; one spreading evenly over the t+1 visible tokens
    ln(t+1). Masked weights are exactly 0 and add nothing (0 · log 0 taken as 0)."""
    ent = -(att * att.clamp_min(1e-30).log()).sum(dim=-1).mean(dim=-1)
    return ent.detach().to("cpu", torch.float64).numpy()
