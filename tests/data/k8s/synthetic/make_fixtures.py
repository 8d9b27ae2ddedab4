"""Writes the SYNTHETIC watch-stream fixtures of this directory:
``python tests/data/k8s/synthetic/make_fixtures.py``.

Nothing here was recorded: no cluster was at hand, so every object is built by this file.
What it follows is the API's behaviour as documented and as the Kubernetes sources show it
(v1.32), so the tests exercise the shapes a live cluster serves:

- Airflow pods have init containers (``wait-for-airflow-migrations``; workers also
  ``ledger-permissions``): ``initContainerStatuses`` run first while the main containers
  wait in ``PodInitializing``; a bad image tag first shows there (``ErrImagePull``);
- the pod IP appears when the pod sandbox starts (``PodReadyToStartContainers``), before
  the init containers run, and the EndpointSlice lists the pod (``ready: false``) from then;
- a delete with ``gracePeriodSeconds=0`` is two writes (apiserver ``registry/store.go``:
  set ``deletionTimestamp``/``deletionGracePeriodSeconds``, then remove): MODIFIED, then
  DELETED, and the kubelet reports nothing in between (the containers still show running);
- a graceful delete: MODIFIED (deletion fields), the endpoint ``terminating``, the
  containers terminated, the pod in a terminal phase (kubelet >= 1.27), then the kubelet's
  own delete with grace 0: MODIFIED again, then DELETED;
- a SIGKILL of the container's processes: the kubelet reports ``terminated`` with exit code
  137 (reason ``Error``) and Ready=False before the pod is deleted;
- watches carry BOOKMARK events (only ``metadata.resourceVersion``) and end with
  ``ERROR`` 410 (``Expired``) when the resourceVersion is too old: the client lists again;
- port names as in ``manifests/`` (``api-server`` 8080, ``worker-logs`` 8793).

Each event has the receipt time ``t`` a harness stamps on it. The nightly workflow records
real streams in the same format into ``tests/data/k8s/recorded/`` (see its README).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
NS = "ha-bench"
NODE = "ha-bench-control-plane"
HOST_IP = "172.18.0.2"
DAY = "2026-01-12T09:"  # wall-clock prefix for timestamps (minute:second appended)
IMAGE = "apache/airflow:3.3.2"
IMAGE_ID = "docker.io/apache/airflow@sha256:" + "3f" * 32
KUBERNETES = "v1.32.2"


def ts(seconds: float) -> str:
    """An RFC 3339 timestamp ``seconds`` after 09:00:00 (fixture time ``t`` maps onto it)."""
    s = int(seconds)
    return f"{DAY}{s // 60 % 60:02d}:{s % 60:02d}Z"


def condition(
    kind: str, ok: bool, at: float, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": ts(at),
    }
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


class PodSpec:
    """One pod of a workload; :meth:`at` gives its object at a stage of its life."""

    def __init__(
        self,
        *,
        name: str,
        uid: str,
        component: str,
        owner: tuple[str, str, str],
        container: str,
        port: tuple[str, int] | None,
        ip: str,
        created: float,
        init: tuple[str, ...] = ("wait-for-airflow-migrations",),
        image: str = IMAGE,
        grace: int = 30,
        labels: dict[str, str] | None = None,
        startup_probe: bool = False,
    ) -> None:
        self.name, self.uid, self.component = name, uid, component
        self.owner, self.container, self.port, self.ip = owner, container, port, ip
        self.created, self.init, self.image, self.grace = created, init, image, grace
        self.labels = labels or {}
        self.startup_probe = startup_probe

    def cid(self, container: str, n: int = 0) -> str:
        digest = f"{self.uid}{container}{n}".encode().hex()
        return f"containerd://{(digest * 3)[:64]}"

    def _meta(self, rv: int) -> dict[str, Any]:
        kind, owner_name, owner_uid = self.owner
        tier = {} if self.component in ("postgres", "redis") else {"tier": "airflow"}
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": NS,
            "uid": self.uid,
            "resourceVersion": str(rv),
            "creationTimestamp": ts(self.created),
            "labels": {
                "app.kubernetes.io/part-of": "airflow-ha-bench",
                "component": self.component,
                "release": "ha-bench",
                **tier,
                **self.labels,
            },
            "annotations": {"ha-bench/airflow-env-hash": "5d41402abc4b2a76"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1" if kind == "Job" else "apps/v1",
                    "kind": kind,
                    "name": owner_name,
                    "uid": owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if kind != "StatefulSet":  # a StatefulSet names its pods; the others generate names
            meta = {"name": self.name, "generateName": f"{owner_name}-", **meta}
        if kind == "Job":
            del meta["annotations"]
        return meta

    def _container_spec(self, name: str, args: list[str], port: bool) -> dict[str, Any]:
        c: dict[str, Any] = {
            "name": name,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "args": args,
            "envFrom": [{"configMapRef": {"name": "airflow-env"}}],
            "resources": {
                "limits": {"memory": "1Gi"},
                "requests": {"cpu": "25m", "memory": "256Mi"},
            },
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "volumeMounts": [
                {
                    "name": "kube-api-access-7xk2p",
                    "readOnly": True,
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                }
            ],
        }
        if port and self.port:
            c["ports"] = [{"name": self.port[0], "containerPort": self.port[1], "protocol": "TCP"}]
        return c

    def _spec(self, scheduled: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "volumes": [
                {
                    "name": "kube-api-access-7xk2p",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
            "containers": [self._container_spec(self.container, ["airflow", self.component], True)],
            "restartPolicy": "OnFailure" if self.owner[0] == "Job" else "Always",
            "terminationGracePeriodSeconds": self.grace,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        }
        if self.init:
            spec["initContainers"] = [
                self._container_spec(n, ["airflow", "db", "check-migrations"], False)
                for n in self.init
            ]
        if self.owner[0] == "StatefulSet":
            spec["hostname"] = self.name
            spec["subdomain"] = self.owner[1]
        if scheduled:
            spec["nodeName"] = NODE
        return spec

    def _status(
        self,
        name: str,
        state: dict[str, Any],
        *,
        ready: bool,
        started: bool,
        restarts: int = 0,
        image_id: bool = True,
        last: dict | None = None,
        n: int = 0,
    ) -> dict[str, Any]:
        cs: dict[str, Any] = {
            "name": name,
            "state": state,
            "lastState": last or {},
            "ready": ready,
            "restartCount": restarts,
            "image": f"docker.io/{self.image}",
            "imageID": IMAGE_ID if image_id else "",
            "started": started,
        }
        if image_id:
            cs["containerID"] = self.cid(name, n)
        return cs

    def at(
        self,
        stage: str,
        rv: int,
        *,
        t: float,
        scheduled_at: float | None = None,
        sandbox_at: float | None = None,
        init_done_at: float | None = None,
        started_at: float | None = None,
        ready_at: float | None = None,
        ended_at: float | None = None,
        delete_at: float | None = None,
        delete_grace: int | None = None,
        waiting: tuple[str, str] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """The pod at ``stage``: pending | unschedulable | scheduled | init | init-waiting |
        running | ready | killed | completed. ``t`` is the time of this version."""
        order = [
            "pending",
            "unschedulable",
            "scheduled",
            "init",
            "init-waiting",
            "running",
            "ready",
            "killed",
            "completed",
        ]
        if stage not in order:
            raise ValueError(stage)
        meta = self._meta(rv)
        if delete_at is not None:
            grace = self.grace if delete_grace is None else delete_grace
            meta["deletionTimestamp"] = ts(delete_at + grace)
            meta["deletionGracePeriodSeconds"] = grace
        scheduled = stage not in ("pending", "unschedulable")
        status: dict[str, Any] = {"phase": "Pending", "qosClass": "Burstable"}
        sched_t = scheduled_at if scheduled_at is not None else self.created
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": meta,
            "spec": self._spec(scheduled),
            "status": status,
        }
        if stage == "pending":
            return pod
        if stage == "unschedulable":
            status["conditions"] = [
                condition("PodScheduled", False, sched_t, "Unschedulable", message)
            ]
            return pod
        if stage == "scheduled":
            status["conditions"] = [condition("PodScheduled", True, sched_t)]
            return pod
        sandbox = sandbox_at if sandbox_at is not None else sched_t
        status.update(
            hostIP=HOST_IP,
            hostIPs=[{"ip": HOST_IP}],
            podIP=self.ip,
            podIPs=[{"ip": self.ip}],
            startTime=ts(sandbox),
        )
        main_names = [self.container]
        init_names = list(self.init)
        initializing = stage in ("init", "init-waiting")
        initialized = not initializing or not init_names
        running = stage in ("running", "ready")
        is_ready = stage == "ready"
        ended = stage in ("killed", "completed")
        not_ready = (
            "PodCompleted"
            if stage == "completed"
            else "ContainersNotReady"
            if initialized
            else "ContainersNotInitialized"
        )
        unready_msg = (
            None
            if stage == "completed"
            else f"containers with unready status: [{' '.join(main_names)}]"
        )
        conditions = [
            condition("PodReadyToStartContainers", stage != "completed", sandbox),
            condition(
                "Initialized",
                initialized,
                init_done_at if initialized and init_done_at is not None else sandbox,
                None if initialized or not init_names else "ContainersNotInitialized",
                None
                if initialized or not init_names
                else f"containers with incomplete status: [{' '.join(init_names)}]",
            ),
            condition(
                "Ready",
                is_ready,
                ready_at if is_ready else (ended_at if ended else sandbox) or sandbox,
                None if is_ready else not_ready,
                None if is_ready else unready_msg,
            ),
            condition(
                "ContainersReady",
                is_ready,
                ready_at if is_ready else (ended_at if ended else sandbox) or sandbox,
                None if is_ready else not_ready,
                None if is_ready else unready_msg,
            ),
            condition("PodScheduled", True, sched_t),
        ]
        status["conditions"] = conditions
        inits = []
        for i, name in enumerate(init_names):
            if initialized or (stage == "init" and i < len(init_names) - 1):
                done = init_done_at if init_done_at is not None else sandbox
                state = {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": ts(sandbox),
                        "finishedAt": ts(done),
                        "containerID": self.cid(name),
                    }
                }
                inits.append(self._status(name, state, ready=True, started=False))
            elif stage == "init-waiting" and i == 0:
                reason, why = waiting or ("ErrImagePull", "")
                state = {"waiting": {"reason": reason, "message": why}}
                inits.append(self._status(name, state, ready=False, started=False, image_id=False))
            elif stage == "init" and i == len(init_names) - 1:
                state = {"running": {"startedAt": ts(sandbox)}}
                inits.append(self._status(name, state, ready=False, started=True))
            else:
                state = {"waiting": {"reason": "PodInitializing"}}
                inits.append(self._status(name, state, ready=False, started=False, image_id=False))
        if inits:
            status["initContainerStatuses"] = inits
        start = started_at if started_at is not None else sandbox
        if initializing:
            if init_names:
                main = {"waiting": {"reason": "PodInitializing"}}
            elif stage == "init-waiting":
                reason, why = waiting or ("ErrImagePull", "")
                main = {"waiting": {"reason": reason, "message": why}}
            else:
                main = {"waiting": {"reason": "ContainerCreating"}}
            cs = self._status(self.container, main, ready=False, started=False, image_id=False)
        elif running:
            status["phase"] = "Running"
            started = is_ready or not self.startup_probe
            cs = self._status(
                self.container,
                {"running": {"startedAt": ts(start)}},
                ready=is_ready,
                started=started,
            )
        else:
            code, reason = (137, "Error") if stage == "killed" else (0, "Completed")
            status["phase"] = "Running" if stage == "killed" else "Succeeded"
            cs = self._status(
                self.container,
                {
                    "terminated": {
                        "exitCode": code,
                        "reason": reason,
                        "startedAt": ts(start),
                        "finishedAt": ts(ended_at or t),
                        "containerID": self.cid(self.container),
                    }
                },
                ready=False,
                started=False,
            )
        status["containerStatuses"] = [cs]
        return pod


def endpoint_slice(rv: int, endpoints: list[tuple[PodSpec, str]], t: float) -> dict[str, Any]:
    """The api-server Service's slice; each endpoint ``ready`` | ``unready`` |
    ``terminating`` (graceful) | ``terminating-unready``."""
    out = []
    for p, how in endpoints:
        ready = how == "ready"
        terminating = how.startswith("terminating")
        serving = ready or how == "terminating"
        out.append(
            {
                "addresses": [p.ip],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                "targetRef": {"kind": "Pod", "namespace": NS, "name": p.name, "uid": p.uid},
                "nodeName": NODE,
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
                "component": "api-server",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": "airflow-api-server",
                "release": "ha-bench",
                "tier": "airflow",
            },
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": ts(t)},
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
        "ports": [{"name": "api-server", "protocol": "TCP", "port": 8080}],
    }


def bookmark(kind: str, api_version: str, rv: int) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(rv)}}


def expired(requested: int, oldest: int) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {requested} ({oldest})",
        "reason": "Expired",
        "code": 410,
    }


API_RS = ("ReplicaSet", "airflow-api-server-7d9f8c6b5d", "b6c1f0de-5a4e-4d1b-8f3e-0c9a7b6d5e41")
WORKER_STS = ("StatefulSet", "airflow-worker", "e2f4a6c8-1b3d-4e5f-8a7b-9c0d1e2f3a4b")
MIGRATE_JOB = ("Job", "airflow-db-migrate", "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a")


def api_pod(name: str, uid: str, ip: str, created: float) -> PodSpec:
    return PodSpec(
        name=name,
        uid=uid,
        component="api-server",
        owner=API_RS,
        container="api-server",
        port=("api-server", 8080),
        ip=ip,
        created=created,
        labels={"pod-template-hash": "7d9f8c6b5d"},
        startup_probe=True,
    )


def worker_pod(name: str, uid: str, ip: str, created: float) -> PodSpec:
    return PodSpec(
        name=name,
        uid=uid,
        component="worker",
        owner=WORKER_STS,
        container="worker",
        port=("worker-logs", 8793),
        ip=ip,
        created=created,
        init=("ledger-permissions", "wait-for-airflow-migrations"),
        grace=600,
        labels={
            "apps.kubernetes.io/pod-index": name.rsplit("-", 1)[1],
            "controller-revision-hash": "airflow-worker-6c8d9f7b4",
            "statefulset.kubernetes.io/pod-name": name,
        },
    )


def watch(t: float, stream: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"t": round(t, 3), "watch": stream, "type": kind, "object": copy.deepcopy(obj)}


def fault(t: float, op: str, target: str, op_id: int, phase: str = "invoke") -> dict[str, Any]:
    return {
        "t": t,
        "watch": "harness",
        "type": "fault",
        "op": op,
        "target": target,
        "phase": phase,
        "op_id": op_id,
    }


def ready_kw(created: float) -> dict[str, float]:
    return {
        "scheduled_at": created,
        "sandbox_at": created + 1,
        "init_done_at": created + 6,
        "started_at": created + 7,
        "ready_at": created + 15,
    }


def replacement(p: PodSpec, rv: int, t0: float, stream_slice: Any = None) -> list[dict]:
    """The controller's new pod from ADDED to Ready (init containers first)."""
    kw = {
        "scheduled_at": t0,
        "sandbox_at": t0 + 0.6,
        "init_done_at": t0 + 5.2,
        "started_at": t0 + 5.4,
    }
    events = [
        watch(t0 + 0.013, "pods", "ADDED", p.at("pending", rv, t=t0)),
        watch(t0 + 0.024, "pods", "MODIFIED", p.at("scheduled", rv + 2, t=t0, **kw)),
        watch(t0 + 0.68, "pods", "MODIFIED", p.at("init", rv + 5, t=t0 + 0.6, **kw)),
    ]
    if stream_slice is not None:
        events.append(watch(t0 + 0.69, "endpointslices", "MODIFIED", stream_slice("unready")))
    events += [
        watch(t0 + 5.31, "pods", "MODIFIED", p.at("running", rv + 40, t=t0 + 5.3, **kw)),
        watch(
            t0 + 13.52,
            "pods",
            "MODIFIED",
            p.at("ready", rv + 80, t=t0 + 13.5, ready_at=t0 + 13.5, **kw),
        ),
    ]
    if stream_slice is not None:
        events.append(watch(t0 + 13.54, "endpointslices", "MODIFIED", stream_slice("ready")))
    return events


