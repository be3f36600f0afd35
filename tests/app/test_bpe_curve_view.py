"""The Tokens tab's BPE size-versus-length view: the curve drawn is the engine's, the slider re-tokenizes the
corpus start with only the first merges (as the library's cut tokenizer does), and the tab is BPE-only."""
import numpy as np
import pytest

from engine.tokenizers.bpe_curve import truncated

from tests.app.test_tokens_panel import make_panel, tokenize  # noqa: F401  (make_panel is a fixture)

WAIT_MS = 20_000


def test_curve_and_slider_replay(qtbot, make_panel):  # noqa: F811
    panel = make_panel("bpe", bpe_vocab=300)
    tokenize(qtbot, panel)
    view, tok, curve = panel.curve, panel.result.tokenizer, panel.result.curve
    assert panel.right.isTabEnabled(3)
    x, y = view.cpt_line.getData()
    np.testing.assert_array_equal(x, curve.merges)
    np.testing.assert_allclose(y, curve.chars_per_token)
    assert y[0] == pytest.approx(len(panel.result.preview) / len(panel.result.preview.encode()), rel=0.05)
    assert f"{curve.chars_per_token[-1]:.2f}" in view.at.text()
    for m in (0, 7, int(curve.merges[-1])):
        view.slider.setValue(int(np.flatnonzero(curve.merges == m)[0]))
        sample = view.sample
        expected = len(truncated(tok, m).encode(sample))
        qtbot.waitUntil(lambda: view.preview.token_count == expected
                        and f"vocabulary {256 + m:,}" in view.sample_about.text(), timeout=WAIT_MS)
        assert f"{256 + m:,}" in view.at.text() and f"{int(curve.tokens[view.slider.value()]):,}" in view.at.text()
    assert view.preview.token_count == len(tok.encode(view.sample))   # full size: the tokenizer itself


def test_curve_tab_is_for_bpe_only(qtbot, make_panel):  # noqa: F811
    panel = make_panel("char")
    tokenize(qtbot, panel)
    assert not panel.right.isTabEnabled(3) and panel.result.curve is None


def test_the_corpus_start_opens_at_its_top(qtbot, make_panel):  # noqa: F811
    """The view is filled while its tab is hidden. Its own text cursor had moved to the end with the insertions,
    so showing the tab scrolled to the end of the corpus start instead of its beginning."""
    panel = make_panel("bpe", bpe_vocab=300)
    panel.resize(790, 500)
    tokenize(qtbot, panel)
    view = panel.curve
    qtbot.waitUntil(lambda: view.preview.token_count > 0, timeout=WAIT_MS)
    panel.right.setCurrentWidget(view)
    qtbot.wait(50)
    bar = view.preview.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == 0   # a text longer than the view, shown from its start
