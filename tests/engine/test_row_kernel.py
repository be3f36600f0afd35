"""engine/models/linear.py: a GPT's few-row inference products go to oneDNN when its weights do not fit in cache,
compute what F.linear computes, and everything else (gradients, many rows, other dtypes) stays on F.linear; the
decoding invariants hold with oneDNN on, and its cached steps get the idle cores."""
import pytest
import torch
import torch.nn.functional as F

from engine import threads
from engine.decode import DecodeConfig, complete
from engine.models import build_model, linear
from engine.models.linear import Linear, linear_weight_bytes, set_row_kernel, uses_onednn_rows
from engine.models.transformer import GPT, GPTConfig
from engine.tokenizers.char import CharTokenizer

needs_onednn = pytest.mark.skipif(not linear.onednn_available(), reason="this torch has no oneDNN linear")


@pytest.fixture
def onednn_calls(monkeypatch):
    """Every oneDNN call's row count and torch's thread count at the time."""
    calls = []
    real = linear._onednn_linear
    def counted(x, w, b):
        calls.append((x.numel() // x.size(-1), torch.get_num_threads()))
        return real(x, w, b)
    monkeypatch.setattr(linear, "_onednn_linear", counted)
    return calls


@needs_onednn
@pytest.mark.parametrize("rows", [1, 3, 8])
@pytest.mark.parametrize("bias", [True, False])
def test_few_rows_go_to_onednn_and_equal_f_linear(rows, bias, onednn_calls):
    torch.manual_seed(0)
    layer = Linear(96, 200, bias=bias)
    layer.few_rows_onednn = True
    x = torch.randn(rows, 1, 96)
    with torch.inference_mode():
        y = layer(x)
    assert onednn_calls == [(rows, torch.get_num_threads())]
    assert y.shape == (rows, 1, 200)
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_gradients_many_rows_float64_and_autocast_stay_on_f_linear(onednn_calls):
    torch.manual_seed(0)
    layer = Linear(16, 8)
    layer.few_rows_onednn = True
    x = torch.randn(1, 16, requires_grad=True)
    y = layer(x)                                    # grad mode on: autograd must see F.linear
    y.sum().backward()
    torch.testing.assert_close(x.grad, layer.weight.detach().sum(0, keepdim=True))
    with torch.no_grad():
        layer(torch.randn(linear.ROWS_MAX + 1, 16))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert layer(torch.randn(1, 16)).dtype == torch.bfloat16
        layer.double()(torch.randn(1, 16, dtype=torch.float64))
    assert onednn_calls == []
    with torch.no_grad():
        layer.float()(torch.randn(1, 16))
    assert len(onednn_calls) == 1                   # and the same layer does take a float32 one-row call


@needs_onednn
@pytest.mark.filterwarnings("ignore:TF32 acceleration")   # torch's, from flags() on a CPU build
def test_onednn_switched_off_in_torch_is_honoured(onednn_calls):
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    set_row_kernel(model, True)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not uses_onednn_rows(model)              # so decoding gives its steps no extra threads either
        with torch.inference_mode():
            model.lm_head(torch.randn(1, 1, 16))
    assert onednn_calls == []
    assert uses_onednn_rows(model)


def test_the_flag_off_never_calls_onednn(onednn_calls):
    layer = Linear(16, 8)
    with torch.inference_mode():
        layer(torch.randn(1, 16))
    assert onednn_calls == []


def test_a_gpt_chooses_onednn_by_its_weights_against_the_cache(monkeypatch):
    char = dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.0, bias=False,
                pos="learned")                      # nanogpt-char: 42.6 MB of Linear weights
    cpu = dict(char, block_size=64, n_layer=4, n_head=4, n_embd=128)   # nanogpt-cpu: 3.2 MB
    monkeypatch.setattr(linear, "last_level_cache_bytes", lambda: 32 << 20)
    monkeypatch.setattr(linear.platform, "machine", lambda: "x86_64")
    big, small = build_model("transformer", char), build_model("transformer", cpu)
    assert linear_weight_bytes(big) == 4 * (6 * 12 * 384 * 384 + 65 * 384)
    assert {m.few_rows_onednn for m in big.modules() if isinstance(m, Linear)} == {True}
    assert {m.few_rows_onednn for m in small.modules() if isinstance(m, Linear)} == {False}
    monkeypatch.setattr(linear, "last_level_cache_bytes", lambda: 4 << 20)   # a laptop's 4 MB: the small one too
    assert set_row_kernel(small) is True
    assert set_row_kernel(small, False) is False and not uses_onednn_rows(small)
    monkeypatch.setattr(linear.platform, "machine", lambda: "arm64")   # not measured there: MKL's place kept
    assert set_row_kernel(build_model("transformer", char)) is False


def test_the_last_level_cache_is_read_from_sysfs(tmp_path, monkeypatch):
    for i, (kind, level, size) in enumerate([("Data", 1, "48K"), ("Instruction", 1, "32K"), ("Unified", 2, "1024K"),
                                             ("Unified", 3, "32768K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "type").write_text(kind + "\n")
        (d / "level").write_text(f"{level}\n")
        (d / "size").write_text(size + "\n")
    assert linear.last_level_cache_bytes.__wrapped__(str(tmp_path)) == 32 << 20
    assert linear.last_level_cache_bytes.__wrapped__(str(tmp_path / "missing")) == linear.DEFAULT_LLC_BYTES


# ---------------------------------------------------------------- decoding with oneDNN on

@needs_onednn
@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_cached_steps_through_onednn_equal_the_uncached_forward(pos, onednn_calls):
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, pos=pos)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8)                                 # peaky distributions: greedy picks are far from ties
    assert set_row_kernel(model, True)
    idx = torch.randint(0, 11, (3, 12))
    with torch.inference_mode():
        full = model(idx)[0]
        cache = model.new_cache(3)
        steps = [model.forward_cached(idx[:, :4], cache)] + [model.forward_cached(idx[:, t:t + 1], cache)
                                                            for t in range(4, 12)]
    assert {rows for rows, _ in onednn_calls} == {3}  # the 3-row steps went to oneDNN (the 4-token prompt did not)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-4)
    tok = CharTokenizer("abcdefghij\n")
    for kw in (dict(strategy="greedy"), dict(seed=5, temperature=0.8, top_k=5),
               dict(strategy="beam", beam_width=3)):
        cached = complete(model, tok, "abc", DecodeConfig(max_new_tokens=30, **kw))[0]
        plain = complete(model, tok, "abc", DecodeConfig(max_new_tokens=30, use_cache=False, **kw))[0]
        assert cached == plain, kw
    beam1 = complete(model, tok, "abc", DecodeConfig(strategy="beam", beam_width=1, max_new_tokens=30))[0]
    assert beam1 == complete(model, tok, "abc", DecodeConfig(strategy="greedy", max_new_tokens=30))[0]


@needs_onednn
def test_cached_steps_through_onednn_take_the_idle_cores(monkeypatch, onednn_calls):
    before = torch.get_num_threads()
    tok = CharTokenizer("abcdefgh")
    monkeypatch.setattr(threads, "free_cores", lambda probe_s=0: 2)
    monkeypatch.setattr(threads, "_last_probe", (None, 0.0, 1))
    try:
        torch.set_num_threads(1)
        for onednn in (False, True):
            model = build_model("transformer", dict(vocab_size=8, block_size=64, n_layer=2, n_head=2,
                                                    n_embd=64)).eval()
            set_row_kernel(model, onednn)
            monkeypatch.setattr(threads, "MIN_STEP_FLOPS_PER_THREAD", 1.0)   # the tiny model counts as large
            steps = []
            real = type(model).forward_cached
            monkeypatch.setattr(type(model), "forward_cached",
                                lambda self, *a: steps.append(torch.get_num_threads()) or real(self, *a))
            complete(model, tok, "ab", DecodeConfig(seed=0, max_new_tokens=20))
            monkeypatch.setattr(type(model), "forward_cached", real)
            assert torch.get_num_threads() == 1       # the caller's count is back after the decoding
            assert bool(onednn_calls) == onednn
            if not onednn:                            # through MKL a cached step stays on the caller's thread
                assert set(steps) == {1}
        if threads.usable_cores() >= 2:
            assert onednn_calls and {n for _, n in onednn_calls} == {2}
        else:
            assert {n for _, n in onednn_calls} == {1}
    finally:
        torch.set_num_threads(before)
