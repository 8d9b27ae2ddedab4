"""Why a bring-up cannot succeed, found within seconds; what the pods requested; and what
is kept of a namespace before it is deleted.

Pure logic on the API's objects (the cluster calls it with what its watches and lists
see), except :func:`collect`, which reads through the guarded API and writes files.

A bring-up problem is one no waiting will fix: an image that cannot be pulled (by an
*init* container first: the main containers of a pod with init containers sit in
``PodInitializing`` meanwhile), a container config error, a crash loop, a pod the
scheduler cannot place (``PodScheduled=False``, ``Unschedulable``) for longer than a few
seconds, the migration Job failed (its pods are no tracked replica, but they are watched),
or a Deployment whose ReplicaSet cannot create pods.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

BAD_WAITING = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)
CRASH_RESTARTS = 5
UNSCHEDULABLE_S = 15.0
LOG_LIMIT_BYTES = 5 * 1024 * 1024
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def _first_line(text: str | None, limit: int = 300) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:limit] if lines else ""


def container_problems(pod: Mapping[str, Any], crash_restarts: int = CRASH_RESTARTS) -> list[str]:
    """Init containers first (the first pull is theirs), then the containers."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    out = []
    for key, what in (
        ("initContainerStatuses", "init container"),
        ("containerStatuses", "container"),
    ):
        for cs in status.get(key) or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            restarts = int(cs.get("restartCount") or 0)
            if reason in BAD_WAITING or (
                reason == "CrashLoopBackOff" and restarts >= crash_restarts
            ):
                message = _first_line(waiting.get("message"))
                if reason == "CrashLoopBackOff":
                    last = (cs.get("lastState") or {}).get("terminated") or {}
                    message = message or (
                        f"{restarts} restarts, last exit {last.get('exitCode')} "
                        f"({last.get('reason')})"
                    )
                out.append(
                    f"pod {name} {what} {cs.get('name')}: {reason}"
                    + (f" ({message})" if message else "")
                )
    return out


def unschedulable(pod: Mapping[str, Any]) -> str | None:
    """The scheduler's message when the pod cannot be placed, else None."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        placed = c.get("type") == "PodScheduled" and c.get("status") == "False"
        if placed and c.get("reason") == "Unschedulable":
            return _first_line(c.get("message")) or "Unschedulable"
    return None


def job_problem(job: Mapping[str, Any]) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Failed" and c.get("status") == "True":
            return (
                f"Job {job['metadata']['name']} failed: {c.get('reason')} "
                f"({_first_line(c.get('message'))})"
            )
    return None


def workload_problem(workload: Mapping[str, Any]) -> str | None:
    """A Deployment whose ReplicaSet cannot create pods (quota, admission, service account)."""
    for c in (workload.get("status") or {}).get("conditions") or []:
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
            return (
                f"{workload.get('kind')} {workload['metadata']['name']} cannot create pods: "
                f"{c.get('reason')} ({_first_line(c.get('message'))})"
            )
    return None


class BringUpWatch:
    """Reports the first bring-up problem no waiting will fix, from what the watches see.

    Stateful only for unschedulable pods: one is reported once it has been unschedulable
    for ``unschedulable_s`` (the scheduler retries; a pod may wait for one that is leaving).
    """

    def __init__(
        self,
        *,
        crash_restarts: int = CRASH_RESTARTS,
        unschedulable_s: float = UNSCHEDULABLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crash_restarts = crash_restarts
        self.unschedulable_s = unschedulable_s
        self._clock = clock
        self._since: dict[str, float] = {}

    def problem(
        self,
        pods: Iterable[Mapping[str, Any]],
        jobs: Iterable[Mapping[str, Any]] = (),
        workloads: Iterable[Mapping[str, Any]] = (),
    ) -> str | None:
        now = self._clock()
        seen = set()
        found: list[str] = []
        for pod in pods:
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue  # leaving: not what the bring-up waits for
            found += container_problems(pod, self.crash_restarts)
            uid = pod["metadata"].get("uid", pod["metadata"]["name"])
            message = unschedulable(pod)
            if message is None:
                continue
            seen.add(uid)
            since = self._since.setdefault(uid, now)
            if now - since >= self.unschedulable_s:
                found.append(
                    f"pod {pod['metadata']['name']} unschedulable for {now - since:.0f} s: "
                    f"{message}"
                )
        for uid in set(self._since) - seen:
            del self._since[uid]
        found += [p for p in map(job_problem, jobs) if p]
        found += [p for p in map(workload_problem, workloads) if p]
        return found[0] if found else None


def bring_up_problem(
    pods: Iterable[Mapping[str, Any]], crash_restarts: int = CRASH_RESTARTS
) -> str | None:
    """A container problem no waiting will help (bad image, config error, crash loop)."""
    for pod in pods:
        problems = container_problems(pod, crash_restarts)
        if problems:
            return problems[0]
    return None


# -- resources ---------------------------------------------------------------------------
def quantity(value: Any) -> float:
    """A Kubernetes quantity (``100m``, ``768Mi``, ``2``) as a number (cores, bytes)."""
    match = _QUANTITY.match(str(value).strip())
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def pod_requests(pod_spec: Mapping[str, Any]) -> dict[str, float]:
    """What the scheduler reserves for one pod: per resource, the larger of the biggest
    init container and the sum of the containers (init containers run one at a time)."""
    out = {}
    for resource in ("cpu", "memory"):

        def req(c: Mapping[str, Any], resource: str = resource) -> float:
            return quantity(((c.get("resources") or {}).get("requests") or {}).get(resource, 0))

        main = sum(req(c) for c in pod_spec.get("containers") or [])
        init = max((req(c) for c in pod_spec.get("initContainers") or []), default=0.0)
        out[resource] = max(main, init)
    return out


def summed_requests(
    objects: Iterable[Mapping[str, Any]], *, kinds: tuple[str, ...] = ("Deployment", "StatefulSet")
) -> dict[str, float]:
    """Requests of every pod the workloads of ``kinds`` make (replicas x per pod)."""
    total = {"cpu": 0.0, "memory": 0.0}
    for obj in objects:
        if obj.get("kind") not in kinds:
            continue
        spec = obj.get("spec") or {}
        replicas = int(spec.get("replicas", 1)) if obj.get("kind") != "Job" else 1
        per_pod = pod_requests((spec.get("template") or {}).get("spec") or {})
        for resource, value in per_pod.items():
            total[resource] += replicas * value
    return total


def allocatable(nodes: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    total = {"cpu": 0.0, "memory": 0.0}
    for node in nodes:
        alloc = (node.get("status") or {}).get("allocatable") or {}
        for resource in total:
            total[resource] += quantity(alloc.get(resource, 0))
    return total


def requests_problem(
    objects: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]]
) -> str | None:
    """The manifests request more than all nodes together can allocate: certain to fail."""
    objects = list(objects)
    want = summed_requests(objects, kinds=("Deployment", "StatefulSet", "Job"))
    have = allocatable(nodes)
    over = [r for r in ("cpu", "memory") if have[r] and want[r] > have[r]]
    if not over:
        return None
    gib = 2**30
    parts = [
        f"{r} {want[r]:.2f} cores > {have[r]:.2f}"
        if r == "cpu"
        else f"memory {want[r] / gib:.2f} GiB > {have[r] / gib:.2f} GiB"
        for r in over
    ]
    return "the manifests request more than the nodes can allocate: " + ", ".join(parts)


# -- what is kept of a namespace ---------------------------------------------------------
def describe_pod(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> str:
    """A short ``kubectl describe pod``-like text: phase, conditions, container states,
    and the pod's events."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    lines = [
        f"Name:       {meta['name']}",
        f"UID:        {meta.get('uid')}",
        f"Node:       {spec.get('nodeName')}",
        f"Phase:      {status.get('phase')}",
        f"Pod IP:     {status.get('podIP')}",
        f"Deleting:   {meta.get('deletionTimestamp') or '-'}",
        "Conditions:",
    ]
    for c in status.get("conditions") or []:
        reason = f" {c.get('reason')}" if c.get("reason") else ""
        message = f": {_first_line(c.get('message'))}" if c.get("message") else ""
        lines.append(f"  {c['type']}={c['status']}{reason}{message}")
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            state = json.dumps(cs.get("state") or {}, sort_keys=True)
            last = json.dumps(cs.get("lastState") or {}, sort_keys=True)
            lines.append(
                f"{key[:-8]} {cs.get('name')}: restarts={cs.get('restartCount')} "
                f"image={cs.get('image')} state={state} last={last}"
            )
    lines.append("Events:")
    for e in events:
        lines.append(f"  {event_line(e)}")
    return "\n".join(lines) + "\n"


