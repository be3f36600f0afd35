"""Tiny models trained elsewhere, made by the real programs, for the pretrained loaders' tests: a Hugging Face
GPT-2 saved with save_pretrained, a byte-level BPE tokenizer as tokenizer.json and as vocab.json + merges.txt, and
a nanoGPT ckpt.pt from nanoGPT's own model.py (../shared/anchors/nanoGPT, imported from there; tests skip when
it is absent)."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import pickle
from pathlib import Path

import pytest
import torch

NANOGPT = Path(__file__).resolve().parents[3] / "shared" / "anchors" / "nanoGPT" / "model.py"
TEXT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
        "want of a wife. However little known the feelings or views of such a man may be on his first entering a "
        "neighbourhood, this truth is so well fixed in the minds of the surrounding families. 1234 ünïcödé 日本 ")


def bpe_files(folder: Path, vocab_size: int = 300) -> int:
    """A GPT-2-style byte-level BPE trained on TEXT, saved in `folder` as tokenizer.json and as vocab.json +
    merges.txt, with <|endoftext|> in the vocabulary as GPT-2 has it. Returns the vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator([TEXT * 3], trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    tok.model.save(str(folder))
    return tok.get_vocab_size()


def hf_gpt2(folder: Path, *, tokenizer: str = "json", seed: int = 0, **overrides):
    """A randomly initialised GPT2LMHeadModel (2 layers, 64 wide) saved with save_pretrained in `folder`, with a
    tokenizer (tokenizer="json": tokenizer.json; "pair": vocab.json + merges.txt only; None: none). Returns the
    transformers model (eval mode)."""
    transformers = pytest.importorskip("transformers")
    folder.mkdir(parents=True, exist_ok=True)
    vocab = bpe_files(folder) if tokenizer else overrides.pop("vocab_size", 300)
    if tokenizer == "pair":
        (folder / "tokenizer.json").unlink()
    elif tokenizer == "json":
        (folder / "vocab.json").unlink()
        (folder / "merges.txt").unlink()
    cfg = dict(n_layer=2, n_embd=64, n_head=4, n_positions=48, vocab_size=vocab, bos_token_id=0, eos_token_id=0)
    cfg.update(overrides)
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg)).eval()
    with torch.no_grad():   # random LayerNorm parameters and biases, so a mapping that drops them shows
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(str(folder))
    return model


def nanogpt_module():
    """nanoGPT's model.py, imported from the shared anchors (skips the test when it is absent)."""
    if not NANOGPT.is_file():
        pytest.skip(f"nanoGPT's model.py is not at {NANOGPT}")
    spec = importlib.util.spec_from_file_location("nanogpt_model_oracle", NANOGPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def nanogpt_ckpt(folder: Path, *, bias: bool = True, vocab_size: int = 11, compiled: bool = False,
                 meta: bool = True, seed: int = 0):
    """nanoGPT's GPT (2 layers, 4 heads, 64 wide, context 32) saved as nanoGPT's train.py saves it, in
    folder/ckpt.pt, with a char vocabulary meta.pkl beside it (meta=True). compiled: keys prefixed `_orig_mod.`
    as torch.compile leaves them. Returns the nanoGPT model (eval mode)."""
    mod = nanogpt_module()
    args = dict(n_layer=2, n_head=4, n_embd=64, block_size=32, bias=bias, vocab_size=vocab_size, dropout=0.0)
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):   # nanoGPT prints its parameter count
        model = mod.GPT(mod.GPTConfig(**args)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    state = model.state_dict()
    if compiled:
        state = {"_orig_mod." + k: v for k, v in state.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "optimizer": opt.state_dict(), "model_args": args, "iter_num": 250,
                "best_val_loss": torch.tensor(1.5), "config": {"dataset": "shakespeare_char", "lr": 1e-3}},
               folder / "ckpt.pt")
    if meta:
        chars = "\n !abcdehst"[:vocab_size]
        with open(folder / "meta.pkl", "wb") as f:
            pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                         "stoi": {c: i for i, c in enumerate(chars)}}, f)
    return model


def hf_config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())
