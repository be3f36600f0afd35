"""The Sample tab driven as a user would: settings, Generate, hover/click tokens, beam tree, bad input.

Models are tiny and made here: a character trigram (counts in milliseconds) and a one-layer GPT trained for a few
dozen steps, both on the `small_text` corpus. Expected texts come from engine.decode for the same settings."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QThread, Signal
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QToolTip

from app.common.model_source import ModelSource
from app.sample.beam_tree import BeamTree
from app.sample.sample_panel import SamplePanel
from app.common.workers import TrainWorker, start_worker
from engine.api import ModelHandle, RunSpec
from engine.decode import DecodeConfig, complete
from engine.models import build_model
from engine.tokenizers import build_tokenizer

WAIT_MS = 20_000


def _ngram(text: str) -> ModelHandle:
    tok = build_tokenizer("char", text)
    model = build_model("ngram", {"vocab_size": tok.vocab_size, "order": 3}).fit(np.array(tok.encode(text)))
    return ModelHandle("ngram", model, tok, {})


@functools.lru_cache(maxsize=1)
def _gpt(text: str) -> ModelHandle:
    """A 1-layer GPT trained 60 steps on small_text: enough to prefer real words, built in about a second and
    shared by the tests (they only read it)."""
    torch.manual_seed(0)
    tok = build_tokenizer("char", text)
    model = build_model("transformer", {"vocab_size": tok.vocab_size, "block_size": 32, "n_layer": 1, "n_head": 2,
                                        "n_embd": 32})
    data = torch.tensor(tok.encode(text))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        i = torch.randint(len(data) - 33, (16,), generator=g)
        x = torch.stack([data[j:j + 32] for j in i])
        y = torch.stack([data[j + 1:j + 33] for j in i])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ModelHandle("transformer", model.eval(), tok, {})


class FakeSource(QObject):
    """ModelSource's interface, counting snapshots, for the training case (a real run is not needed to test that
    the panel re-snapshots while training and caches otherwise)."""
    changed = Signal()

    def __init__(self, handle, training=False):
        super().__init__()
        self.handle, self.training, self.snapshots = handle, training, 0

    def snapshot(self):
        self.snapshots += 1
        return self.handle

    def validation_text(self):
        return ""

    def describe(self):
        return "fake model (training)" if self.training else "fake model"

    def is_training(self):
        return self.training


def _panel(qtbot, handle, source=None) -> SamplePanel:
    source = source or ModelSource()
    if handle is not None:
        source.set_checkpoint(handle, "/tmp/ckpt", "")
    panel = SamplePanel(source)
    panel.resize(1300, 850)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def _run(qtbot, panel, strategy, prompt, max_tokens, **knobs) -> None:
    panel.strategy.setCurrentIndex(panel.strategy.findData(strategy))
    panel.prompt.setPlainText(prompt)
    panel.max_tokens.setValue(max_tokens)
    for name, value in knobs.items():
        if name == "seed":
            panel.seed.setText(str(value))
        else:
            panel.knobs[name].setValue(value)
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)


@pytest.fixture
def gpt(small_text):
    return _gpt(small_text)


def test_greedy_on_gpt_equals_engine_and_streams_tokens(qtbot, gpt):
    panel = _panel(qtbot, gpt)
    _run(qtbot, panel, "greedy", "The king", 40)
    expected, events = complete(gpt.model, gpt.tokenizer, "The king", DecodeConfig("greedy", max_new_tokens=40, top_n=20))
    assert panel.view.generated_text() == expected
    assert panel.view.token_count == 40
    assert panel.view.toPlainText().startswith("The king")  # the prompt is shown, then the continuation
    assert "40 tokens" in panel.message.text() and "max tokens" in panel.message.text()
    # the chart followed the stream: after the run it shows the last token's distribution; greedy cuts nothing
    # and takes the tallest bar
    assert panel.chart.bar_count == 20 and panel.chart.kept.all() and panel.view.selected == 39
    np.testing.assert_allclose(panel.chart.probs, events[-2].topk_tempered_probs)
    np.testing.assert_allclose(panel.chart.raw, events[-2].topk_raw_probs)
    assert panel.chart.probs.argmax() == 0 and "0.0% of the mass" in panel.chart.caption.text()


def test_sampling_click_and_hover_show_that_steps_distribution(qtbot, small_text):
    handle = _ngram(small_text)
    panel = _panel(qtbot, handle)
    _run(qtbot, panel, "sample", "the ", 25, temperature=1.3, top_k=6, top_p=0.9, seed=11)
    cfg = DecodeConfig("sample", temperature=1.3, top_k=6, top_p=0.9, max_new_tokens=25, seed=11, top_n=20)
    expected, events = complete(handle.model, handle.tokenizer, "the ", cfg)
    assert panel.view.generated_text() == expected  # same seed, same sample
    view = panel.view
    for i in (3, 17):
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.token_center(i))
        e = events[i]
        assert view.selected == i
        assert panel.chart.bar_count == len(e.topk_ids) == 20
        np.testing.assert_allclose(panel.chart.probs, e.topk_tempered_probs)
        assert panel.chart.kept.sum() == e.n_kept <= 6  # top-k 6 (and top-p) cut the rest: grey bars
        assert panel.chart.labels[0] == handle.tokenizer.token_str(int(e.topk_ids[0]))
        caption = panel.chart.caption.text()
        assert f"top-k {e.cut_top_k:.1%}" in caption and f"top-p {e.cut_top_p:.1%}" in caption
        assert f"cut away {1 - e.kept_mass:.1%}" in caption
    # hovering: the tooltip Qt shows names the token's probability and rank
    i = 5
    pos = view.token_center(i)
    qtbot.wait(10)
    QToolTip.hideText()
    view.viewportEvent(QHelpEvent(QEvent.ToolTip, pos, view.viewport().mapToGlobal(pos)))
    tip = QToolTip.text()
    assert f"p = {events[i].prob:.4f}" in tip and f"rank {events[i].rank + 1} of" in tip
    assert view.token_at(QPoint(2, 2)) is None  # the prompt is not a generated token


def test_beam_search_draws_a_tree_and_gives_the_engines_answer(qtbot, small_text):
    for handle in (_ngram(small_text), _gpt(small_text)):
        panel = _panel(qtbot, handle)
        _run(qtbot, panel, "beam", "the k", 8, beam_width=3)
        expected, events = complete(handle.model, handle.tokenizer, "the k",
                                    DecodeConfig("beam", beam_width=3, max_new_tokens=8, top_n=20))
        assert panel.view.generated_text() == expected
        tree = panel.tree
        assert len(tree.columns) == len(events) - 1
        assert tree.node_count == sum(len(e.beams) + len(e.pruned) for e in events[:-1])
        best = tree.best_path()
        assert [n.ids for n in best] == [tuple(panel.view.best_ids[:t]) for t in range(1, len(best) + 1)]
        assert len(best) == len(panel.view.best_ids) and not any(n.dead for n in best)
        assert any(n.dead for col in tree.columns for n in col)  # pruned branches exist and are greyed
        assert panel.tabs.currentWidget() is tree  # beam search leaves its tree in front...
        assert panel.chart.bar_count == 20         # ...with the first step's distribution behind it
        small = BeamTree()                         # a view smaller than the tree, so it scrolls
        qtbot.addWidget(small)
        small.resize(300, 150)
        small.show()
        small.show_tree(tree.columns, "the k")
        header = min(item.sceneBoundingRect().top() for item in small.scene().items())
        assert small.mapToScene(0, 0).y() <= header  # the "prompt", "step 1" headers are in view, not cut off


def test_controls_that_do_not_apply_are_disabled_with_a_reason(qtbot, small_text):
    panel = _panel(qtbot, _ngram(small_text))
    panel.strategy.setCurrentIndex(panel.strategy.findData("greedy"))
    assert not panel.knobs["top_p"].isEnabled()
    assert "truncation does not apply" in panel.knobs["top_p"].toolTip()
    assert not panel.seed.isEnabled() and "deterministic" in panel.seed.toolTip()
    assert panel.knobs["repetition_penalty"].isEnabled()
    panel.strategy.setCurrentIndex(panel.strategy.findData("sample"))
    assert panel.knobs["top_p"].isEnabled() and panel.seed.isEnabled()
    assert not panel.knobs["beam_width"].isEnabled() and "beam search" in panel.knobs["beam_width"].toolTip()
    panel.strategy.setCurrentIndex(panel.strategy.findData("beam"))
    assert panel.knobs["beam_width"].isEnabled() and panel.knobs["length_penalty"].isEnabled()
    assert not panel.knobs["temperature"].isEnabled()
    # slider and spin box stay in sync both ways
    knob = panel.knobs["temperature"]
    knob.slider.setValue(10)
    assert knob.value() == pytest.approx(0.5)
    knob.spin.setValue(1.25)
    assert knob.slider.value() == 25


def test_bad_input_is_a_message_in_the_panel(qtbot, small_text):
    panel = _panel(qtbot, None)
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    assert "no model yet" in panel.message.text() and not panel.running
    panel.message.clear()
    panel.prompt.setFocus()
    qtbot.keyClick(panel.prompt, Qt.Key_Return, Qt.ControlModifier)  # the keyboard way to Generate
    assert "no model yet" in panel.message.text()

    panel = _panel(qtbot, _ngram(small_text))
    _run(qtbot, panel, "sample", "Zebra?", 10)
    assert "not in the vocabulary" in panel.message.text() and "'Z'" in panel.message.text()
    _run(qtbot, panel, "sample", "the", 0)
    assert "max new tokens is 0" in panel.message.text()
    _run(qtbot, panel, "sample", "the", 10, seed="lucky")
    assert "seed must be a whole number" in panel.message.text()
    assert panel.view.token_count == 0  # nothing was generated by any of these

    tok = build_tokenizer("char", "abba")  # two tokens, no newline to start an empty prompt from
    tiny = build_model("transformer", {"vocab_size": 2, "block_size": 8, "n_layer": 1, "n_head": 1, "n_embd": 8})
    panel = _panel(qtbot, ModelHandle("transformer", tiny.eval(), tok, {}))
    _run(qtbot, panel, "greedy", "", 5)
    assert "type a prompt" in panel.message.text()
    _run(qtbot, panel, "beam", "ab", 5, beam_width=4)
    assert "beam_width 4 is more than the 2 tokens" in panel.message.text()


def test_a_model_that_fails_mid_stream_shows_the_engines_message(qtbot, small_text):
    """Decoding a diverged model raises inside the worker thread; the message must reach the panel (from the GUI
    thread) and the panel must be usable again."""
    torch.manual_seed(0)
    tok = build_tokenizer("char", small_text)
    broken = build_model("transformer", {"vocab_size": tok.vocab_size, "block_size": 16, "n_layer": 1, "n_head": 1,
                                         "n_embd": 8}).eval()
    with torch.no_grad():
        broken.lm_head.weight.fill_(float("nan"))
    panel = _panel(qtbot, ModelHandle("transformer", broken, tok, {}))
    threads = []
    show = panel.show_message
    panel.show_message = lambda text, error=False: (threads.append(QThread.currentThread()), show(text, error))
    _run(qtbot, panel, "greedy", "the", 5)
    assert "nan" in panel.message.text().lower() and panel.generate_button.isEnabled()
    assert threads and all(t is panel.thread() for t in threads), "a widget was touched off the GUI thread"


def test_stop_takes_effect_between_tokens(qtbot, small_text):
    panel = _panel(qtbot, _gpt(small_text))
    panel.strategy.setCurrentIndex(panel.strategy.findData("sample"))
    panel.prompt.setPlainText("the")
    panel.max_tokens.setValue(5000)
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    assert panel.running and not panel.generate_button.isEnabled() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel.view.token_count > 0, timeout=WAIT_MS)  # tokens arrive while it runs
    qtbot.mouseClick(panel.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)
    assert "stopped" in panel.message.text()
    assert 0 < panel.view.token_count < 5000
    assert panel.generate_button.isEnabled() and not panel.stop_button.isEnabled()


def test_snapshot_is_fresh_while_training_and_cached_otherwise(qtbot, small_text):
    source = FakeSource(_ngram(small_text), training=True)
    panel = SamplePanel(source)
    qtbot.addWidget(panel)
    for expected in (1, 2):  # every Generate while training takes a new snapshot
        panel.prompt.setPlainText("the")
        panel.max_tokens.setValue(3)
        qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)
        assert source.snapshots == expected and panel.view.token_count == 3
    source.training = False
    source.changed.emit()
    assert panel.model_label.text() == "Model: fake model"
    for _ in range(2):  # one snapshot after `changed`, then the cached one
        qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)
    assert source.snapshots == 3


def test_samples_the_model_being_trained_without_stopping_it(qtbot, tmp_path, small_text):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(small_text)
    spec = RunSpec(corpus=str(corpus), family="gru", device="cpu", max_steps=100_000,
                   overrides={"n_embd": "16", "n_hidden": "32", "batch_size": "8", "block_size": "16",
                              "eval_interval": "50000"})
    source = ModelSource()
    panel = _panel(qtbot, None, source)
    reports: list = []
    worker = TrainWorker(spec)
    worker.prepared.connect(source.set_run)
    worker.reports.connect(reports.extend)
    thread = start_worker(worker, "train")
    try:
        qtbot.waitUntil(lambda: len(reports) > 0, timeout=WAIT_MS)
        assert "(training)" in panel.model_label.text()
        _run(qtbot, panel, "greedy", "the", 30)
        assert panel.view.token_count == 30 and "30 tokens" in panel.message.text()
        step = reports[-1].step
        qtbot.waitUntil(lambda: reports[-1].step > step, timeout=WAIT_MS)  # training went on
    finally:
        worker.stop()
        qtbot.waitUntil(thread.isFinished, timeout=WAIT_MS)


def test_text_held_back_until_the_end_joins_the_last_token(qtbot, small_text):
    """Byte-level BPE can end a token inside a character; decode holds that back and the final event carries it.
    The view must add it, so what it shows equals the final text."""
    from app.common.token_view import SampleView
    from engine.decode import DecodeEvent
    tok = build_tokenizer("char", small_text)
    view = SampleView()
    qtbot.addWidget(view)
    view.show()
    view.start(tok, "the", DecodeConfig("greedy"))
    a, b = tok.encode("at")
    view.add_events([DecodeEvent(1, a, "a", "a"), DecodeEvent(2, b, "", "a")])
    view.add_events([DecodeEvent(2, None, "é", "aé", done=True, finish_reason="max_tokens")])
    assert view.generated_text() == "aé" and view.token_count == 2
    assert view.toPlainText() == "theaé"
    assert view.token_text(1) == "é" and view.token_at(view.token_center(1)) == 1


def test_cut_away_share_never_reads_minus_zero():
    from app.sample.dist_chart import _share
    assert _share(-1e-12) == "0.0%" and _share(0.25) == "25.0%"


def test_output_from_an_earlier_model_says_so_after_the_model_changes(qtbot, small_text):
    """Loading another checkpoint (mid-run or after) left the old text under the new model's name: the label now
    says which model the output on screen came from, in both the one-strategy and the side-by-side views."""
    source = ModelSource()
    source.set_checkpoint(_ngram(small_text), "first", small_text)
    panel = SamplePanel(source)
    qtbot.addWidget(panel)
    _run(qtbot, panel, "greedy", "The", 5)
    assert "came from" not in panel.model_label.text()
    compare = panel.compare
    compare.prompt.setPlainText("The")
    compare.run()
    qtbot.waitUntil(lambda: not compare.running, timeout=WAIT_MS)
    source.set_checkpoint(_gpt(small_text), "second", small_text)
    for label in (panel.model_label.text(), compare.model_label.text()):
        assert "checkpoint second" in label and "the output below came from checkpoint first" in label, label
    _run(qtbot, panel, "greedy", "The", 5)
    assert "came from" not in panel.model_label.text()
