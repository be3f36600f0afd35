import gc
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists

import pytest


@pytest.fixture(autouse=True)
def collect_qt_garbage():
    """Free each test's windows in one full collection right after it, once qtbot has closed them.
    Left to the generational collector, a discarded window can be freed piecemeal in the middle of a later test:
    some pyqtgraph/QGraphics items go before their scene, and the scene's next posted event calls into a dead
    item (seen under gdb: a pure virtual call in QGraphicsItemPrivate::effectiveBoundingRect; the settings,
    run_gui and worker-batching tests together crashed 13 times in 25 without this, 0 in 20 with it)."""
    yield
    gc.collect()
