"""When and which faults a repetition injects: at a seeded moment, when a condition holds
(a trigger), or on a schedule (a fixed sequence, or a soak's seeded mix). Every fault goes
through :func:`faults.ops.inject`, so every undo runs; markers in the history say when and
why each fault fired."""

from __future__ import annotations

import time
from typing import Any

from harness.core.errors import HarnessError
from harness.core.history import HistoryWriter
from harness.faults.ops import inject
from harness.faults.schedule import random_schedule
from harness.faults.triggers import (
    Condition,
    LedgerCondition,
    LogCondition,
    TaskStateCondition,
    wait_for,
)
from harness.platform.base import Cluster
from harness.run.model import Experiment, Fault, Trigger

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")


def condition_for(trigger: Trigger, cluster: Cluster) -> Condition:
    """The condition a trigger waits for, wired to ``cluster``'s ledger, logs or API."""
    if trigger.ledger is not None:
        return LedgerCondition(cluster.ledger_mark, cluster.ledger_since, trigger.ledger)
    if trigger.log is not None:
        path = getattr(cluster, "replica_log", lambda _r: None)(trigger.log.replica)
        if path is None:
            raise HarnessError(f"a log trigger needs {trigger.log.replica}'s log file, which "
                               f"this platform ({cluster.platform}) does not give",
                               fix="use a ledger or task_state trigger here")  # fmt: skip
        return LogCondition(path, trigger.log.pattern, replica=trigger.log.replica)
    assert trigger.task_state is not None
    match = trigger.task_state
    return TaskStateCondition(cluster.lb_url, match.dag_id, match.state, task_id=match.task_id)


def triggered_fault(
    experiment: Experiment, cluster: Cluster, writer: HistoryWriter,
    victim: dict[str, Any] | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Arm the trigger, wait for it, then inject (``delay_s`` later); none if it never held."""
    trigger = experiment.trigger
    assert trigger is not None
    condition = condition_for(trigger, cluster)
    condition.arm()
    writer.append("marker", name="trigger_armed", detail=trigger.model_dump(mode="json"))
    met = wait_for(condition, trigger.timeout_s)
    if met is None:
        writer.append("marker", name="trigger_timeout", detail={"timeout_s": trigger.timeout_s})
        return []
    writer.append("marker", name="trigger_met",
                  detail={"t_wall": met.t_wall, **met.evidence})  # fmt: skip
    time.sleep(trigger.delay_s)
    return inject(experiment.fault, cluster, victim)


def replicas_by_component(cluster: Cluster) -> dict[str, list[str]]:
    """Replica names per component, ``service`` for PostgreSQL and Redis."""
    out = {c: cluster.replica_names(c) for c in COMPONENTS}
    named = {n for names in out.values() for n in names}
    out["service"] = [n for n in cluster.replica_names() if n not in named]
    return out


def scheduled_faults(
    experiment: Experiment, cluster: Cluster, writer: HistoryWriter, *, seed: int,
    victim: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """A schedule's faults, each at its time: a fixed sequence, or a soak's seeded mix (then
    on to its end). A fault that fails (its target was not running, say) is recorded as
    ``fail`` and the schedule goes on."""
    schedule = experiment.schedule
    assert schedule is not None
    plan: list[Any]
    if schedule.steps:
        plan = list(schedule.steps)
        detail = [s.model_dump(mode="json", exclude_defaults=True) for s in plan]
        writer.append("marker", name="sequence", detail={"faults": detail})
    else:
        assert schedule.duration_s is not None
        plan = random_schedule(schedule.ops, replicas_by_component(cluster),
                               duration_s=schedule.duration_s, seed=seed,
                               mean_gap_s=schedule.mean_gap_s, hold_s=schedule.hold_s)  # fmt: skip
        writer.append("marker", name="schedule", detail={"faults": [f.describe() for f in plan]})
    start, done = time.monotonic(), []
    for planned in plan:
        time.sleep(max(0.0, start + planned.at_s - time.monotonic()))
        fault = planned if isinstance(planned, Fault) else _as_fault(planned)
        try:
            done += inject(fault, cluster, victim)
        except HarnessError as exc:  # recorded as a `fail` fault event by the nemesis
            writer.append("marker", name="scheduled_fault_failed",
                          detail={"at_s": planned.at_s, "op": planned.op,
                                  "target": planned.target, "error": str(exc)})  # fmt: skip
    if schedule.duration_s is not None:
        time.sleep(max(0.0, start + schedule.duration_s - time.monotonic()))
    return done


def _as_fault(planned: Any) -> Fault:
    """A soak's drawn :class:`~harness.faults.schedule.ScheduledFault` as a :class:`Fault`."""
    return Fault(op=planned.op, target=planned.target, hold_s=planned.hold_s,
                 cores=planned.cores)  # fmt: skip
