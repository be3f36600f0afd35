"""Graph tab defects: the lecture example opens whole even when built while the tab was small or hidden."""
from __future__ import annotations

from app.common.model_source import ModelSource
from app.graph.graph_view import GraphPanel

WAIT_MS = 20_000


def test_lecture_example_built_before_the_tab_is_shown_opens_whole(qtbot):
    panel = GraphPanel(ModelSource())
    qtbot.addWidget(panel)
    panel.resize(200, 150)                     # a hidden tab's placeholder size while the tape is recorded
    qtbot.waitUntil(lambda: panel.stepper is not None, timeout=WAIT_MS)
    panel.resize(1280, 800)
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.view
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(panel.scene.sceneRect()), (visible, panel.scene.sceneRect())
    panel.buttons["fit"].click()               # once the user takes the view, a resize leaves it alone
    assert not view._opening
