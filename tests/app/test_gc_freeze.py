"""The objects alive once the window is up are frozen out of the garbage collector's walks, once per process: a
full collection over ~350,000 startup objects held the GIL for 100-190 ms, a freeze of the GUI thread."""
from __future__ import annotations

import gc
import weakref

from app.window import gc_freeze


class Node:
    def __init__(self):
        self.me = self        # a reference cycle: only the collector could free it


def test_objects_alive_at_the_freeze_are_never_walked_again_and_it_happens_once(monkeypatch):
    monkeypatch.setattr(gc_freeze, "_frozen", False)
    startup = [Node() for _ in range(100)]
    marker = startup[0]
    garbage = weakref.ref(Node())                   # unreachable already: collected first, not frozen
    assert garbage() is not None and any(o is marker for o in gc.get_objects())
    frozen_before = gc.get_freeze_count()
    assert gc_freeze.freeze_startup_objects()
    assert garbage() is None
    assert not any(o is marker for o in gc.get_objects())   # no collection walks it any more
    assert gc.get_freeze_count() >= frozen_before + 100
    made_later = Node()
    assert any(o is made_later for o in gc.get_objects())   # what comes later is collected as before
    assert not gc_freeze.freeze_startup_objects()            # a second window does not freeze again


def test_showing_the_main_window_freezes(qtbot, settings, monkeypatch):
    calls = []
    monkeypatch.setattr("app.main_window.freeze_startup_objects", lambda: calls.append(1))
    from app.main_window import MainWindow
    w = MainWindow(settings)
    qtbot.addWidget(w)
    assert calls == []
    w.show()
    assert calls
    w.shutdown_run()
