"""Writes the watch-stream fixtures of this directory: ``python tests/data/k8s/make_fixtures.py``.

No cluster was at hand, so the objects are built here in the exact JSON shapes the API
serves (Pod v1, EndpointSlice discovery.k8s.io/v1, as kubelet and the endpointslice
controller of Kubernetes 1.32 fill them in), with the receipt time ``t`` (seconds) a
harness would stamp on each watch event. The tests read only the JSON files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
NS = "ha-bench"
NODE = "ha-bench-control-plane"
EPOCH = "2026-01-12T09:"  # wall-clock prefix for timestamps (minute:second appended)


def ts(seconds: float) -> str:
    """An RFC 3339 timestamp ``seconds`` after 09:00:00 (fixture time ``t`` maps onto it)."""
    s = int(seconds)
    return f"{EPOCH}{s // 60 % 60:02d}:{s % 60:02d}Z"


def condition(kind: str, ok: bool, at: float, reason: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": ts(at),
    }
    if reason:
        c["reason"] = reason
    return c


def pod(
    *,
    name: str,
    uid: str,
    component: str,
    owner: tuple[str, str, str],
    rv: int,
    created: float,
    stage: str,
    ip: str | None = None,
    container: str | None = None,
    image: str = "apache/airflow:3.3.2",
    port: int | None = 8080,
    scheduled: float | None = None,
    started: float | None = None,
    ready: float | None = None,
    finished: float | None = None,
    exit_code: int = 0,
    deleted: float | None = None,
    grace: int | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod at ``stage``: created | scheduled | creating | running | ready | terminated."""
    kind, owner_name, owner_uid = owner
    container = container or component
    labels = {
        "app.kubernetes.io/part-of": "airflow-ha-bench",
        "component": component,
        "release": "ha-bench",
        "tier": "airflow" if component not in ("postgres", "redis") else "service",
        **(extra_labels or {}),
    }
    meta: dict[str, Any] = {
        "name": name,
        "generateName": owner_name + "-",
        "namespace": NS,
        "uid": uid,
        "resourceVersion": str(rv),
        "creationTimestamp": ts(created),
        "labels": labels,
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": kind,
                "name": owner_name,
                "uid": owner_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if kind == "StatefulSet":
        meta["generateName"] = owner_name + "-"
    if deleted is not None:
        meta["deletionTimestamp"] = ts(deleted + (grace or 0))
        meta["deletionGracePeriodSeconds"] = grace or 0
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": container,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "envFrom": [{"configMapRef": {"name": "airflow-env"}}],
                "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}]
                if port
                else [],
                "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 10 if component != "worker" else 30,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
    }
    status: dict[str, Any] = {"phase": "Pending", "qosClass": "Burstable"}
    order = ["created", "scheduled", "creating", "running", "ready", "terminated"]
    level = order.index(stage)
    if level >= 1:
        spec["nodeName"] = NODE
        status["conditions"] = [condition("PodScheduled", True, scheduled or created)]
    if level >= 2:
        running = level >= 3
        is_ready = stage == "ready"
        status.update(hostIP="172.18.0.2", hostIPs=[{"ip": "172.18.0.2"}], startTime=ts(created))
        status["conditions"] = [
            condition(
                "PodReadyToStartContainers",
                running and stage != "terminated",
                started or scheduled or created,
            ),
            condition("Initialized", True, scheduled or created),
            condition(
                "Ready",
                is_ready,
                ready or started or scheduled or created,
                None
                if is_ready
                else ("PodCompleted" if stage == "terminated" else "ContainersNotReady"),
            ),
            condition(
                "ContainersReady",
                is_ready,
                ready or started or scheduled or created,
                None
                if is_ready
                else ("PodCompleted" if stage == "terminated" else "ContainersNotReady"),
            ),
            condition("PodScheduled", True, scheduled or created),
        ]
        cid = f"containerd://{uid.replace('-', '')}{'0' * 32}"[:77]
        cs: dict[str, Any] = {
            "name": container,
            "image": f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}",
            "imageID": "",
            "ready": is_ready,
            "restartCount": 0,
            "started": running and stage != "terminated",
            "lastState": {},
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }
        if running:
            cs["imageID"] = "docker.io/apache/airflow@sha256:" + "3f" * 32
            cs["containerID"] = cid
            cs["state"] = {"running": {"startedAt": ts(started or created)}}
            status["phase"] = "Running"
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        if stage == "terminated":
            cs["state"] = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": ts(started or created),
                    "finishedAt": ts(finished or 0),
                    "containerID": cid,
                }
            }
            status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
        status["containerStatuses"] = [cs]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status}


