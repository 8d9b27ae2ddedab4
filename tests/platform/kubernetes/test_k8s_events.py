"""Pod / EndpointSlice watch events → lifecycle events and stable replica slots."""

from __future__ import annotations

import copy
from typing import Any

from test_k8s_fakes import load, watch_events

from harness.core.events import EventBus
from harness.platform.kubernetes.events import (
    LifecycleTracker,
    WatchedState,
    expected_replicas,
    pod_view,
)

A = "airflow-api-server-7d9f8c6b5d-x2x9q"
B = "airflow-api-server-7d9f8c6b5d-k4m7p"
C = "airflow-api-server-7d9f8c6b5d-q8w2z"


def replay(
    fixture: dict[str, Any], tracker: LifecycleTracker | None = None
) -> tuple[LifecycleTracker, list[dict[str, Any]]]:
    """Feed a recorded stream; returns the tracker and its events stamped with ``t``."""
    tracker = tracker or LifecycleTracker()
    out = []
    for e in watch_events(fixture):
        feed = tracker.pod_event if e["watch"] == "pods" else tracker.slice_event
        out += [{"t": e["t"], **event} for event in feed(e["type"], e["object"])]
    return tracker, out


def brief(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["t"], e["replica"], e["state"], e["pod"], e["incarnation"]) for e in events]


def test_kill_and_replacement_in_the_same_slot():
    tracker, events = replay(load("kill-api-server.json"))
    assert brief(events) == [
        (100.0, "api-server-0", "created", A, 1),
        (100.0, "api-server-0", "scheduled", A, 1),
        (100.0, "api-server-0", "started", A, 1),
        (100.0, "api-server-0", "ready", A, 1),
        (100.001, "api-server-1", "created", B, 1),
        (100.001, "api-server-1", "scheduled", B, 1),
        (100.001, "api-server-1", "started", B, 1),
        (100.001, "api-server-1", "ready", B, 1),
        (100.002, "api-server-0", "endpoint_added", A, 1),
        (100.002, "api-server-1", "endpoint_added", B, 1),
        # gracePeriodSeconds=0: the API removes the pod at once, still ready
        (110.018, "api-server-0", "terminating", A, 1),
        (110.018, "api-server-0", "not_ready", A, 1),
        (110.018, "api-server-0", "deleted", A, 1),
        (110.031, "api-server-0", "created", C, 2),
        (110.044, "api-server-0", "scheduled", C, 2),
        (110.052, "api-server-0", "endpoint_removed", A, 1),
        (111.262, "api-server-0", "started", C, 2),
        (119.517, "api-server-0", "ready", C, 2),
        (119.533, "api-server-0", "endpoint_added", C, 2),
    ]
    assert events[10]["grace_s"] == 0
    assert events[12]["component"] == "api-server"
    assert events[13]["node"] is None and events[14]["node"] == "ha-bench-control-plane"
    assert events[16]["container"] == "api-server" and events[16]["restart_count"] == 0
    assert tracker.replica_names("api-server") == ["api-server-0", "api-server-1"]
    assert tracker.pod_for("api-server-0")["metadata"]["name"] == C
    assert tracker.incarnation("api-server-0") == 2
    assert tracker.is_ready("api-server-0") and tracker.is_ready("api-server-1")
    assert tracker.replica_of(tracker.holder("api-server-1")) == "api-server-1"


def test_graceful_terminate_frees_the_slot_for_the_replacement():
    tracker, events = replay(load("terminate-api-server.json"))
    old, new = "airflow-api-server-7d9f8c6b5d-r5v8c", "airflow-api-server-7d9f8c6b5d-w3j6s"
    assert brief(events[10:]) == [
        (210.011, "api-server-1", "terminating", old, 1),
        (210.02, "api-server-1", "endpoint_removed", old, 1),
        (210.027, "api-server-1", "created", new, 2),
        (210.039, "api-server-1", "scheduled", new, 2),
        (211.48, "api-server-1", "exited", old, 1),
        (211.48, "api-server-1", "not_ready", old, 1),
        (211.502, "api-server-1", "deleted", old, 1),
        (211.89, "api-server-1", "started", new, 2),
        (220.35, "api-server-1", "ready", new, 2),
        (220.371, "api-server-1", "endpoint_added", new, 2),
    ]
    assert events[10]["grace_s"] == 10
    assert (events[14]["exit_code"], events[14]["reason"]) == (0, "Completed")
    assert tracker.replica_names() == ["api-server-0", "api-server-1"]


