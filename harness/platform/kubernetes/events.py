"""Pod and EndpointSlice watch events → the platform's ``lifecycle`` events.

:class:`LifecycleTracker` is pure and deterministic: feed it watch events (``ADDED`` /
``MODIFIED`` / ``DELETED`` with the API's JSON objects) in the order received and it
returns the lifecycle events they imply, found by diffing each pod against its previous
state. Every event is ``{"replica", "component", "state", "pod", "uid", "incarnation",
...}`` with ``state`` one of :data:`STATES`:

``created``           the pod object appeared (the controller made a replacement)
``scheduled``         condition PodScheduled became True (``node``)
``started``           a container is running with a new ``startedAt`` (``container``)
``ready`` / ``not_ready``  condition Ready changed (a pod deleted while ready: not_ready)
``exited``            a container terminated (``exit_code``, ``reason``; also a restart
                      seen only through ``restartCount``/``lastState``), or the nemesis
                      saw the processes it SIGKILLed die (``source: nemesis``, ``via``);
                      the kubelet's later report of that same death is not repeated
``terminating``       ``deletionTimestamp`` was set (``grace_s``)
``deleted``           the object is gone (``DELETED``). Not a death: after a delete
                      with grace 0 the kubelet still stops the containers (SIGTERM, then
                      SIGKILL after the pod's grace), and the last object shows them running
``endpoint_added`` / ``endpoint_removed``  the pod entered/left the ready endpoints of
                      the watched Service's EndpointSlices

Logical replica names are stable slots like the local platform's: ``<component>-<i>``
(``postgres`` / ``redis`` for their single slot). A pod takes the lowest free slot of
its component (a StatefulSet pod: its ordinal) and frees it when it starts terminating
or fails, so a replacement takes the slot of the pod it replaced and
``replica_names("api-server")`` stays ``["api-server-0", "api-server-1"]``. The pods of
one slot are its incarnations 1, 2, ...

:func:`watch_action` is how a watch stream is read (by the cluster's watch loop and by the
replay tests alike): object events are fed in, BOOKMARKs only move the resourceVersion,
an ``ERROR`` (410 Expired/Gone: the version is too old) means list again and
:meth:`LifecycleTracker.resync_pods` diffs the fresh list.

What a pod object says (:func:`~.pods.pod_view`) is read in :mod:`.pods`. This module is
longer than most because :class:`LifecycleTracker` is one state machine: its methods share
the slot, incarnation and endpoint bookkeeping, and :class:`WatchedState`, the lock around
it, stays beside it (a module of its own would import the tracker from here while this
one re-exported it: an import cycle).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.errors import HarnessError
from harness.platform.kubernetes.pods import (
    COMPONENT_LABEL,
    KNOWN_COMPONENTS,
    SERVICES,
    ContainerView,
    PodView,
    pod_view,
    ready_pods,
)

STATES = (
    "created",
    "scheduled",
    "started",
    "ready",
    "not_ready",
    "exited",
    "terminating",
    "deleted",
    "endpoint_added",
    "endpoint_removed",
)
_ORDINAL = re.compile(r"-(\d+)$")
OBJECT_EVENTS = ("ADDED", "MODIFIED", "DELETED")


def watch_action(event_type: str, obj: Mapping[str, Any]) -> tuple[str, str | None]:
    """What one watch event means for its stream: ``("event", rv)`` feed it in,
    ``("bookmark", rv)`` only remember ``rv``, ``("relist", None)`` the watch ended with an
    ``ERROR`` (410 Expired/Gone, or any other Status): LIST again. ``rv`` is the
    resourceVersion to resume from."""
    version = (obj.get("metadata") or {}).get("resourceVersion") or None
    if event_type in OBJECT_EVENTS:
        return "event", version
    if event_type == "BOOKMARK":
        return "bookmark", version
    return "relist", None


def replica_name(component: str, slot: int) -> str:
    if component in SERVICES and slot == 0:
        return component
    return f"{component}-{slot}"


def _container_events(prev: ContainerView | None, cur: ContainerView) -> list[dict[str, Any]]:
    def exited(code: int | None, reason: str | None) -> dict[str, Any]:
        return {"state": "exited", "container": cur.name, "exit_code": code, "reason": reason}

    restarted = prev is not None and cur.restart_count > prev.restart_count
    out: list[dict[str, Any]] = []
    if cur.state == "running":
        if prev is None or prev.state != "running" or prev.started_at != cur.started_at:
            if restarted and prev is not None and prev.state == "running":
                out.append(exited(cur.last_exit_code, cur.last_reason))  # missed its end
            out.append(
                {"state": "started", "container": cur.name, "restart_count": cur.restart_count}
            )
    elif cur.state == "terminated":
        if prev is None or prev.state != "terminated" or prev.finished_at != cur.finished_at:
            out.append(exited(cur.exit_code, cur.reason))
    elif cur.state == "waiting" and restarted and prev is not None and prev.state == "running":
        out.append(exited(cur.last_exit_code, cur.last_reason))  # crashed, now backing off
    return out


@dataclass
class _Member:
    replica: str
    component: str
    slot: int
    incarnation: int
    pod: str


class LifecycleTracker:
    """Pure state machine over pod and EndpointSlice watch events (not thread-safe)."""

    def __init__(self, expected: Mapping[str, int] | None = None) -> None:
        self.expected = dict(expected or {})
        self._views: dict[str, PodView] = {}  # uid -> last view, live pods only
        self._pods: dict[str, dict[str, Any]] = {}  # uid -> last object, live pods only
        self._members: dict[str, _Member] = {}  # uid -> its slot, kept after deletion
        self._holders: dict[str, dict[int, str]] = {}  # component -> slot -> uid
        self._incarnations: dict[tuple[str, int], int] = {}
        self._slices: dict[str, frozenset[str]] = {}  # slice name -> ready pod uids
        self._announced: set[str] = set()  # uids reported as endpoint_added
        self._raw: dict[str, dict[str, Any]] = {}  # uid -> every pod seen, Job pods too
        self._deaths: set[tuple[str, str]] = set()  # (uid, container) the nemesis reported
        self._final: dict[str, dict[str, Any]] = {}  # uid -> the object of its DELETED

    # -- queries ------------------------------------------------------------------------
    def replica_names(self, component: str | None = None) -> list[str]:
        """Slots expected or held now, by component then slot."""
        components = KNOWN_COMPONENTS if component is None else (component,)
        names = []
        for c in components:
            slots = set(range(self.expected.get(c, 0))) | set(self._holders.get(c, {}))
            names += [replica_name(c, s) for s in sorted(slots)]
        return names

    def slot_of(self, replica: str) -> tuple[str, int] | None:
        """(component, slot) of a replica name, or None."""
        for c in KNOWN_COMPONENTS:
            if replica == c:
                return c, 0
            if replica.startswith(f"{c}-") and replica[len(c) + 1 :].isdigit():
                return c, int(replica[len(c) + 1 :])
        return None

    def holder(self, replica: str) -> str | None:
        """uid of the live pod holding ``replica``'s slot now."""
        slot = self.slot_of(replica)
        return None if slot is None else self._holders.get(slot[0], {}).get(slot[1])

    def pod_for(self, replica: str) -> dict[str, Any] | None:
        uid = self.holder(replica)
        return self._pods.get(uid) if uid else None

    def incarnation(self, replica: str) -> int:
        slot = self.slot_of(replica)
        return self._incarnations.get(slot, 0) if slot else 0

    def is_ready(self, replica: str) -> bool:
        uid = self.holder(replica)
        view = self._views.get(uid) if uid else None
        return bool(view and view.ready and not view.gone)

    def resolve(self, name: str) -> str | None:
        """The replica called ``name``, or the replica of the live pod called ``name`` (the
        ledger names pods: ``HA_BENCH_REPLICA`` is the pod name); None if neither."""
        if name in self.replica_names():
            return name
        for uid, view in sorted(self._views.items(), key=lambda item: item[1].gone):
            if view.name == name:
                return self._members[uid].replica
        return None

    def live_pods(self, component: str | None = None) -> list[dict[str, Any]]:
        """Pod objects not yet deleted (terminating ones included), by name."""
        pods = [
            self._pods[u]
            for u, v in self._views.items()
            if component is None or v.component == component
        ]
        return sorted(pods, key=lambda p: p["metadata"]["name"])

    def all_pods(self) -> list[dict[str, Any]]:
        """Every pod of the watch not yet deleted, untracked ones (a Job's) included."""
        return sorted(self._raw.values(), key=lambda p: p["metadata"]["name"])

    def final_pod(self, uid: str) -> dict[str, Any] | None:
        """The last object of a deleted pod (its DELETED event), or None."""
        return self._final.get(uid)

    def is_alive(self, uid: str) -> bool:
        return uid in self._views

    def replica_of(self, uid: str) -> str | None:
        member = self._members.get(uid)
        return member.replica if member else None

    # -- pods ---------------------------------------------------------------------------
    def _assign(self, view: PodView) -> _Member:
        holders = self._holders.setdefault(view.component, {})
        ordinal = _ORDINAL.search(view.name) if view.owner_kind == "StatefulSet" else None
        if ordinal is not None:
            slot = int(ordinal.group(1))
        else:
            slot = next(i for i in range(len(holders) + 1) if i not in holders)
        if not view.gone:
            holders[slot] = view.uid
        key = (view.component, slot)
        self._incarnations[key] = self._incarnations.get(key, 0) + 1
        member = _Member(
            replica_name(view.component, slot),
            view.component,
            slot,
            self._incarnations[key],
            view.name,
        )
        self._members[view.uid] = member
        return member

    def _release(self, member: _Member, uid: str) -> list[dict[str, Any]]:
        """Free the pod's slot. A freed expected slot is taken over by a pod beyond the
        expected count (a rolling update's surge pod), so no expected slot stays empty."""
        holders = self._holders.get(member.component, {})
        if holders.get(member.slot) != uid:
            return []
        del holders[member.slot]
        limit = self.expected.get(member.component, 0)
        overflow = sorted(
            s
            for s, u in holders.items()
            if s >= limit and self._views[u].owner_kind != "StatefulSet"
        )
        if member.slot >= limit or not overflow:
            return []
        moved = holders.pop(overflow[0])
        holders[member.slot] = moved
        view, was = self._views[moved], self._members[moved]
        key = (member.component, member.slot)
        self._incarnations[key] = self._incarnations.get(key, 0) + 1
        now = _Member(
            member.replica, member.component, member.slot, self._incarnations[key], view.name
        )
        self._members[moved] = now
        out = [self._event(now, view, "created", node=view.node, detail=f"was {was.replica}")]
        if view.scheduled:
            out.append(self._event(now, view, "scheduled", node=view.node))
        for c in view.containers:
            if c.state == "running":
                out.append(
                    self._event(
                        now, view, "started", container=c.name, restart_count=c.restart_count
                    )
                )
        if view.ready:
            out.append(self._event(now, view, "ready"))
        if moved in self._announced:
            out.append(self._event(now, view, "endpoint_added"))
        return out

    def _event(self, member: _Member, view: PodView, state: str, **fields: Any) -> dict[str, Any]:
        return {
            "replica": member.replica,
            "component": member.component,
            "state": state,
            "pod": view.name,
            "uid": view.uid,
            "incarnation": member.incarnation,
            **fields,
        }

    def pod_event(self, kind: str, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Lifecycle events implied by one pod watch event (``ADDED``/``MODIFIED``/``DELETED``)."""
        uid = (pod.get("metadata") or {}).get("uid")
        if uid and kind == "DELETED":
            self._raw.pop(uid, None)
            self._final[uid] = dict(pod)
        elif uid:
            self._raw[uid] = dict(pod)
        view = pod_view(pod)
        if view is None:
            return []
        prev = self._views.get(view.uid)
        if kind == "DELETED" and prev is None:
            return []  # never seen alive, or already reported gone
        out: list[dict[str, Any]] = []
        member = self._members.get(view.uid)
        if member is None:
            member = self._assign(view)
            out.append(self._event(member, view, "created", node=view.node))
        if view.scheduled and not (prev and prev.scheduled):
            out.append(self._event(member, view, "scheduled", node=view.node))
        before = {c.name: c for c in prev.containers} if prev else {}
        for container in view.containers:
            for fields in _container_events(before.get(container.name), container):
                state = fields.pop("state")
                if state == "exited" and (view.uid, container.name) in self._deaths:
                    self._deaths.discard((view.uid, container.name))
                    continue  # the kubelet's report of a death the nemesis already gave
                out.append(self._event(member, view, state, **fields))
        was_ready = bool(prev and prev.ready)
        if view.ready != was_ready:
            out.append(self._event(member, view, "ready" if view.ready else "not_ready"))
        if view.terminating and not (prev and prev.terminating):
            out.append(self._event(member, view, "terminating", grace_s=view.grace_s))
        if kind == "DELETED":
            if view.ready:
                out.append(self._event(member, view, "not_ready", detail="pod deleted"))
            out.append(self._event(member, view, "deleted"))
            self._views.pop(view.uid, None)
            self._pods.pop(view.uid, None)
        else:
            self._views[view.uid] = view
            self._pods[view.uid] = dict(pod)
        if view.gone or kind == "DELETED":
            out += self._release(member, view.uid)
        return out + self._reconcile_endpoints()

    def process_died(
        self, uid: str, containers: Mapping[str, int], **fields: Any
    ) -> list[dict[str, Any]]:
        """``exited`` events (``source: nemesis``) for the containers of pod ``uid`` whose
        processes the nemesis saw die; ``containers`` maps each to its ``restartCount`` when
        it was killed. A death the watch already showed (the container terminated, or
        restarted since) is not reported twice, nor is the kubelet's later report of it."""
        member = self._members.get(uid)
        if member is None:
            return []
        view = self._views.get(uid)
        seen = {c.name: c for c in view.containers} if view else {}
        out = []
        for name, restarts in containers.items():
            now = seen.get(name)
            if now is not None and (now.state == "terminated" or now.restart_count > restarts):
                continue  # the kubelet's report came first: that is the death event
            self._deaths.add((uid, name))
            out.append(
                {
                    "replica": member.replica,
                    "component": member.component,
                    "state": "exited",
                    "pod": view.name if view else member.pod,
                    "uid": uid,
                    "incarnation": member.incarnation,
                    "container": name,
                    "source": "nemesis",
                    **fields,
                }
            )
        return out

    def resync_pods(self, pods: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """A fresh LIST (start, or after a watch expired): diff every pod, and pods the
        list no longer has are reported deleted."""
        out: list[dict[str, Any]] = []
        listed = list(pods)
        seen = {(p.get("metadata") or {}).get("uid") for p in listed}
        for uid in set(self._raw) - seen:
            self._raw.pop(uid, None)
        for uid in sorted(set(self._views) - seen, key=lambda u: self._views[u].name):
            out += self.pod_event("DELETED", self._pods[uid])
        # oldest first, so a fresh list gives the longest-running pods the lowest slots
        order = sorted(
            listed,
            key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]),
        )
        for pod in order:
            uid = pod["metadata"]["uid"]
            out += self.pod_event("MODIFIED" if uid in self._views else "ADDED", pod)
        return out

    # -- endpoint slices ----------------------------------------------------------------
    def slice_event(self, kind: str, endpoint_slice: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Lifecycle events implied by one EndpointSlice watch event."""
        name = (endpoint_slice.get("metadata") or {}).get("name", "?")
        if kind == "DELETED":
            self._slices.pop(name, None)
        else:
            self._slices[name] = ready_pods(endpoint_slice)
        return self._reconcile_endpoints()

    def resync_slices(self, slices: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """A fresh LIST of the Service's EndpointSlices replaces what was known."""
        self._slices = {s["metadata"]["name"]: ready_pods(s) for s in slices}
        return self._reconcile_endpoints()

    def _reconcile_endpoints(self) -> list[dict[str, Any]]:
        """endpoint_added/removed for changes of the ready set; an endpoint of a pod not
        seen yet waits until the pod is (the two watches race)."""
        current = set().union(*self._slices.values()) if self._slices else set()
        changes = [
            (uid, "endpoint_added") for uid in current - self._announced if uid in self._members
        ]
        changes += [(uid, "endpoint_removed") for uid in self._announced - current]
        out = []
        changes.sort(key=lambda c: (self._members[c[0]].replica, c[1] == "endpoint_added", c[0]))
        for uid, state in changes:
            member = self._members[uid]
            if state == "endpoint_added":
                self._announced.add(uid)
            else:
                self._announced.discard(uid)
            out.append(
                {
                    "replica": member.replica,
                    "component": member.component,
                    "state": state,
                    "pod": member.pod,
                    "uid": uid,
                    "incarnation": member.incarnation,
                }
            )
        return out


def expected_replicas(workloads: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """{component: desired replicas} of Deployments/StatefulSets (by pod template label)."""
    out: dict[str, int] = {}
    for w in workloads:
        labels = (((w.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
            "labels"
        ) or {}
        component = labels.get(COMPONENT_LABEL)
        if component in KNOWN_COMPONENTS:
            out[component] = out.get(component, 0) + int((w.get("spec") or {}).get("replicas", 1))
    return out


class WatchedState:
    """A :class:`LifecycleTracker` shared by watch threads and the nemesis: each change
    is emitted (in order, under the lock) and wakes :meth:`wait_for` callers."""

    def __init__(
        self, tracker: LifecycleTracker, emit: Callable[[dict[str, Any]], Any] | None = None
    ) -> None:
        self.tracker = tracker
        self._emit = emit or (lambda event: None)
        self._changed = threading.Condition()

    def _run(self, fn: Callable[..., list[dict[str, Any]]], *args: Any) -> list[dict[str, Any]]:
        with self._changed:
            events = fn(*args)
            for event in events:
                self._emit(event)
            self._changed.notify_all()
        return events

    def pod_event(self, kind: str, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._run(self.tracker.pod_event, kind, pod)

    def slice_event(self, kind: str, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._run(self.tracker.slice_event, kind, obj)

    def resync_pods(self, pods: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return self._run(self.tracker.resync_pods, list(pods))

    def resync_slices(self, slices: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return self._run(self.tracker.resync_slices, list(slices))

    def process_died(
        self, uid: str, containers: Mapping[str, int], **fields: Any
    ) -> list[dict[str, Any]]:
        return self._run(lambda: self.tracker.process_died(uid, dict(containers), **fields))

    def read(self, fn: Callable[[LifecycleTracker], Any]) -> Any:
        with self._changed:
            return fn(self.tracker)

    def wait_for(self, predicate: Callable[[LifecycleTracker], bool], timeout_s: float) -> bool:
        """Block until ``predicate(tracker)`` holds (True) or ``timeout_s`` passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate(self.tracker):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
            return True

    def require_replica(self, name: str) -> str:
        """The replica ``name`` means (a replica or a live pod name); a HarnessError (no
        event) for a name that is neither."""
        replica = self.read(lambda t: t.resolve(name))
        if replica is None:
            names = self.read(lambda t: t.replica_names())
            raise HarnessError(f"no replica named {name!r}", fix=f"use one of: {', '.join(names)}")
        return replica
