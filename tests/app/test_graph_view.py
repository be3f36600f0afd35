"""The Graph tab driven as a user would: the lecture example stepped forward and back (loss and gradients checked
against torch.autograd on the lecture's numbers), the finite-difference button, keyboard stepping, model tapes
(a tiny GPT and an RNN large enough to open collapsed), and the messages for bad cases. Plus the pure layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from app.common.model_source import ModelSource
from app.graph.graph_layout import COL_STEP, GraphSpec, default_collapsed, layout
from app.graph.graph_scene import CURRENT, FILL, FIT_MIN, GRAD_DONE, GRADIENT, IDLE, PENDING
from app.graph.graph_controls import NEWLINE_MARK
from app.graph.graph_view import MODEL, GraphPanel
from engine.api import ModelHandle
from engine.autodiff import lecture
from engine.inside import bptt_norms
from engine.models import build_model
from engine.tokenizers import build_tokenizer


@pytest.fixture(autouse=True)
def end_runs_inline(monkeypatch):
    """End finishes on the GUI thread here, whatever the machine's speed, so a check right after clicking it sees
    the whole pass (the hand-over to a worker is tested in test_graph_fixes.py)."""
    from app.graph import stepping as graph_view
    monkeypatch.setattr(graph_view, "END_INLINE_S", 1e9)

WAIT_MS = 20_000


def _torch_lecture():
    """The lecture's network in torch: loss and the gradients of α and β, from the same numbers."""
    x = torch.tensor(lecture.X, dtype=torch.float64)
    alpha = torch.tensor(lecture.ALPHA, dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(lecture.BETA, dtype=torch.float64, requires_grad=True)
    y_hat = torch.softmax(beta @ torch.sigmoid(alpha @ x), dim=0)
    loss = -torch.log(y_hat[lecture.Y])
    loss.backward()
    return float(loss.detach()), alpha.grad.numpy(), beta.grad.numpy()


def _panel(qtbot, source=None) -> GraphPanel:
    panel = GraphPanel(source or ModelSource())
    qtbot.addWidget(panel)
    panel.resize(1400, 850)
    panel.show()
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    return panel


def _rebuild(qtbot, panel: GraphPanel) -> None:
    old = panel.program
    panel.build_btn.click()
    qtbot.waitUntil(lambda: panel.program is not old or panel.message_bar.isVisible(), timeout=WAIT_MS)


def _assert_no_graph(panel: GraphPanel) -> None:
    """After a failed build nothing of the previous graph is left live."""
    assert panel.program is None and not panel.scene.items() and not panel.strip_box.isVisible()
    assert not any(b.isEnabled() for b in panel.buttons.values())
    assert panel.counter.text() == "no graph" and panel.loss_label.text() == ""
    assert panel.inspector.node_id is None
    panel.view.minimap.render_scene()      # the overview's refresh, due after the scene emptied, copes with no graph
    assert panel.view.minimap.picture.isNull()


def _model_source(family: str, cfg: dict, text: str) -> ModelSource:
    torch.manual_seed(0)
    tok = build_tokenizer("char", text)
    model = build_model(family, {"vocab_size": tok.vocab_size, **cfg})
    if family != "ngram":
        model.eval()
    else:
        model.fit(np.array(tok.encode(text)))
    source = ModelSource()
    source.set_checkpoint(ModelHandle(family, model, tok, {}), "tiny", text)
    return source


# -- layout ------------------------------------------------------------------------------------------------------

def test_layout_puts_producers_left_of_consumers_without_overlaps():
    rng = np.random.default_rng(0)
    n = 1200
    inputs = [()] * 10 + [tuple(sorted(set(rng.integers(0, i, size=2)))) for i in range(10, n)]
    spec = GraphSpec(tuple(inputs), tuple(not ins for ins in inputs),
                     tuple(f"block {i // 200} / part {i // 50 % 4}" for i in range(n)))
    lay = layout(spec)
    for dst, ins in enumerate(inputs):
        for src in ins:
            assert lay.pos[src, 0] < lay.pos[dst, 0]
    assert len(np.unique(lay.pos.round(3), axis=0)) == n            # no two nodes on the same spot
    leaves = [i for i, ins in enumerate(inputs) if not ins and any(i in x for x in inputs)]
    for leaf in leaves:                                               # a leaf sits just before its first consumer
        first = min(lay.pos[d, 0] for d, ins in enumerate(inputs) if leaf in ins)
        assert first - lay.pos[leaf, 0] == COL_STEP
    collapsed = layout(spec, default_collapsed(spec))
    assert len(collapsed.unit_node) == len(spec.boxed_groups()) == 24
    assert not (collapsed.edges[:, 0] == collapsed.edges[:, 1]).any()


def _tape(family: str, cfg: dict, text: str):
    from engine.autodiff.bridge import build_tape
    torch.manual_seed(0)
    tok = build_tokenizer("char", text)
    model = build_model(family, {"vocab_size": tok.vocab_size, **cfg}).eval()
    return build_tape(model, tok, text[:9])


@pytest.mark.parametrize("family, cfg", [
    ("transformer", {"block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 8}),
    ("rnn", {"block_size": 16, "n_layer": 2, "n_embd": 8, "n_hidden": 8}),
    ("gru", {"block_size": 16, "n_layer": 1, "n_embd": 8, "n_hidden": 8})])
def test_group_boxes_never_overlap_or_hold_other_nodes(family, cfg, small_text):
    nodes = _tape(family, cfg, small_text).nodes
    spec = GraphSpec.from_nodes(nodes)
    ln_1 = next((n.id for n in nodes if n.label == "ln_1 γ"), None)
    if ln_1 is not None:                                    # a hoisted parameter joins its consumer's box
        assert spec.groups[ln_1] == "block 1 / attention"
    groups = np.array(spec.groups)
    for collapsed in (set(), {spec.boxed_groups()[-1]}):
        lay = layout(spec, collapsed)
        rects = {k: lay.group_rect(np.flatnonzero(groups == k)) for k in spec.boxed_groups() if k not in collapsed}
        assert len(rects) >= 3
        keys = list(rects)
        for i, a in enumerate(keys):
            ax, ay, aw, ah = rects[a]
            for b in keys[i + 1:]:
                bx, by, bw, bh = rects[b]
                assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a, b)
            inside = [(n, groups[n]) for n in range(len(nodes)) if groups[n] != a and lay.unit_node[lay.unit_of[n]] >= 0
                      and ax <= lay.pos[lay.unit_of[n], 0] <= ax + aw and ay <= lay.pos[lay.unit_of[n], 1] <= ay + ah]
            assert not inside, (a, inside)


def test_barycenter_untangles_a_crossing():
    # a → c, b → d, with c and d first in the opposite tape order: the sweep must put c level with a
    spec = GraphSpec(((), (), (1,), (0,)), (True, True, False, False), ("", "", "", ""))
    lay = layout(spec)
    assert (lay.pos[0, 1] < lay.pos[1, 1]) == (lay.pos[3, 1] < lay.pos[2, 1])


# -- the lecture example -----------------------------------------------------------------------------------------

def test_lecture_forward_backward_matches_torch_and_step_back_reverts(qtbot):
    panel = _panel(qtbot)
    loss, g_alpha, g_beta = _torch_lecture()
    program, stepper = panel.program, panel.stepper
    assert panel.loss_label.text() == "loss J = —"
    for _ in range(stepper.n_forward):
        panel.buttons["forward"].click()
    assert not panel.buttons["forward"].isEnabled() and panel.buttons["backward"].isEnabled()
    assert panel.loss_label.text() == f"loss J = {loss:.6f}"
    engine_loss = float(lecture.lecture_example().nodes[program.loss].value)   # recorded forward value
    assert panel.loss_label.text() == f"loss J = {engine_loss:.6f}"
    assert panel.counter.text() == f"step {stepper.n_forward} / {stepper.n_steps} · forward"

    panel.buttons["backward"].click()
    assert panel.sentence.text().startswith("Base case g_J = dJ/dJ = 1.")
    for _ in range(stepper.n_forward - 1):
        panel.buttons["backward"].click()
    assert panel.counter.text().endswith("✓")
    alpha, beta = program.params["alpha"], program.params["beta"]
    panel.inspect(beta)
    np.testing.assert_allclose(panel.inspector.grad_view.array, g_beta, rtol=0, atol=1e-12)
    panel.inspect(alpha)
    np.testing.assert_allclose(panel.inspector.grad_view.array, g_alpha, rtol=0, atol=1e-12)
    marked = [u for u in panel.scene.units if u.inspected]
    assert marked == [panel.scene.unit_item(alpha)]           # the inspected node, and only it, has the halo
    assert "gradient =" in panel.inspector.numbers.toPlainText()
    vector = next(n.id for n in program.nodes if len(n.shape) == 1 and n.shape[0] > 1)
    panel.inspect(vector)                       # bars of a vector: ticks only at whole element indices
    ticks = panel.inspector.value_view.plot.getAxis("bottom")._tickLevels[0]
    assert ticks and all(x == int(x) and label == str(int(x)) for x, label in ticks)
    panel.inspect(alpha)                        # a matrix: whole row and column indices, at pixel centres
    for side in ("left", "bottom"):
        ticks = panel.inspector.grad_view.plot.getAxis(side)._tickLevels[0]
        assert ticks and all(x - 0.5 == int(label) for x, label in ticks)
    assert panel.scene.unit_item(alpha).state == GRAD_DONE
    lit = [e for e in panel.scene.edge_items.values() if e.mode == GRADIENT]
    assert len(lit) == 2                       # Linear(α) pushed into x and α

    panel.buttons["back"].click()              # undo Linear(α)'s backward: α has no gradient again
    assert panel.counter.text() == f"step {stepper.n_steps - 1} / {stepper.n_steps} · backward"
    assert panel.inspector.grad_view.array is None
    assert panel.scene.unit_item(alpha).state != GRAD_DONE
    assert panel.sentence.text().startswith("↶ Undid: Linear(α) backward")
    sigmoid = next(n.id for n in program.nodes if n.op == "Sigmoid")
    assert panel.scene.unit_item(sigmoid).current and not panel.scene.unit_item(alpha).current
    assert all(e.mode != IDLE for e in panel.scene.edge_items.values() if e.mode == GRADIENT)


def test_finite_difference_button_passes(qtbot):
    panel = _panel(qtbot)
    sigmoid = next(n.id for n in panel.program.nodes if n.op == "Sigmoid")
    panel.inspect(sigmoid)
    panel.inspector.fd_button.click()
    assert "inputs are computed" in panel.inspector.fd_result.text()   # nothing computed yet
    panel.buttons["end"].click()
    panel.inspector.fd_button.click()
    qtbot.waitUntil(lambda: "relative error" in panel.inspector.fd_result.text(), timeout=WAIT_MS)
    assert "pass" in panel.inspector.fd_result.text()


def test_clicking_a_node_inspects_and_marks_it(qtbot):
    panel = _panel(qtbot)
    sigmoid, softmax = (next(n.id for n in panel.program.nodes if n.op == op) for op in ("Sigmoid", "Softmax"))
    for node_id in (sigmoid, softmax):
        item = panel.scene.unit_item(node_id)
        panel.view.centerOn(item)
        qtbot.mouseClick(panel.view.viewport(), Qt.LeftButton, pos=panel.view.mapFromScene(item.pos()))
        assert panel.inspector.node_id == node_id
        assert [u for u in panel.scene.units if u.inspected] == [item]
    panel.buttons["step"].click()                             # the current-step border does not replace the halo
    assert panel.scene.unit_item(softmax).inspected


def test_the_inspector_says_which_node_each_rule_symbol_is(qtbot):
    """The lecture calls Linear(α)'s output a, while Linear's rule b = a ωᵀ calls its input a: the inspector
    names them for this node."""
    panel = _panel(qtbot)
    nodes = panel.program.nodes
    lin = next(n for n in nodes if n.label == "Linear(α)")
    panel.inspect(lin.id)
    text = panel.inspector.rules.text()
    assert "b = a ωᵀ" in text and "here: a = x, ω = α; b = this node" in text
    loss = next(n for n in nodes if n.op == "CrossEntropy")
    panel.inspect(loss.id)
    labels = [nodes[i].label for i in loss.inputs]
    assert "here: " in panel.inspector.rules.text() and all(label in panel.inspector.rules.text() for label in labels)


def test_keyboard_steps_back_and_forth(qtbot):
    panel = _panel(qtbot)
    panel.view.setFocus()
    s = panel.stepper
    qtbot.keyClick(panel.view, Qt.Key_Right)
    qtbot.keyClick(panel.view, Qt.Key_Right)
    assert s.position == 2
    qtbot.keyClick(panel.view, Qt.Key_Left)
    assert s.position == 1
    qtbot.keyClick(panel.view, Qt.Key_End)
    assert s.phase == "done"
    qtbot.keyClick(panel.view, Qt.Key_Home)
    assert s.position == 0 and all(panel.scene.unit_item(i).state == PENDING for i in s.ops)
    qtbot.keyClick(panel.view, Qt.Key_Space)
    qtbot.waitUntil(lambda: s.position >= 2, timeout=WAIT_MS)
    qtbot.keyClick(panel.view, Qt.Key_Space)
    assert not panel.timer.isActive()


# -- models and bad cases ----------------------------------------------------------------------------------------

def test_no_model_offers_the_lecture(qtbot):
    panel = _panel(qtbot)
    panel.what.setCurrentText(MODEL)
    panel.build_btn.click()
    assert panel.message_bar.isVisible() and "No model" in panel.message.text()
    panel.lecture_btn.click()
    qtbot.waitUntil(lambda: not panel.message_bar.isVisible(), timeout=WAIT_MS)
    assert panel.program.title.startswith("Seed lecture")


def test_ngram_model_explains_why_there_is_no_tape(qtbot, small_text):
    panel = _panel(qtbot, _model_source("ngram", {"order": 3}, small_text))
    panel.what.setCurrentText(MODEL)
    _rebuild(qtbot, panel)
    assert panel.message_bar.isVisible() and "no differentiable computation" in panel.message.text()
    assert panel.lecture_btn.isVisible()
    _assert_no_graph(panel)
    source = panel.source
    source.set_checkpoint(source.snapshot(), "tiny again", small_text)
    assert "Refresh model" not in panel.model_label.text()              # no graph of it to refresh


def test_gpt_snapshot_lays_out_steps_and_shows_attention(qtbot, small_text):
    source = _model_source("transformer", {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16}, small_text)
    panel = _panel(qtbot, source)
    panel.what.setCurrentText(MODEL)
    assert panel.text.text()                                          # a validation window was filled in
    assert panel.length.maximum() == 16                              # windows fit the context (block_size + 1)
    panel.text.setText("The king §")
    _rebuild(qtbot, panel)
    assert panel.message_bar.isVisible() and "§" in panel.message.text()
    panel.text.setText("The king and queen walk to the castle")   # longer than block_size + 1
    _rebuild(qtbot, panel)
    assert "longer than" in panel.message.text()                      # the engine's message, and what fits:
    assert "17 tokens fit: the first 17 characters, “The king and quee”" in panel.message.text()
    panel.text.setText("The king and")
    _rebuild(qtbot, panel)
    assert not panel.message_bar.isVisible(), panel.message.text()
    assert "Refresh model" not in panel.model_label.text()
    source.set_checkpoint(source.snapshot(), "tiny again", small_text)   # the model changed under the graph
    assert "Refresh model" in panel.model_label.text()
    _rebuild(qtbot, panel)
    assert "Refresh model" not in panel.model_label.text()              # the rebuilt graph is of the new model
    program = panel.program
    assert len(panel.scene.units) == len(program.nodes) and np.isfinite(panel.lay.pos).all()
    for _ in range(20):
        panel.buttons["step"].click()
    panel.buttons["fit"].click()                  # too long to fit readably: a readable zoom around the current node
    view = panel.view
    assert view.transform().m11() >= FIT_MIN and view.mapToScene(view.viewport().rect()).boundingRect().width() < \
        panel.scene.sceneRect().width()
    assert view.viewport().rect().contains(view.mapFromScene(panel.scene.unit_item(panel.current).pos()))
    panel.buttons["end"].click()
    with torch.no_grad():
        model = source.snapshot().model.double()
        ids = torch.tensor([source.snapshot().tokenizer.encode("The king and")])
        _, loss = model(ids[:, :-1], ids[:, 1:])
    assert abs(float(panel.loss_label.text().split("=")[1]) - float(loss)) < 1e-5
    att = next(n.id for n in program.nodes if n.label == "attention weights")
    panel.inspect(att)
    assert panel.inspector.head_row.isVisible()
    ticks = panel.inspector.value_view.plot.getAxis("bottom")._tickLevels[0]
    assert [t for _, t in ticks] == program.tokens
    np.testing.assert_allclose(panel.inspector.value_view.array.sum(axis=-1), 1.0)   # rows of attention


def test_long_rnn_opens_collapsed_expands_and_shows_gradient_strip(qtbot, small_text):
    source = _model_source("rnn", {"block_size": 64, "n_layer": 1, "n_embd": 8, "n_hidden": 8}, small_text)
    panel = _panel(qtbot, source)
    panel.what.setCurrentText(MODEL)
    panel.text.setText(small_text[:41])
    _rebuild(qtbot, panel)
    assert len(panel.program.nodes) > 150
    assert len(panel.scene.units) < len(panel.program.nodes) / 3       # opened collapsed
    strip = panel.strip_box
    # by default the last position's loss flows back: torch.autograd's norms, on a log axis, all at once
    qtbot.waitUntil(lambda: panel.bptt is not None, timeout=WAIT_MS)
    want = bptt_norms(source.snapshot().model, source.snapshot().tokenizer.encode(small_text[:41]), "last")
    np.testing.assert_allclose(strip.plot.norms, want.norms[0], rtol=1e-9)
    np.testing.assert_allclose(strip.plot.bar_tops(), want.norms[0], rtol=1e-9)
    assert strip.plot.getAxis("left").logMode and "position 40" in strip.plot.plotItem.titleLabel.text
    strip.loss.mode.setCurrentIndex(1)                                 # one position's loss: t = 12
    strip.loss.position.setValue(12)
    qtbot.waitUntil(lambda: panel.bptt is not None and panel.bptt.loss_at == 12, timeout=WAIT_MS)
    assert (strip.plot.norms[12:] == 0).all() and (strip.plot.norms[:12] > 0).all()
    strip.loss.mode.setCurrentIndex(2)                                 # the tape's own mean loss: filled by steps
    assert panel.strip_box.isVisible() and not panel.strip_norms().any()
    assert panel.strip_box.no_grad_note.isVisible() and not panel.strip_box.plot.isVisible()
    panel.buttons["end"].click()
    norms = panel.strip_norms()
    assert len(norms) == 40 and (norms > 0).all()
    mean = bptt_norms(source.snapshot().model, source.snapshot().tokenizer.encode(small_text[:41]), "mean")
    np.testing.assert_allclose(norms, mean.norms[0], rtol=1e-5)     # the tape (float64) agrees with autograd
    assert panel.strip_box.plot.isVisible() and not panel.strip_box.no_grad_note.isVisible()
    # with the strip, the finished counter and the loss shown, the tab still fits a 1,000 px wide window
    assert panel.minimumSizeHint().width() <= 1000
    step_group = "RNN layer 1 / RNN step 5"
    before = len(panel.scene.units)
    panel.toggle_group(step_group)
    assert len(panel.scene.units) > before and step_group not in panel.collapsed
    h5 = panel.h_by_layer[1][4]
    assert panel.scene.unit_item(h5).state == GRAD_DONE
    panel.buttons["back"].click()
    assert panel.stepper.position == panel.stepper.n_steps - 1
    minimap = panel.view.minimap              # the overview draws every unit in its state's colour, current in red
    minimap.resize(300, 80)
    minimap.render_scene()
    image = minimap.picture.toImage()
    colours = {image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())}
    assert {FILL[GRAD_DONE].name(), CURRENT.name()} <= colours
    panel.text.setText("abc§")                                    # unknown character: the tape and strip go
    _rebuild(qtbot, panel)
    assert "§" in panel.message.text()
    _assert_no_graph(panel)


def test_random_validation_window_is_short(qtbot, small_text):
    source = _model_source("transformer", {"block_size": 32, "n_layer": 1, "n_head": 2, "n_embd": 16}, small_text)
    panel = _panel(qtbot, source)
    panel.what.setCurrentText(MODEL)
    panel.length.setValue(9)
    for _ in range(3):
        panel.random_btn.click()
        text = panel.text.text().replace(NEWLINE_MARK, "\n")
        ids = source.snapshot().tokenizer.encode(text)
        assert 2 <= len(ids) <= 10 and text in small_text and "\n" not in panel.text.text()


def test_newlines_show_as_a_mark_in_the_text_box_and_reach_the_model_as_newlines(qtbot, small_text):
    source = _model_source("transformer", {"block_size": 32, "n_layer": 1, "n_head": 2, "n_embd": 16}, small_text)
    panel = _panel(qtbot, source)
    panel.what.setCurrentText(MODEL)
    start = small_text.index("\n") - 3
    panel.rng.seed(0)
    panel.source.validation_text = lambda: small_text[start:start + 12]    # every window spans the newline
    panel.length.setValue(8)
    panel.random_btn.click()
    assert NEWLINE_MARK in panel.text.text() and "\n" not in panel.text.text()   # visible in a one-line box
    _rebuild(qtbot, panel)
    tok = source.snapshot().tokenizer
    idx = next(n for n in panel.program.nodes if n.kind == "input")
    assert list(idx.value) == tok.encode(panel.text.text().replace(NEWLINE_MARK, "\n"))[:-1]
    assert tok.encode("\n")[0] in idx.value


def test_the_tab_does_not_widen_as_the_counter_grows(qtbot, small_text):
    """At the end of a model's tape the counter reads 'step 116 / 116 · backward ✓' next to the loss; beside the
    buttons that pushed a 1280-px window to 1293."""
    source = _model_source("transformer", {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16}, small_text)
    panel = _panel(qtbot, source)
    panel.what.setCurrentText(MODEL)
    panel.text.setText(small_text[:12])
    _rebuild(qtbot, panel)
    start = panel.minimumSizeHint().width()
    panel.view.centerOn(panel.scene.unit_item(panel.program.nodes[-1].id))   # the loss end of the tape
    panel.buttons["end"].click()
    assert "backward" in panel.counter.text() and panel.loss_label.text()
    assert panel.minimumSizeHint().width() <= start
    item = panel.scene.unit_item(panel.current)            # End shows where it ended: the first node's gradient
    assert panel.view.viewport().rect().contains(panel.view.mapFromScene(item.pos()))


def test_a_long_text_says_where_the_part_that_fits_ends():
    """Past 30 characters the message shows the end of the part that fits; written "…xxxx" after "the first 33
    characters", it read as the start of the text (a new user's report)."""
    from app.graph.graph_data import build_model_tape
    from engine.autodiff.bridge import TapeError
    text = "The king and queen walk to the castle gate, slowly."
    tok = build_tokenizer("char", text)
    model = build_model("transformer", {"vocab_size": tok.vocab_size, "block_size": 40, "n_layer": 1, "n_head": 1,
                                        "n_embd": 4})
    with pytest.raises(TapeError) as e:
        build_model_tape(model, tok, text)
    assert "41 tokens fit: the first 41 characters, up to “…lk to the castle gat”" in str(e.value)
