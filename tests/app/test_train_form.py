"""The training form on its own (no main window): what choosing a family or preset writes into the fields, and
what the form accepts."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from app.training.model_form import get_value
from app.training.train_panel import TrainPanel
from engine import api
from engine.models import FAMILIES


@pytest.fixture
def panel(qtbot):
    p = TrainPanel()
    qtbot.addWidget(p)
    return p


def scramble(fields: dict) -> None:
    """Give every field a value that no preset or default has."""
    for w in fields.values():
        if isinstance(w, QSpinBox):
            w.setValue(w.minimum() + 3)
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(0.123)
        elif isinstance(w, QCheckBox):
            w.setChecked(not w.isChecked())
        elif isinstance(w, QComboBox):
            w.setCurrentIndex((w.currentIndex() + 1) % w.count())


def test_choosing_a_preset_again_resets_n_kv_head(panel):
    """n_kv_head is in no preset: it kept the typed value, so later runs silently used grouped-query attention
    although the form said the edits were replaced."""
    panel.family.setCurrentText("transformer")
    fields = panel.fields["transformer"]
    fields["n_kv_head"].setValue(2)
    panel.preset.textActivated.emit(panel.preset.currentText())    # the user picks the preset shown
    assert get_value(fields["n_kv_head"]) is None and fields["n_kv_head"].text() == "= n_head"
    assert "replaced" in panel.message.text()
    assert panel.spec().overrides["n_kv_head"] == "none"
    fields["n_kv_head"].setValue(2)
    panel.family.setCurrentText("gru")
    panel.family.setCurrentText("transformer")                     # and a family change on the way back
    assert get_value(fields["n_kv_head"]) is None


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_or_preset_choice_replaces_every_field(panel, family):
    """Whatever was typed, each field afterwards holds the preset's value or the config class's default."""
    panel.family.setCurrentText(family)
    form = "rnn" if family in ("rnn", "lstm", "gru") else family
    pages = [form] + ([] if family == "ngram" else ["train"])
    presets = [None] if family == "ngram" else api.list_presets(family)
    for preset in presets:
        for page in pages:
            scramble(panel.fields[page])
        if preset is None:
            panel.family.textActivated.emit(family)
        else:
            panel.preset.setCurrentText(preset)
            panel.preset.textActivated.emit(preset)
        model, train = api.full_config(family, preset, {}, vocab_size=1)
        for page, want in zip(pages, (model, train)):
            got = {k: get_value(w) for k, w in panel.fields[page].items()}
            assert got == pytest.approx({k: want[k] for k in got}), (preset, page)


def test_the_n_gram_message_reads_plainly(panel):
    panel.family.setCurrentText("ngram")
    panel.family.textActivated.emit("ngram")
    assert panel.message.text() == ("The form now holds the n-gram model's default settings "
                                    "(your earlier edits to the fields were replaced).")


def test_spin_box_text_is_not_clipped_under_the_app_style(qtbot, qapp):
    """With the app's style sheet, spin boxes were 19 px tall with a 13 px text area for a 14 px font: the
    underscore of '= n_head' (and every descender) was cut off."""
    from app.gui import STYLE
    qapp.setStyleSheet(STYLE.read_text(encoding="utf-8"))
    try:
        p = TrainPanel()
        qtbot.addWidget(p)
        p.family.setCurrentText("transformer")
        p.show()
        qtbot.waitExposed(p)
        spins = [w for page in ("transformer", "train") for w in p.fields[page].values()
                 if isinstance(w, (QSpinBox, QDoubleSpinBox))]
        assert p.fields["transformer"]["n_kv_head"].text() == "= n_head"
        for w in spins:
            assert w.lineEdit().height() >= w.fontMetrics().height(), w.toolTip()
    finally:
        qapp.setStyleSheet("")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "infinity", "1e999"])
def test_float_fields_refuse_non_finite_numbers(panel, qtbot, text):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QValidator
    panel.family.setCurrentText("transformer")
    for name in ("lr", "min_lr", "weight_decay", "grad_clip"):
        w = panel.fields["train"][name]
        before = w.value()
        assert w.validate(text, 0)[0] != QValidator.Acceptable
        w.lineEdit().selectAll()
        qtbot.keyClicks(w.lineEdit(), text)
        qtbot.keyClick(w.lineEdit(), Qt.Key_Return)
        w.interpretText()
        # "nan" cannot be typed at all; "1e999" is refused when editing ends, and its prefix "1" never took effect
        assert w.value() == before and w.text() != text, name
    assert panel.fields["train"]["grad_clip"].validate("2.5e-1", 0)[0] == QValidator.Acceptable
    lr = panel.fields["train"]["lr"]
    lr.lineEdit().selectAll()
    qtbot.keyClicks(lr.lineEdit(), "0.0125")
    qtbot.keyClick(lr.lineEdit(), Qt.Key_Return)
    assert lr.value() == 0.0125                          # a finite number in range is taken when editing ends
    lr.lineEdit().selectAll()
    qtbot.keyClicks(lr.lineEdit(), "0.02")               # typed, not entered: F5 straight away must use it
    assert float(panel.spec().overrides["lr"]) == 0.02 and lr.value() == 0.02


def test_restored_settings_with_a_non_finite_number_keep_the_field(panel):
    """A settings file with NaN in it (JSON allows it) was clamped to the range's end: grad_clip 1000, which is
    no clipping at all."""
    panel.family.setCurrentText("transformer")
    s = panel.settings()
    s["train"]["grad_clip"] = float("nan")
    s["train"]["lr"] = float("inf")
    panel.apply_settings(s)
    assert panel.fields["train"]["grad_clip"].value() == 1.0 and panel.fields["train"]["lr"].value() == 0.003
