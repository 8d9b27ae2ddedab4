"""Faults on the Kubernetes platform: through the API, and for ``kill`` on kind through the
node's container runtime.

==================  ===========================================================
``kill``            a real SIGKILL of the container's processes, then the pod's
                    replacement as its controller makes it. ``via="exec"``: the signal
                    script with KILL in each container (every process but PID 1, an init
                    that then exits with its child: the container ends and the kernel
                    kills what is left, the exec included, which is how the death is
                    seen). ``via="runtime"`` (kind): ``crictl stop --timeout 0`` on the
                    node, which SIGKILLs the container's PID 1 and reports its
                    ``finishedAt``. The death is recorded (a ``lifecycle`` ``exited``
                    event, ``source: nemesis``; ``died_after_s``), then the pod is
                    deleted with grace 0 at once, before the kubelet restarts the
                    container in place, so its ReplicaSet/StatefulSet replaces it
``force_delete``    delete the pod with ``gracePeriodSeconds=0``: the API object goes at
                    once (MODIFIED, DELETED) but the kubelet still stops the containers
                    gracefully: SIGTERM, SIGKILL only after the pod's grace
                    (kubernetes/kubernetes#120449, #108741, #110507). Not a kill
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
``clock_skew``,     Chaos Mesh TimeChaos / StressChaos on the pod, an in-place resize of
``cpu_throttle``,   its memory limit (:mod:`.objectfaults`); without Chaos Mesh one line
``memory_limit``    naming the fix
``partition``       a NetworkPolicy the harness owns; ``latency``/``loss``/``bandwidth``:
                    Chaos Mesh NetworkChaos (:mod:`.netchaos`); ``heal`` deletes them
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
from typing import Any, Protocol

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.platform.base import record_fault
from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.events import WatchedState
from harness.platform.kubernetes.objectfaults import ObjectFaults
from harness.platform.kubernetes.safety import GuardedApi

INITS = ("dumb-init", "tini", "tini-static", "catatonit", "docker-init", "pause", "s6-svscan")
KILL_VIA = ("auto", "exec", "runtime")
KILL_SURVIVED = 4  # exit code of the signal script when the container outlived SIGKILL
# $1: STOP | CONT | KILL | CHECK. Exit 3: PID 1 is not an init (nothing signalled). KILL then
# waits to be killed itself: PID 1 exits with its child and the kernel kills the rest of the
# container, this script included; exit 4 ("survived") if that did not happen in $2 s.
SIGNAL_SCRIPT = (
    'init=$(cat /proc/1/comm 2>/dev/null); case " $INITS " in *" $init "*) ;; '
    '*) echo "pid1=$init"; exit 3;; esac; [ "$1" = CHECK ] && exit 0; n=0; '
    'for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = 1 ] && continue; '
    '[ "$p" = "$$" ] && continue; kill -s "$1" "$p" 2>/dev/null && n=$((n+1)); done; '
    'echo "signalled=$n"; [ "$1" = KILL ] && { sleep "${2:-10}"; echo survived; exit 4; }; '
    "exit 0"
)


def signal_command(signal: str, wait_s: int = 10) -> list[str]:
    """The exec command that sends ``signal`` (STOP/CONT/KILL/CHECK) to a container's
    processes (KILL: then waits up to ``wait_s`` to die with the container)."""
    script = f"INITS='{' '.join(INITS)}'; {SIGNAL_SCRIPT}"
    return [
        "sh",
        "-c",
        script,
        "ha-bench-signal",
        signal,
        *([str(wait_s)] if signal == "KILL" else []),
    ]


def running_containers(pod: Mapping[str, Any]) -> list[str]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sorted(c["name"] for c in statuses if "running" in (c.get("state") or {}))


def _running_statuses(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return [c for c in statuses if "running" in (c.get("state") or {})]


class ContainerRuntime(Protocol):
    """A node's container runtime (:class:`~harness.platform.kubernetes.kind.KindNodeRuntime`)."""

    def kill(self, node: str, container: str) -> dict[str, Any]: ...


