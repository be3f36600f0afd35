"""The narrow panes fit their width: the Graph tab's inspector needs no horizontal scrolling for attention, matrix,
vector and scalar nodes at the width a 1280 or 1600 px main window leaves it, attention's gradient is shown per head
like its value, and the beam tree's legend is wrapped below the drawing, whole, at any width."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication

from app.sample.beam_tree import BeamTree, build_tree
from app.graph.graph_view import MODEL

from .test_graph_view import _model_source, _panel, _rebuild


@pytest.fixture(autouse=True)
def end_runs_inline(monkeypatch):
    """End finishes on the GUI thread here, whatever the machine's speed, so a check right after clicking it sees
    the whole pass (the hand-over to a worker is tested in test_graph_fixes.py)."""
    from app.graph import stepping as graph_view
    monkeypatch.setattr(graph_view, "END_INLINE_S", 1e9)


LEFT_PANEL = 380     # what MainWindow gives its settings panel; the Graph tab gets the rest of the window's width


def _fits(inspector) -> None:
    QApplication.processEvents()
    body, viewport = inspector.widget(), inspector.viewport()
    assert body.minimumSizeHint().width() <= viewport.width(), (body.minimumSizeHint(), viewport.width())
    assert inspector.horizontalScrollBar().maximum() == 0
    assert inspector.numbers.horizontalScrollBar().maximum() == 0     # the number list is wrapped to the pane too


def _node(program, label: str) -> int:
    return next(n.id for n in program.nodes if n.label == label)


def test_inspector_fits_its_pane_and_attention_gradient_follows_the_head(qtbot, small_text):
    source = _model_source("transformer", {"block_size": 16, "n_layer": 1, "n_head": 4, "n_embd": 16}, small_text)
    panel = _panel(qtbot, source)
    panel.resize(1280 - LEFT_PANEL, 760)
    panel.what.setCurrentText(MODEL)
    panel.text.setText("The king and")
    _rebuild(qtbot, panel)
    program, inspector = panel.program, panel.inspector
    att, matrix, loss = _node(program, "attention weights"), _node(program, "c_fc"), program.nodes[-1].id
    vector = _node(program, "ln_1 γ")                                 # 16 entries: listed in full
    assert program.nodes[att].shape == (4, 11, 11) and program.nodes[matrix].shape == (64, 16)
    while program.nodes[att].value is None:       # forward up to the attention weights: no gradient yet
        panel.buttons["step"].click()
    panel.inspect(att)
    assert inspector.grad_view.array is None and "no gradient yet" in inspector.grad_view.header.text()
    _fits(inspector)
    panel.buttons["end"].click()
    for width in (1280, 1600):
        panel.resize(width - LEFT_PANEL, 760)
        for node in (att, matrix, vector, loss):
            panel.inspect(node)
            _fits(inspector)

    panel.inspect(att)
    inspector.head.setValue(2)
    value, grad = inspector.value_view, inspector.grad_view
    assert value.array.shape == grad.array.shape == (11, 11)          # one head, T × T, in both views
    np.testing.assert_array_equal(value.array, program.nodes[att].value[2])
    np.testing.assert_array_equal(grad.array, program.nodes[att].grad[2])
    for side in ("left", "bottom"):
        ticks = [t for _, t in grad.plot.getAxis(side)._tickLevels[0]]
        assert ticks == [t for _, t in value.plot.getAxis(side)._tickLevels[0]] == program.tokens
    assert grad.colorbar.levels()[0] < 0 < grad.colorbar.levels()[1]   # gradients keep the scale centred on 0
    assert value.colorbar.levels() == (0.0, 1.0)
    inspector.head.setValue(3)
    np.testing.assert_array_equal(grad.array, program.nodes[att].grad[3])


def _hyp(ids, score, alive=True, finish=""):
    return SimpleNamespace(token_ids=ids, text="".join(map(str, ids)), logprob=score * len(ids), score=score,
                           alive=alive, finish=finish)


def test_beam_tree_legend_is_whole_below_the_drawing_at_any_width(qtbot):
    steps = [[_hyp([1], -1.0), _hyp([2], -1.2), _hyp([3], -2.0, False, "pruned")],
             [_hyp([1, 4], -1.1), _hyp([2, 5], -1.3, False, "eos"), _hyp([1, 6], -2.5, False, "pruned")],
             [_hyp([1, 4, 7], -1.2, False, "eos")]]
    tree = BeamTree()
    qtbot.addWidget(tree)
    tree.resize(520, 330)
    tree.show()
    assert not tree.legend.isVisible()                 # the "run beam search" message has no legend under it
    tree.show_tree(build_tree(steps, [1, 4, 7], str), "prompt")
    heights = {}
    for width in (520, 1400, 300):
        tree.resize(width, 330)
        QApplication.processEvents()
        legend, vp = tree.legend, tree.viewport().geometry()
        assert legend.isVisible() and legend.minimumSizeHint().width() <= legend.width()
        assert legend.height() >= legend.heightForWidth(legend.width())    # every wrapped line is shown
        assert legend.geometry().top() > vp.bottom()                        # below the drawing, not over it
        bar = tree.horizontalScrollBar()
        assert not bar.isVisible() or legend.geometry().bottom() < bar.mapTo(tree, QPoint(0, 0)).y()
        assert legend.geometry().bottom() < tree.height()
        heights[width] = legend.height()
    assert heights[300] > heights[520] > heights[1400]                      # it wraps to the width
    assert "length^(length penalty)" in tree.legend.toolTip()
    assert not any("answer" in getattr(i, "toPlainText", lambda: "")() for i in tree.scene().items())


def test_token_labels_thin_out_instead_of_overlapping(qtbot):
    from app.graph.node_inspector import TensorView
    view = TensorView("attention weights")
    qtbot.addWidget(view)
    view.resize(320, 260)
    view.show()

    def labels(n):
        view.show_array(np.full((n, n), 1.0 / n), "", tokens=[chr(97 + i % 26) for i in range(n)], probabilities=True)
        return [len(view.plot.getAxis(side)._tickLevels[0]) for side in ("left", "bottom")]
    assert labels(8) == [8, 8]                                     # every token while they fit
    rows, cols = labels(60)
    assert rows <= view.plot.height() / 13 + 1 and cols <= view.plot.width() / 9 + 1
    assert rows >= 10 and cols >= 20                               # thinned, not dropped
