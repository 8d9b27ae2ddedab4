"""Figures of one repetition on hand-built histories: scheduling, victim, health, faults."""

import pytest

from harness.analysis.figures import (
    dag_run_latency,
    fault_details,
    health_unhealthy,
    scheduling_latency,
    task_start_gaps,
    victim_figures,
)
from harness.core.airflow_api import HEALTH
from harness.core.history import events_frame


def _trigger(run_id, t):
    return {"t_wall": t, "t_mono": t, "type": "workload", "event": "trigger", "phase": "ok",
            "dag_id": "d", "run_id": run_id}  # fmt: skip


def _start(run_id, t, task="a"):
    return {"phase": "start", "run_id": run_id, "dag_id": "d", "task_id": task,
            "try_number": 1, "t_wall": t}  # fmt: skip


def test_scheduling_resumes_only_for_runs_triggered_after_the_fault():
    history = events_frame([_trigger("r1", 10.0), _trigger("r2", 12.0), _trigger("r3", 21.0)])
    ledger = [_start("r1", 12.0), _start("r2", 13.5), _start("r2", 14.0, "b"),
              _start("r3", 30.0)]  # fmt: skip
    figures = scheduling_latency(history, ledger, fault_wall=20.0)
    assert figures["scheduling_resumed_s"] == pytest.approx(10.0)
    assert figures["start_latency_before_max_s"] == pytest.approx(2.0)
    assert figures["start_latency_before_p50_s"] == pytest.approx(1.75)


def test_runs_caught_by_the_fault_do_not_inflate_the_baseline():
    history = events_frame([_trigger("r1", 10.0), _trigger("r2", 19.0), _trigger("r3", 21.0)])
    ledger = [_start("r1", 11.0), _start("r2", 28.0), _start("r3", 28.0)]
    figures = scheduling_latency(history, ledger, fault_wall=20.0)
    assert figures["start_latency_before_max_s"] == pytest.approx(1.0)
    assert figures["scheduling_resumed_s"] == pytest.approx(8.0)


def test_scheduling_latency_without_runs_after_the_fault_is_unknown():
    history = events_frame([_trigger("r1", 10.0)])
    figures = scheduling_latency(history, [_start("r1", 11.0)], fault_wall=20.0)
    assert figures["scheduling_resumed_s"] is None


def test_dag_run_latency_from_trigger_ack_to_terminal_state():
    def state(run_id, t, s):
        return {"t_wall": t, "t_mono": t, "type": "workload", "event": "run_state",
                "run_id": run_id, "state": s}  # fmt: skip

    history = events_frame([
        _trigger("r1", 1.0), _trigger("r2", 2.0), _trigger("r3", 3.0),
        state("r1", 2.0, "running"), state("r1", 5.0, "success"),
        state("r2", 9.0, "failed"), state("r3", 4.0, "running"),
    ])  # fmt: skip
    figures = dag_run_latency(history)
    assert figures["dag_runs_acknowledged"] == 3
    assert figures["dag_runs_finished"] == 2
    assert figures["dag_run_latency_p50_s"] == pytest.approx(5.5)


def test_task_start_gaps_split_at_the_fault():
    ledger = [_start("r", t) for t in (1.0, 2.0, 3.0, 10.0, 11.0)]
    gaps = task_start_gaps(ledger, fault_wall=4.0)
    assert gaps == {"task_start_gap_before_s": 1.0, "task_start_gap_after_s": 7.0}


def test_downtime_counts_only_outages_from_the_fault_on():
    import pandas as pd

    from harness.analysis.figures import _split_at

    windows = pd.DataFrame(
        {"start_mono": [1.0, 9.0, 12.0], "end_mono": [2.0, 11.0, 13.0],
         "start_wall": [101.0, 109.0, 112.0], "end_wall": [102.0, 111.0, 113.0]}
    )  # fmt: skip
    windows["duration_s"] = windows["end_mono"] - windows["start_mono"]
    after, before = _split_at(windows, 10.0)
    assert list(after["duration_s"]) == [1.0, 1.0]
    assert after["start_wall"].iloc[0] == 110.0
    assert list(before["duration_s"]) == [1.0, 1.0]
    assert before["end_wall"].iloc[1] == 110.0