A = api_pod(
    "airflow-api-server-7d9f8c6b5d-x2x9q", "5f0c2a7e-1d4b-4c3a-9e8f-7a6b5c4d3e21", "10.244.0.11", 40
)
B = api_pod(
    "airflow-api-server-7d9f8c6b5d-k4m7p", "8e1d3b9f-2c5a-4d6e-8f7a-1b2c3d4e5f62", "10.244.0.12", 40
)
C = api_pod(
    "airflow-api-server-7d9f8c6b5d-q8w2z",
    "c3a9e7d1-4b2f-4e8a-9d6c-5b4a3f2e1d03",
    "10.244.0.13",
    110,
)


def steady(a: PodSpec, b: PodSpec, t: float, rv: int) -> list[dict[str, Any]]:
    return [
        watch(t, "pods", "ADDED", a.at("ready", rv, t=t, **ready_kw(a.created))),
        watch(t + 0.001, "pods", "ADDED", b.at("ready", rv + 6, t=t, **ready_kw(b.created))),
        watch(
            t + 0.002,
            "endpointslices",
            "ADDED",
            endpoint_slice(rv + 9, [(a, "ready"), (b, "ready")], t),
        ),
    ]


def death(t: float, pod: PodSpec, container: str, via: str) -> dict[str, Any]:
    """The nemesis's report of the killed processes' death (not a watch event)."""
    return {
        "t": t,
        "watch": "harness",
        "type": "death",
        "uid": pod.uid,
        "pod": pod.name,
        "container": container,
        "exit_code": 137,
        "via": via,
    }


