"""Execution intervals, API state sequences and each checker's finding on synthesized
histories (built with :mod:`synthesized`; nothing here was recorded from a cluster)."""

from __future__ import annotations

import math

import pandas as pd
from synthesized import T0, Synth, synthesized_repetition
from test_checker import clean_story

from harness.check.checkers import (
    check_duplicates,
    check_lost,
    check_overlaps,
    check_repetition,
    check_state_regressions,
    check_stuck,
    check_zombie_false_positives,
    finding_line,
)
from harness.check.executions import check_executions
from harness.check.history import (
    executions,
    fault_windows,
    observed_until,
    task_states,
    victim,
)

LONG = ("ha_bench_long", "long", "long_sleep")


def synthesized_long_run(s: Synth, run: str = "long", *, final: str = "success") -> None:
    """API events of one ha_bench_long run: queued, running try 1, then ``final``."""
    dag, _, task = LONG
    s.trigger(0.0, dag, run)
    s.run_state(0.5, dag, run, "running")
    s.task_state(0.5, dag, run, task, "queued", 1)
    s.task_state(1.0, dag, run, task, "running", 1)
    if final:
        s.task_state(30.0, dag, run, task, final, 1)
        s.run_state(30.1, dag, run, final)


# --- history -----------------------------------------------------------------------------


def test_synthesized_executions_have_start_last_alive_end_and_replica() -> None:
    s = Synth()
    s.execution(*LONG, 1, 1.0, 9.0, replica="worker-0", pid=11)  # heartbeats at 3, 5, 7
    s.execution(*LONG, 2, 10.0, alive_until=16.5, replica="worker-1", pid=12)  # killed
    s.row(20.0, "start", *LONG, 3, 13, "worker-0")
    s.row(20.5, "defer", *LONG, 3, 13, "worker-0")
    s.row(31.0, "resume", *LONG, 3, 13, "worker-0")  # the same pid again: a new execution
    s.row(31.1, "end", *LONG, 3, 13, "worker-0")
    ex = executions(s.ledger)
    assert [(e.try_number, e.pid, e.outcome, e.started) for e in ex] == [
        (1, 11, "end", True), (2, 12, None, True), (3, 13, "defer", True),
        (3, 13, "end", False),
    ]  # fmt: skip
    first, killed, deferred, resumed = ex
    assert (first.start, first.last_alive, first.end) == (T0 + 1, T0 + 9, T0 + 9)
    assert first.heartbeats == 3 and first.heartbeat_s == 2.0 and first.replica == "worker-0"
    assert killed.end is None and killed.last_alive == T0 + 16.0 and killed.heartbeats == 3
    assert deferred.last_alive == T0 + 20.5 and resumed.start == T0 + 31.0
    assert first.cite()["celery_task_id"] == "celery-long-long_sleep-1"


def test_old_ledger_rows_without_t_mono_or_heartbeats() -> None:
    rows = [{"phase": p, "dag_id": "d", "run_id": "r", "task_id": "t", "map_index": None,
             "try_number": 1, "pid": 7, "hostname": "h", "t_wall": t}
            for p, t in (("start", 1.0), ("end", 2.0))]  # fmt: skip
    (e,) = executions(rows)
    assert (e.map_index, e.start, e.end, e.start_mono, e.replica) == (-1, 1.0, 2.0, None, None)


def test_synthesized_states_faults_victim_and_window() -> None:
    s = synthesized_repetition()
    df = s.frame()
    states = task_states(df)
    victim_key = ("ha_bench_long", "victim", "long_sleep", -1)
    assert [(o.state, o.try_number) for o in states[victim_key]] == [
        ("queued", 1), ("running", 1), ("success", 1)
    ]  # fmt: skip
    (pause,) = fault_windows(df)  # the resume closes the pause's window
    assert (pause.op, pause.target, pause.held) == ("pause", "worker-0", True)
    assert (pause.start, pause.end) == (T0 + 14.0, T0 + 22.05)
    assert victim(df)["run_id"] == "victim"
    assert observed_until(df) == T0 + 38.1


# --- each checker ------------------------------------------------------------------------


