"""Decoder-only GPT: pre-LayerNorm blocks, causal self-attention with grouped key/value heads, GELU MLP (exact, or
GPT-2's tanh approximation with `gelu="tanh"`, for pretrained GPT-2 weights: engine/pretrained).

Positions are learned, sinusoidal or rotary (RoPE); the tables are computed in float64 and cast to the
activations' dtype, so after `model.double()` every number is exact float64 and the autodiff tape can be compared
to torch to 1e-9. Module names follow docs/ARCHITECTURE.md (the tape bridge maps weights by name).

Sinusoidal positions follow Vaswani et al. 2017 ("Attention is all you need", section 3.4): "In the embedding
layers, we multiply those weights by sqrt(d_model)", so the token embeddings are multiplied by sqrt(n_embd) before
the fixed table is added. The table's rows have length sqrt(n_embd / 2) (each sin/cos pair has length 1): ~5.7 at
n_embd 64, against ~0.16 for a GPT-2 token embedding of std 0.02. Added unscaled, the table drowned the tokens
(LayerNorm sees mostly position) and the model stayed near the unigram loss; scaled, a token starts at length
~1.3 and grows as it learns. Learned and rotary positions keep GPT-2's unscaled embeddings.
bench/positions.py measures the three encodings against each other."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from . import ConfigMixin, check_finite
from .linear import Linear, set_row_kernel

POSITIONS = ("rope", "learned", "sinusoidal")
GELUS = ("exact", "tanh")


@dataclass(frozen=True)
class GPTConfig(ConfigMixin):
    vocab_size: int                # number of token ids
    block_size: int = 256          # longest context the model sees
    n_layer: int = 6               # transformer blocks
    n_head: int = 6                # query heads per block
    n_kv_head: int | None = None   # key/value heads (None = n_head: MHA; 1: MQA; between: GQA)
    n_embd: int = 384              # residual stream width
    dropout: float = 0.0           # on embeddings, attention weights and residual branches
    bias: bool = False             # biases in linear layers and LayerNorms
    pos: str = "rope"              # "rope", "learned" or "sinusoidal"
    rope_base: float = 10000.0     # RoPE frequency base
    tie_weights: bool = True       # lm_head shares the token embedding matrix
    norm_eps: float = 1e-5         # LayerNorm's ε (GPT-2's layer_norm_epsilon)
    gelu: str = "exact"            # "exact" (erf) or "tanh" (GPT-2's approximation, Hendrycks & Gimpel 2016)

    def __post_init__(self):
        check_finite(self)
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        kv = self.kv_heads
        if not isinstance(kv, int) or kv < 1 or self.n_head % kv:
            raise ConfigError(f"n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head})")
        if self.pos not in POSITIONS:
            raise ConfigError(f"pos must be one of {', '.join(POSITIONS)}, not {self.pos!r}")
        if self.pos != "learned" and (self.n_embd // self.n_head) % 2:
            raise ConfigError(f"{self.pos} positions need an even head size, got {self.n_embd // self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.rope_base <= 1.0:
            raise ConfigError(f"rope_base must be > 1, not {self.rope_base}")
        if not isinstance(self.norm_eps, (int, float)) or isinstance(self.norm_eps, bool) \
                or not 0.0 < self.norm_eps < 1.0:
            raise ConfigError(f"norm_eps must be a number in (0, 1), not {self.norm_eps!r}")
        if self.gelu not in GELUS:
            raise ConfigError(f"gelu must be one of {', '.join(GELUS)}, not {self.gelu!r}")

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head


def _f64(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def rope_tables(start: int, length: int, head_size: int, base: float, device, dtype):
    """cos and sin (length, head_size) for positions start..start+length, rotate-half layout (each frequency
    appears in both halves)."""
    hp = _f64(torch.device(device))
    inv_freq = base ** (-torch.arange(0, head_size, 2, device=device, dtype=hp) / head_size)
    t = torch.arange(start, start + length, device=device, dtype=hp)
    angles = torch.outer(t, inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x (B, nh, T, hs): x·cos + rotate_half(x)·sin, rotate_half(x1, x2) = (-x2, x1), in x's dtype. Under bf16
    autocast q and k come out of their Linear in bf16 while the tables are fp32, and the product would be fp32:
    attention would then get fp32 q, k next to a bf16 v."""
    x1, x2 = x.chunk(2, dim=-1)
    return (x * cos + torch.cat((-x2, x1), dim=-1) * sin).to(x.dtype)


def sinusoidal_table(start: int, length: int, n_embd: int, device, dtype):
    """The 'Attention is all you need' table: sin on even channels, cos on odd, wavelengths up to 10000·2π."""
    hp = _f64(torch.device(device))
    t = torch.arange(start, start + length, device=device, dtype=hp)[:, None]
    div = 10000.0 ** (torch.arange(0, n_embd, 2, device=device, dtype=hp) / n_embd)
    table = torch.zeros(length, n_embd, device=device, dtype=hp)
    table[:, 0::2] = torch.sin(t / div)
    table[:, 1::2] = torch.cos(t / div)
    return table.to(dtype)