def kill_api_server() -> dict[str, Any]:
    """The harness's kill: SIGKILL of the container's processes (the exec that sent it ends
    with the container), then at once the pod deleted with grace 0, before the kubelet
    reported anything (the deleted object still shows the container running)."""
    ka = ready_kw(40)

    def slice_c(how: str) -> dict[str, Any]:
        return endpoint_slice(1475 if how == "ready" else 1399, [(B, "ready"), (C, how)], 111)

    gone = A.at("ready", 1391, t=110.06, delete_at=110.06, delete_grace=0, **ka)
    events = [
        *steady(A, B, 100.0, 1201),
        watch(105.0, "pods", "BOOKMARK", bookmark("Pod", "v1", 1290)),
        watch(
            105.0,
            "endpointslices",
            "BOOKMARK",
            bookmark("EndpointSlice", "discovery.k8s.io/v1", 1290),
        ),
        fault(110.0, "kill", "api-server-0", 1),
        death(110.052, A, "api-server", "exec"),
        watch(
            110.061,
            "pods",
            "MODIFIED",
            {**gone, "metadata": {**gone["metadata"], "resourceVersion": "1390"}},
        ),
        watch(110.063, "pods", "DELETED", gone),
        fault(110.07, "kill", "api-server-0", 1, phase="ok"),
        watch(110.071, "endpointslices", "MODIFIED", endpoint_slice(1393, [(B, "ready")], 110.06)),
        *replacement(C, 1392, 110.06, slice_c),
    ]
    return {
        "description": "api-server-0 killed: its processes SIGKILLed (the death seen by the "
        "nemesis: the exec ends with the container), then the pod deleted with grace 0 "
        "(MODIFIED, DELETED, before any kubelet report); the ReplicaSet's replacement (init "
        "container first) takes slot api-server-0",
        "events": events,
    }


