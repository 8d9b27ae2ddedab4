"""Faults on the local platform: real signals to a replica's whole process tree, and its
cgroup (CPU quota, memory limit, freezer), wall clock (libfaketime), disk (a full tmpfs)
and, with the topology's ``network: pod``, its links to other hosts of the cluster's pod
network (partition, latency, loss, bandwidth; ``heal`` undoes them all)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.platform.base import record_fault
from harness.platform.local.supervisor import Replica

if TYPE_CHECKING:
    from harness.platform.local.net import PodNetwork

NETWORK_FIX = "run the harness as root with the topology's network: pod"


class LocalNemesis:
    """Implements :class:`harness.platform.base.Nemesis` for a local cluster's replicas.

    ``replica`` looks a replica up by name (a :class:`HarnessError` for an unknown one);
    ``bus`` takes the fault events; ``network``: the cluster's pod network (None: loopback,
    network faults refused, ``network_note`` saying why), ``network_faults`` the cluster's
    record of each target's active network faults (a nemesis is made per use, so the
    record is the cluster's: :meth:`heal` finds what an earlier nemesis applied).
    """

    def __init__(self, replica: Callable[[str], Replica], bus: EventBus, *,
                 network: PodNetwork | None = None,
                 network_faults: dict[str, list[str]] | None = None,
                 network_note: str = "") -> None:  # fmt: skip
        self._replica = replica
        self._bus = bus
        self._network = network
        self._network_faults = network_faults if network_faults is not None else {}
        self._network_note = network_note

    def _op(self, op: str, target: str, action, **fields: Any) -> dict[str, Any]:
        replica = self._replica(target)  # unknown target: a HarnessError, no event
        return record_fault(self._bus, op, target, lambda: action(replica),
                            incarnation=replica.incarnation, **fields)  # fmt: skip

    def kill(self, target: str) -> dict[str, Any]:
        def act(replica):
            unit = replica.unit
            if unit is None or unit.popen.poll() is not None:
                raise HarnessError(f"{target} is not running", fix="wait until it is ready")
            signalled = unit.signal(signal.SIGKILL)
            gone = unit.wait_gone(10.0)
            if not gone:
                raise RuntimeError(f"{target}: processes survived SIGKILL: {unit.members()}")
            return {"signalled": signalled, "pid": unit.pid}

        return self._op("kill", target, act)

    def force_delete(self, target: str) -> dict[str, Any]:
        """Refused: a force delete removes a Kubernetes pod object; there is none here."""
        raise HarnessError(
            f"force_delete {target}: the local platform has no pod objects to delete",
            fix="use kill (SIGKILL) or terminate (SIGTERM) here, or run on --platform kubernetes",
        )

    def terminate(self, target: str, grace_s: float | None = None) -> dict[str, Any]:
        def act(replica):
            unit = replica.unit
            if unit is None or unit.popen.poll() is not None:
                raise HarnessError(f"{target} is not running", fix="wait until it is ready")
            grace = replica.spec.grace_s if grace_s is None else grace_s
            started = time.monotonic()
            unit.resume_all()  # a paused or frozen replica must see the SIGTERM
            signalled = unit.signal_stop(signal.SIGTERM, replica.spec.stop_scope)
            graceful = unit.wait_gone(grace)
            if not graceful:
                unit.kill_all()
            return {
                "signalled": signalled,
                "scope": replica.spec.stop_scope,
                "pid": unit.pid,
                "graceful": graceful,
                "shutdown_s": round(time.monotonic() - started, 3),
            }

        return self._op("terminate", target, act, grace_s=grace_s)

    def pause(self, target: str) -> dict[str, Any]:
        def act(replica):
            return {"signalled": replica.signal(signal.SIGSTOP)}

        return self._op("pause", target, act)

    def resume(self, target: str) -> dict[str, Any]:
        def act(replica):
            return {"signalled": replica.signal(signal.SIGCONT)}

        return self._op("resume", target, act)

    def stop_service(self, target: str) -> dict[str, Any]:
        return self._op("stop_service", target, lambda r: {"exit_code": r.hold()})

    def start_service(self, target: str) -> dict[str, Any]:
        def act(replica):
            replica.release()
            return {}

        return self._op("start_service", target, act)

    # -- resource, clock and disk faults -----------------------------------------------------
    def _cgroup(self, replica: Replica):
        cgroup = replica.spec.cgroup
        if cgroup is None:
            raise HarnessError(
                f"{replica.name} has no cgroup (this host gave none the harness can use)",
                fix="run the harness as root on a host with cgroup v1 controllers or a "
                "delegated cgroup v2 hierarchy (see the cluster's cgroups note)",
            )
        return cgroup

    def _running(self, replica: Replica) -> None:
        unit = replica.unit
        if unit is None or unit.popen.poll() is not None:
            raise HarnessError(f"{replica.name} is not running", fix="wait until it is ready")

    def cpu_throttle(self, target: str, cores: float) -> dict[str, Any]:
        def act(replica):
            return {**self._cgroup(replica).set_cpu_quota(cores), "cores": cores}

        return self._op("cpu_throttle", target, act, cores=cores)

    def cpu_clear(self, target: str) -> dict[str, Any]:
        def act(replica):
            cgroup = self._cgroup(replica)
            cgroup.clear_cpu_quota()
            return cgroup.cpu_throttling()

        return self._op("cpu_clear", target, act)

    def memory_limit(self, target: str, limit: int, oom_group: bool = False) -> dict[str, Any]:
        def act(replica):
            cgroup = self._cgroup(replica)
            done = cgroup.set_memory_limit(limit)
            return {**done, "oom_group": replica.set_oom_group(oom_group)}

        return self._op("memory_limit", target, act, bytes=limit, oom_group=oom_group)

    def memory_clear(self, target: str) -> dict[str, Any]:
        def act(replica):
            cgroup = self._cgroup(replica)
            replica.set_oom_group(False)
            cgroup.clear_memory_limit()
            return {"oom_kills": cgroup.oom_kills(), "usage": cgroup.memory_usage()}

        return self._op("memory_clear", target, act)

    def freeze(self, target: str) -> dict[str, Any]:
        def act(replica):
            cgroup = self._cgroup(replica)
            self._running(replica)
            took = cgroup.freeze()
            return {"members": len(cgroup.members()), "frozen_after_s": round(took, 3)}

        return self._op("freeze", target, act)

    def thaw(self, target: str) -> dict[str, Any]:
        def act(replica):
            cgroup = self._cgroup(replica)
            was = cgroup.frozen()
            cgroup.thaw()
            return {"was_frozen": was}

        return self._op("thaw", target, act)

    def _clock(self, replica: Replica):
        clock = replica.spec.clock
        if clock is None:
            raise HarnessError(
                f"{replica.name} cannot be skewed: it was not started under libfaketime",
                fix=f"add {replica.name} to the topology's clock_skew_replicas",
            )
        return clock

    def clock_skew(self, target: str, seconds: float) -> dict[str, Any]:
        def act(replica):
            return {"offset": self._clock(replica).set(seconds)}

        return self._op("clock_skew", target, act, skew_s=seconds)

    def clock_reset(self, target: str) -> dict[str, Any]:
        def act(replica):
            clock = self._clock(replica)
            was = clock.offset()
            return {"offset": clock.reset(), "was_s": was}

        return self._op("clock_reset", target, act)

    def _disk(self, replica: Replica):
        disk = replica.spec.disk
        if disk is None or not disk.mounted():
            raise HarnessError(f"{replica.name} has no size-limited disk to fill",
                               fix="set the topology's postgres_disk_mb (e.g. 256)")  # fmt: skip
        return disk

    def disk_fill(self, target: str) -> dict[str, Any]:
        return self._op("disk_fill", target, lambda r: self._disk(r).fill())

    def disk_free(self, target: str) -> dict[str, Any]:
        return self._op("disk_free", target, lambda r: self._disk(r).free())

    # -- network faults (pod network) --------------------------------------------------------
    def _pod_network(self, op: str) -> PodNetwork:
        if self._network is None:
            why = f" ({self._network_note})" if self._network_note else ""
            raise HarnessError(f"{op}: the cluster runs on loopback, with no pod network to "
                               f"fault{why}", fix=NETWORK_FIX)  # fmt: skip
        return self._network

    def _net(self, op: str, target: str, peers: Sequence[str], apply, **fields: Any):
        """Record ``op`` from ``target`` to ``peers`` (replica names, or ``client``: the
        harness's own host); ``apply(network, a, b)`` returns the faults it made, whose
        descriptions (with the rules applied) are the ``ok`` detail."""
        peers = list(peers)

        def act(replica):
            network = self._pod_network(op)
            unknown = [p for p in peers if p not in network.hosts]
            if unknown:
                hosts = sorted(network.hosts)
                raise HarnessError(f"{op}: unknown peers {unknown}",
                                   fix=f"use hosts of the network: {hosts}")  # fmt: skip
            if target in peers:
                raise HarnessError(f"{op}: {target} is its own peer", fix="remove it from peers")
            made: list[dict[str, Any]] = []
            try:
                apply(network, [target], peers, made)
            except BaseException:
                for fault in reversed(made):
                    network.heal(fault)
                raise
            self._network_faults.setdefault(target, []).extend(f["id"] for f in made)
            return {"faults": made}

        return self._op(op, target, act, peers=peers, **fields)

    def partition(self, target: str, peers: Sequence[str], *, both_ways: bool = True,
                  mode: str = "blackhole") -> dict[str, Any]:  # fmt: skip
        """Traffic between ``target`` and ``peers`` cut (``both_ways``: in both directions,
        else target → peers): dropped on the switch (``blackhole``) or rejected by the
        receiving host (``reject``)."""

        def apply(network, a, b, made):
            made.append(network.partition(a, b, both_ways=both_ways, mode=mode))

        return self._net("partition", target, peers, apply, both_ways=both_ways, mode=mode)

    def latency(self, target: str, peers: Sequence[str], *, delay_ms: float,
                jitter_ms: float = 0.0, both_ways: bool = True) -> dict[str, Any]:  # fmt: skip
        """Packets from ``target`` to ``peers`` (and back, ``both_ways``) held ``delay_ms`` ±
        ``jitter_ms`` on the way."""

        def apply(network, a, b, made):
            made.append(network.latency(a, b, delay_ms, jitter_ms or 0.0, both_ways=both_ways))

        return self._net("latency", target, peers, apply, delay_ms=delay_ms,
                         jitter_ms=jitter_ms, both_ways=both_ways)  # fmt: skip

    def loss(self, target: str, peers: Sequence[str], *, percent: float,
             both_ways: bool = True) -> dict[str, Any]:  # fmt: skip
        """A random ``percent`` of the packets from ``target`` to ``peers`` (and back)
        dropped."""

        def apply(network, a, b, made):
            made.append(network.loss(a, b, percent, both_ways=both_ways))

        return self._net("loss", target, peers, apply, percent=percent, both_ways=both_ways)

    def bandwidth(self, target: str, peers: Sequence[str], *, rate_kbit: float,
                  both_ways: bool = True) -> dict[str, Any]:  # fmt: skip
        """What ``target`` sends to ``peers`` limited to ``rate_kbit`` (shared), and with
        ``both_ways`` what each peer sends to ``target`` too (each peer its own limit)."""
        rate = max(1, round(rate_kbit))

        def apply(network, a, b, made):
            made.append(network.bandwidth(a, b, rate))
            if both_ways:
                for peer in b:
                    made.append(network.bandwidth([peer], a, rate))

        return self._net("bandwidth", target, peers, apply, rate_kbit=rate_kbit,
                         both_ways=both_ways)  # fmt: skip

    def heal(self, target: str) -> dict[str, Any]:
        """Undo every network fault applied to ``target`` (none: nothing to do)."""

        def act(replica):
            network = self._pod_network("heal")
            faults = self._network_faults.pop(target, [])
            problems = [p for fault_id in reversed(faults) for p in network.heal(fault_id)]
            if problems:
                raise RuntimeError(f"heal {target}: {'; '.join(problems)}")
            return {"healed": faults}

        return self._op("heal", target, act)

    # -- state actions -----------------------------------------------------------------------
    def snapshot(self, target: str) -> dict[str, Any]:
        """Redis saves its dataset to its RDB file now (``SAVE``), as a periodic ``save``
        would; a later kill restarts it from this snapshot, losing what came after. Records
        what the snapshot holds: keys, the Celery queue, unacknowledged messages."""

        def act(replica):
            if replica.spec.component != "redis":
                raise HarnessError(f"snapshot {target}: only Redis has a snapshot to take",
                                   fix="target redis")  # fmt: skip
            self._running(replica)
            return broker_snapshot(replica.spec.ports[0], host=replica.spec.address)

        return self._op("snapshot", target, act)


def broker_snapshot(port: int, queue: str = "default", host: str = "127.0.0.1") -> dict[str, Any]:
    """``SAVE`` on the Redis at ``host:port`` and what the RDB file now holds."""
    import redis

    client = redis.Redis(host=host, port=port, socket_timeout=10)
    try:
        client.save()
        where = client.config_get("dir")["dir"], client.config_get("dbfilename")["dbfilename"]
        return {"rdb": "/".join(where), "keys": client.dbsize(),
                "queued_messages": client.llen(queue), "unacked_messages": client.hlen("unacked"),
                "last_save": client.lastsave().timestamp()}  # fmt: skip
    except redis.RedisError as exc:
        raise HarnessError(
            f"Redis did not save a snapshot: {exc}",
            fix="check the redis log in the results' logs directory",
        ) from exc
    finally:
        client.close()