def test_lost_cites_the_run_its_tasks_and_times() -> None:
    s = Synth()
    s.short_run(0.0, "ok")
    s.short_run(10.0, "lost")
    s.ledger = [r for r in s.ledger if not (r["run_id"] == "lost" and r["task_id"] == "step_2"
                                            and r["phase"] == "end")]  # fmt: skip
    r = check_lost(s.frame(), s.ledger)
    assert r.valid is False
    (f,) = r.details["findings"]
    assert (f["kind"], f["run"], f["tasks"]) == (
        "lost_run", "ha_bench_short/lost", ["ha_bench_short/lost/step_2#1"]
    )  # fmt: skip
    assert f["acknowledged_at"] == T0 + 10.02 and f["run_state"] == "success"
    assert "ha_bench_short/lost" in f["message"]
    assert check_lost(s.frame(), s.ledger, expect_lost=True).valid is True


def test_lost_is_unknown_for_an_unfinished_run() -> None:
    s = Synth()
    synthesized_long_run(s, final="")
    s.execution(*LONG, 1, 1.2, alive_until=20.0)
    r = check_lost(s.frame(), s.ledger)
    assert r.valid is None and r.details["stuck_runs"] == 1 and r.details["findings"] == []


def test_same_try_twice_on_two_workers() -> None:
    s = Synth()
    synthesized_long_run(s)
    s.execution(*LONG, 1, 1.2, 29.0, replica="worker-0", pid=11)
    s.execution(*LONG, 1, 1.4, 29.5, replica="worker-1", pid=21)  # the message redelivered
    r = check_duplicates(s.frame(), s.ledger)
    assert r.valid is False
    assert r.details["duplicate_starts"] == 1 and r.details["duplicate_ends"] == 1
    same, ended = r.details["findings"]
    assert (same["kind"], same["task"], same["try_number"]) == (
        "same_try_twice", "ha_bench_long/long/long_sleep", 1
    )  # fmt: skip
    assert {(e["pid"], e["replica"]) for e in same["executions"]} == {
        (11, "worker-0"), (21, "worker-1")
    }  # fmt: skip
    assert ended["kind"] == "ended_twice" and ended["tries"] == [1, 1]
    assert check_duplicates(s.frame(), s.ledger, expect_duplicates=True).valid is True


def test_overlap_of_a_zombie_and_its_retry() -> None:
    """worker-0 paused 5..40 s: the scheduler gives up on try 1 and runs try 2 on worker-1;
    the resumed try 1 keeps running (heartbeats from 40 s) while try 2 still runs."""
    s = Synth()
    s.execution(*LONG, 1, 1.0, 60.0, replica="worker-0", pid=11, paused=(5.0, 40.0))
    s.execution(*LONG, 2, 35.0, 95.0, replica="worker-1", pid=21)
    r = check_overlaps(s.ledger)
    assert r.valid is False
    (f,) = r.details["findings"]
    assert f["tries"] == [1, 2] and f["clock"] == "monotonic"
    assert math.isclose(f["overlap_s"], 25.0) and f["from"] == T0 + 35.0
    assert "pid 11@vm (worker-0)" in f["message"] and "pid 21@vm (worker-1)" in f["message"]
    assert check_overlaps(s.ledger, expect_duplicates=True).valid is True


def test_no_overlap_for_a_killed_try_and_its_retry_or_a_deferral() -> None:
    s = Synth()
    s.execution(*LONG, 1, 1.0, alive_until=10.0, pid=11)  # killed after its 9 s heartbeat
    s.execution(*LONG, 2, 30.0, 90.0, replica="worker-1", pid=21)
    s.row(100.0, "start", "ha_bench_deferrable", "d", "wait", 1, 31, "worker-0")
    s.row(100.1, "defer", "ha_bench_deferrable", "d", "wait", 1, 31, "worker-0")
    s.row(110.0, "resume", "ha_bench_deferrable", "d", "wait", 1, 41, "worker-1")
    s.row(110.1, "end", "ha_bench_deferrable", "d", "wait", 1, 41, "worker-1")
    assert check_overlaps(s.ledger).valid is True
    assert check_duplicates(pd.DataFrame(), s.ledger).valid is True  # a resume is no rerun


