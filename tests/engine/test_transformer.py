"""GPT: shapes, position schemes, GQA/MQA, the KV cache against the uncached forward, float64 exactness."""
import math

import pytest
import torch

from engine.errors import ConfigError
from engine.models import build_model
from engine.models.transformer import GPT, GPTConfig, rope_tables
from tests.engine.helpers import char_data, loss_curve

V = 23


def tiny(**kw):
    cfg = dict(vocab_size=V, block_size=16, n_layer=2, n_head=4, n_embd=32)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg))


def test_module_names_follow_the_contract(seed):
    m = tiny(pos="learned", bias=True)
    names = {n for n, _ in m.named_parameters()}
    for want in ("wte.weight", "wpe.weight", "blocks.0.ln_1.weight", "blocks.0.attn.q_proj.weight",
                 "blocks.0.attn.k_proj.weight", "blocks.0.attn.v_proj.weight", "blocks.0.attn.c_proj.weight",
                 "blocks.1.ln_2.bias", "blocks.1.mlp.c_fc.weight", "blocks.1.mlp.c_proj.weight", "ln_f.weight"):
        assert want in names, want
    assert m.lm_head.weight is m.wte.weight  # tied by default
    assert not hasattr(tiny(pos="rope"), "wpe")
    untied = tiny(tie_weights=False)
    assert untied.lm_head.weight is not untied.wte.weight


def test_residual_projections_get_scaled_init(seed):
    m = tiny(n_layer=8, n_embd=256, n_head=4)
    std = m.blocks[0].attn.c_proj.weight.std().item()
    assert std == pytest.approx(0.02 / math.sqrt(16), rel=0.1)
    assert m.blocks[0].mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rope"])
def test_forward_shapes_and_loss(seed, pos):
    m = tiny(pos=pos)
    idx, targets = torch.randint(V, (3, 16)), torch.randint(V, (3, 16))
    logits, loss = m(idx, targets)
    assert logits.shape == (3, 16, V)
    assert loss.item() == pytest.approx(math.log(V), abs=0.3)  # small init: close to uniform
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("n_kv_head,kv_width", [(4, 32), (2, 16), (1, 8)])
def test_gqa_and_mqa_shapes(seed, n_kv_head, kv_width):
    m = tiny(n_kv_head=n_kv_head)
    assert m.blocks[0].attn.k_proj.weight.shape == (kv_width, 32)
    assert m.blocks[0].attn.v_proj.weight.shape == (kv_width, 32)
    assert m(torch.randint(V, (2, 9)))[0].shape == (2, 9, V)
    assert m.new_cache(2).k[0].shape == (2, n_kv_head, 16, 8)


def test_gqa_equals_mha_with_repeated_kv_weights(seed):
    """A GQA model is an MHA model whose key/value heads are shared: copying each kv head's rows to its query
    group gives identical logits, which checks the head-to-group mapping."""
    gqa = tiny(n_kv_head=2).double()
    mha = tiny(n_kv_head=4).double()
    sd = gqa.state_dict()
    for k in list(sd):
        if k.endswith(("k_proj.weight", "v_proj.weight")):
            sd[k] = sd[k].view(2, 8, 32).repeat_interleave(2, dim=0).reshape(32, 32)
    mha.load_state_dict(sd)
    idx = torch.randint(V, (2, 12))
    torch.testing.assert_close(gqa(idx)[0], mha(idx)[0], rtol=0, atol=1e-12)


def test_causality(seed):
    m = tiny().eval()
    idx = torch.randint(V, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % V
    torch.testing.assert_close(m(idx)[0][:, :8], m(changed)[0][:, :8])


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("n_kv_head", [4, 2, 1])
def test_kv_cache_matches_uncached_forward(seed, pos, n_kv_head):
    m = tiny(pos=pos, n_kv_head=n_kv_head).double().eval()
    idx = torch.randint(V, (2, 16))
    full = m(idx)[0]
    cache = m.new_cache(2)
    parts = [m.forward_cached(idx[:, :5], cache)]  # multi-token prefill
    parts += [m.forward_cached(idx[:, t:t + 1], cache) for t in range(5, 9)]  # single-token steps
    parts.append(m.forward_cached(idx[:, 9:], cache))  # a multi-token chunk after the prefill
    assert cache.length == 16
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=0, atol=1e-10)