def force_delete_api_server() -> dict[str, Any]:
    """A delete with grace 0: the object goes at once, the kubelet has not stopped anything."""
    ka = ready_kw(40)

    def slice_c(how: str) -> dict[str, Any]:
        return endpoint_slice(1475 if how == "ready" else 1399, [(B, "ready"), (C, how)], 111)

    gone = A.at("ready", 1391, t=110, delete_at=110, delete_grace=0, **ka)
    events = [
        *steady(A, B, 100.0, 1201),
        fault(110.0, "force_delete", "api-server-0", 2),
        watch(
            110.016,
            "pods",
            "MODIFIED",
            {**gone, "metadata": {**gone["metadata"], "resourceVersion": "1390"}},
        ),
        watch(110.018, "pods", "DELETED", gone),
        watch(110.030, "endpointslices", "MODIFIED", endpoint_slice(1393, [(B, "ready")], 110)),
        *replacement(C, 1392, 110.02, slice_c),
    ]
    return {
        "description": "api-server-0 force-deleted (gracePeriodSeconds=0): MODIFIED with "
        "deletionTimestamp, then DELETED, the container still shown running (the kubelet "
        "stops it gracefully later: SIGTERM, SIGKILL after the pod's grace)",
        "events": events,
    }


def terminate_api_server() -> dict[str, Any]:
    h = api_pod(
        "airflow-api-server-7d9f8c6b5d-h7t2n",
        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "10.244.0.21",
        140,
    )
    r = api_pod(
        "airflow-api-server-7d9f8c6b5d-r5v8c",
        "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
        "10.244.0.22",
        140,
    )
    w = api_pod(
        "airflow-api-server-7d9f8c6b5d-w3j6s",
        "2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f",
        "10.244.0.23",
        210,
    )
    r.grace = 10
    kr = ready_kw(140)

    def slice_w(how: str) -> dict[str, Any]:
        return endpoint_slice(2375 if how == "ready" else 2300, [(h, "ready"), (w, how)], 211)

    events = [
        *steady(h, r, 200.0, 2101),
        fault(210.0, "terminate", "api-server-1", 7),
        watch(210.011, "pods", "MODIFIED", r.at("ready", 2290, t=210, delete_at=210, **kr)),
        watch(
            210.020,
            "endpointslices",
            "MODIFIED",
            endpoint_slice(2291, [(h, "ready"), (r, "terminating")], 210),
        ),
        *replacement(w, 2292, 210.02, None)[:2],
        watch(
            211.480,
            "pods",
            "MODIFIED",
            r.at("completed", 2301, t=211.4, ended_at=211, delete_at=210, **kr),
        ),
        watch(
            211.490,
            "endpointslices",
            "MODIFIED",
            endpoint_slice(2302, [(h, "ready"), (r, "terminating-unready")], 211.4),
        ),
        # the kubelet deletes the finished pod with grace 0: MODIFIED, then DELETED
        watch(
            211.497,
            "pods",
            "MODIFIED",
            r.at("completed", 2303, t=211.4, ended_at=211, delete_at=211.4, delete_grace=0, **kr),
        ),
        watch(
            211.502,
            "pods",
            "DELETED",
            r.at("completed", 2304, t=211.4, ended_at=211, delete_at=211.4, delete_grace=0, **kr),
        ),
        watch(211.51, "endpointslices", "MODIFIED", endpoint_slice(2305, [(h, "ready")], 211.5)),
        *replacement(w, 2292, 210.02, slice_w)[2:],
    ]
    return {
        "description": "api-server-1 terminated gracefully (grace 10 s): terminating, the "
        "endpoint terminating, exits 0 (phase Succeeded), the kubelet's delete (MODIFIED, "
        "DELETED); the replacement takes slot api-server-1",
        "events": sorted(events, key=lambda e: e["t"]),
    }


