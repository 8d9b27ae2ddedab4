"""Victim, fault-detail and health-body figures on synthesized histories."""

import pytest
from histories import OFFSET, ev

from harness.analysis.health import health_unhealthy
from harness.analysis.scheduling import dag_run_latency
from harness.analysis.tasks import fault_details, victim_figures
from harness.analysis.timeline import Censor, Timeline
from harness.core.airflow_api import HEALTH
from harness.core.history import events_frame

FAULT = 103.0
TIMELINE = Timeline(fault_mono=FAULT, fault_wall=FAULT + OFFSET, run_end_mono=180.0,
                    baseline_start_mono=90.0, drain_end_mono=200.0)  # fmt: skip
VICTIM = {"dag_id": "d", "run_id": "v", "task_id": "long", "replica": "worker-1"}


def _state(t, state, try_number=1):
    return ev(t, "workload", event="task_state", dag_id="d", run_id="v", task_id="long",
              state=state, try_number=try_number)  # fmt: skip


def _row(phase, t, try_number=1, run_id="v"):
    return {"phase": phase, "dag_id": "d", "run_id": run_id, "task_id": "long",
            "try_number": try_number, "t_wall": t + OFFSET, "replica": "worker-1"}  # fmt: skip


def test_victim_killed_without_retries_fails_after_the_heartbeat_timeout():
    history = events_frame([_state(101.0, "running"), _state(131.5, "failed")])
    ledger = [_row("start", 100.0), _row("start", 102.0, run_id="other")]
    censor = Censor()
    f = victim_figures(history, ledger, VICTIM, TIMELINE, censor)
    assert f["victim_failed"] == 1 and f["victim_succeeded"] == 0
    assert f["victim_failed_after_s"] == pytest.approx(28.5)
    assert f["victim_executions"] == 1 and f["victim"]["replica"] == "worker-1"
    assert f["victim_rerun_after_s"] is None and f["victim_done_after_s"] is None
    assert censor.observed == {"victim_rerun_after_s": 97.0, "victim_done_after_s": 97.0}


def test_victim_rerun_after_retry_is_timed_from_the_fault():
    history = events_frame([_state(101.0, "running"), _state(131.0, "up_for_retry"),
                            _state(137.0, "running", 2), _state(158.0, "success", 2)])  # fmt: skip
    ledger = [_row("start", 100.0), _row("start", 137.5, 2), _row("end", 157.5, 2)]
    censor = Censor()
    f = victim_figures(history, ledger, VICTIM, TIMELINE, censor)
    assert f["victim_failed_after_s"] == pytest.approx(28.0)
    assert f["victim_rerun_after_s"] == pytest.approx(34.5)
    assert f["victim_done_after_s"] == pytest.approx(54.5)
    assert f["victim_succeeded"] == 1 and f["victim_executions"] == 2
    assert censor.observed == {}


def test_a_victim_that_never_failed_is_censored():
    censor = Censor()
    f = victim_figures(events_frame([_state(101.0, "running")]), [_row("start", 100.0)], VICTIM,
                       TIMELINE, censor)  # fmt: skip
    assert f["victim_failed_after_s"] is None
    assert censor.observed["victim_failed_after_s"] == pytest.approx(77.0)  # to run_end


def test_health_body_unhealthy_time_per_component():
    def probe(t, scheduler, ok=True):
        body = {"metadatabase": {"status": "healthy"}, "scheduler": {"status": scheduler}}
        return ev(t, "probe", target="lb", endpoint=HEALTH, ok=ok, body=body)

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


def test_dag_run_latency_from_trigger_ack_to_terminal_state():
    def state(run_id, t, s):
        return ev(t, "workload", event="run_state", run_id=run_id, state=s)

    def trig(run_id, t):
        return ev(t, "workload", event="trigger", phase="ok", dag_id="d", run_id=run_id)

    history = events_frame([trig("r1", 1.0), trig("r2", 2.0), trig("r3", 3.0),
                            state("r1", 2.0, "running"), state("r1", 5.0, "success"),
                            state("r2", 9.0, "failed"), state("r3", 4.0, "running")])  # fmt: skip
    figures = dag_run_latency(history)
    assert figures["dag_runs_acknowledged"] == 3 and figures["dag_runs_finished"] == 2
    assert figures["dag_run_latency_p50_s"] == pytest.approx(5.5)