def test_kv_cache_reorder_follows_beams(seed):
    m = tiny().double().eval()
    idx = torch.randint(V, (3, 6))
    cache = m.new_cache(3)
    m.forward_cached(idx, cache)
    order = torch.tensor([2, 2, 0])
    cache.reorder(order)
    nxt = torch.randint(V, (3, 1))
    got = m.forward_cached(nxt, cache)[:, -1]
    want = m(torch.cat([idx[order], nxt], dim=1))[0][:, -1]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_cache_overflow_is_refused(seed):
    m = tiny()
    cache = m.new_cache(1)
    m.forward_cached(torch.zeros(1, 16, dtype=torch.long), cache)
    with pytest.raises(ConfigError, match="block_size"):
        m.forward_cached(torch.zeros(1, 1, dtype=torch.long), cache)


def test_rope_tables_are_exact_float64():
    cos, sin = rope_tables(3, 4, 8, 10000.0, "cpu", torch.float64)
    assert cos.dtype == torch.float64
    # position 5, second frequency (index 1 and its rotate-half twin at 5): angle = 5 * 10000^(-2/8)
    assert cos[2, 1].item() == math.cos(5 * 10000.0 ** (-0.25))
    assert sin[2, 5].item() == math.sin(5 * 10000.0 ** (-0.25))


def test_rope_relative_position_invariance(seed):
    """RoPE scores depend only on the distance between query and key positions."""
    q, k = torch.randn(1, 1, 1, 8, dtype=torch.float64), torch.randn(1, 1, 1, 8, dtype=torch.float64)
    from engine.models.transformer import apply_rope

    def score(pq, pk):
        cq, sq = rope_tables(pq, 1, 8, 10000.0, "cpu", torch.float64)
        ck, sk = rope_tables(pk, 1, 8, 10000.0, "cpu", torch.float64)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item()
    assert score(7, 3) == pytest.approx(score(12, 8), abs=1e-12)
    assert score(7, 3) != pytest.approx(score(7, 4), abs=1e-6)


def test_flops_and_params(seed):
    m = tiny(pos="learned")
    n = sum(p.numel() for p in m.parameters())
    assert m.num_params() == n
    assert m.flops_per_token() == 6 * (n - 16 * 32) + 12 * 2 * 4 * 8 * 16
    # attention is costed at the window actually trained on, so MFU is not overstated for short windows
    assert m.flops_per_token(4) == 6 * (n - 16 * 32) + 12 * 2 * 4 * 8 * 4


@pytest.mark.parametrize("bad,match", [(dict(n_embd=30), "divisible by n_head"), (dict(n_kv_head=3), "divide"),
                                       (dict(pos="alibi"), "pos"), (dict(dropout=1.0), "dropout"),
                                       (dict(n_layer=0), "n_layer")])
def test_bad_config_rejected(bad, match):
    with pytest.raises(ConfigError, match=match):
        tiny(**bad)


def test_loss_falls_on_small_corpus(seed, small_text):
    chars, data = char_data(small_text)
    m = build_model("transformer", dict(vocab_size=len(chars), block_size=32, n_layer=1, n_head=2, n_embd=32))
    losses = loss_curve(m, data, lr=3e-3)
    assert sum(losses[-10:]) / 10 < 0.75 * sum(losses[:10]) / 10


def test_sinusoidal_positions_learn_as_well_as_learned_ones(seed, small_text):
    """The fixed table (rows of length ~5.7 at n_embd 64) was added to token embeddings of length ~0.16: the
    tokens drowned and the loss stayed near the unigram entropy. With tokens scaled by sqrt(n_embd) (Vaswani et
    al. 2017) the model learns about as fast as with a learned table."""
    chars, data = char_data(small_text)
    counts = torch.bincount(data).double()
    unigram = -(counts / counts.sum() * (counts / counts.sum()).log()).sum().item()   # nats/char
    final = {}
    for pos in ("learned", "sinusoidal"):
        torch.manual_seed(0)
        m = build_model("transformer", dict(vocab_size=len(chars), block_size=32, n_layer=2, n_head=4, n_embd=64,
                                            pos=pos))
        losses = loss_curve(m, data, lr=3e-3, steps=150)
        final[pos] = sum(losses[-20:]) / 20
    assert final["sinusoidal"] < unigram - 0.5
    assert final["sinusoidal"] < 1.1 * final["learned"], final


@pytest.mark.parametrize("pos,kv", [("learned", None), ("rope", 1), ("sinusoidal", 2)])
def test_last_logits_equal_the_forward_at_the_last_position(pos, kv):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=3, n_head=2, n_kv_head=kv, n_embd=8,
                          pos=pos)).double().eval()
    idx = torch.randint(0, 11, (3, 12))
    with torch.no_grad():
        want = model(idx)[0][:, -1:]
    assert model.last_logits(idx).shape == (3, 1, 11)
    torch.testing.assert_close(model.last_logits(idx), want, rtol=1e-12, atol=1e-12)
