"""The decoding lab in the Sample tab, driven as a user would: strategies side by side, the chart following the
stream, the KV cache switch and check, stop strings with beam search, and the window faults of issue 17 (stale output
after an error, the newline symbol, axis labels and the beam tree at 1280×800). Expected figures come from the
engine (engine/decode_compare.py, itself tested against hand and torch computation)."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics

from app.sample.beam_tree import COL_W
from app.sample.decode_controls import parse_stops
from engine.decode import DecodeConfig, complete
from engine.decode_compare import run_columns
from engine.errors import ConfigError

from tests.app.test_sample_panel import WAIT_MS, _gpt, _ngram, _panel, _run


def _word_ngram(text):
    from engine.api import ModelHandle
    from engine.models import build_model
    from engine.tokenizers import build_tokenizer
    tok = build_tokenizer("word", text)
    model = build_model("ngram", {"vocab_size": tok.vocab_size, "order": 3}).fit(np.array(tok.encode(text)))
    return ModelHandle("ngram", model, tok, {})


def test_stop_field_parses_several_strings_and_escapes():
    assert parse_stops(r" \n\n | . |\s| a\|b ") == ("\n\n", ".", " ", "a|b")
    assert parse_stops("") == () and parse_stops(r"\\") == ("\\",)
    assert parse_stops(" ") == (" ",) and parse_stops("a | ") == ("a",)   # a lone typed space is a stop string
    with pytest.raises(ConfigError, match="unknown escape"):
        parse_stops(r"\q")


def test_the_chart_follows_the_stream_until_a_token_is_clicked(qtbot, small_text):
    panel = _panel(qtbot, _gpt(small_text))
    panel.prompt.setPlainText("the")
    panel.max_tokens.setValue(5000)
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.view.token_count > 5, timeout=WAIT_MS)
    i = panel.view.selected      # the newest token at the last batch is the one on the chart, with its cut mass
    assert i is not None and i >= 5 and panel.chart.caption.text().startswith(f"Step {i + 1}:")
    np.testing.assert_allclose(panel.chart.probs, panel.view.events[i].topk_tempered_probs)
    assert "cut away" in panel.chart.caption.text()
    qtbot.mouseClick(panel.view.viewport(), Qt.LeftButton, pos=panel.view.token_center(2))
    n = panel.view.token_count
    qtbot.waitUntil(lambda: panel.view.token_count > n + 5, timeout=WAIT_MS)
    assert panel.view.selected == 2 and panel.chart.caption.text().startswith("Step 3:")   # stays where clicked
    qtbot.mouseClick(panel.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)
    qtbot.mouseClick(panel.view.viewport(), Qt.LeftButton, pos=panel.view.token_center(4))  # clickable afterwards
    assert panel.chart.caption.text().startswith("Step 5:")


def test_an_error_clears_the_previous_output_and_chart(qtbot, small_text):
    panel = _panel(qtbot, _ngram(small_text))
    _run(qtbot, panel, "sample", "the ", 20, seed=1)
    assert panel.view.token_count == 20 and panel.chart.bar_count > 0
    _run(qtbot, panel, "sample", "Zebra?", 20)
    assert "not in the vocabulary" in panel.message.text()
    assert panel.view.token_count == 0 and panel.view.toPlainText() == "" and panel.chart.bar_count == 0
    assert not panel.cache.check_button.isEnabled()


def test_a_newline_is_the_same_symbol_in_text_chart_axis_caption_and_tree(qtbot, small_text):
    handle = _ngram(small_text)
    panel = _panel(qtbot, handle)
    _run(qtbot, panel, "greedy", "the war.", 3)      # after a full stop this corpus goes to a new line
    assert panel.view.token_text(0) == "\n" and "↵" in panel.view.toPlainText()
    qtbot.mouseClick(panel.view.viewport(), Qt.LeftButton, pos=panel.view.token_center(0))
    assert "took '↵'" in panel.chart.caption.text() and "\\n" not in panel.chart.caption.text()
    labels = [label for _, label in panel.chart.plot.getAxis("bottom")._tickLevels[0]]
    assert "↵" in labels and not any("\\n" in label for label in labels)
    _run(qtbot, panel, "beam", "the war.", 3, beam_width=2)
    assert panel.tree.columns[0][0].label == "↵"


def test_cache_switch_speeds_and_check(qtbot, small_text):
    handle = _gpt(small_text)
    panel = _panel(qtbot, handle)
    texts = {}
    for on in (True, False):
        panel.cache.box.setChecked(on)
        _run(qtbot, panel, "sample", "the", 60, seed=3)   # 60 tokens: past the model's 32-token window
        texts[on] = panel.view.generated_text()
        assert f"KV cache {'on' if on else 'off'}" in panel.message.text()
    assert texts[True] == texts[False]                         # the cache changes speed, not text
    speeds = panel.cache.speeds.text()
    assert "cache on: not run" not in speeds and "cache off: not run" not in speeds
    assert panel.cache.check_button.isEnabled()
    qtbot.mouseClick(panel.cache.check_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.cache.result.text().startswith("Cache check:"), timeout=WAIT_MS)
    text = panel.cache.result.text()
    value = float(text.split("uncached: ")[1].split(" ")[0])
    assert value < 1e-4 and "past the 32-token window" in text and "agrees" in text


def test_stop_strings_let_the_length_penalty_change_beam_searchs_answer(qtbot, small_text):
    handle = _ngram(small_text)
    panel = _panel(qtbot, handle)
    panel.stops.setText(r"\s")
    answers = {}
    for lp in (0.0, 2.0):
        _run(qtbot, panel, "beam", "the ", 20, beam_width=8, length_penalty=lp)
        answers[lp] = panel.view.generated_text()
        expected = complete(handle.model, handle.tokenizer, "the ", DecodeConfig(
            "beam", beam_width=8, length_penalty=lp, stop=" ", max_new_tokens=20, top_n=20))[0]
        assert answers[lp] == expected and "finished: stop" in panel.message.text()
        finished = [n for col in panel.tree.columns for n in col if n.kind == "finished"]
        assert finished and all(n.finish == "stop" for n in finished)
        assert panel.tree.best_path()[-1].kind == "finished"    # the answer's path ends where it finished
    assert answers[0.0] != answers[2.0]


def test_tree_and_axis_labels_fit_at_1280_by_800(qtbot, small_text):
    handle = _word_ngram(small_text)
    panel = _panel(qtbot, handle)
    panel.resize(1280, 760)
    _run(qtbot, panel, "sample", "the king", 30, seed=2, temperature=1.5)
    qtbot.wait(50)
    chart = panel.chart
    per_bar = chart.plot.getViewBox().width() / chart.bar_count
    mono = QFontMetrics(chart._mono)
    for _, label in chart.plot.getAxis("bottom")._tickLevels[0]:
        assert mono.horizontalAdvance(label) < per_bar, label     # no label runs into its neighbour
    _run(qtbot, panel, "beam", "the king", 14, beam_width=3)
    tree = panel.tree
    qtbot.wait(50)
    shown = tree.mapToScene(tree.viewport().rect()).boundingRect()
    assert shown.width() / COL_W >= 9                              # at least 9 steps in view at once
    z = tree.zoom
    qtbot.mouseClick(tree.zoom_bar.findChildren(type(tree.zoom_bar.children()[1]))[0], Qt.LeftButton)
    assert tree.zoom < z                                           # the − button zooms out


def test_side_by_side_columns_equal_the_engine_and_a_kept_column_stays(qtbot, small_text):
    handle = _ngram(small_text)
    panel = _panel(qtbot, handle)
    panel.modes.setCurrentWidget(panel.compare)
    view = panel.compare
    assert [c.strategy_name for c in view.columns] == ["greedy", "sample", "beam"]
    view.prompt.setPlainText("the k")
    view.max_tokens.setValue(30)
    view.seed.setText("5")
    view.stops.setText(".")
    view.run()
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    specs = ["greedy", "sample:temperature=0.8,top_p=0.9", "beam:width=4,length_penalty=1"]
    reports = run_columns(handle.model, handle.tokenizer, "the k", specs, max_new_tokens=30, seed=5, stop=".",
                          top_n=20)
    for col, rep in zip(view.columns, reports):
        assert col.view.generated_text() == rep["text"]
        shown = col.figure_values()
        for key in ("mean_logprob", "mean_cut_mass", "distinct_2", "distinct_3", "repeated_4gram_share"):
            assert shown[key] == pytest.approx(rep[key]), key
        assert f"{rep['mean_logprob']:.3f}" in col.figures.text()
    # click a token of the beam column: the chart shows that column's step
    beam = view.columns[2]
    qtbot.mouseClick(beam.view.viewport(), Qt.LeftButton, pos=beam.view.token_center(1))
    assert view.chart.caption.text().startswith("Column 3 (beam). Step 2:")
    # keep the sample column, change it and its neighbour, run again: the kept one is not re-run
    sample = view.columns[1]
    kept_text = sample.view.generated_text()
    sample.keep.setChecked(True)
    assert not sample.knobs["top_p"].isEnabled()
    view.columns[0].strategy.setCurrentIndex(view.columns[0].strategy.findData("sample"))
    view.seed.setText("6")
    view.run()
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    assert sample.view.generated_text() == kept_text and "kept from" in sample.note.text()
    assert view.columns[0].view.generated_text() != reports[0]["text"]
    # up to six columns; bad input clears what the columns showed
    while view.add_column() is not None:
        pass
    assert len(view.columns) == 6 and not view.add_button.isEnabled()
    view.prompt.setPlainText("Zebra?")
    view.run()
    assert "not in the vocabulary" in view.message.text() and not view.running
    assert all(c.view.token_count == 0 for c in view.columns if not c.kept)


def test_side_by_side_streams_together_and_checks_the_cache(qtbot, small_text):
    handle = _gpt(small_text)
    panel = _panel(qtbot, handle)
    panel.modes.setCurrentWidget(panel.compare)
    view = panel.compare
    view.prompt.setPlainText("the")
    view.max_tokens.setValue(2000)
    view.run()
    qtbot.waitUntil(lambda: all(c.view.token_count > 3 for c in view.columns), timeout=WAIT_MS)
    assert view.running            # every column has tokens before any has finished: they stream together
    assert view.chart.bar_count == 20 and view.chart.caption.text().startswith("Column 1 (greedy)")
    view.stop()
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    assert all("finished: stopped" in c.note.text() for c in view.columns)
    qtbot.mouseClick(view.cache.check_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: view.cache.result.text().startswith("Cache check (3 columns"), timeout=WAIT_MS)
    assert "agrees" in view.cache.result.text()
