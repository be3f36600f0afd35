"""JobRunner.run_latest: one job at a time per lane, the newest waiting request replacing older ones (the Graph
tab records one tape at a time: two pure-Python recordings at once made the GUI thread wait for the GIL at every
call into Python while it drew the scene)."""
from __future__ import annotations

import threading

from app.common.jobs import JobRunner

WAIT_MS = 10_000


def test_a_lane_runs_one_job_at_a_time_and_the_newest_waiting_request_wins(qtbot):
    runner = JobRunner()
    release = threading.Event()
    running, done, failed = [], [], []

    def job(name, block=False):
        def fn():
            running.append(name)
            if block:
                assert release.wait(5)
            if name == "bad":
                raise ValueError("no tape")
            return name
        return fn

    runner.run_latest("tape", job("a", block=True), done.append, failed.append)
    qtbot.waitUntil(lambda: running == ["a"], timeout=WAIT_MS)
    runner.run_latest("tape", job("b"), done.append, failed.append)      # waits for a ...
    runner.run_latest("tape", job("c"), done.append, failed.append)      # ... and replaces b
    assert runner.busy("tape") and not runner.busy("other")
    qtbot.wait(100)
    assert running == ["a"]                               # nothing started beside a
    release.set()
    qtbot.waitUntil(lambda: done == ["a", "c"], timeout=WAIT_MS)
    assert running == ["a", "c"]                          # b never ran
    qtbot.waitUntil(lambda: not runner.busy("tape"), timeout=WAIT_MS)
    # a failure ends its turn too: the waiting request still runs
    release.clear()
    runner.run_latest("tape", job("bad", block=True), done.append, failed.append)
    runner.run_latest("tape", job("d"), done.append, failed.append)
    release.set()
    qtbot.waitUntil(lambda: done[-1:] == ["d"], timeout=WAIT_MS)
    assert len(failed) == 1 and failed[0].endswith("no tape")
    runner.wait()


def test_a_job_ended_by_a_base_exception_still_frees_its_lane(qtbot):
    class Abort(BaseException):
        pass

    def abort():
        raise Abort("stopped")

    runner = JobRunner()
    done, failed = [], []
    runner.run_latest("tape", abort, done.append, failed.append)
    runner.run_latest("tape", lambda: "next", done.append, failed.append)
    qtbot.waitUntil(lambda: done == ["next"], timeout=WAIT_MS)
    assert len(failed) == 1 and "stopped" in failed[0] and not runner.busy("tape")
    runner.wait()


def test_other_lanes_and_plain_jobs_are_not_held_back(qtbot):
    runner = JobRunner()
    release = threading.Event()
    done = []
    runner.run_latest("tape", lambda: release.wait(5) and "tape", done.append, done.append)
    runner.run_latest("check", lambda: "check", done.append, done.append)
    runner.run(lambda: "plain", done.append, done.append)
    qtbot.waitUntil(lambda: sorted(done) == ["check", "plain"], timeout=WAIT_MS)
    release.set()
    qtbot.waitUntil(lambda: len(done) == 3, timeout=WAIT_MS)
    runner.wait()