def endpoint_slice(rv: int, endpoints: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """The api-server Service's slice with ``(pod, "ready"|"terminating")`` endpoints."""
    out = []
    for p, how in endpoints:
        ready = how == "ready"
        out.append(
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": ready, "serving": True, "terminating": not ready},
                "nodeName": NODE,
                "targetRef": {
                    "kind": "Pod",
                    "namespace": NS,
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
            }
        )
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": "airflow-api-server-5xq7d",
            "generateName": "airflow-api-server-",
            "namespace": NS,
            "uid": "9d1f6a0e-3c2b-4f57-a7c1-2e8b5d4c6f10",
            "resourceVersion": str(rv),
            "generation": rv - 1000,
            "creationTimestamp": ts(0),
            "labels": {
                "app.kubernetes.io/part-of": "airflow-ha-bench",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": "airflow-api-server",
            },
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": ts(0)},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": "airflow-api-server",
                    "uid": "4a8e2c1d-7b6f-4e3a-9c5d-1f0e2d3c4b5a",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": out,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


API_RS = ("ReplicaSet", "airflow-api-server-7d9f8c6b5d", "b6c1f0de-5a4e-4d1b-8f3e-0c9a7b6d5e41")
WORKER_STS = ("StatefulSet", "airflow-worker", "e2f4a6c8-1b3d-4e5f-8a7b-9c0d1e2f3a4b")
HASH = {"pod-template-hash": "7d9f8c6b5d"}


def api_pod(name: str, uid: str, rv: int, stage: str, ip: str, **kw: Any) -> dict[str, Any]:
    return pod(
        name=name,
        uid=uid,
        component="api-server",
        owner=API_RS,
        rv=rv,
        stage=stage,
        ip=ip,
        extra_labels=HASH,
        **kw,
    )


def watch(t: float, stream: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"t": t, "watch": stream, "type": kind, "object": obj}


def fault(t: float, op: str, target: str, op_id: int) -> dict[str, Any]:
    return {
        "t": t,
        "watch": "harness",
        "type": "fault",
        "op": op,
        "target": target,
        "phase": "invoke",
        "op_id": op_id,
    }


def kill_api_server() -> dict[str, Any]:
    a_uid, b_uid, c_uid = (
        "5f0c2a7e-1d4b-4c3a-9e8f-7a6b5c4d3e21",
        "8e1d3b9f-2c5a-4d6e-8f7a-1b2c3d4e5f62",
        "c3a9e7d1-4b2f-4e8a-9d6c-5b4a3f2e1d03",
    )
    a = api_pod(
        "airflow-api-server-7d9f8c6b5d-x2x9q",
        a_uid,
        1201,
        "ready",
        "10.244.0.11",
        created=40,
        scheduled=40,
        started=42,
        ready=55,
    )
    b = api_pod(
        "airflow-api-server-7d9f8c6b5d-k4m7p",
        b_uid,
        1207,
        "ready",
        "10.244.0.12",
        created=40,
        scheduled=40,
        started=42,
        ready=56,
    )
    a_deleted = api_pod(
        "airflow-api-server-7d9f8c6b5d-x2x9q",
        a_uid,
        1391,
        "ready",
        "10.244.0.11",
        created=40,
        scheduled=40,
        started=42,
        ready=55,
        deleted=110,
        grace=0,
    )
    c_args = {"created": 110, "scheduled": 110}
    name_c = "airflow-api-server-7d9f8c6b5d-q8w2z"
    c0 = api_pod(name_c, c_uid, 1392, "created", "10.244.0.13", created=110)
    c1 = api_pod(name_c, c_uid, 1394, "scheduled", "10.244.0.13", **c_args)
    c2 = api_pod(name_c, c_uid, 1398, "creating", "10.244.0.13", **c_args)
    c3 = api_pod(name_c, c_uid, 1405, "running", "10.244.0.13", started=111, **c_args)
    c4 = api_pod(name_c, c_uid, 1452, "ready", "10.244.0.13", started=111, ready=119, **c_args)
    return {
        "description": "api-server-0 killed (pod deleted with gracePeriodSeconds=0: the API "
        "removes it at once); the ReplicaSet's replacement takes slot api-server-0",
        "events": [
            watch(100.000, "pods", "ADDED", a),
            watch(100.001, "pods", "ADDED", b),
            watch(
                100.002,
                "endpointslices",
                "ADDED",
                endpoint_slice(1210, [(a, "ready"), (b, "ready")]),
            ),
            fault(110.000, "kill", "api-server-0", 1),
            watch(110.018, "pods", "DELETED", a_deleted),
            watch(110.031, "pods", "ADDED", c0),
            watch(110.044, "pods", "MODIFIED", c1),
            watch(110.052, "endpointslices", "MODIFIED", endpoint_slice(1396, [(b, "ready")])),
            watch(110.690, "pods", "MODIFIED", c2),
            watch(111.262, "pods", "MODIFIED", c3),
            watch(119.517, "pods", "MODIFIED", c4),
            watch(
                119.533,
                "endpointslices",
                "MODIFIED",
                endpoint_slice(1455, [(b, "ready"), (c4, "ready")]),
            ),
        ],
    }


def terminate_api_server() -> dict[str, Any]:
    a_uid, b_uid, d_uid = (
        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
        "2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f",
    )
    common = {"created": 140, "scheduled": 140, "started": 142, "ready": 150}
    a = api_pod(
        "airflow-api-server-7d9f8c6b5d-h7t2n", a_uid, 2101, "ready", "10.244.0.21", **common
    )
    b = api_pod(
        "airflow-api-server-7d9f8c6b5d-r5v8c", b_uid, 2103, "ready", "10.244.0.22", **common
    )
    name_b, name_d = b["metadata"]["name"], "airflow-api-server-7d9f8c6b5d-w3j6s"
    b_term = api_pod(name_b, b_uid, 2290, "ready", "10.244.0.22", deleted=210, grace=10, **common)
    b_done = api_pod(
        name_b,
        b_uid,
        2301,
        "terminated",
        "10.244.0.22",
        deleted=210,
        grace=10,
        finished=211,
        exit_code=0,
        **common,
    )
    d_args = {"created": 210, "scheduled": 210}
    d0 = api_pod(name_d, d_uid, 2292, "created", "10.244.0.23", created=210)
    d1 = api_pod(name_d, d_uid, 2294, "scheduled", "10.244.0.23", **d_args)
    d3 = api_pod(name_d, d_uid, 2310, "running", "10.244.0.23", started=211, **d_args)
    d4 = api_pod(name_d, d_uid, 2360, "ready", "10.244.0.23", started=211, ready=220, **d_args)
    return {
        "description": "api-server-1 terminated gracefully (grace 10 s): terminating, out of "
        "the endpoints, exits 0, deleted; the replacement takes slot api-server-1",
        "events": [
            watch(200.000, "pods", "ADDED", a),
            watch(200.001, "pods", "ADDED", b),
            watch(
                200.002,
                "endpointslices",
                "ADDED",
                endpoint_slice(2110, [(a, "ready"), (b, "ready")]),
            ),
            fault(210.000, "terminate", "api-server-1", 7),
            watch(210.011, "pods", "MODIFIED", b_term),
            watch(
                210.020,
                "endpointslices",
                "MODIFIED",
                endpoint_slice(2291, [(a, "ready"), (b, "terminating")]),
            ),
            watch(210.027, "pods", "ADDED", d0),
            watch(210.039, "pods", "MODIFIED", d1),
            watch(211.480, "pods", "MODIFIED", b_done),
            watch(211.502, "pods", "DELETED", b_done),
            watch(211.890, "pods", "MODIFIED", d3),
            watch(220.350, "pods", "MODIFIED", d4),
            watch(
                220.371,
                "endpointslices",
                "MODIFIED",
                endpoint_slice(2363, [(a, "ready"), (d4, "ready")]),
            ),
        ],
    }


def kill_worker() -> dict[str, Any]:
    w0a, w1, w0b = (
        "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b",
        "8f9a0b1c-2d3e-4f4a-9b5c-6d7e8f9a0b1c",
        "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
    )

    def worker(name: str, uid: str, rv: int, stage: str, ip: str, **kw: Any) -> dict[str, Any]:
        labels = {
            "controller-revision-hash": "airflow-worker-6c8d9f7b4",
            "statefulset.kubernetes.io/pod-name": name,
        }
        return pod(
            name=name,
            uid=uid,
            component="worker",
            owner=WORKER_STS,
            rv=rv,
            stage=stage,
            ip=ip,
            port=8793,
            extra_labels=labels,
            **kw,
        )

    common = {"created": 240, "scheduled": 240, "started": 243, "ready": 260}
    a = worker("airflow-worker-0", w0a, 3101, "ready", "10.244.0.31", **common)
    b = worker("airflow-worker-1", w1, 3105, "ready", "10.244.0.32", **common)
    a_gone = worker(
        "airflow-worker-0", w0a, 3301, "ready", "10.244.0.31", deleted=305, grace=0, **common
    )
    c_args = {"created": 305, "scheduled": 305}
    c0 = worker("airflow-worker-0", w0b, 3302, "created", "10.244.0.33", created=305)
    c1 = worker("airflow-worker-0", w0b, 3303, "scheduled", "10.244.0.33", **c_args)
    c3 = worker("airflow-worker-0", w0b, 3312, "running", "10.244.0.33", started=306, **c_args)
    c4 = worker(
        "airflow-worker-0", w0b, 3350, "ready", "10.244.0.33", started=306, ready=318, **c_args
    )
    return {
        "description": "worker-0 (StatefulSet pod airflow-worker-0) killed; the StatefulSet "
        "recreates a pod of the same name (new uid) in slot worker-0",
        "events": [
            watch(300.000, "pods", "ADDED", a),
            watch(300.001, "pods", "ADDED", b),
            fault(305.000, "kill", "worker-0", 3),
            watch(305.014, "pods", "DELETED", a_gone),
            watch(305.040, "pods", "ADDED", c0),
            watch(305.051, "pods", "MODIFIED", c1),
            watch(306.930, "pods", "MODIFIED", c3),
            watch(318.200, "pods", "MODIFIED", c4),
        ],
    }


def main() -> None:
    for name, build in (
        ("kill-api-server", kill_api_server),
        ("terminate-api-server", terminate_api_server),
        ("kill-worker", kill_worker),
    ):
        (HERE / f"{name}.json").write_text(json.dumps(build(), indent=1) + "\n")


if __name__ == "__main__":
    main()
