"""Pod / EndpointSlice watch events → lifecycle events and stable replica slots, on the
synthetic streams of tests/data/k8s/synthetic/ (real shapes, not recordings)."""

from __future__ import annotations

import copy
from typing import Any

from test_k8s_fakes import load, replay, watch_events

from harness.core.events import EventBus
from harness.platform.kubernetes.events import (
    LifecycleTracker,
    WatchedState,
    expected_replicas,
    pod_view,
    watch_action,
)

A = "airflow-api-server-7d9f8c6b5d-x2x9q"
B = "airflow-api-server-7d9f8c6b5d-k4m7p"
C = "airflow-api-server-7d9f8c6b5d-q8w2z"


def brief(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["t"], e["replica"], e["state"], e["pod"], e["incarnation"]) for e in events]


def steady(a: str, b: str, t: float) -> list[tuple[Any, ...]]:
    """Two ready api-servers and their endpoints, as each fixture starts."""
    return [
        (t, "api-server-0", "created", a, 1),
        (t, "api-server-0", "scheduled", a, 1),
        (t, "api-server-0", "started", a, 1),
        (t, "api-server-0", "ready", a, 1),
        (t + 0.001, "api-server-1", "created", b, 1),
        (t + 0.001, "api-server-1", "scheduled", b, 1),
        (t + 0.001, "api-server-1", "started", b, 1),
        (t + 0.001, "api-server-1", "ready", b, 1),
        (t + 0.002, "api-server-0", "endpoint_added", a, 1),
        (t + 0.002, "api-server-1", "endpoint_added", b, 1),
    ]


def test_kill_the_death_then_the_delete_then_the_replacement_in_the_same_slot():
    tracker, events = replay(load("kill-api-server.json"))
    assert brief(events) == [
        *steady(A, B, 100.0),
        # BOOKMARKs change nothing; the nemesis saw the processes die (exec ended)
        (110.052, "api-server-0", "exited", A, 1),
        # then its delete with grace 0: MODIFIED (deletionTimestamp), DELETED
        (110.061, "api-server-0", "terminating", A, 1),
        (110.063, "api-server-0", "not_ready", A, 1),
        (110.063, "api-server-0", "deleted", A, 1),
        (110.071, "api-server-0", "endpoint_removed", A, 1),
        (110.073, "api-server-0", "created", C, 2),
        (110.084, "api-server-0", "scheduled", C, 2),
        (115.37, "api-server-0", "started", C, 2),  # after its init container
        (123.58, "api-server-0", "ready", C, 2),
        (123.6, "api-server-0", "endpoint_added", C, 2),
    ]
    death = events[10]
    assert (death["source"], death["exit_code"], death["container"]) == (
        "nemesis",
        137,
        "api-server",
    )
    assert events[11]["grace_s"] == 0
    assert events[15]["node"] is None and events[16]["node"] == "ha-bench-control-plane"
    assert events[17]["container"] == "api-server" and events[17]["restart_count"] == 0
    assert tracker.replica_names("api-server") == ["api-server-0", "api-server-1"]
    assert tracker.pod_for("api-server-0")["metadata"]["name"] == C
    assert tracker.incarnation("api-server-0") == 2
    assert tracker.is_ready("api-server-0") and tracker.is_ready("api-server-1")
    assert tracker.replica_of(tracker.holder("api-server-1")) == "api-server-1"
    # the deleted object still shows the container running: DELETED is no death
    final = tracker.final_pod("5f0c2a7e-1d4b-4c3a-9e8f-7a6b5c4d3e21")
    assert "running" in final["status"]["containerStatuses"][0]["state"]


def test_force_delete_is_no_death_the_api_object_just_goes():
    _, events = replay(load("force-delete-api-server.json"))
    assert brief(events)[10:14] == [
        (110.016, "api-server-0", "terminating", A, 1),
        (110.018, "api-server-0", "not_ready", A, 1),
        (110.018, "api-server-0", "deleted", A, 1),
        (110.03, "api-server-0", "endpoint_removed", A, 1),
    ]
    assert not [e for e in events if e["state"] == "exited"]


