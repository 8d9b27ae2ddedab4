"""The roles every platform implements: the cluster (db) and the nemesis (faults).

Experiments talk only to these protocols, so the same experiment runs on ``local`` and
``kubernetes``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.core.topology import Topology

FAULT_OPS = (
    "kill",
    "force_delete",
    "terminate",
    "pause",
    "resume",
    "stop_service",
    "start_service",
)
RESOURCE_FAULT_OPS = (
    "cpu_throttle",
    "cpu_clear",
    "memory_limit",
    "memory_clear",
    "freeze",
    "thaw",
    "clock_skew",
    "clock_reset",
    "disk_fill",
    "disk_free",
)
NETWORK_FAULT_OPS = ("partition", "latency", "loss", "bandwidth", "heal")


@runtime_checkable
class Cluster(Protocol):
    """A running Airflow cluster under test."""

    platform: str
    topology: Topology
    bus: EventBus

    @property
    def lb_url(self) -> str:
        """Where clients reach the api-servers (the load balancer / Service), on loopback."""
        ...

    @property
    def api_server_urls(self) -> dict[str, str]:
        """Each api-server replica, directly, by replica name."""
        ...

    def replica_names(self, component: str | None = None) -> list[str]:
        """Replica names of one component (``api-server``, ``scheduler`` ...), or all."""
        ...

    def is_ready(self, replica: str) -> bool: ...

    def ledger_mark(self) -> int:
        """A position in the tasks' side-effect ledger (see the benchmark DAGs)."""
        ...

    def ledger_since(self, mark: int) -> list[dict[str, Any]]:
        """Ledger rows written after ``mark``."""
        ...

    def metadata(self) -> dict[str, Any]:
        """The setup to record with every result (versions, topology, overrides)."""
        ...

    def replica_log_mark(self) -> Any:
        """A position in every replica's log (see :meth:`replica_log_lines`)."""
        ...

    def replica_log_lines(self, mark: Any) -> Iterable[tuple[str, list[str]]]:
        """``(replica, its log lines since mark)`` for each replica (lines may start
        earlier where the platform cannot cut exactly: readers filter by timestamp)."""
        ...

    def prepare_repetition(self) -> dict[str, int]:
        """Before each repetition: start it from a reset state — restart back-off cleared, so
        a replica that crash-looped in an earlier repetition restarts at once next time, as
        after a fresh deploy (where the platform can) — and return each replica's restart
        count so far, ``{replica: restarts}``."""
        ...

    def stop(self) -> None: ...


@runtime_checkable
class Nemesis(Protocol):
    """Injects faults; each is recorded as ``fault`` events ``invoke`` then ``ok|fail|info``."""

    def kill(self, target: str) -> dict[str, Any]:
        """SIGKILL to every process of the replica; then it is replaced (restarted)."""
        ...

    def force_delete(self, target: str) -> dict[str, Any]:
        """Kubernetes: the pod object removed at once (grace 0), its containers stopped
        gracefully by the kubelet; platforms without such objects refuse it."""
        ...

    def terminate(self, target: str, grace_s: float | None = None) -> dict[str, Any]:
        """Like a graceful pod delete: SIGTERM, SIGKILL after the grace period."""
        ...

    def pause(self, target: str) -> dict[str, Any]:
        """A hung process: SIGSTOP to the whole replica."""
        ...

    def resume(self, target: str) -> dict[str, Any]: ...

    def stop_service(self, target: str) -> dict[str, Any]:
        """Take a service (``postgres``, ``redis``) down and keep it down."""
        ...

    def start_service(self, target: str) -> dict[str, Any]: ...


