"""Keeping Python's full garbage collections short, so that none freezes the window.

A generation-2 collection walks every container object alive, holding the GIL, in whichever thread happens to
trigger it. Once torch, numpy, Qt, pyqtgraph and the window are loaded that is 220,000-350,000 objects and 70-190 ms
on the project's 2-core machine: a freeze of the GUI thread at a random moment, in bench/gui_stalls.py during a Graph
build (found with gc.callbacks timing each collection). Almost all of those objects live as long as the app (modules,
classes, functions, the widgets' wrappers), so they are collected once and then frozen (gc.freeze, Python 3.7+):
later collections only walk what was made since.
"""
from __future__ import annotations

import gc

_frozen = False


def freeze_startup_objects() -> bool:
    """Collect once, then move every object alive now into the collector's permanent generation, which no
    collection walks again (their memory is still freed when their reference count drops to zero). Once per
    process: later calls do nothing and return False, so a second window (or a test's) cannot freeze the first
    one's garbage. Takes one full collection, ~0.1-0.2 s, so call it once the window is up."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    return True