class KubernetesNemesis(ObjectFaults):
    """Implements :class:`harness.platform.base.Nemesis` on Kubernetes (and, through
    :class:`~.objectfaults.ObjectFaults`, the resource, clock and network faults)."""

    def __init__(
        self,
        api: GuardedApi,
        state: WatchedState,
        bus: EventBus,
        *,
        workloads: Mapping[str, tuple[str, str]] | None = None,
        wait_s: float = 30.0,
        exec_timeout_s: float = 20.0,
        kill_via: str = "auto",
        runtime: ContainerRuntime | None = None,
        kill_wait_s: int = 10,
    ) -> None:
        """``kill_via``: ``exec``, ``runtime`` (needs ``runtime``, a kind node's) or
        ``auto`` (the runtime when there is one, else exec). ``kill_wait_s``: how long a
        killed container may take to end before the kill counts as not done."""
        if kill_via not in KILL_VIA:
            raise HarnessError(
                f"unknown kill_via {kill_via!r}", fix=f"use one of {', '.join(KILL_VIA)}"
            )
        if kill_via == "runtime" and runtime is None:
            raise HarnessError(
                "kill_via='runtime' needs a node runtime (a kind context)",
                fix="use kill_via='exec' on this cluster",
            )
        self.api = api
        self.state = state
        self.bus = bus
        self.workloads = dict(workloads or {})
        self.wait_s = wait_s
        self.exec_timeout_s = exec_timeout_s
        self.kill_via = kill_via
        self.runtime = runtime
        self.kill_wait_s = kill_wait_s
        self._scaled: dict[str, int] = {}  # workload key -> replicas before scale_to_zero
        self._init_object_faults()

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
        """SIGKILL every process of the replica's pod, record the death, then delete the
        pod (grace 0: nothing is left to stop) so its controller replaces it."""

        def act(pod: dict[str, Any]) -> dict[str, Any]:
            statuses = _running_statuses(pod)
            if not statuses:
                raise HarnessError(
                    f"{target} has no running container", fix="wait until it is ready"
                )
            uid = pod["metadata"]["uid"]
            restarts = {c["name"]: int(c.get("restartCount") or 0) for c in statuses}
            via = "runtime" if self.runtime is not None and self.kill_via != "exec" else "exec"
            started = time.monotonic()
            if via == "runtime":
                how = self._sigkill_runtime(pod, statuses)
            else:
                how = self._sigkill_exec(target, pod, [c["name"] for c in statuses])
            died_after = round(time.monotonic() - started, 3)
            death = {"died_at": how["died_at"]} if how.get("died_at") else {}
            self.state.process_died(
                uid, restarts, exit_code=137, reason="SIGKILL", via=via,
                died_after_s=died_after, **death,
            )  # fmt: skip
            controller = next(
                (o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")),
                None,
            )
            detail: dict[str, Any] = {
                "signal": "SIGKILL",
                "via": via,
                "died_after_s": died_after,
                **how,
            }
            if controller is None:  # a bare pod: a delete would remove it for good
                detail["replaced_by"] = "the kubelet (container restart; no controller)"
                return detail
            self.api.delete_pod(pod, grace_s=0)
            detail["replaced_by"] = f"{controller.get('kind')} {controller.get('name')}"
            detail["deleted_after_s"] = self._wait_deleted(uid, self.wait_s)
            detail["restarted_in_place"] = self.state.read(
                lambda t: _restarted(t.final_pod(uid), restarts)
            )
            return detail

        return self._pod_op("kill", target, act)

    def _sigkill_exec(
        self, target: str, pod: dict[str, Any], containers: list[str]
    ) -> dict[str, Any]:
        """The signal script with KILL in each container; its exec ending with the container
        (no "survived") is the death."""
        results: dict[str, Any] = {}
        for container in containers:
            code, stdout, stderr = self.api.exec_in_pod(
                pod,
                container,
                signal_command("KILL", self.kill_wait_s),
                timeout_s=max(self.exec_timeout_s, self.kill_wait_s + 10),
            )
            output = (stdout + stderr).strip()
            if code == 3:
                init = output.removeprefix("pid1=").split()[0] if output else "?"
                raise HarnessError(
                    f"cannot SIGKILL {target} through exec: PID 1 of container {container} is "
                    f"{init!r}, not an init, and its own PID namespace cannot signal it",
                    fix="run the image with dumb-init or tini as PID 1, or use a kind context "
                    "(the node's runtime kills PID 1)",
                )
            if code == KILL_SURVIVED or "survived" in stdout:
                raise RuntimeError(
                    f"{target}: container {container} still ran {self.kill_wait_s} s after its "
                    f"processes were SIGKILLed (PID 1 did not exit): {output[-200:]}"
                )
            if code == 0 and "signalled=" not in stdout:
                raise HarnessError(
                    f"exec into {pod['metadata']['name']}/{container} ran nothing: {output[-200:]}",
                    fix="the image needs /bin/sh and the context needs RBAC pods/exec",
                )
            # killed with its container: exit 137, or no status at all ([exec: ...])
            results[container] = {"exec_exit": code, "exec_end": output[-120:]}
        return {"containers": results}

    def _sigkill_runtime(
        self, pod: dict[str, Any], statuses: list[dict[str, Any]]
    ) -> dict[str, Any]:
        assert self.runtime is not None
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise HarnessError(
                f"pod {pod['metadata']['name']} has no node", fix="wait until it runs"
            )
        results: dict[str, Any] = {}
        for cs in statuses:
            if not cs.get("containerID"):
                raise HarnessError(
                    f"container {cs.get('name')} of {pod['metadata']['name']} has no ID yet",
                    fix="wait until it runs",
                )
            results[cs["name"]] = self.runtime.kill(node, cs["containerID"])
        ends = sorted(str(r["finished_at"]) for r in results.values() if r.get("finished_at"))
        return {"node": node, "containers": results, "died_at": ends[0] if ends else None}

    def force_delete(self, target: str) -> dict[str, Any]:
        """Delete the pod with grace 0: the object goes at once; its processes do not (the
        kubelet gives them SIGTERM and the pod's grace)."""

        def act(pod: dict[str, Any]) -> dict[str, Any]:
            self.api.delete_pod(pod, grace_s=0)
            return {
                "grace_s": 0,
                "deleted_after_s": self._wait_deleted(pod["metadata"]["uid"], self.wait_s),
                "note": "API object removed; the kubelet still stops the containers gracefully",
            }

        return self._pod_op("force_delete", target, act)

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
            if code is None:  # no exit status: not known whether it signalled
                raise RuntimeError(
                    f"exec into {pod['metadata']['name']}/{container} ended without an exit "
                    f"status: {output.strip()[-200:]}"
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


def _restarted(pod: Mapping[str, Any] | None, restarts: Mapping[str, int]) -> bool | None:
    """Did the kubelet restart a killed container in its old pod before the delete (from
    the pod's last object; None if it was not seen deleted)?"""
    if pod is None:
        return None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if int(cs.get("restartCount") or 0) > restarts.get(cs.get("name"), 1 << 30):
            return True
    return False
