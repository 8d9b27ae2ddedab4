"""Faults on the Kubernetes platform, through the API only (no node access).

==================  ===========================================================
``kill``            delete the pod with ``gracePeriodSeconds=0``: the API removes the
                    object at once (a force delete) and the kubelet SIGKILLs it
``terminate``       delete with the pod's grace (or ``grace_s``): SIGTERM, SIGKILL later
``evict``           policy/v1 Eviction, refused (a ``fail`` event) when a
                    PodDisruptionBudget does not allow it (HTTP 429)
``pause``/``resume``  ``kill -STOP``/``-CONT`` of every process in each container,
                    via exec. A process cannot stop its own PID namespace's init, so
                    the container's PID 1 must be an init (dumb-init, tini ...) that
                    only forwards signals, as in the official Airflow image; otherwise
                    pause is refused before anything is signalled
``stop_service``/   ``scale_to_zero``/``scale_back``: the component's StatefulSet or
``start_service``   Deployment to 0 replicas, then back to the count it had (owned mode)
==================  ===========================================================

Targets are logical replica names (``api-server-0``), resolved to the pod holding that
slot now, or pod names (the ledger's ``replica``), recorded as their replica; service ops
take a component (``postgres``) or workload name. Every fault is recorded like the
local platform's: ``fault`` events ``invoke`` then ``ok`` | ``fail`` (it did not happen)
| ``info`` (outcome unknown), sharing an ``op_id``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.platform.base import record_fault
from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.events import WatchedState
from harness.platform.kubernetes.safety import GuardedApi

INITS = ("dumb-init", "tini", "tini-static", "catatonit", "docker-init", "pause", "s6-svscan")
# $1: STOP | CONT | CHECK. Exit 3: PID 1 is not an init (nothing signalled).
SIGNAL_SCRIPT = (
    'init=$(cat /proc/1/comm 2>/dev/null); case " $INITS " in *" $init "*) ;; '
    '*) echo "pid1=$init"; exit 3;; esac; [ "$1" = CHECK ] && exit 0; n=0; '
    'for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = 1 ] && continue; '
    '[ "$p" = "$$" ] && continue; kill -s "$1" "$p" 2>/dev/null && n=$((n+1)); done; '
    'echo "signalled=$n"'
)


def signal_command(signal: str) -> list[str]:
    """The exec command that sends ``signal`` (STOP/CONT/CHECK) to a container's processes."""
    return ["sh", "-c", f"INITS='{' '.join(INITS)}'; {SIGNAL_SCRIPT}", "ha-bench-signal", signal]


def running_containers(pod: Mapping[str, Any]) -> list[str]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sorted(c["name"] for c in statuses if "running" in (c.get("state") or {}))