def test_graceful_terminate_frees_the_slot_for_the_replacement():
    tracker, events = replay(load("terminate-api-server.json"))
    old, new = "airflow-api-server-7d9f8c6b5d-r5v8c", "airflow-api-server-7d9f8c6b5d-w3j6s"
    assert brief(events[10:]) == [
        (210.011, "api-server-1", "terminating", old, 1),
        (210.02, "api-server-1", "endpoint_removed", old, 1),  # terminating: not ready
        (210.033, "api-server-1", "created", new, 2),
        (210.044, "api-server-1", "scheduled", new, 2),
        (211.48, "api-server-1", "exited", old, 1),
        (211.48, "api-server-1", "not_ready", old, 1),
        (211.502, "api-server-1", "deleted", old, 1),  # after the kubelet's own MODIFIED
        (215.33, "api-server-1", "started", new, 2),
        (223.54, "api-server-1", "ready", new, 2),
        (223.56, "api-server-1", "endpoint_added", new, 2),
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


def test_statefulset_pod_keeps_its_ordinal_slot_and_one_death_is_one_event():
    """The kubelet's report of the SIGKILL came before the nemesis's: one exited event."""
    tracker, events = replay(load("kill-worker.json"), LifecycleTracker({"worker": 2}))
    assert brief(events[8:]) == [
        (305.07, "worker-0", "exited", "airflow-worker-0", 1),
        (305.07, "worker-0", "not_ready", "airflow-worker-0", 1),
        (305.432, "worker-0", "terminating", "airflow-worker-0", 1),
        (305.434, "worker-0", "deleted", "airflow-worker-0", 1),
        (305.453, "worker-0", "created", "airflow-worker-0", 2),
        (305.464, "worker-0", "scheduled", "airflow-worker-0", 2),
        (310.75, "worker-0", "started", "airflow-worker-0", 2),
        (318.96, "worker-0", "ready", "airflow-worker-0", 2),
    ]
    assert (events[8]["exit_code"], events[8]["reason"]) == (137, "Error")
    assert events[8]["uid"] != events[12]["uid"]
    assert tracker.replica_names("worker") == ["worker-0", "worker-1"]


def test_the_nemesis_death_first_hides_the_kubelets_later_report():
    fixture = load("kill-api-server.json")
    ready = watch_events(fixture)[0]["object"]
    tracker = LifecycleTracker()
    tracker.pod_event("ADDED", ready)
    uid = ready["metadata"]["uid"]
    died = tracker.process_died(uid, {"api-server": 0}, exit_code=137, via="exec")
    assert [(e["state"], e["source"], e["via"]) for e in died] == [("exited", "nemesis", "exec")]
    killed = copy.deepcopy(ready)
    killed["status"]["containerStatuses"][0].update(
        state={"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": "x"}},
        ready=False,
        started=False,
    )
    assert [e["state"] for e in tracker.pod_event("MODIFIED", killed)] == []  # Ready unchanged
    # a later restart in place is a new life: reported
    restarted = copy.deepcopy(ready)
    restarted["status"]["containerStatuses"][0].update(
        restartCount=1, state={"running": {"startedAt": "2026-01-12T09:09:09Z"}}
    )
    assert [e["state"] for e in tracker.pod_event("MODIFIED", restarted)] == ["started"]
    assert tracker.process_died("no-such-uid", {"x": 0}) == []


def test_relist_after_410_reports_what_changed_in_the_gap():
    tracker, events = replay(load("relist-after-410.json"))
    assert brief(events[10:]) == [
        (130.05, "api-server-0", "not_ready", A, 1),
        (130.05, "api-server-0", "deleted", A, 1),
        (130.05, "api-server-0", "created", C, 2),
        (130.05, "api-server-0", "scheduled", C, 2),
        (130.05, "api-server-0", "started", C, 2),
        (130.05, "api-server-0", "ready", C, 2),
    ]
    assert tracker.pod_for("api-server-0")["metadata"]["name"] == C


def test_watch_action_reads_bookmarks_and_errors():
    fixture = load("relist-after-410.json")
    kinds = {e["type"]: e for e in reversed(fixture["events"]) if e["watch"] == "pods"}
    assert watch_action("ADDED", kinds["ADDED"]["object"]) == ("event", "1201")
    assert watch_action("BOOKMARK", kinds["BOOKMARK"]["object"]) == ("bookmark", "1290")
    error = kinds["ERROR"]["object"]
    assert (error["code"], error["reason"]) == (410, "Expired")
    assert watch_action("ERROR", error) == ("relist", None)


def test_all_pods_keeps_the_pods_the_tracker_ignores():
    tracker, events = replay(load("bad-image.json"))
    names = [p["metadata"]["name"] for p in tracker.all_pods()]
    assert names == ["airflow-api-server-5c6d7e8f9a-b4d2k", "airflow-db-migrate-x7k2m"]
    assert {e["pod"] for e in events} == {"airflow-api-server-5c6d7e8f9a-b4d2k"}  # no Job pod
    gone = copy.deepcopy(tracker.all_pods()[1])
    tracker.pod_event("DELETED", gone)
    assert [p["metadata"]["name"] for p in tracker.all_pods()] == [names[0]]
    tracker.resync_pods([])
    assert tracker.all_pods() == []


def test_lowest_free_slot_when_both_replicas_are_replaced():
    fixture = load("kill-api-server.json")
    pods = [e["object"] for e in watch_events(fixture) if e["watch"] == "pods"]
    a, b = pods[0], pods[1]
    tracker = LifecycleTracker({"api-server": 2})
    tracker.pod_event("ADDED", a)
    tracker.pod_event("ADDED", b)
    tracker.pod_event("DELETED", b)  # slot 1 free
    tracker.pod_event("DELETED", a)  # slot 0 free
    pending = next(p for p in pods if p["metadata"]["name"] == C)  # the replacement, pending
    x, y = copy.deepcopy(pending), copy.deepcopy(pending)
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