def test_overlap_across_hosts_uses_the_wall_clock() -> None:
    s = Synth()
    s.execution(*LONG, 1, 1.0, 20.0, pid=11)
    s.execution(*LONG, 2, 10.0, 30.0, pid=11)
    for r in s.ledger[len(s.ledger) // 2 :]:
        r["hostname"] = "other"
    (f,) = check_overlaps(s.ledger).details["findings"]
    assert f["clock"] == "wall" and math.isclose(f["overlap_s"], 10.0)


def test_zombie_false_positive() -> None:
    s = Synth()
    synthesized_long_run(s, final="failed")  # the API: try 1 failed at 30 s
    s.execution(*LONG, 1, 1.2, 29.0, pid=11)  # the ledger: try 1 ended normally at 29 s
    r = check_zombie_false_positives(s.frame(), s.ledger)
    assert r.valid is False
    (f,) = r.details["findings"]
    assert (f["try_number"], f["api_state"], f["reported_at"], f["ended_at"]) == (
        1, "failed", T0 + 30.0, T0 + 29.0
    )  # fmt: skip
    assert f["executions"][0]["pid"] == 11
    # a try that failed without ending normally is a true positive
    s.ledger = [r for r in s.ledger if r["phase"] != "end"]
    assert check_zombie_false_positives(s.frame(), s.ledger).valid is True


def test_stuck_queued_and_running_within_the_observed_window() -> None:
    s = Synth()
    dag, _, task = LONG
    s.trigger(0.0, dag, "q")
    s.task_state(1.0, dag, "q", task, "queued", 1)  # queued until the end of observation
    s.trigger(0.0, dag, "ok")
    s.task_state(1.0, dag, "ok", task, "queued", 1)
    s.task_state(100.0, dag, "ok", task, "running", 1)  # queued 99 s: under the bound
    s.task_state(150.0, dag, "ok", task, "success", 1)
    s.run_state(150.1, dag, "ok", "success")
    s.event(200.0, "workload", event="drain", phase="info", outstanding=1)
    r = check_stuck(s.frame(), s.ledger)
    assert r.valid is False
    (f,) = r.details["findings"]
    assert (f["task"], f["state"], f["still_at_end"]) == (
        "ha_bench_long/q/long_sleep", "queued", True
    )  # fmt: skip
    assert math.isclose(f["for_s"], 199.0) and "no ledger execution" in f["message"]
    assert check_stuck(s.frame(), s.ledger, stuck_after_s=250).valid is True
    assert len(check_stuck(s.frame(), s.ledger, stuck_after_s=60).details["findings"]) == 2


def test_stuck_running_cites_the_ledger_last_alive() -> None:
    s = Synth()
    synthesized_long_run(s, final="")
    s.execution(*LONG, 1, 1.2, alive_until=20.0, pid=11)  # paused/killed: alive until 19.2
    s.event(300.0, "workload", event="drain", phase="info", outstanding=1)
    (f,) = check_stuck(s.frame(), s.ledger).details["findings"]
    assert f["state"] == "running" and f["ledger_last_alive"] == T0 + 19.2
    assert f["executions"][0]["pid"] == 11


def test_state_regressions() -> None:
    dag, run, task = LONG
    s = Synth()
    for t, state, try_number in ((1, "running", 1), (2, "queued", 1), (3, "running", 1)):
        s.task_state(t, dag, run, task, state, try_number)
    r = check_state_regressions(s.frame())
    assert r.valid is False
    (f,) = r.details["findings"]
    assert f["kind"] == "running_to_queued" and f["before"]["state"] == "running"
    assert f["after"] == {"state": "queued", "try_number": 1, "t_wall": T0 + 2}

    s = Synth()  # a deferral seen, or one the poll missed but the ledger shows: no finding
    for t, state in ((1, "running"), (2, "deferred"), (3, "scheduled"), (4, "running")):
        s.task_state(t, dag, "a", task, state, 1)
    for t, state in ((1, "running"), (3, "scheduled"), (4, "running")):
        s.task_state(t, dag, "b", task, state, 1)
    s.row(1.0, "start", dag, "b", task, 1, 11, "worker-0")
    s.row(1.1, "defer", dag, "b", task, 1, 11, "worker-0")
    assert check_state_regressions(s.frame(), s.ledger).valid is True

    s = Synth()
    for t, try_number in ((1, 2), (2, 1)):
        s.task_state(t, dag, run, task, "queued", try_number)
    (f,) = check_state_regressions(s.frame()).details["findings"]
    assert f["kind"] == "try_decreased"

    s = Synth()  # 1 -> 3: try 2 seen nowhere: unknown; with try 2 in the ledger: fine
    for t, try_number in ((1, 1), (2, 3)):
        s.task_state(t, dag, run, task, "up_for_retry" if t == 1 else "running", try_number)
    r = check_state_regressions(s.frame())
    assert r.valid is None and r.details["findings"][0]["skipped"] == [2]
    s.execution(*LONG, 2, 1.2, 1.8, pid=11)
    assert check_state_regressions(s.frame(), s.ledger).valid is True


# --- composed ----------------------------------------------------------------------------


def test_check_repetition_means_what_check_executions_means() -> None:
    s = clean_story()  # check_executions' own planted histories (no t_mono in the ledger)
    for ledger in (s.ledger, [*s.ledger, dict(s.ledger[0], pid=2)], s.ledger[:-1], []):
        old = check_executions(s.frame(), ledger)
        new = check_repetition(s.frame(), ledger)
        assert new.valid is old.valid
        for key in ("lost_runs", "duplicate_starts", "duplicate_ends", "stuck_runs",
                    "acknowledged", "succeeded_runs"):  # fmt: skip
            assert new.details[key] == old.details[key], key
        assert bool(new.problems) == bool(old.problems)


def test_synthesized_repetition_is_valid_and_a_planted_overlap_is_found() -> None:
    s = synthesized_repetition()
    r = check_repetition(s.frame(), s.ledger)
    assert r.valid is True and r.problems == [] and r.details["findings"] == []
    assert set(r.details) >= {"lost", "duplicates", "overlaps", "zombie_false_positives",
                              "stuck", "state_regressions"}  # fmt: skip
    # worker-1 runs the victim's try 1 as well while worker-0 is paused
    s.execution("ha_bench_long", "victim", "long_sleep", 1, 16.0, 30.0, replica="worker-1",
                pid=9999)  # fmt: skip
    r = check_repetition(s.frame(), s.ledger)
    assert r.valid is False
    kinds = {(f["check"], f["kind"]) for f in r.details["findings"]}
    assert kinds == {("duplicates", "same_try_twice"), ("duplicates", "ended_twice"),
                     ("overlaps", "overlap")}  # fmt: skip
    assert r.details["duplicate_starts"] == 1 and r.details["overlapping_executions"] == 1
    assert r.details["overlaps"]["valid"] is False
    assert r.details["state_regressions"] == 0 and r.details["zombie_false_positives"] == 0
    assert r.details["checks"]["state_regressions"]["valid"] is True
    assert any(p.startswith("overlaps: ") for p in r.problems)
    lines = [finding_line(f) for f in r.details["findings"]]
    assert any("overlaps/overlap: ha_bench_long/victim/long_sleep" in x and "9999" in x
               for x in lines)  # fmt: skip
    expected = check_repetition(s.frame(), s.ledger, expect_duplicates=True)
    assert expected.valid is True and len(expected.details["findings"]) == 3


def test_fault_windows_kill_and_an_unfinished_hold() -> None:
    s = Synth()
    s.fault(1.0, 1.2, "kill", "worker-0", 1)
    s.fault(5.0, 5.1, "stop_service", "postgres", 2)  # never started again
    s.marker(20.0, "run_end")
    kill, stop = fault_windows(s.frame())
    assert (kill.op, kill.start, kill.end, kill.held) == ("kill", T0 + 1.0, T0 + 1.2, False)
    assert (stop.label, stop.end, stop.held) == ("stop_service postgres", T0 + 20.0, True)
