"""A Hugging Face GPT-2 from a local folder, against Hugging Face's own model and tokenizers as the oracle: a
randomly initialised tiny GPT2LMHeadModel saved with save_pretrained loads, gives the same logits to 1e-5 and the
same greedy continuation; its byte-level BPE encodes as transformers' tokenizers do; every command runs on it."""
from __future__ import annotations

import json

import pytest
import torch

from engine import api
from engine.cli import main
from engine.decode import DecodeConfig, generate
from engine.errors import CheckpointError
from tests.engine.pretrained_files import TEXT, hf_gpt2

transformers = pytest.importorskip("transformers")

SAMPLES = ["It is a truth universally acknowledged", "  two  spaces\n\nand a newline", "ünïcödé 日本 🙂!?",
           "the end<|endoftext|>the start", "", " leading space", "1234 5678\t\ttabs"]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "gpt2"
    return folder, hf_gpt2(folder)


def test_logits_equal_hugging_faces(gpt2):
    folder, hf = gpt2
    handle = api.load_checkpoint(folder)
    assert handle.meta["pretrained"]["format"] == "hf-gpt2"
    cfg = handle.model.config
    assert (cfg.pos, cfg.bias, cfg.gelu, cfg.tie_weights, cfg.norm_eps) == ("learned", True, "tanh", True, 1e-5)
    ids = torch.randint(0, cfg.vocab_size, (3, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = handle.model(ids)[0], hf(ids).logits
    assert (ours - theirs).abs().max().item() < 1e-5
    assert handle.model.num_params() == hf.num_parameters()


def test_greedy_continuation_is_hugging_faces(gpt2):
    folder, hf = gpt2
    handle = api.load_checkpoint(folder)
    prompt = "It is a truth"
    ids = handle.tokenizer.encode(prompt)
    ours = [ev.token_id for ev in generate(handle.model, handle.tokenizer, prompt,
                                           DecodeConfig(strategy="greedy", max_new_tokens=30)) if not ev.done]
    with torch.no_grad():
        out = hf.generate(torch.tensor([ids]), max_new_tokens=30, do_sample=False, eos_token_id=None,
                          pad_token_id=0, attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    assert ours == out[0, len(ids):].tolist()


@pytest.mark.parametrize("layout", ["json", "pair"])
def test_tokenizer_encodes_as_hugging_faces(tmp_path, layout):
    folder = tmp_path / layout
    hf_gpt2(folder, tokenizer=layout)
    ours = api.load_checkpoint(folder).tokenizer
    oracles = [transformers.AutoTokenizer.from_pretrained(str(folder))]
    if layout == "pair":   # GPT-2's original Python tokenizer reads the pair too
        oracles.append(transformers.GPT2Tokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")))
    for text in SAMPLES + [TEXT]:
        ids = ours.encode(text)
        for oracle in oracles:
            assert ids == oracle(text)["input_ids"], (type(oracle).__name__, text)
        assert ours.decode(ids) == text


def test_the_special_token_is_one_token_and_survives_a_round_trip(gpt2):
    folder, _ = gpt2
    tok = api.load_checkpoint(folder).tokenizer
    eot = tok.tok.token_to_id("<|endoftext|>")
    assert eot in tok.encode("a<|endoftext|>b") and tok.token_str(eot) == "<|endoftext|>"
    stream = tok.stream_decoder()
    assert "".join(stream.add(i) for i in tok.encode("x<|endoftext|>ü")) + stream.flush() == "x<|endoftext|>ü"


def test_pytorch_model_bin_and_an_untied_head_load(tmp_path):
    folder = tmp_path / "bin"
    hf = hf_gpt2(folder, tie_word_embeddings=False)
    state = {k: v.clone() for k, v in hf.state_dict().items()}
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    handle = api.load_checkpoint(folder)
    assert handle.meta["pretrained"]["weights"] == "pytorch_model.bin" and not handle.model.config.tie_weights
    ids = torch.randint(0, handle.model.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (handle.model(ids)[0] - hf(ids).logits).abs().max().item() < 1e-5


def test_a_missing_folder_says_where_hugging_face_keeps_models(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "nowhere"), "--max-new-tokens", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "models--gpt2/snapshots" in err and "never downloads" in err


def test_every_command_takes_the_folder(gpt2, tmp_path, capsys):
    folder, _ = gpt2
    assert main(["sample", "--checkpoint", str(folder), "--prompt", "It is", "--max-new-tokens", "5",
                 "--seed", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tokens"]) == 5
    assert main(["tape", "--checkpoint", str(folder), "--text", "It is a truth", "--check"]) == 0
    tape = json.loads(capsys.readouterr().out)
    assert tape["max_abs_grad_diff_vs_torch"] < 1e-9 and tape["max_fd_rel_err"] < 1e-5
    assert abs(tape["loss"] - tape["loss_torch"]) < 1e-9
    assert main(["inspect", "--checkpoint", str(folder), "--text", "It is a truth", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["attention_entropy"]) == 2 and report["logit_lens"]["layers"][0] == "embeddings"
    out = tmp_path / "gpt2_run.py"
    assert main(["export", "--checkpoint", str(folder / "config.json"), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["corpus"] is None


def test_the_exported_script_holds_the_same_model(gpt2, tmp_path):
    import importlib.util
    folder, hf = gpt2
    from engine.export import export_script
    result = export_script(folder, tmp_path / "run.py")
    spec = importlib.util.spec_from_file_location("exported_gpt2", result["script"])
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model = script.load_weights(script.build_model("transformer", script.SETTINGS["model"]),
                                tmp_path / "run.weights.pt").eval()
    ids = torch.randint(0, 300, (1, 30), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (model(ids)[0] - hf(ids).logits).abs().max().item() < 1e-5
    tok = script.Tokenizer(script.SETTINGS["tokenizer"])
    assert tok.encode(TEXT) == api.load_checkpoint(folder).tokenizer.encode(TEXT)


def test_fine_tuning_starts_from_the_weights_and_resumes(gpt2, tmp_path, capsys):
    folder, _ = gpt2
    with pytest.raises(CheckpointError, match="trained elsewhere: there is no run here to resume"):
        api.resume_spec(str(folder))
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT * 20)
    out = tmp_path / "ft"
    assert main(["train", "--init-from", str(folder), "--corpus", str(corpus), "--max-steps", "3", "--quiet",
                 "--set", "eval_windows=4", "--set", "batch_size=2", "--out", str(out)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["step"] == 3 and line["vocab_size"] == 300
    child = api.load_checkpoint(out)
    assert child.meta["parent"]["checkpoint"] == str(folder.resolve())
    assert child.model.config.gelu == "tanh" and child.meta["train"]["lr"] == pytest.approx(3e-4)
    assert main(["train", "--resume", str(out), "--max-steps", "4", "--quiet", "--set", "eval_windows=4",
                 "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 4