class KVCache:
    """Keys and values of the tokens seen so far, per layer: (B, n_kv_head, block_size, head_size) buffers filled
    up to `length`. decode.py slides the window once it is full."""

    def __init__(self, config: GPTConfig, batch_size: int, device, dtype):
        hs = config.n_embd // config.n_head
        shape = (batch_size, config.kv_heads, config.block_size, hs)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k[0].size(2)

    def reorder(self, index: torch.Tensor) -> KVCache:
        """Keep batch rows `index` (beam search: each surviving hypothesis takes its parent's cache)."""
        self.k = [k.index_select(0, index) for k in self.k]
        self.v = [v.index_select(0, index) for v in self.v]
        return self


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_kv_head = config.n_head, config.kv_heads
        self.head_size = config.n_embd // config.n_head
        kv_width = self.n_kv_head * self.head_size
        self.q_proj = Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.k_proj = Linear(config.n_embd, kv_width, bias=config.bias)
        self.v_proj = Linear(config.n_embd, kv_width, bias=config.bias)
        self.c_proj = Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x, rope=None, cache: KVCache | None = None, layer: int = 0, last_only: bool = False):
        """x (B, T, C) -> (B, T, C); last_only: (B, 1, C), the output at the last position alone (its query reads
        every key, so no mask), for decoding's next-token logits."""
        B, T, C = x.size()
        xq = x[:, -1:] if last_only else x
        q = self.q_proj(xq).view(B, xq.size(1), self.n_head, self.head_size).transpose(1, 2)  # (B, nh, Tq, hs)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_size).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_size).transpose(1, 2)
        if rope is not None:
            q = apply_rope(q, rope[0][-q.size(2):], rope[1][-q.size(2):])
            k = apply_rope(k, *rope)
        mask, causal = None, not last_only
        if cache is not None:
            start = cache.length
            cache.k[layer][:, :, start:start + T] = k
            cache.v[layer][:, :, start:start + T] = v
            k, v = cache.k[layer][:, :, :start + T], cache.v[layer][:, :, :start + T]
            if start:  # SDPA's is_causal aligns to the top-left; new queries sit at the bottom-right
                causal = False
                if T > 1:  # a single new token may attend to everything cached
                    mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
        if self.n_kv_head != self.n_head:
            rep = self.n_head // self.n_kv_head  # query head h reads key/value head h // rep
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if q.dtype == torch.bfloat16 and q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # bf16 training on the CPU: attention itself in float32. torch's CPU flash-attention backward was 5x
            # slower in bf16 than in float32 (3.9 against 0.73 ms per call at nanogpt-cpu's shape, torch 2.13,
            # AVX512-BF16), a third of the whole step; the matmuls around it keep bf16's 2x
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                                   is_causal=causal, dropout_p=self.dropout if self.training else 0.0)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, q.size(2), C)
        return self.resid_drop(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        # exact erf form by default; GPT-2's tanh approximation (its "gelu_new") for its weights. The tape
        # reproduces both in float64.
        self.gelu = nn.GELU(approximate="tanh" if config.gelu == "tanh" else "none")
        self.c_proj = Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.drop(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, rope=None, cache=None, layer=0, last_only: bool = False):
        x = (x[:, -1:] if last_only else x) + self.attn(self.ln_1(x), rope, cache, layer, last_only)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    family = "transformer"

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        # token embeddings are multiplied by this before positions are added (see the module docstring)
        self.embd_scale = math.sqrt(config.n_embd) if config.pos == "sinusoidal" else 1.0
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.pos == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled down so the residual stream's variance does not grow with depth
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        # cached decoding steps of a model whose weights do not fit in cache read them faster through oneDNN
        set_row_kernel(self)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self._run(idx, 0, None)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def new_cache(self, batch_size: int) -> KVCache:
        w = self.wte.weight
        return KVCache(self.config, batch_size, w.device, w.dtype)

    def forward_cached(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits (B, T, V) for idx appended after the cache's `length` tokens; equal to the uncached forward's
        logits at those positions."""
        logits = self._run(idx, cache.length, cache)
        cache.length += idx.size(1)
        return logits

    @torch.no_grad()
    def last_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, 1, V) at the last position of idx (B, T), equal to forward(idx)[0][:, -1:]. The last block
        computes its query, MLP and the head for that position alone, since nothing reads the others: a decoder
        whose window is full re-runs the whole window for every token (see engine/decode.py), and this saves about
        1/n_layer of that."""
        return self._run(idx, 0, None, last_only=True)

    def _run(self, idx, start: int, cache: KVCache | None, last_only: bool = False):
        B, T = idx.size()
        if start + T > self.config.block_size:
            raise ConfigError(f"sequence of {start + T} tokens is longer than block_size {self.config.block_size}")
        x = self.wte(idx)  # (B, T, C)
        rope = None
        if self.config.pos == "learned":
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device))
        elif self.config.pos == "sinusoidal":
            x = x * self.embd_scale + sinusoidal_table(start, T, self.config.n_embd, idx.device, x.dtype)
        else:
            rope = rope_tables(start, T, self.config.n_embd // self.config.n_head, self.config.rope_base,
                               idx.device, x.dtype)
        x = self.drop(x)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, rope, cache, i, last_only and i == last)
        return self.lm_head(self.ln_f(x))  # (B, T, V); (B, 1, V) with last_only

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """nanoGPT/PaLM convention: 6N for the weight matrices plus 12·L·H·Q·T for attention scores and values,
        where N leaves out lookups (position table, untied token embedding) and T is the window actually trained
        on (default: the full context)."""
        c = self.config
        n = self.num_params()
        if c.pos == "learned":
            n -= self.wpe.weight.numel()
        if not c.tie_weights:
            n -= self.wte.weight.numel()
        return 6.0 * n + 12.0 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * (seq_len or c.block_size)
