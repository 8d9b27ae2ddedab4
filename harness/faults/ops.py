"""Inject one fault through a cluster's nemesis: resolve its targets, apply it, always undo it.

Targets: a replica name (``api-server-0``), ``<component>/all`` for every replica of a
component in a row, or ``<component>/victim`` for the replica running the experiment's
victim task (found from the side-effect ledger). ``pause`` and ``stop_service`` hold for
``hold_s`` and are then undone (``resume`` / ``start_service``) in a ``finally``: an
interrupted run (Ctrl-C, SIGTERM, an observer error) never leaves a replica paused or a
service stopped.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from harness.core.errors import HarnessError
from harness.platform.base import Cluster, record_fault

UNDO = {"pause": "resume", "stop_service": "start_service"}


class FaultLike(Protocol):
    op: str
    target: str
    hold_s: float
    grace_s: float | None


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
    done = []
    for target in targets(fault, cluster, victim):
        if fault.op == "terminate":
            done.append(nemesis.terminate(target, grace_s=fault.grace_s))
            continue
        undo = UNDO.get(fault.op)
        try:
            done.append(getattr(nemesis, fault.op)(target))
            if undo:
                time.sleep(fault.hold_s)
        finally:
            if undo:
                getattr(nemesis, undo)(target)
    return done