class KubernetesNemesis:
    """Implements :class:`harness.platform.base.Nemesis` on Kubernetes."""

    def __init__(
        self,
        api: GuardedApi,
        state: WatchedState,
        bus: EventBus,
        *,
        workloads: Mapping[str, tuple[str, str]] | None = None,
        wait_s: float = 30.0,
        exec_timeout_s: float = 20.0,
    ) -> None:
        self.api = api
        self.state = state
        self.bus = bus
        self.workloads = dict(workloads or {})
        self.wait_s = wait_s
        self.exec_timeout_s = exec_timeout_s
        self._scaled: dict[str, int] = {}  # workload key -> replicas before scale_to_zero

    # -- the fault record ----------------------------------------------------------------
    def _op(
        self, op: str, target: str, action: Callable[[], dict[str, Any]], **fields: Any
    ) -> dict[str, Any]:
        def act() -> dict[str, Any]:
            try:
                return action()
            except KubeApiError as exc:
                if exc.status is not None and 400 <= exc.status < 500:  # refused: not done
                    raise HarnessError(
                        f"{op} {target} refused by the API: {exc}",
                        fix="check the target and the RBAC of the context",
                    ) from None
                raise  # no answer: outcome unknown

        return record_fault(self.bus, op, target, act, **fields)

    def _pod_op(
        self, op: str, target: str, act: Callable[[dict[str, Any]], dict[str, Any]], **fields: Any
    ) -> dict[str, Any]:
        replica = self.state.require_replica(target)  # unknown name: HarnessError, no event
        pod = self.state.read(lambda t: t.pod_for(replica))
        incarnation = self.state.read(lambda t: t.incarnation(replica))
        pod_name = pod["metadata"]["name"] if pod else None
        if replica != target:
            fields["requested"] = target  # a pod name (the ledger's): recorded as its replica

        def action() -> dict[str, Any]:
            if pod is None:
                raise HarnessError(f"{replica} has no running pod", fix="wait until it is ready")
            return {"pod": pod_name, "uid": pod["metadata"]["uid"], **act(pod)}

        return self._op(op, replica, action, incarnation=incarnation, pod=pod_name, **fields)

    def _wait_deleted(self, uid: str, timeout_s: float) -> float | None:
        """Seconds until the watch saw the pod deleted, or None if not within ``timeout_s``."""
        started = time.monotonic()
        if self.state.wait_for(lambda t: not t.is_alive(uid), timeout_s):
            return round(time.monotonic() - started, 3)
        return None

    # -- pod faults ----------------------------------------------------------------------
    def kill(self, target: str) -> dict[str, Any]:
        def act(pod: dict[str, Any]) -> dict[str, Any]:
            self.api.delete_pod(pod, grace_s=0)
            return {
                "grace_s": 0,
                "deleted_after_s": self._wait_deleted(pod["metadata"]["uid"], self.wait_s),
            }

        return self._pod_op("kill", target, act)

    def terminate(self, target: str, grace_s: float | None = None) -> dict[str, Any]:
        def act(pod: dict[str, Any]) -> dict[str, Any]:
            if grace_s is None:
                grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            else:
                grace = max(1, math.ceil(grace_s))  # 0 would be a kill (force delete)
            self.api.delete_pod(pod, grace_s=grace)
            deleted = self._wait_deleted(pod["metadata"]["uid"], grace + self.wait_s)
            return {
                "grace_s": grace,
                "deleted_after_s": deleted,
                "graceful": None if deleted is None else deleted < grace,
            }

        return self._pod_op("terminate", target, act, grace_s=grace_s)

    def evict(self, target: str) -> dict[str, Any]:
        def act(pod: dict[str, Any]) -> dict[str, Any]:
            try:
                self.api.evict_pod(pod)
            except KubeApiError as exc:
                if exc.status == 429:
                    raise HarnessError(
                        f"eviction of {target} (pod {pod['metadata']['name']}) refused by a "
                        f"PodDisruptionBudget: {exc.message or exc.reason}",
                        fix="allow a disruption (more replicas or a laxer PDB), or use "
                        "kill/terminate",
                    ) from None
                raise
            return {"deleted_after_s": self._wait_deleted(pod["metadata"]["uid"], self.wait_s)}

        return self._pod_op("evict", target, act)

    def _signal(self, target: str, pod: dict[str, Any], signal: str) -> dict[str, Any]:
        containers = running_containers(pod)
        if not containers:
            raise HarnessError(f"{target} has no running container", fix="wait until it is ready")
        checks = [("CHECK", c) for c in containers] if signal == "STOP" else []
        signalled: dict[str, int] = {}
        for sig, container in [*checks, *((signal, c) for c in containers)]:
            code, stdout, stderr = self.api.exec_in_pod(
                pod, container, signal_command(sig), timeout_s=self.exec_timeout_s
            )
            output = stdout + stderr
            if code == 3:
                init = output.strip().removeprefix("pid1=") or "?"
                raise HarnessError(
                    f"cannot pause {target}: PID 1 of container {container} is {init!r}, not an "
                    "init, and its own PID namespace cannot SIGSTOP it",
                    fix="run the image with dumb-init or tini as PID 1 (the official Airflow "
                    "image does), or use kill/terminate",
                )
            if code != 0:
                raise HarnessError(
                    f"exec into {pod['metadata']['name']}/{container} failed "
                    f"(exit {code}): {output.strip()[-200:]}",
                    fix="the image needs /bin/sh and the context needs RBAC pods/exec",
                )
            if sig != "CHECK":
                count = output.strip().rsplit("signalled=", 1)[-1]
                signalled[container] = int(count) if count.isdigit() else -1
        return {"signal": f"SIG{signal}", "signalled": signalled}

    def pause(self, target: str) -> dict[str, Any]:
        return self._pod_op("pause", target, lambda pod: self._signal(target, pod, "STOP"))

    def resume(self, target: str) -> dict[str, Any]:
        return self._pod_op("resume", target, lambda pod: self._signal(target, pod, "CONT"))

    # -- workloads -----------------------------------------------------------------------
    def _workload(self, target: str) -> tuple[str, str, str]:
        """(component, kind, name) of a component or workload name."""
        for component, (kind, name) in self.workloads.items():
            if target in (component, name):
                return component, kind, name
        raise HarnessError(
            f"no workload for {target!r}",
            fix=f"use one of: {', '.join(self.workloads) or 'none known'}",
        )

    def scale_to_zero(self, target: str, *, op: str = "scale_to_zero") -> dict[str, Any]:
        """Scale ``target``'s workload to 0 and wait (bounded) until its pods are gone."""
        component, kind, name = self._workload(target)

        def action() -> dict[str, Any]:
            previous = self.api.scale(kind, name, 0)
            if previous > 0:
                self._scaled[f"{kind}/{name}"] = previous
            started = time.monotonic()
            gone = self.state.wait_for(lambda t: not t.live_pods(component), self.wait_s)
            return {
                "workload": f"{kind}/{name}",
                "previous_replicas": previous,
                "gone_after_s": round(time.monotonic() - started, 3) if gone else None,
            }

        return self._op(op, target, action, workload=f"{kind}/{name}")

    def scale_back(self, target: str, *, op: str = "scale_back") -> dict[str, Any]:
        """Scale ``target``'s workload back to its replicas before :meth:`scale_to_zero`."""
        component, kind, name = self._workload(target)

        def action() -> dict[str, Any]:
            expected = self.state.read(lambda t: t.expected.get(component, 1))
            replicas = self._scaled.pop(f"{kind}/{name}", expected)
            self.api.scale(kind, name, replicas)
            return {"workload": f"{kind}/{name}", "replicas": replicas}

        return self._op(op, target, action, workload=f"{kind}/{name}")

    def stop_service(self, target: str) -> dict[str, Any]:
        return self.scale_to_zero(target, op="stop_service")

    def start_service(self, target: str) -> dict[str, Any]:
        return self.scale_back(target, op="start_service")