def test_terminating_pod_is_not_ready_for_its_slot():
    fixture = load("terminate-api-server.json")
    tracker = LifecycleTracker()
    for e in watch_events(fixture)[:4]:  # up to the terminating MODIFIED
        (tracker.pod_event if e["watch"] == "pods" else tracker.slice_event)(e["type"], e["object"])
    assert not tracker.is_ready("api-server-1")  # the old pod is Ready=True but leaving
    assert tracker.pod_for("api-server-1") is None
    assert tracker.is_ready("api-server-0")


def test_statefulset_pod_keeps_its_ordinal_slot():
    tracker, events = replay(load("kill-worker.json"), LifecycleTracker({"worker": 2}))
    assert brief(events[8:]) == [
        (305.014, "worker-0", "terminating", "airflow-worker-0", 1),
        (305.014, "worker-0", "not_ready", "airflow-worker-0", 1),
        (305.014, "worker-0", "deleted", "airflow-worker-0", 1),
        (305.04, "worker-0", "created", "airflow-worker-0", 2),
        (305.051, "worker-0", "scheduled", "airflow-worker-0", 2),
        (306.93, "worker-0", "started", "airflow-worker-0", 2),
        (318.2, "worker-0", "ready", "airflow-worker-0", 2),
    ]
    assert events[8]["uid"] != events[11]["uid"]
    assert tracker.replica_names("worker") == ["worker-0", "worker-1"]


def test_lowest_free_slot_when_both_replicas_are_replaced():
    fixture = load("kill-api-server.json")
    pods = [e["object"] for e in watch_events(fixture) if e["watch"] == "pods"]
    a, b = pods[0], pods[1]
    tracker = LifecycleTracker({"api-server": 2})
    tracker.pod_event("ADDED", a)
    tracker.pod_event("ADDED", b)
    tracker.pod_event("DELETED", b)  # slot 1 free
    tracker.pod_event("DELETED", a)  # slot 0 free
    x, y = copy.deepcopy(pods[3]), copy.deepcopy(pods[3])  # the pending replacement
    y["metadata"].update(name="airflow-api-server-7d9f8c6b5d-zzzzz", uid="y-uid")
    assert tracker.pod_event("ADDED", x)[0]["replica"] == "api-server-0"
    assert tracker.pod_event("ADDED", y)[0]["replica"] == "api-server-1"
    assert tracker.incarnation("api-server-0") == 2 and tracker.incarnation("api-server-1") == 2
    # expected slots are listed before any pod is seen
    assert LifecycleTracker({"api-server": 2, "postgres": 1}).replica_names() == [
        "postgres",
        "api-server-0",
        "api-server-1",
    ]


def test_container_restart_is_exited_then_started():
    ready = watch_events(load("kill-api-server.json"))[0]["object"]
    tracker = LifecycleTracker()
    tracker.pod_event("ADDED", ready)
    crashed = copy.deepcopy(ready)
    cs = crashed["status"]["containerStatuses"][0]
    cs.update(
        restartCount=1,
        ready=False,
        started=False,
        lastState={"terminated": {"exitCode": 137, "reason": "Error"}},
        state={"waiting": {"reason": "CrashLoopBackOff"}},
    )
    for c in crashed["status"]["conditions"]:
        if c["type"] in ("Ready", "ContainersReady"):
            c["status"] = "False"
    events = tracker.pod_event("MODIFIED", crashed)
    assert [(e["state"], e.get("exit_code")) for e in events] == [
        ("exited", 137),
        ("not_ready", None),
    ]
    # a restart seen only as a new startedAt and a higher restartCount
    restarted = copy.deepcopy(ready)
    cs = restarted["status"]["containerStatuses"][0]
    cs.update(
        restartCount=1,
        lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
        state={"running": {"startedAt": "2026-01-12T09:05:00Z"}},
    )
    tracker = LifecycleTracker()
    tracker.pod_event("ADDED", ready)
    events = tracker.pod_event("MODIFIED", restarted)
    assert [(e["state"], e.get("exit_code"), e.get("restart_count")) for e in events] == [
        ("exited", 1, None),
        ("started", None, 1),
    ]


def test_resync_reports_pods_gone_during_a_watch_gap():
    events = watch_events(load("kill-api-server.json"))
    a, b = events[0]["object"], events[1]["object"]
    c = events[-2]["object"]  # the ready replacement
    tracker = LifecycleTracker()
    tracker.pod_event("ADDED", a)
    tracker.pod_event("ADDED", b)
    out = tracker.resync_pods([b, c])  # the relist no longer has a, has c
    assert [(e["state"], e["pod"], e["replica"]) for e in out] == [
        ("not_ready", A, "api-server-0"),
        ("deleted", A, "api-server-0"),
        ("created", C, "api-server-0"),
        ("scheduled", C, "api-server-0"),
        ("started", C, "api-server-0"),
        ("ready", C, "api-server-0"),
    ]
    assert tracker.resync_pods([b, c]) == []  # nothing changed
    # a first list assigns slots oldest pod first (then by name)
    newer_a = copy.deepcopy(a)
    newer_a["metadata"]["creationTimestamp"] = "2026-01-12T09:09:00Z"
    fresh = LifecycleTracker()
    fresh.resync_pods([newer_a, b])
    assert fresh.pod_for("api-server-0")["metadata"]["name"] == B


