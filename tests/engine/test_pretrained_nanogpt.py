"""nanoGPT's ckpt.pt, against nanoGPT's own model.py as the oracle (imported from ../shared/anchors/nanoGPT; the
tests skip when it is absent): logits equal to 1e-5, with and without biases, with torch.compile's `_orig_mod.`
prefixes; the char vocabulary from meta.pkl, found or named; a GPT-2-vocabulary run needs a tokenizer file."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from engine import api
from engine.cli import main
from engine.errors import CheckpointError
from engine.pretrained import NeedsTokenizer
from tests.engine.pretrained_files import bpe_files, nanogpt_ckpt


@pytest.mark.parametrize("bias,compiled", [(True, False), (False, True)])
def test_logits_equal_nanogpts(tmp_path, bias, compiled):
    ng = nanogpt_ckpt(tmp_path / "out", bias=bias, compiled=compiled)
    handle = api.load_checkpoint(tmp_path / "out" / "ckpt.pt")
    cfg = handle.model.config
    assert (cfg.pos, cfg.bias, cfg.gelu, cfg.tie_weights) == ("learned", bias, "exact", True)
    assert handle.tokenizer.kind == "char" and handle.meta["step"] == 250
    ids = torch.randint(0, 11, (3, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs, _ = ng(ids, ids)   # with targets nanoGPT returns every position's logits
        assert (handle.model(ids)[0] - theirs).abs().max().item() < 1e-5
    assert handle.model.num_params() == sum(p.numel() for p in ng.parameters())


def test_the_folder_and_a_named_meta_pkl_work_too(tmp_path):
    nanogpt_ckpt(tmp_path / "out", meta=False)
    chars = "\n !abcdehst"
    meta = tmp_path / "data" / "shakespeare_char" / "meta.pkl"
    meta.parent.mkdir(parents=True)
    with open(meta, "wb") as f:   # nanoGPT's layout: data/DATASET/meta.pkl next to the output folder
        pickle.dump({"vocab_size": 11, "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in enumerate(chars)}}, f)
    assert api.load_checkpoint(tmp_path / "out").tokenizer.chars == chars
    other = tmp_path / "elsewhere.pkl"
    other.write_bytes(meta.read_bytes())
    handle = api.load_checkpoint(tmp_path / "out" / "ckpt.pt", meta_file=other)
    assert handle.meta["pretrained"]["tokenizer"] == str(other.resolve())


def test_a_gpt2_vocabulary_run_needs_a_tokenizer_file_and_its_padding_is_cut(tmp_path, capsys):
    ng = nanogpt_ckpt(tmp_path / "out", vocab_size=320, meta=False)   # 300 tokens padded to 320, as nanoGPT pads
    with pytest.raises(NeedsTokenizer, match="--tokenizer-file"):
        api.load_checkpoint(tmp_path / "out" / "ckpt.pt")
    assert main(["sample", "--checkpoint", str(tmp_path / "out"), "--max-new-tokens", "2"]) == 2
    assert "--tokenizer-file" in capsys.readouterr().err
    bpe_files(tmp_path / "tok")
    handle = api.load_checkpoint(tmp_path / "out", tokenizer_file=tmp_path / "tok" / "tokenizer.json")
    assert handle.model.config.vocab_size == 300
    assert "cut to the tokenizer's 300" in handle.meta["pretrained"]["notes"][0]
    ids = torch.randint(0, 300, (2, 32), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (handle.model(ids)[0] - ng(ids, ids)[0][..., :300]).abs().max().item() < 1e-5
    assert main(["sample", "--checkpoint", str(tmp_path / "out"), "--tokenizer-file", str(tmp_path / "tok"),
                 "--prompt", "It is", "--max-new-tokens", "4", "--seed", "0", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tokens"]) == 4


def test_tape_inspect_and_fine_tuning_take_a_ckpt(tmp_path, capsys):
    nanogpt_ckpt(tmp_path / "out")
    ckpt = str(tmp_path / "out" / "ckpt.pt")
    assert main(["tape", "--checkpoint", ckpt, "--text", "a hat sat", "--check"]) == 0
    tape = json.loads(capsys.readouterr().out)
    assert tape["max_abs_grad_diff_vs_torch"] < 1e-9 and tape["max_fd_rel_err"] < 1e-5
    assert main(["inspect", "--checkpoint", ckpt, "--text", "a hat sat", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["attention_entropy"]["layer 1"]) == 4
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat at the hat\n" * 60)
    out = tmp_path / "ft"
    assert main(["train", "--init-from", ckpt, "--corpus", str(corpus), "--max-steps", "2", "--quiet",
                 "--set", "eval_windows=4", "--set", "batch_size=2", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 2
    assert api.load_checkpoint(out).meta["parent"]["step"] == 250


def test_options_for_models_trained_elsewhere_are_refused_with_our_checkpoints(tmp_path):
    nanogpt_ckpt(tmp_path / "out")
    with pytest.raises(CheckpointError, match="GPT-2 folder brings its own"):
        from tests.engine.pretrained_files import hf_gpt2
        hf_gpt2(tmp_path / "hf")
        api.load_checkpoint(tmp_path / "hf", meta_file=tmp_path / "out" / "meta.pkl")


def test_the_loaded_model_does_not_depend_on_the_file_nanogpt_rewrites(tmp_path):
    """nanoGPT rewrites ckpt.pt in place as it trains; torch.load memory-maps it, so weights left in the mapping
    would read a truncated file (a crash) or new numbers."""
    nanogpt_ckpt(tmp_path / "out")
    handle = api.load_checkpoint(tmp_path / "out")
    ids = torch.arange(11)[None]
    with torch.no_grad():
        before = handle.model(ids)[0].clone()
    with open(tmp_path / "out" / "ckpt.pt", "r+b") as f:   # the same file, truncated as a new save begins
        f.truncate(0)
    with torch.no_grad():
        assert torch.equal(handle.model(ids)[0], before)


def test_a_meta_pkl_of_another_vocabulary_size_is_refused(tmp_path):
    """A ckpt.pt trained on 65 characters beside a meta.pkl of 10 was accepted, its outputs silently cut to 10."""
    import pickle

    from engine.errors import CheckpointError
    from engine.pretrained import load_pretrained
    nanogpt_ckpt(tmp_path / "out")
    chars = "abcdefghij"
    with open(tmp_path / "other.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                     "stoi": {c: i for i, c in enumerate(chars)}}, f)
    with pytest.raises(CheckpointError, match="another run"):
        load_pretrained(tmp_path / "out" / "ckpt.pt", meta_file=tmp_path / "other.pkl")
