"""The app's worker process: pure-Python jobs run there, not on a thread of the window's process.

Why: a thread running pure Python (counting a word tokenizer's words, say) holds the GIL, and every call from Qt
into Python on the GUI thread (a table cell's data, a timer's slot) waits up to a switch interval for it. A repaint
makes hundreds of such calls, so the window froze for 120-370 ms when the Tokens tab's result arrived
(bench/gui_stalls.py tokens_word_result). In another process that work has a GIL of its own.

No Qt here, by design: the worker process imports this module (to run `_call`) and should load only what the job
needs (engine.tokenizers and numpy for the Tokens tab: no torch, no Qt).
"""
from __future__ import annotations

import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from engine.errors import PlaygroundError

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_stops = 0   # how many times stop_worker_process ran: a job made before a stop never starts after it
DIED = "the worker process ended without an answer (out of memory, or stopped)"


def in_worker_process(fn: Callable, *args, **kwargs) -> Callable[[], object]:
    """A job (for app.common.jobs.JobRunner.run) that calls `fn(*args, **kwargs)` in the worker process and
    returns its result. `fn` is a module-level function; it, its arguments and its result must pickle (a lambda
    is refused with pickle's own message). The process is started at the first job (spawn, not fork: Qt's and
    torch's threads do not survive a fork; about 0.2 s, plus the job's own imports once) and kept for the next.

    The thread that runs the job waits without the GIL, except while the arguments are pickled and the result
    unpickled, in C: about 70 ms for a 30-million-character corpus.

    Raises what `fn` raised, with its message (re-raised as a PlaygroundError, or a RuntimeError naming its
    type, when the exception itself would not pickle); RuntimeError when the process died or was stopped
    (`stop_worker_process`). A process found dead before the job was handed over is replaced at once."""
    made = _stops

    def job():
        for attempt in (1, 2):
            pool = _worker_pool(made)
            try:
                future = pool.submit(_call, fn, args, kwargs)
            except BrokenProcessPool:   # died while idle: the job never reached it, so a new one may run it
                _forget(pool)
                if attempt == 2:
                    raise RuntimeError(DIED) from None
                continue
            except RuntimeError:        # shut down by stop_worker_process since _worker_pool
                raise RuntimeError(DIED) from None
            try:
                return future.result()
            except BrokenProcessPool:
                _forget(pool)
                raise RuntimeError(DIED) from None
    return job


def stop_worker_process() -> None:
    """End the worker process now, whatever it is doing: a running job fails at once (RuntimeError) instead of
    being waited for (a BPE count of a 30 MB corpus took about a minute), and so does a job made before this call
    that has not reached the process yet. A job made after it starts a new process."""
    global _pool, _stops
    with _pool_lock:
        _stops += 1
        pool, _pool = _pool, None
    if pool is None:
        return
    terminate = getattr(pool, "terminate_workers", None)   # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _worker_pool(made: int) -> ProcessPoolExecutor:
    """The running pool, started if need be, for a job made when `_stops` was `made` (RuntimeError: it was
    stopped since, so it must not start a new process)."""
    global _pool
    with _pool_lock:
        if _stops != made:
            raise RuntimeError(DIED)
        if _pool is None:
            _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def _forget(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None


def _call(fn: Callable, args: tuple, kwargs: dict):
    """Runs in the worker process. An exception that would not survive the trip back (a class whose constructor
    takes other arguments than its args, an attribute that does not pickle) would otherwise break the pool and
    lose its message; it goes back as one that does."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        try:
            pickle.loads(pickle.dumps(e))
        except Exception:
            if isinstance(e, PlaygroundError):
                raise PlaygroundError(str(e)) from None
            raise RuntimeError(f"{type(e).__name__}: {e}") from None
        raise
