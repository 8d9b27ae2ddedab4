"""Acceptance: recorded pod delete → replacement ready → endpoint added sequences yield the
right recovery times (exact, from the watch-event receipt times of the fixtures)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from test_k8s_fakes import load

from harness.analysis import outages as analysis
from harness.platform.kubernetes.events import LifecycleTracker
from harness.platform.kubernetes.recovery import recovery_times


def timeline(name: str, tracker: LifecycleTracker | None = None) -> list[dict[str, Any]]:
    """The fixture's fault events plus the lifecycle events the tracker derives, with ``t``."""
    tracker = tracker or LifecycleTracker()
    out: list[dict[str, Any]] = []
    for e in load(name)["events"]:
        if e["watch"] == "harness":
            out.append({k: v for k, v in e.items() if k != "watch"})
            continue
        feed = tracker.pod_event if e["watch"] == "pods" else tracker.slice_event
        out += [{"t": e["t"], "type": "lifecycle", **ev} for ev in feed(e["type"], e["object"])]
    return out


def test_kill_recovery_times():
    (row,) = recovery_times(timeline("kill-api-server.json"))
    assert row == {
        "replica": "api-server-0",
        "pod": "airflow-api-server-7d9f8c6b5d-x2x9q",
        "incarnation": 1,
        "cause": "kill",
        "op_id": 1,
        "t_start": 110.0,
        "seen_gone_s": 0.018,
        "deleted_s": 0.018,
        "endpoint_removed_s": 0.052,
        "replacement": "airflow-api-server-7d9f8c6b5d-q8w2z",
        "created_s": 0.031,
        "scheduled_s": 0.044,
        "started_s": 1.262,
        "ready_s": 9.517,
        "endpoint_added_s": 9.533,
    }


def test_graceful_terminate_recovery_times():
    (row,) = recovery_times(timeline("terminate-api-server.json"))
    assert row["cause"] == "terminate" and row["op_id"] == 7
    assert row["replacement"] == "airflow-api-server-7d9f8c6b5d-w3j6s"
    assert {
        k: row[k]
        for k in (
            "seen_gone_s",
            "endpoint_removed_s",
            "created_s",
            "scheduled_s",
            "deleted_s",
            "started_s",
            "ready_s",
            "endpoint_added_s",
        )
    } == {
        "seen_gone_s": 0.011,  # terminating
        "endpoint_removed_s": 0.02,  # out of the Service before it stops
        "created_s": 0.027,  # replacement made while the old pod drains
        "scheduled_s": 0.039,
        "deleted_s": 1.502,  # old pod exited 0 within its grace
        "started_s": 1.89,
        "ready_s": 10.35,
        "endpoint_added_s": 10.371,
    }


def test_statefulset_recovery_has_no_endpoint():
    (row,) = recovery_times(timeline("kill-worker.json", LifecycleTracker({"worker": 2})))
    assert (row["replica"], row["cause"], row["replacement"]) == (
        "worker-0",
        "kill",
        "airflow-worker-0",
    )
    assert (
        row["deleted_s"],
        row["created_s"],
        row["scheduled_s"],
        row["started_s"],
        row["ready_s"],
    ) == (0.014, 0.04, 0.051, 1.93, 13.2)
    assert row["endpoint_added_s"] is None and row["endpoint_removed_s"] is None


def test_without_a_fault_event_recovery_starts_when_the_watch_saw_it():
    events = [e for e in timeline("kill-api-server.json") if e["type"] != "fault"]
    (row,) = recovery_times(events)
    assert (row["cause"], row["t_start"], row["seen_gone_s"]) == ("terminating", 110.018, 0.0)
    assert row["ready_s"] == 9.499 and row["endpoint_added_s"] == 9.515


def test_history_shaped_events_and_analysis_agree():
    """As recorded by a run (``t_mono``), the same numbers; and ``analysis.recovery`` finds
    the replacement ready through the same lifecycle events."""
    history = [
        {("t_mono" if k == "t" else k): v for k, v in e.items()}
        for e in timeline("kill-api-server.json")
    ]
    (row,) = recovery_times(history, time_key="t_mono")
    assert row["ready_s"] == 9.517 and row["endpoint_added_s"] == 9.533
    df = pd.DataFrame(history)
    df["t_wall"] = df["t_mono"] + 1.7e9
    rec = analysis.recovery(df, 110.0, target="lb", replica="api-server-0")
    assert round(rec["replacement_ready_s"], 6) == 9.517