@runtime_checkable
class ResourceNemesis(Nemesis, Protocol):
    """A nemesis that also starves, limits, freezes, skews and fills replicas, each fault
    undone by its pair (``faults.ops.UNDO``). A platform that lacks one raises a
    :class:`HarnessError` naming the fix (recorded as ``fail``)."""

    def cpu_throttle(self, target: str, cores: float) -> dict[str, Any]:
        """A CPU quota of ``cores`` (0.05: 5 % of one core) on the whole replica."""
        ...

    def cpu_clear(self, target: str) -> dict[str, Any]: ...

    def memory_limit(self, target: str, limit: int, oom_group: bool = False) -> dict[str, Any]:
        """A memory limit of ``limit`` bytes: allocating past it is a real OOM kill (the
        replica's lifecycle ``exited`` says ``oom_killed: true`` when it took the main
        process); ``oom_group``: one OOM kill takes the whole replica (Kubernetes on cgroup
        v2), else the kernel kills the largest process."""
        ...

    def memory_clear(self, target: str) -> dict[str, Any]: ...

    def freeze(self, target: str) -> dict[str, Any]:
        """Every process of the replica frozen by the cgroup freezer (``docker pause``):
        unlike SIGSTOP, nothing a parent or ``waitpid`` can see."""
        ...

    def thaw(self, target: str) -> dict[str, Any]: ...

    def clock_skew(self, target: str, seconds: float) -> dict[str, Any]:
        """The replica's wall clock moved by ``seconds`` (its monotonic clock untouched)."""
        ...

    def clock_reset(self, target: str) -> dict[str, Any]: ...

    def disk_fill(self, target: str) -> dict[str, Any]:
        """The replica's data filesystem filled up: its writes fail with ENOSPC."""
        ...

    def disk_free(self, target: str) -> dict[str, Any]: ...


@runtime_checkable
class NetworkNemesis(Nemesis, Protocol):
    """A nemesis that also faults links between a target and its ``peers`` (replica names;
    on the local platform also ``client``, the harness's own host), each recorded ``invoke``
    then ``ok`` with the rules it applied; :meth:`heal` undoes every network fault of the
    target. A platform (or mode) without a network to fault raises a :class:`HarnessError`
    naming the fix. Platforms whose fault objects end by themselves also take ``hold_s``."""

    def partition(self, target: str, peers: Sequence[str], *, both_ways: bool = True,
                  mode: str = "blackhole") -> dict[str, Any]:  # fmt: skip
        """Traffic between them cut: dropped (``blackhole``) or refused (``reject``)."""
        ...

    def latency(self, target: str, peers: Sequence[str], *, delay_ms: float,
                jitter_ms: float = 0.0, both_ways: bool = True) -> dict[str, Any]:  # fmt: skip
        ...

    def loss(self, target: str, peers: Sequence[str], *, percent: float,
             both_ways: bool = True) -> dict[str, Any]:  # fmt: skip
        ...

    def bandwidth(self, target: str, peers: Sequence[str], *, rate_kbit: float,
                  both_ways: bool = True) -> dict[str, Any]:  # fmt: skip
        ...

    def heal(self, target: str) -> dict[str, Any]: ...


_op_ids = itertools.count(1)


def record_fault(
    bus: EventBus, op: str, target: str, action: Callable[[], Any], **fields: Any
) -> dict[str, Any]:
    """Run ``action`` as fault ``op`` on ``target``, recorded Jepsen-style: ``invoke``, then
    ``ok`` (with the action's result as ``detail``), ``fail`` (a :class:`HarnessError`: it did
    not happen) or ``info`` (any other exception: outcome unknown). Returns the ``ok`` event."""
    op_id = next(_op_ids)
    bus.emit("fault", op=op, target=target, phase="invoke", op_id=op_id, **fields)
    try:
        detail = action()
    except HarnessError as exc:
        bus.emit("fault", op=op, target=target, phase="fail", op_id=op_id, detail=str(exc))
        raise
    except Exception as exc:
        bus.emit("fault", op=op, target=target, phase="info", op_id=op_id, detail=repr(exc))
        raise
    return bus.emit("fault", op=op, target=target, phase="ok", op_id=op_id, detail=detail)
