"""Inject one fault through a cluster's nemesis: resolve its targets, apply it, always undo it.

Targets: a replica name (``api-server-0``), ``<component>/all`` for every replica of a
component in a row, or ``<component>/victim`` for the replica running the experiment's
victim task (found from the side-effect ledger). Held faults (:data:`UNDO`) hold for
``hold_s`` and are then undone in a ``finally`` — ``pause``/``resume``,
``stop_service``/``start_service``, ``freeze``/``thaw``, ``cpu_throttle``/``cpu_clear``,
``memory_limit``/``memory_clear``, ``clock_skew``/``clock_reset``,
``disk_fill``/``disk_free``, ``partition``/``latency``/``loss``/``bandwidth`` and
``heal``: an interrupted run (Ctrl-C, SIGTERM, an observer error) never
leaves a replica paused, frozen, starved, limited, skewed or full, or a service stopped.
The undo runs even when the fault itself failed (it may have half happened).
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Protocol

from harness.core.errors import HarnessError
from harness.core.faultops import NETWORK_OPS, UNDO
from harness.platform.base import Cluster, record_fault

# a network fault's arguments besides peers and both_ways (fields of the experiment's Fault)
NETWORK_ARGS = {"partition": ("mode",), "latency": ("delay_ms", "jitter_ms"),
                "loss": ("percent",), "bandwidth": ("rate_kbit",)}  # fmt: skip


class FaultLike(Protocol):
    op: str
    target: str
    hold_s: float
    grace_s: float | None


def arguments(fault: FaultLike) -> dict[str, Any]:
    """The nemesis call's arguments besides the target (fields a plain fault may lack)."""
    op = fault.op
    if op == "terminate":
        return {"grace_s": getattr(fault, "grace_s", None)}
    if op == "cpu_throttle":
        return {"cores": getattr(fault, "cores", None)}
    if op == "memory_limit":
        return {"limit": getattr(fault, "bytes", None),
                "oom_group": bool(getattr(fault, "oom_group", False))}  # fmt: skip
    if op == "clock_skew":
        return {"seconds": getattr(fault, "skew_s", None)}
    if op in NETWORK_OPS:
        out: dict[str, Any] = {"both_ways": bool(getattr(fault, "both_ways", True))}
        out.update({k: getattr(fault, k, None) for k in NETWORK_ARGS[op]})
        return out
    return {}


def peers(fault: FaultLike, cluster: Cluster) -> list[str]:
    """A network fault's other side as replica names (``<component>/all`` expanded)."""
    out: list[str] = []
    for peer in getattr(fault, "peers", ()) or ():
        if peer.endswith("/all"):
            names = cluster.replica_names(peer[: -len("/all")])
            if not names:
                raise HarnessError(f"no replicas for peer {peer}", fix="check the topology")
            out += names
        else:
            out.append(peer)
    return out


def _takes_hold(action: Any) -> bool:
    """Does the nemesis method take ``hold_s`` (it makes an object that ends by itself, as
    a Chaos Mesh fault does, so a dead harness's fault still ends)?"""
    try:
        return "hold_s" in inspect.signature(action).parameters
    except (TypeError, ValueError):
        return False


def targets(fault: FaultLike, cluster: Cluster, victim: dict[str, Any] | None = None) -> list[str]:
    """The replica names ``fault`` applies to, in order."""
    if fault.target.endswith("/all"):
        names = cluster.replica_names(fault.target[: -len("/all")])
        if not names:
            raise HarnessError(f"no replicas for {fault.target}", fix="check the topology")
        return names
    if fault.target.endswith("/victim"):
        if not victim or not victim.get("replica"):
            raise HarnessError(
                f"{fault.target}: no replica is known to run the victim task",
                fix="give the experiment a victim_dag whose tasks write the ledger",
            )
        return [victim["replica"]]
    return [fault.target]


def inject(
    fault: FaultLike, cluster: Cluster, victim: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run the fault on each target; returns the ``ok`` fault events (times of effect)."""
    if fault.op == "none":  # the configuration is the fault: a marker on the timeline
        return [record_fault(cluster.bus, "none", fault.target, lambda: {"injected": None})]
    nemesis = cluster.nemesis
    action = getattr(nemesis, fault.op, None)
    undo_op = UNDO.get(fault.op)
    undo = getattr(nemesis, undo_op, None) if undo_op else None
    if action is None or (undo_op and undo is None):
        raise HarnessError(
            f"the {cluster.platform} platform cannot inject {fault.op}",
            fix="run this experiment on a platform that supports it (see `ha-bench list`)",
        )
    kwargs = arguments(fault)
    if fault.op in NETWORK_OPS:
        kwargs["peers"] = peers(fault, cluster)
    if undo and _takes_hold(action):
        kwargs["hold_s"] = fault.hold_s
    done = []
    for target in targets(fault, cluster, victim):
        try:
            done.append(action(target, **kwargs))
            if undo:
                time.sleep(fault.hold_s)
        finally:
            if undo:
                undo(target)
    return done
