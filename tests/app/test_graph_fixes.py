"""Graph tab defects: the lecture example opens whole even when built while the tab was small or hidden."""
from __future__ import annotations

from app.common.model_source import ModelSource
from app.graph.graph_view import GraphPanel

WAIT_MS = 20_000


def test_lecture_example_built_before_the_tab_is_shown_opens_whole(qtbot):
    panel = GraphPanel(ModelSource())
    qtbot.addWidget(panel)
    panel.resize(200, 150)                     # a hidden tab's stand-in size while the tape is recorded
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    panel.resize(1280, 800)
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.view
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(panel.scene.sceneRect()), (visible, panel.scene.sceneRect())
    panel.buttons["fit"].click()               # once the user takes the view, a resize leaves it alone
    assert not view._opening


def _model_panel(qtbot, small_text):
    import torch

    from app.graph.graph_controls import MODEL
    from engine.api import ModelHandle
    from engine.models import build_model
    from engine.tokenizers import build_tokenizer
    torch.manual_seed(0)
    tok = build_tokenizer("char", small_text)
    model = build_model("lstm", {"vocab_size": tok.vocab_size, "n_layer": 1, "n_embd": 8, "n_hidden": 8}).eval()
    source = ModelSource()
    source.set_checkpoint(ModelHandle("lstm", model, tok, {}), "tiny", small_text)
    panel = GraphPanel(source)
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    panel.what.setCurrentText(MODEL)
    return panel


def test_editing_the_text_marks_the_graph_as_of_the_earlier_text(qtbot, small_text):
    panel = _model_panel(qtbot, small_text)
    panel.text.setText(small_text[:10])
    old = panel.program
    panel.build_btn.click()
    qtbot.waitUntil(lambda: panel.program is not old, timeout=WAIT_MS)
    assert "earlier text" not in panel.model_label.text()
    panel.text.setText(small_text[:10] + "x")
    assert "earlier text" in panel.model_label.text() and "press Build graph" in panel.model_label.text()
    panel.text.setText(small_text[:10])                       # back to what the graph is of
    assert "earlier text" not in panel.model_label.text()


def test_window_length_redraws_a_random_window_and_leaves_typed_text(qtbot, small_text):
    panel = _model_panel(qtbot, small_text)
    tok = panel.source.snapshot().tokenizer
    panel.random_btn.click()
    panel.length.setValue(5)
    assert len(tok.encode(panel.text.text().replace("⏎", "\n"))) == 6        # a new window: 5 inputs + target
    panel.text.setText("typed by hand")
    panel.length.setValue(7)
    assert panel.text.text() == "typed by hand"
    assert "random window" in panel.length.toolTip()


def test_end_on_a_long_tape_runs_on_a_worker_with_progress_and_cancel(qtbot, small_text, monkeypatch):
    import time

    from app.graph import stepping as graph_view
    monkeypatch.setattr(graph_view, "END_INLINE_S", 0.0)      # whatever the machine's speed: the worker path
    panel = _model_panel(qtbot, small_text)
    panel.text.setText(small_text[:30])
    old = panel.program
    panel.build_btn.click()
    qtbot.waitUntil(lambda: panel.program is not old, timeout=WAIT_MS)
    s = panel.stepper
    step = s.step
    s.step = lambda: (time.sleep(0.002), step())[1]           # slow enough that Cancel lands mid-way
    end = panel.buttons["end"]
    end.click()
    assert end.text() == "Cancel" and not panel.buttons["step"].isEnabled() and not panel.view.isInteractive()
    # nothing that would build a new graph, and so replace the stepper the worker is stepping, is enabled
    assert not any(w.isEnabled() for w in (panel.text, panel.random_btn, panel.refresh_btn, panel.lecture_btn))
    panel.show_message("a message meanwhile")                 # used to turn the step buttons back on
    assert not panel.buttons["step"].isEnabled() and not panel.buttons["back"].isEnabled()
    qtbot.waitUntil(lambda: s.position > 20, timeout=WAIT_MS)
    panel._end_progress()
    assert panel.counter.text().startswith("running to the end: step ")
    end.click()                                               # Cancel
    qtbot.waitUntil(lambda: panel._end_cancel is None, timeout=WAIT_MS)
    assert 0 < s.position < s.n_steps and end.text() == "End" and panel.buttons["back"].isEnabled()
    assert panel.counter.text().startswith(f"step {s.position} / {s.n_steps}")
    s.step = step
    end.click()                                               # and End again finishes the job
    qtbot.waitUntil(lambda: panel._end_cancel is None and s.phase == "done", timeout=WAIT_MS)
    assert panel.counter.text().endswith("✓") and panel.strip_norms().all()


