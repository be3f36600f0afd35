"""The tape rebuilt from real engine models: loss and every parameter gradient equal torch.autograd on the
float64 model, for every family and option; bad models and bad text are refused with a clear error."""
import numpy as np
import pytest
import torch

from engine.autodiff.bridge import TapeError, build_tape
from engine.autodiff.report import model_tape_report, tape_report
from engine.autodiff.stepper import Stepper
from engine.errors import PlaygroundError, TokenizerError
from engine.models.ngram import NGramConfig, NGramLM
from engine.models.rnn import RNNConfig, RNNLM
from engine.models.transformer import GPT, GPTConfig
from engine.tokenizers.char import CharTokenizer

TEXT = "the king and queen walk to the castle"
TOK = CharTokenizer.train(TEXT)
V = TOK.vocab_size

RNN_CASES = {
    "rnn": dict(cell="rnn", n_layer=1, n_embd=5, n_hidden=6),
    "rnn-2layer": dict(cell="rnn", n_layer=2, n_embd=5, n_hidden=6),
    "lstm-2layer": dict(cell="lstm", n_layer=2, n_embd=5, n_hidden=6),
    "lstm-tied": dict(cell="lstm", n_layer=1, n_embd=6, n_hidden=6, tie_weights=True),
    "gru-2layer": dict(cell="gru", n_layer=2, n_embd=5, n_hidden=6),
    "gru-tied": dict(cell="gru", n_layer=1, n_embd=6, n_hidden=6, tie_weights=True),
}
GPT_CASES = {
    "rope": dict(pos="rope"),
    "learned": dict(pos="learned"),
    "sinusoidal": dict(pos="sinusoidal"),
    "gqa-rope": dict(pos="rope", n_head=4, n_kv_head=2),
    "mqa-learned-bias": dict(pos="learned", n_head=4, n_kv_head=1, bias=True),
    "untied-bias-sinusoidal": dict(pos="sinusoidal", tie_weights=False, bias=True),
    "untied-3layer": dict(pos="rope", n_layer=3, tie_weights=False),
}


def _rnn(**kw):
    torch.manual_seed(0)
    return RNNLM(RNNConfig(vocab_size=V, **kw))


def _gpt(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, block_size=48, n_layer=2, n_head=2, n_embd=8) | kw
    model = GPT(GPTConfig(**cfg))
    with torch.no_grad():   # GPT's init is tiny (std 0.02); bigger weights make every gradient path matter
        for p in model.parameters():
            p.normal_(0.0, 0.4)
    return model


def _assert_tape_equals_torch(model, text=TEXT):
    program = build_tape(model, TOK, text)   # from the float32 model: the bridge casts to float64 itself
    Stepper(program).run_to_end()
    model = model.double()
    idx = torch.tensor([TOK.encode(text)])
    _, loss = model(idx[:, :-1], idx[:, 1:])
    loss.backward()
    assert abs(float(program.nodes[program.loss].value) - loss.item()) < 1e-12
    weights = dict(model.named_parameters())
    assert set(program.params) == set(weights)
    for name, node_id in program.params.items():
        node = program.nodes[node_id]
        assert node.kind == "param" and node.name == name
        np.testing.assert_allclose(node.grad, weights[name].grad.numpy(), rtol=0, atol=1e-9, err_msg=name)
        assert np.abs(weights[name].grad.numpy()).max() > 0, f"{name} got no gradient: the check would be vacuous"
    return program


@pytest.mark.parametrize("case", RNN_CASES)
def test_recurrent_models_equal_torch(case):
    program = _assert_tape_equals_torch(_rnn(**RNN_CASES[case]))
    assert any(n.group.endswith("RNN step 3") for n in program.nodes)