def test_endpoint_of_a_pod_not_seen_yet_waits_for_the_pod():
    events = watch_events(load("kill-api-server.json"))
    a, slice_ab = events[0]["object"], events[2]["object"]
    tracker = LifecycleTracker()
    assert tracker.slice_event("ADDED", slice_ab) == []  # pods unknown yet
    out = tracker.pod_event("ADDED", a)
    assert [e["state"] for e in out][-1] == "endpoint_added"
    assert tracker.slice_event("DELETED", slice_ab)[0]["state"] == "endpoint_removed"


def test_ignored_pods_and_expected_replicas():
    pod = watch_events(load("kill-api-server.json"))[0]["object"]
    job_pod = copy.deepcopy(pod)
    job_pod["metadata"]["ownerReferences"][0]["kind"] = "Job"
    statsd = copy.deepcopy(pod)
    statsd["metadata"]["labels"]["component"] = "statsd"
    assert pod_view(job_pod) is None and pod_view(statsd) is None
    assert LifecycleTracker().pod_event("ADDED", statsd) == []
    workloads = [
        {"spec": {"replicas": 2, "template": {"metadata": {"labels": {"component": "scheduler"}}}}},
        {"spec": {"replicas": 1, "template": {"metadata": {"labels": {"component": "redis"}}}}},
        {"spec": {"replicas": 1, "template": {"metadata": {"labels": {"component": "statsd"}}}}},
    ]
    assert expected_replicas(workloads) == {"scheduler": 2, "redis": 1}


def test_watched_state_emits_lifecycle_events_on_the_bus():
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe(seen.append)
    state = WatchedState(LifecycleTracker(), emit=lambda e: bus.emit("lifecycle", **e))
    pod = watch_events(load("kill-api-server.json"))[0]["object"]
    state.pod_event("ADDED", pod)
    assert [(e["type"], e["replica"], e["state"]) for e in seen][-1] == (
        "lifecycle",
        "api-server-0",
        "ready",
    )
    assert all("t_mono" in e for e in seen)
    assert state.wait_for(lambda t: t.is_ready("api-server-0"), 0.1)
    assert not state.wait_for(lambda t: t.is_ready("api-server-1"), 0.05)


def test_a_surge_pod_takes_over_a_freed_expected_slot():
    """A rolling update: a third pod appears, then an old one leaves; the expected slots
    stay filled, so readiness of ``api-server-0/1`` still means something."""
    pods = [e["object"] for e in watch_events(load("kill-api-server.json")) if e["watch"] == "pods"]
    a, b, surge = pods[0], pods[1], copy.deepcopy(pods[-1])  # the last one is ready
    surge["metadata"].update(name="airflow-api-server-5c4b3a2d1e-s9s9s", uid="surge-uid")
    tracker = LifecycleTracker({"api-server": 2})
    for pod in (a, b, surge):
        tracker.pod_event("ADDED", pod)
    assert tracker.replica_names("api-server") == ["api-server-0", "api-server-1", "api-server-2"]
    leaving = copy.deepcopy(a)
    leaving["metadata"].update(
        deletionTimestamp="2026-01-12T09:05:00Z", deletionGracePeriodSeconds=10
    )
    events = tracker.pod_event("MODIFIED", leaving)
    assert [(e["replica"], e["state"], e["pod"], e["incarnation"]) for e in events] == [
        ("api-server-0", "terminating", A, 1),
        ("api-server-0", "created", "airflow-api-server-5c4b3a2d1e-s9s9s", 2),
        ("api-server-0", "scheduled", "airflow-api-server-5c4b3a2d1e-s9s9s", 2),
        ("api-server-0", "started", "airflow-api-server-5c4b3a2d1e-s9s9s", 2),
        ("api-server-0", "ready", "airflow-api-server-5c4b3a2d1e-s9s9s", 2),
    ]
    assert events[1]["detail"] == "was api-server-2"
    assert tracker.replica_names("api-server") == ["api-server-0", "api-server-1"]
    assert tracker.is_ready("api-server-0") and tracker.resolve(surge["metadata"]["name"]) == (
        "api-server-0"
    )
    assert tracker.pod_event("DELETED", leaving)[-1]["state"] == "deleted"  # no second move
