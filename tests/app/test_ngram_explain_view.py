"""The Sample tab's n-gram explanation: a clicked token shows the numbers engine.models.ngram_explain works out
for it (the model's probability, the order that answered, the counts), beam search included, and the tab is
disabled for a neural model."""
import pytest
from PySide6.QtCore import Qt

from engine.models.ngram_explain import explain_token

from tests.app.test_sample_panel import _gpt, _ngram, _panel, _run

WAIT_MS = 20_000


@pytest.mark.parametrize("strategy", ["sample", "beam"])
def test_clicked_token_is_explained(qtbot, small_text, strategy):
    handle = _ngram(small_text)
    panel = _panel(qtbot, handle)
    _run(qtbot, panel, strategy, "the k", 12, seed=5)
    view, ex = panel.view, panel.explain
    panel.tabs.setCurrentWidget(ex)
    tok, model = handle.tokenizer, handle.model
    prompt_ids = tok.encode("the k")
    for i in (0, 5, 11):
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.token_center(i))
        _, token, _ = view.step_event(i)
        before = list(view._path[:i]) if view.beam else [e.token_id for e in view.events[:i]]
        ctx = (prompt_ids + before)[-2:]
        qtbot.waitUntil(lambda: ex.expl is not None and ex.expl["token"] == token and ex.expl["context"] == ctx,
                        timeout=WAIT_MS)
        p = model.next_distribution(ctx)[token]
        assert abs(ex.expl["probability"] - p) < 1e-9
        assert ex.expl == explain_token(model, ctx, token)
        html = ex.text.toPlainText()
        assert f"{p:.6g}" in html and "Formula" in html and "kneser-ney" in html
        assert panel.tabs.currentWidget() is ex      # clicking tokens keeps the explanation in front


def test_tab_is_disabled_for_a_neural_model(qtbot, small_text):
    panel = _panel(qtbot, _gpt(small_text))
    _run(qtbot, panel, "greedy", "The", 4)
    assert not panel.tabs.isTabEnabled(panel.tabs.indexOf(panel.explain))
    qtbot.mouseClick(panel.view.viewport(), Qt.LeftButton, pos=panel.view.token_center(1))
    assert panel.explain.expl is None and "n-gram" in panel.tabs.tabToolTip(panel.tabs.indexOf(panel.explain))

