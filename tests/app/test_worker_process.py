"""in_worker_process: pure-Python jobs (the Tokens tab's counting) run in a separate process, so their GIL is not
the GUI thread's; one process is kept for every job, a failure comes back as the job's error, and a process that
dies is replaced by the next job."""
from __future__ import annotations

import os

import pytest

from app.common import jobs
from app.common.jobs import JobRunner, in_worker_process

WAIT_MS = 60_000


def test_jobs_run_in_one_other_process_and_raise_what_the_function_raised():
    first = in_worker_process(os.getpid)()
    assert first != os.getpid()                         # not a thread of this process
    assert in_worker_process(os.getpid)() == first      # the process is kept, not spawned per job
    assert in_worker_process(divmod, 17, 5)() == (3, 2)
    with pytest.raises(ValueError, match="invalid literal"):
        in_worker_process(int, "seven")()


def test_a_dead_process_fails_its_job_and_the_next_job_gets_a_new_one():
    before = in_worker_process(os.getpid)()
    with pytest.raises(RuntimeError, match="worker process ended"):
        in_worker_process(os._exit, 3)()
    after = in_worker_process(os.getpid)()
    assert after not in (before, os.getpid())
    assert jobs._pool is not None


def test_through_a_job_runner_the_result_reaches_the_gui_thread(qtbot):
    runner = JobRunner()
    done, failed = [], []
    runner.run(in_worker_process(sorted, "playground"), done.append, failed.append)
    runner.run(in_worker_process(int, "x"), done.append, failed.append)
    qtbot.waitUntil(lambda: len(done) + len(failed) == 2, timeout=WAIT_MS)
    assert done == [sorted("playground")]
    assert failed and failed[0].startswith("ValueError")
    runner.wait()
