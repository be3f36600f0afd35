"""The worker process: pure-Python jobs (the Tokens tab's counting) run in a separate process, so their GIL is not
the GUI thread's; one process is kept for every job, a failure comes back with its message (even one whose
exception would not pickle), a process that dies is replaced, and stop_worker_process ends a running job at once."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from app.common import worker_process
from app.common.jobs import JobRunner
from app.common.worker_process import in_worker_process, stop_worker_process
from engine.errors import PlaygroundError

WAIT_MS = 60_000


class TwoArgError(PlaygroundError):
    """Its constructor takes other arguments than the args it keeps: pickle cannot rebuild it."""
    def __init__(self, path, why):
        super().__init__(f"{path}: {why}")


def raise_two_arg():
    raise TwoArgError("corpus.txt", "no words in it")


def raise_with_lock():
    e = ValueError("the count went wrong")
    e.lock = threading.Lock()      # an attribute that does not pickle
    raise e


def test_jobs_run_in_one_other_process_and_raise_what_the_function_raised():
    first = in_worker_process(os.getpid)()
    assert first != os.getpid()                         # not a thread of this process
    assert in_worker_process(os.getpid)() == first      # the process is kept, not spawned per job
    assert in_worker_process(divmod, 17, 5)() == (3, 2)
    with pytest.raises(ValueError, match="invalid literal"):
        in_worker_process(int, "seven")()


def test_an_exception_that_does_not_pickle_keeps_its_message_and_the_process():
    pid = in_worker_process(os.getpid)()
    with pytest.raises(PlaygroundError, match="^corpus.txt: no words in it$"):
        in_worker_process(raise_two_arg)()
    with pytest.raises(RuntimeError, match="ValueError: the count went wrong"):
        in_worker_process(raise_with_lock)()
    assert in_worker_process(os.getpid)() == pid        # the pool did not break over it


def test_a_process_that_dies_during_a_job_fails_it_and_the_next_job_gets_a_new_one():
    before = in_worker_process(os.getpid)()
    with pytest.raises(RuntimeError, match="worker process ended"):
        in_worker_process(os._exit, 3)()
    after = in_worker_process(os.getpid)()
    assert after not in (before, os.getpid())


def test_a_process_that_died_while_idle_is_replaced_before_the_next_job():
    pid = in_worker_process(os.getpid)()
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):                                 # until the pool has noticed
        if worker_process._pool is None or getattr(worker_process._pool, "_broken", False):
            break
        time.sleep(0.05)
    again = in_worker_process(os.getpid)()               # runs, in a new process, without a failed first try
    assert again not in (pid, os.getpid())


def test_stop_ends_a_running_job_at_once():
    in_worker_process(os.getpid)()                       # started
    outcome = []

    def run():
        try:
            outcome.append(in_worker_process(time.sleep, 120)())
        except RuntimeError as e:
            outcome.append(str(e))
    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    stop_worker_process()
    thread.join(60)
    assert not thread.is_alive() and "worker process ended" in outcome[0]
    assert in_worker_process(divmod, 7, 2)() == (3, 1)   # and the next job starts a new process


def test_through_a_job_runner_the_result_reaches_the_gui_thread(qtbot):
    runner = JobRunner()
    done, failed = [], []
    runner.run(in_worker_process(sorted, "playground"), done.append, failed.append)
    runner.run(in_worker_process(int, "x"), done.append, failed.append)
    qtbot.waitUntil(lambda: len(done) + len(failed) == 2, timeout=WAIT_MS)
    assert done == [sorted("playground")]
    assert failed and failed[0].startswith("ValueError")
    runner.wait()