def _task_state(t, state, run_id="v", task_id="long", try_number=1):
    return {"t_wall": t, "t_mono": t, "type": "workload", "event": "task_state",
            "dag_id": "d", "run_id": run_id, "task_id": task_id, "state": state,
            "try_number": try_number}  # fmt: skip


def _row(phase, t, try_number=1, run_id="v", task_id="long"):
    return {"phase": phase, "dag_id": "d", "run_id": run_id, "task_id": task_id,
            "try_number": try_number, "t_wall": t, "replica": "worker-1"}  # fmt: skip


VICTIM = {"dag_id": "d", "run_id": "v", "task_id": "long", "replica": "worker-1"}


def test_victim_killed_without_retries_fails_after_the_heartbeat_timeout():
    history = events_frame([_task_state(101.0, "running"), _task_state(131.5, "failed")])
    ledger = [_row("start", 100.0), _row("start", 102.0, run_id="other")]
    figures = victim_figures(history, ledger, VICTIM, fault_wall=103.0)
    assert figures["victim_failed"] == 1 and figures["victim_succeeded"] == 0
    assert figures["victim_failed_after_s"] == pytest.approx(28.5)
    assert figures["victim_rerun_after_s"] is None and figures["victim_done_after_s"] is None
    assert figures["victim_executions"] == 1
    assert figures["victim"]["replica"] == "worker-1"


def test_victim_rerun_after_retry_is_timed_from_the_fault():
    history = events_frame([_task_state(101.0, "running"), _task_state(131.0, "up_for_retry"),
                            _task_state(137.0, "running", try_number=2),
                            _task_state(158.0, "success", try_number=2)])  # fmt: skip
    ledger = [_row("start", 100.0), _row("start", 137.5, try_number=2),
              _row("end", 157.5, try_number=2)]  # fmt: skip
    figures = victim_figures(history, ledger, VICTIM, fault_wall=103.0)
    assert figures["victim_failed_after_s"] == pytest.approx(28.0)
    assert figures["victim_rerun_after_s"] == pytest.approx(34.5)
    assert figures["victim_done_after_s"] == pytest.approx(54.5)
    assert figures["victim_succeeded"] == 1 and figures["victim_executions"] == 2


def test_health_body_unhealthy_time_per_component():
    def probe(t, scheduler, ok=True):
        body = {"metadatabase": {"status": "healthy"}, "scheduler": {"status": scheduler}}
        return {"t_wall": t, "t_mono": t, "type": "probe", "target": "lb", "endpoint": HEALTH,
                "ok": ok, "body": body}  # fmt: skip

    samples = [probe(9.5, "unhealthy")]  # before the fault: not counted
    samples += [probe(10.0 + 0.5 * i, "unhealthy" if 4 <= i < 10 else "healthy")
                for i in range(20)]  # fmt: skip
    figures = health_unhealthy(events_frame(samples), fault_mono=10.0, run_end=None)
    assert figures["health_scheduler_unhealthy_s"] == pytest.approx(3.0)
    assert figures["health_metadatabase_unhealthy_s"] == 0.0
    assert figures["health_unanswered"] == 0


def test_fault_details_report_a_graceful_stop():
    ok = [{"op": "terminate", "detail": {"graceful": True, "shutdown_s": 12.5}}]
    assert fault_details(ok) == {"terminate_graceful": 1, "shutdown_s": 12.5}
    late = [{"op": "terminate", "detail": {"graceful": False, "shutdown_s": 60.0}}]
    assert fault_details(late)["terminate_graceful"] == 0
    assert fault_details([{"op": "kill", "detail": {"signalled": 3}}]) == {}
