"""The text of the standalone training script `main.py export` writes (engine/export.py fills in its settings at
@SETTINGS@). It is a template, not code this package runs: the script must work without LM Playground installed,
so it carries its own copy of the model, tokenizer, schedule and precision rule, which tests/engine/test_export.py
checks against the trainer by reproducing a run's losses."""

SCRIPT = r'''"""A language-model training run as plain PyTorch, exported by LM Playground.

Usage: python THIS.py [--corpus PATH] [--steps N] [--device cpu|cuda] [--sample-tokens N] [--losses]
Needs torch and numpy (and the tokenizers library for a BPE tokenizer). It rebuilds the tokenizer, the model,
AdamW with linear warmup and cosine decay, trains from scratch on the corpus and prints a sample.
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SETTINGS = json.loads(r"""@SETTINGS@""")
HERE = Path(__file__).resolve().parent


# -- tokenizer ---------------------------------------------------------------------------------------------------
class Tokenizer:
    def __init__(self, spec):
        self.kind = spec["kind"]
        if self.kind == "char":
            self.itos = list(spec["chars"])
            self.stoi = {c: i for i, c in enumerate(self.itos)}
        elif self.kind == "word":
            self.itos = list(spec["tokens"])      # id 0 is <unk>
            self.stoi = {t: i for i, t in enumerate(self.itos)}
            self.lowercase = spec["lowercase"]
            self.pattern = re.compile(spec["pattern"])   # the project's word pattern, so ids match
        else:
            from tokenizers import Tokenizer as HFTokenizer   # byte-level BPE, the JSON written beside
            self.bpe = HFTokenizer.from_file(str(HERE / spec["json"]))
        self.vocab_size = len(self.itos) if self.kind != "bpe" else self.bpe.get_vocab_size()

    def encode(self, text):
        if self.kind == "char":
            missing = sorted(set(text) - set(self.stoi))
            if missing:
                raise SystemExit(f"characters not in the vocabulary: {missing[:10]}")
            return [self.stoi[c] for c in text]
        if self.kind == "word":
            words = self.pattern.findall(text.lower() if self.lowercase else text)
            return [self.stoi.get(w, 0) for w in words]
        return self.bpe.encode(text).ids

    def decode(self, ids):
        if self.kind == "char":
            return "".join(self.itos[i] for i in ids)
        if self.kind == "word":   # spaces between words, none around newlines
            return " ".join(self.itos[i] for i in ids).replace(" \n ", "\n")
        return self.bpe.decode(ids)


# -- models (the same modules, in the same order, as LM Playground's, so a seed gives the same weights) ------------
def rope_tables(length, head_size, base, device, dtype):
    inv_freq = base ** (-torch.arange(0, head_size, 2, device=device, dtype=torch.float64) / head_size)
    angles = torch.outer(torch.arange(0, length, device=device, dtype=torch.float64), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return (x * cos + torch.cat((-x2, x1), dim=-1) * sin).to(x.dtype)


def sinusoidal_table(length, n_embd, device, dtype):
    t = torch.arange(0, length, device=device, dtype=torch.float64)[:, None]
    div = 10000.0 ** (torch.arange(0, n_embd, 2, device=device, dtype=torch.float64) / n_embd)
    table = torch.zeros(length, n_embd, device=device, dtype=torch.float64)
    table[:, 0::2] = torch.sin(t / div)
    table[:, 1::2] = torch.cos(t / div)
    return table.to(dtype)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.n_kv_head = c["n_head"], c["n_kv_head"] or c["n_head"]
        self.head_size = c["n_embd"] // c["n_head"]
        kv_width = self.n_kv_head * self.head_size
        self.q_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])
        self.k_proj = nn.Linear(c["n_embd"], kv_width, bias=c["bias"])
        self.v_proj = nn.Linear(c["n_embd"], kv_width, bias=c["bias"])
        self.c_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])
        self.dropout = c["dropout"]
        self.resid_drop = nn.Dropout(c["dropout"])

    def forward(self, x, rope=None):
        B, T, C = x.size()
        q = self.q_proj(x).view(B, T, self.n_head, self.head_size).transpose(1, 2)     # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_size).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_size).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if self.n_kv_head != self.n_head:
            rep = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if q.dtype == torch.bfloat16 and q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):   # bf16 on the CPU: attention in float32 (faster there)
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                                   dropout_p=self.dropout if self.training else 0.0)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c["n_embd"], 4 * c["n_embd"], bias=c["bias"])
        self.gelu = nn.GELU(approximate="tanh" if c["gelu"] == "tanh" else "none")
        self.c_proj = nn.Linear(4 * c["n_embd"], c["n_embd"], bias=c["bias"])
        self.drop = nn.Dropout(c["dropout"])

    def forward(self, x):
        return self.drop(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c["n_embd"], eps=c["norm_eps"], bias=c["bias"])
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c["n_embd"], eps=c["norm_eps"], bias=c["bias"])
        self.mlp = MLP(c)

    def forward(self, x, rope=None):
        x = x + self.attn(self.ln_1(x), rope)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Pre-LayerNorm decoder-only transformer; positions learned, sinusoidal or rotary."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        if c["pos"] == "learned":
            self.wpe = nn.Embedding(c["block_size"], c["n_embd"])
        self.drop = nn.Dropout(c["dropout"])
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(c["n_embd"], eps=c["norm_eps"], bias=c["bias"])
        self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        if c["tie_weights"]:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c["n_layer"]))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        B, T = idx.size()
        x = self.wte(idx)                                           # (B, T, C)
        rope = None
        if self.c["pos"] == "learned":
            x = x + self.wpe(torch.arange(0, T, device=idx.device))
        elif self.c["pos"] == "sinusoidal":
            # tokens scaled by sqrt(n_embd) so the fixed table does not drown them (Vaswani et al. 2017)
            x = x * math.sqrt(self.c["n_embd"]) + sinusoidal_table(T, self.c["n_embd"], idx.device, x.dtype)
        else:
            rope = rope_tables(T, self.c["n_embd"] // self.c["n_head"], self.c["rope_base"], idx.device, x.dtype)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, rope)
        logits = self.lm_head(self.ln_f(x))                        # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


class RNNLM(nn.Module):
    """Embedding -> stacked RNN/LSTM/GRU -> linear head."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[c["cell"]]
        kwargs = {"nonlinearity": "tanh"} if c["cell"] == "rnn" else {}
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.rnn = module(c["n_embd"], c["n_hidden"], c["n_layer"], batch_first=True,
                          dropout=c["dropout"] if c["n_layer"] > 1 else 0.0, **kwargs)
        self.drop = nn.Dropout(c["dropout"])
        self.lm_head = nn.Linear(c["n_hidden"], c["vocab_size"])
        if c["tie_weights"]:
            self.lm_head.weight = self.wte.weight

    def forward(self, idx, targets=None):
        out, _ = self.rnn(self.drop(self.wte(idx)))                # (B, T, n_hidden)
        logits = self.lm_head(self.drop(out))                      # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def build_model(family, c):
    if family == "transformer":
        c = dict({"n_kv_head": None, "dropout": 0.0, "bias": False, "pos": "rope", "rope_base": 10000.0,
                  "tie_weights": True, "norm_eps": 1e-5, "gelu": "exact"}, **c)
        return GPT(c)
    return RNNLM(dict({"dropout": 0.0, "tie_weights": False, "cell": family}, **c))


# -- training ------------------------------------------------------------------------------------------------------
def lr_at(t, step):
    """Learning rate for the step after `step` completed ones: linear warmup, then cosine decay to min_lr."""
    if step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / (t["warmup_steps"] + 1)
    span = max(1, t["max_steps"] - t["warmup_steps"])
    progress = min(1.0, (step - t["warmup_steps"]) / span)
    return t["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * progress)) * (t["lr"] - t["min_lr"])


def stream_seed(seed, stream):
    """The seed of the window sampler of micro-batch `stream` (the run's own seed for the first)."""
    if stream == 0:
        return seed
    return (seed * 6364136223846793005 + stream * 1442695040888963407 + 1) & ((1 << 63) - 1)


def uses_bf16(precision, family, device):
    """bf16 autocast (float32 weights) or not, as the run's trainer decides: "bf16", "fp32", or "auto": a
    transformer on CUDA, or on a CPU that multiplies bf16 in hardware (AVX512-BF16 or AMX)."""
    if precision != "auto":
        return precision == "bf16"
    native = any(getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported",
                                                                         "_is_amx_tile_supported"))
    return family == "transformer" and (device.type == "cuda" or (device.type == "cpu" and native))


@torch.no_grad()
def evaluate(model, data, block_size, batch, amp=False):
    """Mean loss (nats/token) over every validation token, in non-overlapping windows."""
    n = data.numel() - 1
    w = n // block_size
    xs, ys = data[:w * block_size].view(w, block_size), data[1:w * block_size + 1].view(w, block_size)
    chunks = [(xs[i:i + batch], ys[i:i + batch]) for i in range(0, w, batch)]
    if n - w * block_size:
        chunks.append((data[w * block_size:n][None], data[w * block_size + 1:][None]))
    model.eval()
    total = 0.0
    for x, y in chunks:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(x)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
    model.train()
    return total / n


@torch.no_grad()
def sample(model, tok, prompt_ids, n, block_size, device, seed):
    gen = torch.Generator(device=device).manual_seed(seed)
    ids = list(prompt_ids)
    model.eval()
    for _ in range(n):
        x = torch.tensor([ids[-block_size:]], dtype=torch.long, device=device)
        logits, _ = model(x)
        probs = torch.softmax(logits[0, -1].float(), dim=-1)
        ids.append(int(torch.multinomial(probs, 1, generator=gen)))
    model.train()
    return tok.decode(ids)


def load_weights(model, path):
    """Pretrained weights saved beside the script (a tied head is the token embedding)."""
    state = torch.load(path, map_location="cpu", weights_only=True)   # tensors only: no code can run
    if SETTINGS["model"].get("tie_weights", True):
        state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state)
    return model


def main():
    t = dict(SETTINGS["train"])
    weights = SETTINGS.get("weights")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=SETTINGS["corpus"], help="UTF-8 text file (default: the run's corpus)")
    p.add_argument("--steps", type=int, default=0 if weights else t["max_steps"], help="optimizer steps to run")
    p.add_argument("--device", default="cpu")
    p.add_argument("--sample-tokens", type=int, default=200)
    p.add_argument("--prompt", default=None, help="text to continue (default: the corpus's first token)")
    p.add_argument("--losses", action="store_true", help="print every step's train loss as one JSON list")
    args = p.parse_args()
    device = torch.device(args.device)
    seed = SETTINGS["seed"]
    if weights and args.corpus is None:   # a pretrained model with nothing to train on: sample from it
        if args.steps:
            raise SystemExit("--steps needs --corpus: the text to fine-tune on")
        tok = Tokenizer(SETTINGS["tokenizer"])
        model = load_weights(build_model(SETTINGS["family"], SETTINGS["model"]), HERE / weights).to(device)
        ids = tok.encode(args.prompt or "\n")
        print(sample(model, tok, ids, args.sample_tokens, SETTINGS["model"]["block_size"], device, seed))
        return

    with open(args.corpus, encoding="utf-8", newline="") as f:   # newline="": no lone '\r' becomes '\n'
        text = f.read().replace("\r\n", "\n")   # Windows line endings, as the project reads them
    n_train = int(len(text) * (1.0 - SETTINGS["val_fraction"]))   # the last val_fraction is validation
    train_text, val_text = text[:n_train], text[n_train:]
    tok = Tokenizer(SETTINGS["tokenizer"])
    train_data = torch.tensor(tok.encode(train_text), dtype=torch.long).to(device)
    val_data = torch.tensor(tok.encode(val_text), dtype=torch.long).to(device)

    torch.manual_seed(seed)                    # initial weights
    model = build_model(SETTINGS["family"], SETTINGS["model"])
    if weights:
        load_weights(model, HERE / weights)
    torch.manual_seed(seed)                    # dropout
    model = model.to(device).train()
    K = t.get("grad_accum", 1)                  # micro-batches summed into each optimizer step
    gens = [torch.Generator() for _ in range(K)]   # batch sampling: one CPU generator per micro-batch, on any device
    for j, g in enumerate(gens):
        g.manual_seed(stream_seed(seed, j))
    B, T = t["batch_size"], t["block_size"]
    offsets = torch.arange(T, device=device)
    params = list(model.parameters())
    groups = [{"params": [q for q in params if q.dim() >= 2], "weight_decay": t["weight_decay"]},
              {"params": [q for q in params if q.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=t["lr"], betas=(t["beta1"], t["beta2"]))
    ordered = [q for g in opt.param_groups for q in g["params"]]
    clip = t["grad_clip"] if t["grad_clip"] > 0 else math.inf
    print(f"{SETTINGS['family']}: {sum(q.numel() for q in params):,} parameters, {len(train_data):,} train "
          f"tokens, vocabulary {tok.vocab_size}", file=sys.stderr)

    amp = uses_bf16(t.get("precision", "auto"), SETTINGS["family"], device)
    print(f"training in {'bf16 autocast (float32 weights)' if amp else 'float32'}", file=sys.stderr)
    losses = []
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(t, step)
        total = 0.0
        for gen in gens:
            ix = torch.randint(len(train_data) - T, (B, 1), generator=gen).to(device)
            x, y = train_data[ix + offsets], train_data[ix + offsets + 1]     # (B, T)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                _, loss = model(x, y)
            (loss / K if K > 1 else loss).backward()   # the gradient of the micro-batches' mean loss
            total = total + loss.detach()
        loss = total / K if K > 1 else total
        norm = torch.nn.utils.clip_grad_norm_(ordered, clip)
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            raise SystemExit(f"the loss or gradient norm became non-finite at step {step + 1}: try a lower lr")
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % t["eval_interval"] == 0 or step + 1 == args.steps:
            val = evaluate(model, val_data, T, t.get("eval_batch_size") or 4 * B, amp)
            print(f"step {step + 1}: train loss {losses[-1]:.4f}, val loss {val:.4f}", file=sys.stderr)
    if args.losses:
        print(json.dumps(losses))
    if args.sample_tokens > 0:
        start = tok.encode(args.prompt) if args.prompt else train_data[:1].tolist()
        print(sample(model, tok, start, args.sample_tokens, T, device, seed), file=sys.stderr)


if __name__ == "__main__":
    main()
'''