def event_line(e: Mapping[str, Any]) -> str:
    when = e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""
    obj = e.get("involvedObject") or {}
    count = f" x{e['count']}" if e.get("count", 1) and int(e.get("count") or 1) > 1 else ""
    return (
        f"{when} {e.get('type')} {e.get('reason')} {obj.get('kind')}/{obj.get('name')}"
        f"{count}: {_first_line(e.get('message'), 500)}"
    )


def events_for(events: Iterable[Mapping[str, Any]], uid: str) -> list[Mapping[str, Any]]:
    return [e for e in events if (e.get("involvedObject") or {}).get("uid") == uid]


def collect(api: Any, pods: Iterable[Mapping[str, Any]], into: Path) -> dict[str, Any]:
    """Keep a namespace's evidence in ``into``: every pod's object (YAML), a description
    with its events, each container's log and its previous instance's (``-p``), and all
    events of the namespace. Best effort: a read that fails is noted, never raised.

    ``api`` is a :class:`~harness.platform.kubernetes.safety.GuardedApi`; ``pods`` are the
    pods to keep (the watch's, which knows pods already gone from a list).
    """
    into.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    try:
        events = api.list("Event", scoped=False)[0]
    except Exception as exc:
        events, _ = [], notes.append(f"events: {exc}")
    (into / "events.txt").write_text(
        "".join(event_line(e) + "\n" for e in sorted(events, key=event_line))
    )
    kept = {"pods": 0, "logs": 0}
    for pod in pods:
        name = pod["metadata"]["name"]
        pod_dir = into / name
        pod_dir.mkdir(exist_ok=True)
        (pod_dir / "pod.yaml").write_text(yaml.safe_dump(dict(pod), sort_keys=False))
        uid = pod["metadata"].get("uid", "")
        (pod_dir / "describe.txt").write_text(describe_pod(pod, events_for(events, uid)))
        kept["pods"] += 1
        spec = pod.get("spec") or {}
        names = [
            c["name"] for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        ]
        for container in names:
            for previous in (False, True):
                try:
                    text = api.pod_log(
                        pod, container, previous=previous, limit_bytes=LOG_LIMIT_BYTES
                    )
                except Exception as exc:
                    notes.append(f"{name}/{container}{' -p' if previous else ''}: {exc}")
                    continue
                if text is None:
                    continue
                suffix = ".previous.log" if previous else ".log"
                (pod_dir / f"{container}{suffix}").write_text(text)
                kept["logs"] += 1
    if notes:
        (into / "collection-notes.txt").write_text("\n".join(notes) + "\n")
    return {**kept, "events": len(events), "notes": len(notes), "dir": str(into)}
