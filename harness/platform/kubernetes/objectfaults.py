"""The Kubernetes nemesis's faults made of API objects: resource and clock faults (Chaos
Mesh StressChaos and TimeChaos, in-place pod resizes) and network faults (NetworkPolicy
partitions, Chaos Mesh NetworkChaos latency, loss and bandwidth).

A mixin of :class:`~.nemesis.KubernetesNemesis`: the objects are built by
:mod:`.chaosmesh` and :mod:`.netchaos`, created and deleted through the
:class:`~.safety.GuardedApi` (only in the harness's namespace, with its labels, named
``hab-...``), and remembered per target so the undo (``cpu_clear``, ``clock_reset``,
``memory_clear``, ``heal``) deletes exactly what its fault made. Ops that make an object
with its own expiry take ``hold_s`` (the injector passes it), so a fault whose harness died
still ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.core.errors import HarnessError
from harness.platform.kubernetes.chaosmesh import ChaosMesh, resize_patch
from harness.platform.kubernetes.events import WatchedState
from harness.platform.kubernetes.netchaos import NetworkFaults
from harness.platform.kubernetes.safety import GuardedApi


class FaultObjectApi:
    """The :class:`GuardedApi` as :mod:`.chaosmesh` and :mod:`.netchaos` call it."""

    def __init__(self, api: GuardedApi) -> None:
        self._api = api

    def crd_installed(self, name: str) -> bool:
        return self._api.crd_installed(name)

    def create(self, obj: dict[str, Any]) -> None:
        self._api.create_fault_object(obj)

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self._api.delete_fault_object(api_version, kind, name)

    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str | None]) -> None:
        self._api.label_pod(name, labels)


class ObjectFaults:
    """Mixin: needs ``api``, ``state``, ``_pod_op`` and ``_op`` of the nemesis."""

    api: GuardedApi
    state: WatchedState
    _pod_op: Callable[..., dict[str, Any]]
    _op: Callable[..., dict[str, Any]]

    def _init_object_faults(self) -> None:
        objects = FaultObjectApi(self.api)
        labels = dict(self.api.scope.labels)
        self.chaos = ChaosMesh(objects, self.api.namespace, labels)
        self.network = NetworkFaults(objects, self.api.namespace, labels)
        self._made: dict[tuple[str, str], list[Mapping[str, Any]]] = {}

    def _remember(self, kind: str, target: str, made: Mapping[str, Any]) -> dict[str, Any]:
        self._made.setdefault((kind, target), []).append(made)
        return dict(made)

    def _forget(self, kind: str, target: str, undo: Callable[[Mapping[str, Any]], None]):
        made = self._made.pop((kind, self.state.require_replica(target)), [])
        for m in made:
            undo(m)
        return {"undone": [m.get("name") for m in made]}

    def _make(self, op: str, kind: str, target: str,
              create: Callable[[dict[str, Any]], Mapping[str, Any]],
              **fields: Any) -> dict[str, Any]:  # fmt: skip
        """Fault ``op``: ``create`` on the target's pod, remembered for its undo."""

        def act(pod: dict[str, Any]) -> dict[str, Any]:
            return self._remember(kind, self.state.require_replica(target), create(pod))

        return self._pod_op(op, target, act, **fields)

    def _unmake(self, op: str, kind: str, target: str,
                undo: Callable[[Mapping[str, Any]], None]) -> dict[str, Any]:  # fmt: skip
        """Undo ``op``: ``undo`` on what the target's faults of ``kind`` made."""
        return self._op(op, target, lambda: self._forget(kind, target, undo))

    # -- resource and clock --------------------------------------------------------------
    def clock_skew(self, target: str, seconds: float, hold_s: float = 0.0) -> dict[str, Any]:
        return self._make("clock_skew", "chaos", target,
                          lambda pod: self.chaos.clock_skew(pod, seconds, hold_s=hold_s),
                          skew_s=seconds)  # fmt: skip

    def clock_reset(self, target: str) -> dict[str, Any]:
        return self._unmake("clock_reset", "chaos", target, self.chaos.clear)

    def cpu_throttle(self, target: str, cores: float, hold_s: float = 0.0) -> dict[str, Any]:
        return self._make("cpu_throttle", "chaos", target,
                          lambda pod: self.chaos.cpu_throttle(pod, cores, hold_s=hold_s),
                          cores=cores)  # fmt: skip

    def cpu_clear(self, target: str) -> dict[str, Any]:
        return self._unmake("cpu_clear", "chaos", target, self.chaos.clear)

    def memory_limit(self, target: str, limit: int, oom_group: bool = False) -> dict[str, Any]:
        """The first container's memory limit resized in place (the kubelet refuses a limit
        below the usage). On cgroup v2 the kubelet sets ``memory.oom.group``: an OOM kill
        takes the whole container whatever ``oom_group`` asks (recorded)."""

        def resize(pod: dict[str, Any]) -> dict[str, Any]:
            container = (pod.get("spec") or {}).get("containers", [{}])[0]
            before = ((container.get("resources") or {}).get("limits") or {}).get("memory")
            self.api.resize_pod(pod, resize_patch(container["name"], memory_bytes=limit))
            return {"name": pod["metadata"]["name"], "container": container["name"],
                    "limit_before": before, "oom_group_requested": oom_group}  # fmt: skip

        return self._make("memory_limit", "resize", target, resize, bytes=limit,
                          oom_group=oom_group)  # fmt: skip

    def memory_clear(self, target: str) -> dict[str, Any]:
        def undo(made: Mapping[str, Any]) -> None:
            pod = self.state.read(lambda t: t.pod_for(self.state.require_replica(target)))
            if pod is None or pod["metadata"]["name"] != made["name"]:
                return  # the resized pod is gone: its replacement has the old limit
            before = made.get("limit_before")
            if before is None:
                raise HarnessError(
                    f"{made['name']} had no memory limit to go back to",
                    fix="give the container resources.limits.memory",
                )
            limits = {"limits": {"memory": before}}
            body = {"spec": {"containers": [{"name": made["container"], "resources": limits}]}}
            self.api.resize_pod(pod, body)

        return self._unmake("memory_clear", "resize", target, undo)

    # -- network -------------------------------------------------------------------------
    def _pods(self, names: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for name in names:
            replica = self.state.require_replica(name)
            pod = self.state.read(lambda t, r=replica: t.pod_for(r))
            if pod is None:
                raise HarnessError(f"{replica} has no running pod", fix="wait until it is ready")
            out.append(pod)
        return out

    def _network(self, op: str, target: str, peers: Sequence[str], build, **fields: Any):
        return self._make(op, "network", target, lambda pod: build([pod], self._pods(peers)),
                          peers=list(peers), **fields)  # fmt: skip

    def partition(self, target: str, peers: Sequence[str], *, both_ways: bool = True,
                  mode: str = "blackhole") -> dict[str, Any]:  # fmt: skip
        return self._network("partition", target, peers,
                             lambda a, b: self.network.partition(a, b, both_ways=both_ways,
                                                                 mode=mode),
                             both_ways=both_ways, mode=mode)  # fmt: skip

    def latency(self, target: str, peers: Sequence[str], *, delay_ms: float,
                jitter_ms: float = 0.0, both_ways: bool = True,
                hold_s: float = 0.0) -> dict[str, Any]:  # fmt: skip
        def build(a, b):
            return self.network.latency(a, b, delay_ms, jitter_ms, hold_s=hold_s,
                                        both_ways=both_ways)  # fmt: skip

        return self._network("latency", target, peers, build, delay_ms=delay_ms,
                             jitter_ms=jitter_ms, both_ways=both_ways)  # fmt: skip

    def loss(self, target: str, peers: Sequence[str], *, percent: float,
             both_ways: bool = True, hold_s: float = 0.0) -> dict[str, Any]:  # fmt: skip
        return self._network("loss", target, peers,
                             lambda a, b: self.network.loss(a, b, percent, hold_s=hold_s,
                                                            both_ways=both_ways),
                             percent=percent, both_ways=both_ways)  # fmt: skip

    def bandwidth(self, target: str, peers: Sequence[str], *, rate_kbit: float,
                  both_ways: bool = True, hold_s: float = 0.0) -> dict[str, Any]:  # fmt: skip
        return self._network("bandwidth", target, peers,
                             lambda a, b: self.network.bandwidth(a, b, rate_kbit, hold_s=hold_s,
                                                                 both_ways=both_ways),
                             rate_kbit=rate_kbit, both_ways=both_ways)  # fmt: skip

    def heal(self, target: str) -> dict[str, Any]:
        """Undo every network fault on ``target`` (objects deleted, labels removed)."""
        return self._unmake("heal", "network", target, self.network.clear)
