"""engine.inside against torch itself: activations against the fused modules and forward hooks, the logit lens's
last readout against the model's logits, attention weights against what the model's own attention produced, BPTT
norms against autograd through the fused module."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.errors import TokenizerError
from engine.inside import InsideError, bptt_norms, look_inside
from engine.inside.activations import rnn_unrolled, transformer_pass
from engine.inside.features import correlations, rank_units, text_features
from engine.models import build_model
from engine.models.ngram import NGramConfig, NGramLM
from engine.tokenizers.char import CharTokenizer

TEXT = 'First Citizen:\n"Speak (speak)," he said.\nAll: We know\'t.\n'


@pytest.fixture
def tok():
    return CharTokenizer.train(TEXT)


def _rnn(cell, tok, n_layer=2, seed=0):
    torch.manual_seed(seed)
    return build_model(cell, {"vocab_size": tok.vocab_size, "n_layer": n_layer, "n_embd": 12,
                              "n_hidden": 16}).eval()


def _gpt(tok, pos="rope", n_kv_head=None, seed=0):
    torch.manual_seed(seed)
    model = build_model("transformer", {"vocab_size": tok.vocab_size, "block_size": 64, "n_layer": 2,
                                         "n_head": 4, "n_kv_head": n_kv_head, "n_embd": 16, "pos": pos})
    with torch.no_grad():   # larger than GPT's 0.02 init, so attention is far from uniform and errors would show
        for p in model.parameters():
            p.mul_(8.0 if p.dim() == 2 else 1.0)
    return model.eval()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_steps_equal_the_fused_module_at_every_time_step(cell, tok):
    model = _rnn(cell, tok)
    idx = torch.tensor(tok.encode(TEXT[:20]))
    with torch.no_grad():
        logits, sites = rnn_unrolled(model, idx)
        ref_logits, _ = model(idx[None])
        assert torch.allclose(logits, ref_logits[0], atol=1e-5)
        outputs = {}
        hook = model.rnn.register_forward_hook(lambda m, a, out: outputs.__setitem__("out", out))
        for t in range(1, len(idx) + 1):       # the fused module's final state after each prefix: every layer's
            model(idx[None, :t])               # h_t (and the LSTM's c_t) at step t
            _, state = outputs["out"]
            h_n, c_n = state if cell == "lstm" else (state, None)
            for k in range(2):
                assert torch.allclose(sites[f"layer {k + 1} h"][t - 1], h_n[k, 0], atol=1e-6)
                if cell == "lstm":
                    assert torch.allclose(sites[f"layer {k + 1} c"][t - 1], c_n[k, 0], atol=1e-6)
        hook.remove()
    gates = {"lstm": "ifgo", "gru": "rzn", "rnn": ""}[cell]
    assert sorted(k.split()[-1] for k in sites if k.startswith("layer 1")) == sorted(["h"] + list(gates) +
                                                                                    (["c"] if cell == "lstm" else []))


def test_lstm_gates_rebuild_the_cell_state(tok):
    """c_t = f ⊙ c_{t−1} + i ⊙ g and h_t = o ⊙ tanh(c_t): the gates shown are the ones that made the states."""
    model = _rnn("lstm", tok, n_layer=1)
    with torch.no_grad():
        _, s = rnn_unrolled(model, torch.tensor(tok.encode(TEXT[:15])))
    c_prev = torch.cat([torch.zeros(1, 16), s["layer 1 c"][:-1]])
    assert torch.allclose(s["layer 1 c"], s["layer 1 f"] * c_prev + s["layer 1 i"] * s["layer 1 g"], atol=1e-6)
    assert torch.allclose(s["layer 1 h"], s["layer 1 o"] * torch.tanh(s["layer 1 c"]), atol=1e-6)


@pytest.mark.parametrize("pos,n_kv_head", [("rope", None), ("learned", 2), ("sinusoidal", 1)])
def test_transformer_activations_attention_and_lens_equal_the_model(pos, n_kv_head, tok):
    model = _gpt(tok, pos, n_kv_head)
    idx = torch.tensor(tok.encode(TEXT[:40]))
    seen = {}
    hooks = [model.blocks[1].register_forward_hook(lambda m, a, out: seen.__setitem__("block2", out)),
             model.blocks[0].mlp.gelu.register_forward_hook(lambda m, a, out: seen.__setitem__("gelu1", out))]
    for i, b in enumerate(model.blocks):   # what the model's own attention produced, before c_proj
        hooks.append(b.attn.c_proj.register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(f"y{i}", a[0])))
        hooks.append(b.attn.v_proj.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(f"v{i}", out)))
    with torch.no_grad():
        ref_logits, _ = model(idx[None])
        for h in hooks:
            h.remove()
        logits, resid, mlp, att = transformer_pass(model, idx)
    assert torch.allclose(resid[2], seen["block2"][0], atol=0)
    assert torch.allclose(mlp[0], seen["gelu1"][0], atol=0)
    T = len(idx)
    assert torch.allclose(att.sum(-1), torch.ones(2, 4, T), atol=1e-6)
    assert torch.all(att.triu(diagonal=1) == 0)            # causal: nothing from the future
    assert att.max() > 0.5                                 # not uniform, so the comparison below can fail
    for i in range(2):
        v = seen[f"v{i}"][0].view(T, -1, 4).transpose(0, 1)                       # (nkv, T, hs)
        v = v.repeat_interleave(4 // v.shape[0], dim=0)
        y = (att[i] @ v).transpose(0, 1).reshape(T, 16)
        assert torch.allclose(y, seen[f"y{i}"][0], atol=1e-5)
    inside = look_inside(model, tok, TEXT[:40])
    assert np.abs(inside.lens.logits - ref_logits[0].numpy()).max() <= 1e-5
    last = F.log_softmax(ref_logits[0], -1).exp()
    assert np.abs(inside.lens.top_probs[-1] - last.max(-1).values.numpy()).max() <= 1e-5
    assert np.array_equal(inside.lens.top_ids[-1], last.argmax(-1).numpy())
    assert np.allclose(inside.lens.final_probs[-1], inside.lens.top_probs[-1])
    assert inside.lens.final_probs.shape == (3, T) and inside.attention.shape == (2, 4, T, T)
    assert inside.head_entropy.shape == (2, 4) and np.all(inside.head_entropy >= 0)
    assert np.all(inside.head_entropy <= np.log(np.arange(1, T + 1)).mean() + 1e-6)


def _fused_bptt_reference(model, ids, at):
    """‖∂L/∂h_t‖ of the top layer from torch's fused module alone: run it on ids[:t] and on the rest from that
    state, add a zero vector d to h_t in both places it is used (the head at t and the next step's state) and
    take autograd's gradient of d. Single-layer models, so the state is exactly h_t (and c_t)."""
    T = len(ids) - 1
    idx, targets = torch.tensor(ids[:-1]), torch.tensor(ids[1:])
    out = []
    for t in range(1, T + 1):
        d = torch.zeros(model.config.n_hidden, requires_grad=True)
        x = model.wte(idx)[None]
        first, state = model.rnn(x[:, :t])
        h_t = first[0, -1] + d
        if isinstance(state, tuple):
            state = (h_t[None, None], state[1])
        else:
            state = h_t[None, None]
        outs = [first[0, :-1], h_t[None]]
        if t < T:
            rest, _ = model.rnn(x[:, t:], state)
            outs.append(rest[0])
        losses = F.cross_entropy(model.lm_head(torch.cat(outs)), targets, reduction="none")
        loss = losses.mean() if at == "mean" else losses[at - 1]
        (g,) = torch.autograd.grad(loss, d)
        out.append(float(g.norm()))
    return np.array(out)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("at", ["last", 5, "mean"])
def test_bptt_norms_equal_autograd_through_the_fused_module(cell, at, tok):
    model = _rnn(cell, tok, n_layer=1)
    ids = tok.encode(TEXT[:13])
    got = bptt_norms(model, ids, at)
    want = _fused_bptt_reference(model, ids, 12 if at == "last" else at)
    assert got.norms.shape == (1, 12)
    np.testing.assert_allclose(got.norms[0], want, rtol=1e-4, atol=1e-9)
    if at == 5:
        assert np.all(got.norms[0, 5:] == 0) and np.all(got.norms[0, :5] > 0)   # no path back from the future
    assert got.loss_at == (12 if at == "last" else at)


def test_bptt_reaches_every_layer_and_the_model_keeps_no_grad(tok):
    model = _rnn("lstm", tok, n_layer=2)
    b = bptt_norms(model, tok.encode(TEXT[:10]), "last")
    assert b.norms.shape == (2, 9) and np.all(b.norms > 0)
    assert all(p.grad is None for p in model.parameters())


def test_bad_inputs_say_why(tok):
    model = _rnn("lstm", tok, n_layer=1)
    with pytest.raises(InsideError, match="between 1 and 9"):
        bptt_norms(model, tok.encode(TEXT[:10]), 10)
    with pytest.raises(InsideError, match="at least 2 tokens"):
        look_inside(model, tok, "F")
    with pytest.raises(TokenizerError):
        look_inside(model, tok, "Zebra§")
    ngram = NGramLM(NGramConfig(vocab_size=tok.vocab_size, order=2)).fit(np.array(tok.encode(TEXT)))
    with pytest.raises(InsideError, match="n-gram"):
        look_inside(ngram, tok, TEXT)


def test_long_text_is_cut_to_the_context_with_a_note(tok):
    model = _gpt(tok)
    inside = look_inside(model, tok, TEXT * 2)
    assert len(inside.tokens) == 64 and "first 64" in inside.note
    assert inside.bptt is None and "recurrence" in inside.missing["bptt"]


def test_recurrent_inside_has_sites_bptt_and_says_what_is_missing(tok):
    model = _rnn("gru", tok)
    inside = look_inside(model, tok, TEXT, loss_at="mean")
    with torch.no_grad():   # the one pass with autograd gives the same activations as the checked plain forward
        _, plain = rnn_unrolled(model, torch.tensor(tok.encode(TEXT)))
    assert all(np.allclose(inside.sites[k], v.numpy(), atol=1e-6) for k, v in plain.items())
    np.testing.assert_allclose(inside.bptt.norms, bptt_norms(model, tok.encode(TEXT), "mean").norms)
    assert list(inside.sites)[:4] == ["layer 1 h", "layer 1 r", "layer 1 z", "layer 1 n"]
    assert inside.sites["layer 2 h"].shape == (len(TEXT), 16) and inside.sites["layer 2 h"].dtype == np.float32
    assert inside.bptt.loss_at == "mean" and inside.bptt.norms.shape == (2, len(TEXT) - 1)
    assert inside.attention is None and inside.lens is None and set(inside.missing) == {"attention", "lens"}
    assert inside.missing["attention"].startswith("a GRU has no attention")   # not "an GRU"
    assert look_inside(_rnn("lstm", tok), tok, TEXT).missing["attention"].startswith("an LSTM has no attention")


def test_text_features_read_quotes_brackets_and_lines():
    text = 'ab "Cd" (e)\nfG'
    names, f = text_features(list(text))
    row = dict(zip(names, f))
    assert row["inside quotes"].tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert row["inside brackets"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0]
    assert row["position in line"].tolist() == list(range(12)) + [0, 1]
    assert row["after newline"].tolist() == [0] * 12 + [1, 0]
    assert row["upper case"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert row["vowel"][0] == 1 and row["vowel"][1] == 0
    assert row["space"].tolist() == [0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    names, f = text_features(list("don't 'x'"))   # the apostrophe in don't opens nothing; the quoted x is inside
    assert dict(zip(names, f))["inside quotes"].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_correlation_ranking_finds_a_planted_unit():
    rng = np.random.default_rng(0)
    names, f = text_features(list('he said "to be or not" and (so) on\nand on "yes" then'))
    T = f.shape[1]
    acts = rng.normal(size=(T, 30))
    acts[:, 17] = 3 * f[0] + 0.1 * rng.normal(size=T)           # a "quote unit"
    r = correlations(acts, f)
    assert np.isclose(r[17, 0], np.corrcoef(acts[:, 17], f[0])[0, 1])
    by_feature, best = rank_units([("layer 1 h", acts[:, :10]), ("layer 1 c", acts[:, 10:])], names, f)
    top = by_feature["inside quotes"][0]
    assert (top.site, top.unit, top.feature) == ("layer 1 c", 7, "inside quotes") and top.r > 0.95
    assert best[0] == top
    assert by_feature["upper case"] == []          # no capital letter in the text: nothing to track
    assert len(by_feature["space"]) == 5


def test_concurrent_looks_at_one_shared_model_do_not_mix(tok):
    """The app shares one model object between tabs: two look_inside calls on two threads (hooks on the same
    modules) each get exactly what a call alone gets."""
    import threading
    model = _gpt(tok)
    texts = [TEXT[:40], TEXT[5:30]]
    alone = [look_inside(model, tok, t) for t in texts]
    got, errors = [None, None], []
    start = threading.Barrier(2)

    def run(k):
        start.wait()
        try:
            for _ in range(20):
                got[k] = look_inside(model, tok, texts[k])
        except Exception as e:  # noqa: BLE001 — a thread's exception would otherwise only be a warning
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for a, g in zip(alone, got):
        np.testing.assert_array_equal(a.attention, g.attention)
        np.testing.assert_array_equal(a.lens.logits, g.lens.logits)
        assert all(np.array_equal(a.sites[k], g.sites[k]) for k in a.sites)