@pytest.mark.parametrize("case", GPT_CASES)
def test_gpt_models_equal_torch(case):
    program = _assert_tape_equals_torch(_gpt(**GPT_CASES[case]))
    ops = {n.op for n in program.nodes}
    assert {"LayerNorm", "Softmax", "CausalMask", "GELU", "CrossEntropy"} <= ops
    assert ("RoPE" in ops) == (GPT_CASES[case]["pos"] == "rope")
    assert ("RepeatKV" in ops) == ("n_kv_head" in GPT_CASES[case])


def test_nodes_carry_groups_labels_and_names():
    program = build_tape(_gpt(pos="rope", n_head=4, n_kv_head=2), TOK, TEXT)
    groups = {n.group for n in program.nodes}
    assert {"embedding", "block 1 / attention / q projection", "block 2 / mlp", "lm head", "loss"} <= groups
    q = program.nodes[program.params["blocks.0.attn.q_proj.weight"]]
    assert q.group == "block 1 / attention / q projection" and q.kind == "param"
    head = [n for n in program.nodes if n.label == "Linear(lm_head)"][0]
    assert program.params["wte.weight"] in head.inputs        # tied: the head reads the embedding's node
    assert program.tokens == [TOK.token_str(i) for i in TOK.encode(TEXT)[:-1]]
    for n in program.nodes:
        if n.kind == "op":
            assert n.fwd_rule and n.bwd_rule and n.label


def test_text_exactly_at_the_context_limit_is_accepted_and_one_more_is_refused():
    model = _gpt(block_size=8)
    build_tape(model, TOK, TEXT[:9])
    with pytest.raises(TapeError, match="longer than"):
        build_tape(model, TOK, TEXT[:10])


def test_unknown_characters_raise_the_tokenizer_error():
    with pytest.raises(TokenizerError):
        build_tape(_rnn(cell="gru", n_embd=4, n_hidden=4), TOK, "the king Zzz")


def test_too_short_text_is_refused():
    with pytest.raises(TapeError, match="at least 2 tokens"):
        build_tape(_rnn(cell="rnn", n_embd=4, n_hidden=4), TOK, "t")


def test_ngram_model_has_no_tape():
    model = NGramLM(NGramConfig(vocab_size=V, order=2)).fit(np.array(TOK.encode(TEXT)))
    with pytest.raises(PlaygroundError, match="n-gram model has no tape"):
        build_tape(model, TOK, TEXT)


def test_model_tape_report_agrees_with_torch_and_fd():
    model = _gpt(pos="learned")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = model_tape_report(model, TOK, TEXT, check=True, fd_nodes=12)
    assert abs(report["loss"] - report["loss_torch"]) < 1e-12
    assert report["max_abs_grad_diff_vs_torch"] < 1e-9
    assert report["max_fd_rel_err"] < 1e-6 and report["fd_nodes_checked"] == 12
    assert report["params"] == len(dict(model.named_parameters())) and report["family"] == "transformer"
    assert next(model.parameters()).dtype == torch.float32     # the caller's model is left alone
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_tape_report_uses_the_facades_checkpoint_loader(monkeypatch):
    """tape_report only wires engine.api.load_checkpoint to model_tape_report; the loader itself is api's."""
    import engine.api

    model = _rnn(cell="lstm", n_embd=4, n_hidden=4)
    seen = []

    def fake_load(ckpt_dir):
        seen.append(ckpt_dir)
        return engine.api.ModelHandle("lstm", model, TOK, {})
    monkeypatch.setattr(engine.api, "load_checkpoint", fake_load)
    report = tape_report("some/dir", TEXT, check=False)
    assert seen == ["some/dir"]
    assert report["family"] == "lstm" and report["max_fd_rel_err"] is None
    assert abs(report["loss"] - report["loss_torch"]) < 1e-12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_model_on_the_gpu_is_put_on_the_tape_from_cpu_copies():
    model = _gpt(pos="rope", n_head=4, n_kv_head=2).cuda()
    report = model_tape_report(model, TOK, TEXT)
    assert abs(report["loss"] - report["loss_torch"]) < 1e-12
    assert report["max_abs_grad_diff_vs_torch"] < 1e-9
    assert next(model.parameters()).is_cuda
