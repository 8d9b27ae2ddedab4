"""Bring-up problems found from what the watches see (init containers first, Job pods,
unschedulable pods after a while), the scheduler's view of requests, and what is kept of a
namespace (objects, descriptions with events, current and previous logs)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from test_k8s_fakes import FakeApi, load, watch_events

from harness.platform.kubernetes.diagnostics import (
    BringUpWatch,
    allocatable,
    bring_up_problem,
    collect,
    container_problems,
    job_problem,
    pod_requests,
    quantity,
    requests_problem,
    summed_requests,
    workload_problem,
)
from harness.platform.kubernetes.manifests import PART_OF
from harness.platform.kubernetes.safety import GuardedApi, Scope


def last_objects(name: str) -> list[dict[str, Any]]:
    """The last version of every pod of a fixture."""
    pods: dict[str, dict[str, Any]] = {}
    for e in watch_events(load(name)):
        if e["watch"] == "pods":
            pods[e["object"]["metadata"]["uid"]] = e["object"]
    return list(pods.values())


def test_a_bad_tag_shows_first_in_the_init_container_and_in_the_job_pod():
    api, job = last_objects("bad-image.json")
    assert container_problems(api) == [
        "pod airflow-api-server-5c6d7e8f9a-b4d2k init container wait-for-airflow-migrations: "
        'ImagePullBackOff (Back-off pulling image "apache/airflow:9.9.9")'
    ]
    (problem,) = container_problems(job)
    assert problem.startswith(
        "pod airflow-db-migrate-x7k2m container run-airflow-migrations: ErrImagePull "
        '(failed to pull and unpack image "docker.io/apache/airflow:9.9.9"'
    )
    # the main container only waits: that alone is no problem
    main = api["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
    assert main == "PodInitializing"
    assert bring_up_problem([api, job]) == container_problems(api)[0]


def test_crash_loops_count_restarts_and_name_the_last_exit():
    pod = copy.deepcopy(watch_events(load("kill-api-server.json"))[0]["object"])
    cs = pod["status"]["containerStatuses"][0]
    cs.update(
        restartCount=4,
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
    )
    assert container_problems(pod) == []  # give it a few restarts
    cs["restartCount"] = 5
    assert container_problems(pod) == [
        f"pod {pod['metadata']['name']} container api-server: CrashLoopBackOff "
        "(5 restarts, last exit 1 (Error))"
    ]


def test_unschedulable_is_reported_after_a_while_with_the_schedulers_message():
    (pod,) = last_objects("unschedulable.json")
    clock = [100.0]
    watch = BringUpWatch(unschedulable_s=15, clock=lambda: clock[0])
    assert watch.problem([pod]) is None
    clock[0] = 114.9
    assert watch.problem([pod]) is None
    clock[0] = 115.0
    assert watch.problem([pod]) == (
        "pod airflow-worker-1 unschedulable for 15 s: 0/1 nodes are available: 1 Insufficient "
        "memory. preemption: 0/1 nodes are available: 1 No preemption victims found for "
        "incoming pod."
    )
    assert watch.problem([]) is None  # placed (or gone): forgotten
    clock[0] = 200.0
    assert watch.problem([pod]) is None  # a new wait starts


def test_a_failed_job_and_a_replicaset_that_cannot_create_pods():
    job = {
        "kind": "Job",
        "metadata": {"name": "airflow-db-migrate"},
        "status": {
            "failed": 11,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                },
            ],
        },
    }
    assert job_problem(job) == (
        "Job airflow-db-migrate failed: BackoffLimitExceeded "
        "(Job has reached the specified backoff limit)"
    )
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "airflow-api-server"},
        "status": {
            "conditions": [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": 'pods "airflow-api-server-x" is forbidden: exceeded quota: q',
                }
            ]
        },
    }
    assert workload_problem(deployment).startswith(
        "Deployment airflow-api-server cannot create pods: FailedCreate (pods"
    )
    watch = BringUpWatch()
    assert watch.problem([], [job], [deployment]).startswith("Job airflow-db-migrate failed")


def test_quantities_and_what_the_scheduler_reserves_for_a_pod():
    assert quantity("100m") == pytest.approx(0.1)
    assert quantity("768Mi") == 768 * 2**20 and quantity("1Gi") == 2**30
    assert quantity("2") == 2 and quantity("1.5") == 1.5 and quantity(0) == 0
    with pytest.raises(ValueError):
        quantity("ten")
    spec = {
        "initContainers": [
            {"resources": {"requests": {"cpu": "25m", "memory": "256Mi"}}},
            {"resources": {"requests": {"cpu": "500m", "memory": "16Mi"}}},
        ],
        "containers": [
            {"resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
            {"resources": {}},
        ],
    }
    assert pod_requests(spec) == {"cpu": 0.5, "memory": 2**30}  # max(init), sum(main)
    deployment = {"kind": "Deployment", "spec": {"replicas": 3, "template": {"spec": spec}}}
    assert summed_requests([deployment]) == {"cpu": 1.5, "memory": 3 * 2**30}
    node = {"status": {"allocatable": {"cpu": "2", "memory": "7Gi"}}}
    assert allocatable([node]) == {"cpu": 2.0, "memory": 7 * 2**30}
    assert requests_problem([deployment], [node]) is None
    big = {"kind": "Deployment", "spec": {"replicas": 8, "template": {"spec": spec}}}
    assert requests_problem([big], [node]) == (
        "the manifests request more than the nodes can allocate: cpu 4.00 cores > 2.00, "
        "memory 8.00 GiB > 7.00 GiB"
    )
    assert requests_problem([big], []) is None  # nodes unknown: no claim


def test_collect_keeps_objects_descriptions_events_and_both_logs(tmp_path: Path):
    pods = [e["object"] for e in watch_events(load("kill-api-server.json"))[:2]]
    api = FakeApi()
    name = pods[0]["metadata"]["name"]
    api.logs[(name, "api-server", False)] = "2026-01-12T09:00:01Z INFO up\n"
    api.logs[(name, "api-server", True)] = "2026-01-12T08:59:00Z ERROR died\n"
    api.logs[(name, "wait-for-airflow-migrations", False)] = "migrations done\n"
    api.put(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.1", "namespace": "ha-bench"},
            "involvedObject": {"kind": "Pod", "name": name, "uid": pods[0]["metadata"]["uid"]},
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
            "count": 3,
            "lastTimestamp": "2026-01-12T09:00:02Z",
        }
    )
    guarded = GuardedApi(api, Scope("ha-bench", dict(PART_OF)), owned=True)
    kept = collect(guarded, pods, tmp_path / "k8s")
    assert kept["pods"] == 2 and kept["logs"] == 3 and kept["events"] == 1
    pod_dir = tmp_path / "k8s" / name
    assert (pod_dir / "api-server.log").read_text().endswith("INFO up\n")
    assert (pod_dir / "api-server.previous.log").read_text().endswith("ERROR died\n")
    assert (pod_dir / "wait-for-airflow-migrations.log").exists()
    described = (pod_dir / "describe.txt").read_text()
    assert "Ready=True" in described and "Warning BackOff Pod/" in described and " x3:" in described
    assert "uid:" in (pod_dir / "pod.yaml").read_text()
    assert "Back-off restarting" in (tmp_path / "k8s" / "events.txt").read_text()
    assert [c[0] for c in api.mutations()] == []  # reads only
