"""What the harness reads from the API's pod and EndpointSlice objects: the facts of a
pod that :class:`~.events.LifecycleTracker` compares between two versions of it.

Pure functions and frozen dataclasses over the JSON objects of a watch or a list:
:func:`pod_view` (None for a pod the harness does not track: a Job's, or of an unknown
component), and :func:`ready_pods` (the pods behind a slice's ready endpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.topology import COMPONENTS

SERVICES = ("postgres", "redis")
KNOWN_COMPONENTS = (*SERVICES, *COMPONENTS)
COMPONENT_LABEL = "component"


@dataclass(frozen=True)
class ContainerView:
    name: str
    state: str  # waiting | running | terminated | unknown
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    reason: str | None
    restart_count: int
    last_exit_code: int | None
    last_reason: str | None


@dataclass(frozen=True)
class PodView:
    """What the tracker compares between two versions of a pod."""

    uid: str
    name: str
    component: str
    owner_kind: str | None
    node: str | None
    phase: str | None
    scheduled: bool
    ready: bool
    terminating: bool
    grace_s: int | None
    containers: tuple[ContainerView, ...]

    @property
    def gone(self) -> bool:
        """No longer a live member of its slot (terminating, or failed/completed)."""
        return self.terminating or self.phase in ("Failed", "Succeeded")


def _condition(status: Mapping[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or []
    )


def _container(cs: Mapping[str, Any]) -> ContainerView:
    state = cs.get("state") or {}
    kind = next((k for k in ("running", "terminated", "waiting") if k in state), "unknown")
    detail = state.get(kind) or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    return ContainerView(
        name=cs.get("name", "?"),
        state=kind,
        started_at=detail.get("startedAt") if kind in ("running", "terminated") else None,
        finished_at=detail.get("finishedAt") if kind == "terminated" else None,
        exit_code=detail.get("exitCode") if kind == "terminated" else None,
        reason=detail.get("reason"),
        restart_count=int(cs.get("restartCount") or 0),
        last_exit_code=last.get("exitCode"),
        last_reason=last.get("reason"),
    )


def pod_component(pod: Mapping[str, Any]) -> str | None:
    """The pod's component if the harness tracks it (not a Job's pod), else None."""
    meta = pod.get("metadata") or {}
    component = (meta.get("labels") or {}).get(COMPONENT_LABEL)
    owners = {o.get("kind") for o in meta.get("ownerReferences") or []}
    if component not in KNOWN_COMPONENTS or owners & {"Job", "CronJob"}:
        return None
    return component


def pod_view(pod: Mapping[str, Any]) -> PodView | None:
    """The tracked facts of a pod object, or None for a pod the harness ignores."""
    component = pod_component(pod)
    if component is None:
        return None
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    owner = next(
        (o.get("kind") for o in meta.get("ownerReferences") or [] if o.get("controller")), None
    )
    return PodView(
        uid=meta["uid"],
        name=meta.get("name", "?"),
        component=component,
        owner_kind=owner,
        node=spec.get("nodeName"),
        phase=status.get("phase"),
        scheduled=_condition(status, "PodScheduled"),
        ready=_condition(status, "Ready"),
        terminating=bool(meta.get("deletionTimestamp")),
        grace_s=meta.get("deletionGracePeriodSeconds"),
        containers=tuple(
            sorted(
                (_container(c) for c in status.get("containerStatuses") or []),
                key=lambda c: c.name,
            )
        ),
    )


def ready_pods(endpoint_slice: Mapping[str, Any]) -> frozenset[str]:
    """uids of the pods behind the slice's ready endpoints (unknown readiness counts as
    ready, as the API says)."""
    ready = set()
    for endpoint in endpoint_slice.get("endpoints") or []:
        ref = endpoint.get("targetRef") or {}
        conditions = endpoint.get("conditions") or {}
        if ref.get("kind") == "Pod" and ref.get("uid") and conditions.get("ready") is not False:
            ready.add(ref["uid"])
    return frozenset(ready)
