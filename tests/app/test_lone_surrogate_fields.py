"""Text that is not Unicode (a lone surrogate) reaching a window field: the panel shows the engine's refusal
(engine/tokenizers/text_check.py) and keeps running."""
from PySide6.QtCore import Qt

from tests.app.test_sample_panel import _ngram, _panel
from tests.app.test_tokens_panel import make_panel, tokenize  # noqa: F401  (make_panel is a fixture)


def test_window_fields_with_a_lone_surrogate_show_a_message(qtbot, small_text, monkeypatch):
    """Qt's own fields drop lone surrogates, but text can reach a panel from elsewhere (a paste of broken UTF-16,
    code): the Sample and Tokens tabs show the engine's refusal and keep running."""
    panel = _panel(qtbot, _ngram(small_text))
    monkeypatch.setattr(panel.prompt, "toPlainText", lambda: "the \udcff")
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    assert not panel.running and "U+DCFF" in panel.message.text()


def test_tokens_try_box_with_a_lone_surrogate(qtbot, make_panel, monkeypatch):  # noqa: F811  (the fixture)
    panel = make_panel("bpe", bpe_vocab=300)
    tokenize(qtbot, panel)
    monkeypatch.setattr(panel.try_text, "toPlainText", lambda: "the \udcff")
    panel._show_try()
    assert "U+DCFF" in panel.try_ids.text() and "char tokenizer" not in panel.try_ids.text()
