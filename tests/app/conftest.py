import gc
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists

import pytest


@pytest.fixture(autouse=True)
def collect_qt_garbage():
    """Free each test's windows right after it, once qtbot has closed them and their threads have ended.
    Otherwise Python's cycle collector frees them at some later moment, in the middle of another test whose
    worker thread is running; one CI run aborted in exactly that spot (a collection during the worker-batching
    test, right after the run_gui test) and it could not be reproduced in 30 runs since."""
    yield
    gc.collect()