def kill_worker() -> dict[str, Any]:
    w0a = worker_pod("airflow-worker-0", "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b", "10.244.0.31", 240)
    w1 = worker_pod("airflow-worker-1", "8f9a0b1c-2d3e-4f4a-9b5c-6d7e8f9a0b1c", "10.244.0.32", 240)
    w0b = worker_pod("airflow-worker-0", "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "10.244.0.33", 305)
    k = ready_kw(240)
    events = [
        watch(300.0, "pods", "ADDED", w0a.at("ready", 3101, t=300, **k)),
        watch(300.001, "pods", "ADDED", w1.at("ready", 3105, t=300, **k)),
        fault(305.0, "kill", "worker-0", 3),
        # this time the kubelet's report (PLEG relist) won the race with the harness's delete
        watch(305.070, "pods", "MODIFIED", w0a.at("killed", 3290, t=305.06, ended_at=305, **k)),
        death(305.41, w0a, "worker", "runtime"),
        watch(
            305.432,
            "pods",
            "MODIFIED",
            w0a.at("killed", 3300, t=305.42, ended_at=305, delete_at=305.42, delete_grace=0, **k),
        ),
        fault(305.433, "kill", "worker-0", 3, phase="ok"),
        watch(
            305.434,
            "pods",
            "DELETED",
            w0a.at("killed", 3301, t=305.42, ended_at=305, delete_at=305.42, delete_grace=0, **k),
        ),
        *replacement(w0b, 3302, 305.44),
    ]
    return {
        "description": "worker-0 (StatefulSet pod airflow-worker-0) killed through the node's "
        "runtime: the kubelet reports exit 137 first, then the nemesis's death report and "
        "the delete; the StatefulSet recreates a pod of the same name (new uid) once the old "
        "object is gone, in slot worker-0",
        "events": events,
    }


def relist_after_410() -> dict[str, Any]:
    """A watch that fell behind: ERROR 410, a fresh LIST (api-server-0 was replaced in the
    gap), then the watch from the list's resourceVersion."""
    ka, kc = ready_kw(40), ready_kw(110)
    c_ready = C.at("ready", 1460, t=125, **kc)
    return {
        "description": "the pod watch expires (ERROR 410 Expired); the harness lists again: "
        "the list no longer has api-server-0's pod and has its replacement",
        "events": [
            *steady(A, B, 100.0, 1201),
            watch(105.0, "pods", "BOOKMARK", bookmark("Pod", "v1", 1290)),
            watch(130.0, "pods", "ERROR", expired(1290, 1400)),
            {
                "t": 130.05,
                "watch": "pods",
                "type": "LIST",
                "resourceVersion": "1502",
                "items": [copy.deepcopy(B.at("ready", 1207, t=100, **ka)), c_ready],
            },
            watch(131.0, "pods", "BOOKMARK", bookmark("Pod", "v1", 1510)),
        ],
    }


def bad_image() -> dict[str, Any]:
    """Bring-up with a tag that does not exist: the first pull is an init container's."""
    tag = "apache/airflow:9.9.9"
    a = api_pod(
        "airflow-api-server-5c6d7e8f9a-b4d2k",
        "aa0b1c2d-0000-4a5b-8c6d-7e8f9a0b1c2d",
        "10.244.0.41",
        400,
    )
    a.image = tag
    job = PodSpec(
        name="airflow-db-migrate-x7k2m",
        uid="bb0b1c2d-0000-4a5b-8c6d-7e8f9a0b1c2d",
        component="run-airflow-migrations",
        owner=MIGRATE_JOB,
        container="run-airflow-migrations",
        port=None,
        ip="10.244.0.42",
        created=400,
        init=(),
        image=tag,
        labels={
            "batch.kubernetes.io/controller-uid": MIGRATE_JOB[2],
            "batch.kubernetes.io/job-name": MIGRATE_JOB[1],
            "controller-uid": MIGRATE_JOB[2],
            "job-name": MIGRATE_JOB[1],
        },
    )
    pull = (
        'failed to pull and unpack image "docker.io/apache/airflow:9.9.9": failed to resolve '
        'reference "docker.io/apache/airflow:9.9.9": docker.io/apache/airflow:9.9.9: not found'
    )
    back_off = 'Back-off pulling image "apache/airflow:9.9.9"'
    kw = {"scheduled_at": 400, "sandbox_at": 400.7}
    return {
        "description": "bring-up with apache/airflow:9.9.9: the api-server's init container "
        "and the migration Job's container fail to pull (ErrImagePull, then "
        "ImagePullBackOff) while the main container waits in PodInitializing",
        "events": [
            watch(400.01, "pods", "ADDED", a.at("pending", 4001, t=400)),
            watch(400.02, "pods", "ADDED", job.at("pending", 4002, t=400)),
            watch(400.03, "pods", "MODIFIED", a.at("scheduled", 4004, t=400, **kw)),
            watch(400.04, "pods", "MODIFIED", job.at("scheduled", 4005, t=400, **kw)),
            watch(400.75, "pods", "MODIFIED", a.at("init", 4010, t=400.7, **kw)),
            watch(
                402.31,
                "pods",
                "MODIFIED",
                a.at("init-waiting", 4021, t=402.3, waiting=("ErrImagePull", pull), **kw),
            ),
            watch(
                402.52,
                "pods",
                "MODIFIED",
                job.at("init-waiting", 4023, t=402.5, waiting=("ErrImagePull", pull), **kw),
            ),
            watch(
                416.1,
                "pods",
                "MODIFIED",
                a.at("init-waiting", 4090, t=416, waiting=("ImagePullBackOff", back_off), **kw),
            ),
        ],
    }


def unschedulable() -> dict[str, Any]:
    w = worker_pod("airflow-worker-1", "cc0b1c2d-0000-4a5b-8c6d-7e8f9a0b1c2d", "", 500)
    message = (
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are "
        "available: 1 No preemption victims found for incoming pod."
    )
    return {
        "description": "a worker pod the scheduler cannot place (requests above what the "
        "node has left): PodScheduled=False, reason Unschedulable",
        "events": [
            watch(500.01, "pods", "ADDED", w.at("pending", 5001, t=500)),
            watch(
                500.05,
                "pods",
                "MODIFIED",
                w.at("unschedulable", 5003, t=500, scheduled_at=500, message=message),
            ),
        ],
    }


def main() -> None:
    for name, build in (
        ("kill-api-server", kill_api_server),
        ("force-delete-api-server", force_delete_api_server),
        ("terminate-api-server", terminate_api_server),
        ("kill-worker", kill_worker),
        ("relist-after-410", relist_after_410),
        ("bad-image", bad_image),
        ("unschedulable", unschedulable),
    ):
        fixture = {
            "source": "synthetic",
            "shapes_of": f"Kubernetes {KUBERNETES} (not recorded)",
            **build(),
        }
        (HERE / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")


if __name__ == "__main__":
    main()