def test_lecture_names_on_nodes_and_rule_symbols_tied_to_them(qtbot):
    panel = GraphPanel(ModelSource())
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    titles = {item.title for item in panel.scene.units}       # what is drawn on the nodes
    assert {"a = Linear(α)", "z = Sigmoid", "b = Linear(β)", "ŷ = Softmax", "J = CrossEntropy"} <= titles
    nodes = panel.program.nodes
    lin_beta = next(n.id for n in nodes if n.label == "Linear(β)")
    while not (panel.stepper.history and panel.stepper.history[-1].node_id == lin_beta
               and panel.stepper.history[-1].phase == "backward"):
        panel.buttons["step"].click()
    text = panel.sentence.text()
    assert "g_a = g_b ω" in text and "in this rule a = z, ω = β, b = this node (b)" in text
    assert "outer product" in text                           # the row-vector convention, on a 1-D example


def test_constants_do_not_promise_a_gradient(qtbot):
    panel = GraphPanel(ModelSource())
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    y = next(n for n in panel.program.nodes if n.label == "y")
    x = next(n for n in panel.program.nodes if n.label == "x")
    assert "accumulates" not in y.bwd_rule and "constant" in y.bwd_rule
    assert "accumulates" in x.bwd_rule                        # the lecture's x does collect g_x
    panel.buttons["end"].click()
    panel.inspect(y.id)
    shown = panel.inspector.rules.text() + panel.inspector.grad_view.header.text()
    assert "accumulates" not in shown and "constant" in shown


def test_layernorm_hat_is_spelled_out_in_every_place_a_rule_shows():
    from app.graph.rule_text import readable
    from engine.autodiff.transformer_ops import LayerNorm
    rule = LayerNorm().bwd_rule
    assert "\u0302" in rule and "\u0302" not in readable(rule) and "x^" in readable(rule)


def test_lecture_examples_open_whole_and_legible_in_a_1280x800_window(qtbot, window):
    """At 1280×800 the graph view is about 530 px wide: the lecture chain (six columns) needed zoom 0.39 to fit,
    below the legible FIT_MIN, so CrossEntropy opened off the right edge. It now folds into bands and opens whole
    at a readable zoom; at 1600×1000 it fits unfolded, and a resize unfolds it again."""
    from app.graph.graph_controls import FANOUT, LECTURE
    from app.graph.graph_layout import READABLE
    window.resize(1280, 800)
    window.tabs.setCurrentWidget(window.graph_panel)
    panel = window.graph_panel
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    view = panel.view
    for example in (LECTURE, FANOUT):
        old = panel.program
        panel.what.setCurrentText(example)
        if panel.program is old:
            panel.build_btn.click()
        qtbot.waitUntil(lambda: panel.program is not old, timeout=WAIT_MS)
        qtbot.wait(50)
        visible = view.mapToScene(view.viewport().rect()).boundingRect()
        assert visible.contains(panel.scene.sceneRect()), (example, visible, panel.scene.sceneRect())
        assert view.transform().m11() >= 0.95 * READABLE, (example, view.transform().m11())
        ys = sorted({round(float(y)) for y in panel.lay.pos[:, 1]})
        assert ys[-1] - ys[0] > 150, "folded into more than one band"
    window.resize(1600, 1000)                        # wide enough: one band again, still whole
    qtbot.waitUntil(lambda: float(panel.lay.pos[:, 1].max() - panel.lay.pos[:, 1].min()) < 150, timeout=WAIT_MS)
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(panel.scene.sceneRect())


def test_folding_keeps_each_box_in_one_band_and_leaves_big_graphs_alone():
    import numpy as np

    from app.graph.graph_data import record_and_layout
    from app.graph.graph_layout import COL_STEP, FOLD_MAX_UNITS, GraphSpec, layout
    from engine.autodiff.lecture import lecture_fanout_example
    program, spec, collapsed, wide = record_and_layout(lecture_fanout_example)
    narrow = layout(spec, collapsed, view_width=400)
    assert narrow.pos[:, 0].max() < wide.pos[:, 0].max()           # fewer columns across
    assert len(np.unique(narrow.pos, axis=0)) == len(narrow.pos)     # no two units on one spot
    members = np.flatnonzero(np.array(spec.groups) == "a")
    band_y = narrow.pos[narrow.unit_of[members], 1]
    assert band_y.max() - band_y.min() < 2 * 62 + 1                  # the box "a" stays in one band
    assert layout(spec, collapsed, view_width=5000).pos.tolist() == wide.pos.tolist()
    chain = GraphSpec(tuple(() if i == 0 else (i - 1,) for i in range(FOLD_MAX_UNITS + 1)),
                      (True,) + (False,) * FOLD_MAX_UNITS, ("",) * (FOLD_MAX_UNITS + 1))
    long = layout(chain, view_width=400)
    assert long.pos[:, 0].max() == FOLD_MAX_UNITS * COL_STEP         # a model-sized tape stays one strip


def test_choosing_a_lecture_example_shows_it_at_once(qtbot):
    """Choosing the fan-out example under Show left the previous graph on screen, unmarked, until Build graph."""
    from app.graph.graph_controls import FANOUT, LECTURE
    panel = GraphPanel(ModelSource())
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    for example, modules in ((FANOUT, 7), (LECTURE, 5)):
        old = panel.program
        panel.what.setCurrentText(example)
        qtbot.waitUntil(lambda: panel.program is not old, timeout=WAIT_MS)
        assert panel.stepper.n_forward == modules, (example, panel.stepper.n_forward)
