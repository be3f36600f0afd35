"""The Graph tab's tape as a stack: forward steps push, backward steps pop, each pop names the out_gradients it
adds into, and on the fan-out example z's out_gradient collects two increments."""
from __future__ import annotations

from app.common.model_source import ModelSource
from app.graph.graph_controls import FANOUT
from app.graph.graph_view import GraphPanel

WAIT_MS = 20_000


def _panel(qtbot) -> GraphPanel:
    panel = GraphPanel(ModelSource())
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    return panel


def _rows(panel) -> list[str]:
    m = panel.tape_stack.model
    return [m.data(m.index(r)) for r in range(m.rowCount())]


def test_forward_pushes_backward_pops_in_the_lectures_words(qtbot):
    panel = _panel(qtbot)
    stack = panel.tape_stack
    assert _rows(panel) == [] and "empty stack" in stack.sentence.text()
    panel.buttons["step"].click()
    panel.buttons["step"].click()
    assert _rows(panel) == ["2. Sigmoid   ← top", "1. Linear(α)"]
    assert stack.sentence.text().startswith("Sigmoid.apply_fwd: out_tensor (the lecture's z)")
    assert "in_tensors = [a]" in stack.sentence.text() and "tape.push(Sigmoid)" in stack.sentence.text()
    for _ in range(3):
        panel.buttons["step"].click()
    assert len(_rows(panel)) == 5 and "Tape (a stack): 5 of 5" in stack.title.text()
    panel.buttons["step"].click()                                        # first pop: the loss module
    assert _rows(panel)[0] == "4. Softmax   ← top" and len(_rows(panel)) == 4
    text = stack.sentence.text()
    assert text.startswith("tape_bwd: tape.pop() → CrossEntropy") and "out_gradient = 1" in text
    assert "y is data" in text and "ŷ.out_gradient += in_gradients[1]" in text    # the lecture's names
    panel.buttons["back"].click()                                        # undo the pop: pushed back
    assert len(_rows(panel)) == 5
    panel.buttons["end"].click()
    assert _rows(panel) == [] and "0 modules left" in stack.sentence.text()
    assert "Linear(α).apply_bwd" in stack.sentence.text()
    panel.buttons["reset"].click()
    assert _rows(panel) == []


def test_fanout_example_shows_accumulation(qtbot):
    panel = _panel(qtbot)
    panel.what.setCurrentText(FANOUT)
    old = panel.program
    panel.build_btn.click()
    qtbot.waitUntil(lambda: panel.program is not old, timeout=WAIT_MS)
    s = panel.stepper
    s_ids = [n.id for n in panel.program.nodes if n.label == "Sigmoid"]
    sentences = []
    while s.phase != "done":
        panel.buttons["step"].click()
        if s.history[-1].phase == "backward" and s_ids[0] in s.history[-1].grads:
            sentences.append(panel.tape_stack.sentence.text())
    assert len(sentences) == 2
    assert "z.out_gradient" in sentences[0] and "increment 1 of 2" in sentences[0]
    assert "increment 2 of 2" in sentences[1] and "Version B" in sentences[1]
    row = panel.tape_stack.model
    assert row.rowCount() == 0
