"""The Inside tab driven as a user would: refresh on typed text, colour the text by a unit and hover it, click a
ranked unit, enlarge an attention head, read the logit lens, choose whose loss flows back, compare a second
checkpoint, and the messages for an n-gram and a stale view."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint

from app.common.model_source import ModelSource
from app.inside.inside_panel import InsidePanel
from app.inside.scales import diverging
from engine import api
from engine.api import ModelHandle
from engine.inside import bptt_norms, look_inside
from engine.models import build_model
from engine.tokenizers import build_tokenizer

WAIT_MS = 20_000
TEXT = 'First Citizen:\n"Before we proceed any further, (hear me) speak."\nAll:\nSpeak, speak.\n' * 3


def _handle(family: str, cfg: dict, seed: int = 0) -> ModelHandle:
    torch.manual_seed(seed)
    tok = build_tokenizer("char", TEXT)
    model = build_model(family, {"vocab_size": tok.vocab_size, **cfg})
    if family == "ngram":
        model.fit(np.array(tok.encode(TEXT)))
    else:
        model.eval()
    return ModelHandle(family, model, tok, {})


def _panel(qtbot, handle: ModelHandle | None) -> InsidePanel:
    source = ModelSource()
    if handle is not None:
        source.set_checkpoint(handle, "tiny", TEXT)
    panel = InsidePanel(source)
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    _open.append(panel)
    return panel


_open: list[InsidePanel] = []


@pytest.fixture(autouse=True)
def wait_for_jobs():
    """A job still running when its panel goes would be a thread destroyed while running: wait, as the window's
    close does."""
    yield
    while _open:
        _open.pop().shutdown()


def _refresh(qtbot, panel: InsidePanel, text: str) -> None:
    panel.text.setPlainText(text)
    panel.refresh_btn.click()
    qtbot.waitUntil(lambda: not panel.status.text().startswith("Computing"), timeout=WAIT_MS)


def test_lstm_neurons_ranked_units_and_gradients(qtbot):
    handle = _handle("lstm", {"n_layer": 2, "n_embd": 8, "n_hidden": 16})
    panel = _panel(qtbot, handle)
    panel.show()
    qtbot.waitUntil(lambda: panel.inside is not None, timeout=WAIT_MS)   # first show: a random window
    _refresh(qtbot, panel, TEXT[:80])
    ins = panel.inside
    assert len(ins.tokens) == 80
    n = panel.neurons
    sites = [n.site.itemText(i) for i in range(n.site.count())]
    assert sites[:6] == ["layer 1 h", "layer 1 c", "layer 1 i", "layer 1 f", "layer 1 g", "layer 1 o"]
    n.show_unit("layer 2 c", 5)
    want = look_inside(handle.model, handle.tokenizer, TEXT[:80]).sites["layer 2 c"][:, 5]
    np.testing.assert_allclose(n.current_values(), want, atol=1e-6)
    # the token under the mouse tells its value, and its background is the scale's colour for it
    view = n.text
    i = 17
    assert f"= {want[i]:.4f}" in view._tips[i]
    assert view.token_at(view.token_center(i)) == i
    cursor = view.textCursor()
    cursor.setPosition(view._starts[i] + 1)
    bg = cursor.charFormat().background().color()
    centre, half = 0.0, float(np.abs(want).max())
    assert (bg.red(), bg.green(), bg.blue()) == tuple(int(v) for v in diverging(want[i:i + 1], centre, half)[0])
    assert n.legend.labels() == (f"{-half:.3g}", "0", f"{half:.3g}")
    # ranked units: choose a feature, click the top row, the text now shows that unit
    n.feature.setCurrentText("inside quotes")
    assert n.ranked.rowCount() == 5
    top = ins.by_feature["inside quotes"][0]
    assert n.ranked.item(0, 2).text() == f"{top.r:+.3f}"
    n.ranked.cellClicked.emit(0, 0)
    assert (n.site.currentText(), n.unit.value()) == (top.site, top.unit)
    # a recurrent model has no attention and no lens: the pages say why
    assert panel.stacks["Attention"].currentIndex() == 0 and "no attention" in panel.reasons["Attention"].text()
    assert "residual stream" in panel.reasons["Logit lens"].text()
    # gradients: the last position's loss by default, values equal to the engine's autograd norms
    g = panel.gradients
    ids = handle.tokenizer.encode(TEXT[:80])
    chart = g.charts[0]
    np.testing.assert_allclose(chart.norms, bptt_norms(handle.model, ids, "last").norms[1], rtol=1e-6)
    np.testing.assert_allclose(chart.bar_tops(), chart.norms[chart.norms > 0], rtol=1e-9)
    assert chart.getAxis("left").logMode
    panel.source.changed.emit()                 # as at every evaluation while training: the cached snapshot goes
    g.loss.mode.setCurrentIndex(1)              # one position's loss, still recomputed on the model shown
    g.loss.position.setValue(40)
    qtbot.waitUntil(lambda: g.results[0][1].loss_at == 40, timeout=WAIT_MS)
    assert np.all(g.charts[0].norms[40:] == 0) and np.all(g.charts[0].norms[:40] > 0)
    assert "position 40" in g.charts[0].plotItem.titleLabel.text


def test_rnn_and_lstm_side_by_side(qtbot, tmp_path):
    d = tmp_path / "c.txt"
    d.write_text(TEXT * 4, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(d), family="rnn", preset="tiny-cpu-rnn", device="cpu",
                                    overrides={"n_hidden": "16", "n_embd": "8", "eval_interval": "50"}, max_steps=3))
    list(run.reports())
    rnn_dir = run.save(tmp_path / "rnn")
    handle = _handle("lstm", {"n_layer": 1, "n_embd": 8, "n_hidden": 16})
    assert api.load_checkpoint(rnn_dir).tokenizer.chars == handle.tokenizer.chars   # the same text, same ids
    panel = _panel(qtbot, handle)
    _refresh(qtbot, panel, TEXT[:50])
    panel.ask_checkpoint_dir = lambda: str(rnn_dir)
    panel.gradients.compare_btn.click()
    qtbot.waitUntil(lambda: panel.gradients.results[1] is not None, timeout=WAIT_MS)
    name, other = panel.gradients.results[1]
    assert name.startswith("RNN") and not panel.gradients.charts[1].isHidden()
    rnn = api.load_checkpoint(rnn_dir)
    want = bptt_norms(rnn.model, rnn.tokenizer.encode(TEXT[:50]), "last").norms[0]
    np.testing.assert_allclose(panel.gradients.charts[1].norms, want, rtol=1e-6)
    assert "RNN" in panel.gradients.summary.text() and "LSTM" in panel.gradients.summary.text()
    panel.gradients.clear_btn.click()
    assert panel.gradients.charts[1].isHidden()


def test_transformer_attention_grid_and_lens(qtbot):
    handle = _handle("transformer", {"block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 16})
    panel = _panel(qtbot, handle)
    panel.show()
    _refresh(qtbot, panel, TEXT[:30])
    ins = panel.inside
    att = panel.attention
    assert len(att.cells) == 4 and panel.stacks["Attention"].currentIndex() == 1
    assert att.titles[3].text() == f"layer 2 head 2\nH = {ins.head_entropy[1, 1]:.2f} nats"
    att.cells[3].clicked.emit(1, 1)
    assert (att.big.layer, att.big.head) == (1, 1) and "Layer 2, head 2" in att.big_title.text()
    att.big.resize(600, 600)
    r = att.big.plot_rect()
    T = len(ins.tokens)
    pos = QPoint(int(r.left() + 3.5 * r.width() / T), int(r.top() + 9.5 * r.height() / T))
    assert att.big.cell_at(pos) == (9, 3)
    assert f"weight {ins.attention[1, 1, 9, 3]:.4f}" in att.big.tip_at(pos)
    # logit lens: two bands of embeddings + 2 blocks; the model's own row matches its softmax
    lens = panel.lens
    assert lens.model.rowCount() == 6 and lens.model.columnCount() == T
    with torch.no_grad():
        probs = torch.softmax(handle.model(torch.tensor([handle.tokenizer.encode(TEXT[:30])]))[0][0], -1)
    assert lens.cell_text(5, 7) == f"{float(probs[7].max()):.3f}"
    assert lens.cell_text(2, 7).endswith(f"{float(probs[7].max()):.2f}")
    assert panel.stacks["Gradients (BPTT)"].currentIndex() == 0
    assert "recurrence" in panel.reasons["Gradients (BPTT)"].text()
    sites = [panel.neurons.site.itemText(i) for i in range(panel.neurons.site.count())]
    assert sites == ["layer 1 mlp", "layer 2 mlp", "layer 0 resid", "layer 1 resid", "layer 2 resid"]


def test_ngram_says_why_and_editing_marks_stale(qtbot):
    panel = _panel(qtbot, _handle("ngram", {"order": 2}))
    _refresh(qtbot, panel, "Speak, speak.")
    assert "n-gram" in panel.status.text() and "n-gram" in panel.reasons["Neurons"].text()
    panel2 = _panel(qtbot, _handle("gru", {"n_layer": 1, "n_embd": 8, "n_hidden": 8}))
    _refresh(qtbot, panel2, "Speak, speak.")
    assert panel2.status.text().startswith("13 tokens")
    panel2.text.setPlainText("Speak, speak!")
    assert "press Refresh" in panel2.status.text()


def test_one_click_contrast_trains_a_tanh_rnn_beside_an_lstm(qtbot, monkeypatch):
    """The ready comparison: one click trains the contrasting recurrent model (here a tanh RNN beside the LSTM)
    with the same tokenizer on the validation text, reports progress, and draws its gradients on the same text."""
    import engine.inside.contrast as contrast
    monkeypatch.setattr(contrast, "CONTRAST_STEPS", 20)
    handle = _handle("lstm", {"n_layer": 1, "n_embd": 8, "n_hidden": 16})
    panel = _panel(qtbot, handle)
    _refresh(qtbot, panel, TEXT[:50])
    assert panel.gradients.contrast_btn.text() == "Train a tanh RNN beside it"
    seen: list[str] = []
    panel.status.setText = lambda t, f=panel.status.setText: (seen.append(t), f(t))[1]
    panel.gradients.contrast_btn.click()
    assert not panel.gradients.contrast_btn.isEnabled()          # one at a time
    qtbot.waitUntil(lambda: panel.gradients.results[1] is not None, timeout=WAIT_MS)
    name, other = panel.gradients.results[1]
    assert name.startswith("tanh RNN trained here (20 steps") and panel.compare[1].family == "rnn"
    assert any("step 20 of 20" in t for t in seen), seen
    want = bptt_norms(panel.compare[1].model, handle.tokenizer.encode(TEXT[:50]), "last").norms[0]
    np.testing.assert_allclose(panel.gradients.charts[1].norms, want, rtol=1e-6)
    assert panel.gradients.contrast_btn.isEnabled() and not panel.gradients.charts[1].isHidden()


def test_a_long_chart_title_is_cut_not_the_plot(qtbot):
    """pyqtgraph gives a title the minimum width of its text: a long comparison name pushed the second chart's
    bars past its right edge at 1280 px. The title is elided to the chart instead, the whole text in a tooltip."""
    from app.common.bptt_chart import BPTTChart
    chart = BPTTChart()
    qtbot.addWidget(chart)
    chart.resize(300, 200)
    chart.show()
    title = "a tanh RNN trained here (300 steps): L = the loss at position 95 (predicting token 96)"
    chart.show_norms(np.linspace(1e-9, 1, 95), title)
    qtbot.wait(20)
    assert chart.getPlotItem().geometry().width() <= chart.width() + 0.5
    assert chart.toolTip() == title


def test_a_newline_token_reads_the_same_in_every_view():
    """The Sample and Tokens tabs draw a newline as ↵; the Inside tab's lens cells and attention edges showed the
    tokenizers' escape "\\n". One labelling function now serves them all."""
    from app.common.token_view import token_label
    from app.inside.attention_view import _short
    from app.inside.lens_view import _tok
    from app.sample.dist_chart import axis_label
    for raw in ("\n", "\\n"):                          # a character, and token_str's escape of it
        assert token_label(raw) == _tok(raw) == _short(raw) == axis_label(raw) == "↵"
    assert token_label(" the") == "␣the"
