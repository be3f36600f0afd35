"""Hostile files where a model trained elsewhere is expected: pickles that would run code (a reduce that creates a
file: the file must not appear), wrong shapes, missing tensors, configs with absurd sizes, damaged headers and
vocabularies. Each is one clear CheckpointError, `error: ...` with exit status 2 in the CLI, and nothing runs."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine import api
from engine.cli import main
from engine.errors import CheckpointError
from tests.engine.pretrained_files import hf_config, hf_gpt2, nanogpt_ckpt


class _CreatesFile:
    """Unpickling this calls open(path, "w"), which creates the file: proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _refused(path, capsys, marker=None, match="refused", **kw):
    with pytest.raises(CheckpointError, match=match):
        api.load_checkpoint(path, **kw)
    capsys.readouterr()   # what building the fixture printed (save_pretrained's progress bar)
    argv = ["sample", "--checkpoint", str(path), "--max-new-tokens", "2"]
    for key, flag in (("meta_file", "--meta"), ("tokenizer_file", "--tokenizer-file")):
        if key in kw:
            argv += [flag, str(kw[key])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    if marker is not None:
        assert not marker.exists(), "loading ran code from the file"
    return err


@pytest.mark.parametrize("layout", ["legacy pickle", "torch zip"])
def test_a_ckpt_whose_pickle_would_run_code_is_refused_and_nothing_runs(tmp_path, capsys, layout):
    marker = tmp_path / "pwned"
    evil = {"model": _CreatesFile(marker), "model_args": {}}
    folder = tmp_path / "out"
    folder.mkdir()
    if layout == "legacy pickle":
        with open(folder / "ckpt.pt", "wb") as f:
            pickle.dump(evil, f, protocol=2)   # torch.load's own default protocol
    else:
        torch.save(evil, folder / "ckpt.pt")
    err = _refused(folder / "ckpt.pt", capsys, marker)
    assert "would run code" in err and "nothing in it was run" in err
    # the reason names what was refused, not torch's advice about weights_only (the message was cut mid-sentence)
    assert ("GLOBAL" in err or "Unsupported" in err) and "PyTorch 2.6" not in err, err


def test_a_meta_pkl_that_would_run_code_is_refused_and_nothing_runs(tmp_path, capsys):
    nanogpt_ckpt(tmp_path / "out", meta=False)
    marker = tmp_path / "pwned"
    with open(tmp_path / "out" / "meta.pkl", "wb") as f:
        pickle.dump({"itos": _CreatesFile(marker)}, f)
    assert "it names io.open" in _refused(tmp_path / "out", capsys, marker)


def test_a_meta_pkl_with_other_types_or_a_broken_table_is_refused(tmp_path, capsys):
    nanogpt_ckpt(tmp_path / "out", meta=False)
    meta = tmp_path / "out" / "meta.pkl"
    meta.write_bytes(pickle.dumps({"itos": {0: "a", 1: "b"}, "vocab_size": 2.5}))
    _refused(tmp_path / "out", capsys, match="holds a float")
    meta.write_bytes(pickle.dumps({"itos": {0: "ab", 1: "c"}}))
    _refused(tmp_path / "out", capsys, match="single characters")
    meta.write_bytes(b"\x80\x04not a pickle")
    _refused(tmp_path / "out", capsys, match="not a readable pickle")


def test_a_pytorch_model_bin_that_would_run_code_is_refused(tmp_path, capsys):
    folder = tmp_path / "hf"
    hf_gpt2(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({"wte.weight": _CreatesFile(marker)}, folder / "pytorch_model.bin")
    _refused(folder, capsys, marker)


def test_wrong_shapes_and_missing_tensors_are_named(tmp_path, capsys):
    folder = tmp_path / "hf"
    hf_gpt2(folder)
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if "h.1.mlp.c_fc.bias" not in k}, str(folder / "model.safetensors"))
    assert "h.1.mlp.c_fc.bias" in _refused(folder, capsys, match="missing")
    weights["transformer.wpe.weight"] = torch.zeros(47, 64)
    save_file(weights, str(folder / "model.safetensors"))
    assert "(47, 64)" in _refused(folder, capsys, match="shape")
    weights["transformer.wpe.weight"] = torch.full((48, 64), float("nan"))
    save_file(weights, str(folder / "model.safetensors"))
    _refused(folder, capsys, match="NaN")
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    _refused(folder, capsys, match="header")

    nanogpt_ckpt(tmp_path / "ng")
    raw = torch.load(tmp_path / "ng" / "ckpt.pt", weights_only=True)
    raw["model"]["transformer.h.0.attn.c_attn.weight"] = torch.zeros(3 * 64, 32)
    torch.save(raw, tmp_path / "ng" / "ckpt.pt")
    _refused(tmp_path / "ng", capsys, match="shape")
    del raw["model"]["transformer.h.0.attn.c_attn.weight"]
    torch.save(raw, tmp_path / "ng" / "ckpt.pt")
    _refused(tmp_path / "ng", capsys, match="missing")


@pytest.mark.parametrize("change,match", [
    ({"n_layer": 10 ** 9}, "n_layer is 1,000,000,000; at most 256"),
    ({"vocab_size": 10 ** 12}, "vocab_size is"),
    ({"n_head": 5}, "divisible"),
    ({"n_layer": 256, "n_embd": 65536, "n_head": 256}, "loading it needs about"),
    ({"model_type": "llama"}, "only GPT-2"),
    ({"activation_function": "relu"}, "activation_function"),
    ({"scale_attn_by_inverse_layer_idx": True}, "changes the attention"),
    ({"layer_norm_epsilon": "tiny"}, "layer_norm_epsilon"),
])
def test_a_config_with_absurd_or_foreign_settings_is_refused_before_weights_are_read(tmp_path, capsys, change,
                                                                                     match):
    folder = tmp_path / "hf"
    hf_gpt2(folder)
    cfg = hf_config(folder)
    cfg.update(change)
    (folder / "config.json").write_text(json.dumps(cfg))
    _refused(folder, capsys, match=match)


@pytest.mark.parametrize("change,match", [
    ({"n_layer": 10 ** 9}, "at most 256"),
    ({"flash": True}, "settings nanoGPT's GPT does not have"),
    ({"bias": "yes"}, "not of the right type"),
])
def test_nanogpt_model_args_are_checked(tmp_path, capsys, change, match):
    nanogpt_ckpt(tmp_path / "ng")
    raw = torch.load(tmp_path / "ng" / "ckpt.pt", weights_only=True)
    raw["model_args"].update(change)
    torch.save(raw, tmp_path / "ng" / "ckpt.pt")
    _refused(tmp_path / "ng", capsys, match=match)


def test_a_tokenizer_whose_added_tokens_are_outside_its_vocabulary_is_refused(tmp_path, capsys):
    folder = tmp_path / "hf"
    hf_gpt2(folder)
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["added_tokens"].append({"id": 5000, "content": "<evil>", "single_word": False, "lstrip": False,
                                "rstrip": False, "normalized": False, "special": True})
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    _refused(folder, capsys, match="added tokens")
