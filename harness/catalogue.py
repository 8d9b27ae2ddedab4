"""The fault catalogue: each experiment is a function of its parameters returning data.

Hypotheses come from ``shared/airflow-ha-notes.md`` ("what each experiment should
expect"); every one is checked against measured figures and reported as confirmed,
refuted or unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.experiment import Experiment, Fault, Hypothesis


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None


COMMON = (
    Param("api_servers", 2, "api-server replicas behind HAProxy"),
    Param("schedulers", 2, "scheduler replicas (active-active)"),
    Param("workers", 2, "Celery worker replicas"),
    Param("load_users", 0, "Locust users loading the api-servers during the run"),
)


def _topology(p: dict[str, Any]) -> dict[str, Any]:
    return {"api_servers": p["api_servers"], "schedulers": p["schedulers"],
            "workers": p["workers"]}  # fmt: skip


def api_server_kill(p: dict[str, Any]) -> Experiment:
    n = p["api_servers"]
    if n == 1:
        hypotheses = (
            Hypothesis("downtime_s", ">", 0.0,
                       "the only api-server dies: clients see an outage until the "
                       "replacement starts"),
            Hypothesis("failed_tasks", "<=", 0,
                       "tasks survive a short api-server outage (Task SDK retries)",
                       gate=False),
        )  # fmt: skip
    else:
        hypotheses = (
            Hypothesis("downtime_s", "<=", 1.0,
                       "HAProxy health checks and retries mask one dead replica"),
            Hypothesis("failed_tasks", "<=", 0, "no task fails"),
        )  # fmt: skip
    target = "api-server/all" if p.get("all_replicas") else "api-server-0"
    return Experiment(
        name="api-server-kill",
        description=f"SIGKILL {target} of {n} api-server(s) behind the load balancer",
        fault=Fault("kill", target),
        topology=_topology(p),
        hypotheses=hypotheses,
        load_users=p["load_users"],
        params=p,
    )


def scheduler_kill(p: dict[str, Any]) -> Experiment:
    n = p["schedulers"]
    if n == 1:
        hypotheses = (
            Hypothesis("scheduling_resumed_vs_restart", ">=", 0.8,
                       "with one scheduler, no run triggered after the kill starts a task "
                       "until the replacement scheduler is up"),
            Hypothesis("task_start_gap_excess_s", ">", 1.0,
                       "task starts stall beyond the normal gap (tasks queued before the kill "
                       "still start, so the gap is shorter than the restart)", gate=False),
        )  # fmt: skip
    else:
        hypotheses = (
            Hypothesis("scheduling_delay_excess_s", "<=", 5.0,
                       "active-active schedulers: runs triggered after the kill start within "
                       "the normal trigger-to-start latency plus one scheduler heartbeat "
                       "(5 s)"),
            Hypothesis("task_start_gap_excess_s", "<=", 5.0,
                       "no task-start gap beyond the normal one plus one heartbeat (5 s)"),
            Hypothesis("failed_tasks", "<=", 0, "no task fails"),
        )  # fmt: skip
    return Experiment(
        name="scheduler-kill",
        description=f"SIGKILL scheduler-0 of {n} scheduler(s) while DAG runs flow",
        fault=Fault("kill", "scheduler-0"),
        topology=_topology(p),
        hypotheses=hypotheses,
        load_users=p["load_users"],
        baseline_s=8.0,
        params=p,
    )


def api_server_pause(p: dict[str, Any]) -> Experiment:
    return Experiment(
        name="api-server-pause",
        description="SIGSTOP api-server-0 for hold_s seconds (a hung replica), then SIGCONT",
        fault=Fault("pause", "api-server-0", hold_s=float(p["hold_s"])),
        topology=_topology(p),
        hypotheses=(
            Hypothesis(
                "downtime_s",
                "<=",
                2.0,
                "HAProxy's 500 ms checks take the hung replica out within ~1-2 s",
            ),
        ),
        load_users=p["load_users"],
        params=p,
    )


def dag_processor_kill(p: dict[str, Any]) -> Experiment:
    return Experiment(
        name="dag-processor-kill",
        description="SIGKILL the dag-processor while DAG runs flow",
        fault=Fault("kill", "dag-processor-0"),
        topology=_topology(p),
        hypotheses=(
            Hypothesis("failed_tasks", "<=", 0, "already-parsed DAGs keep running: no task fails"),
            Hypothesis(
                "scheduling_delay_excess_s",
                "<=",
                5.0,
                "scheduling does not wait for the dag-processor (+ one heartbeat)",
            ),
            Hypothesis("downtime_s", "<=", 0.5, "the API does not notice"),
        ),
        load_users=p["load_users"],
        params=p,
    )


@dataclass(frozen=True)
class Entry:
    make: Callable[[dict[str, Any]], Experiment]
    summary: str
    params: tuple[Param, ...]


CATALOGUE: dict[str, Entry] = {
    "api-server-kill": Entry(
        api_server_kill,
        "kill an api-server (or all, in a row) under probing, load and DAG runs",
        (*COMMON, Param("all_replicas", False, "kill every api-server in a row")),
    ),
    "api-server-pause": Entry(
        api_server_pause,
        "stall one api-server (SIGSTOP) and see whether the load balancer routes around it",
        (*COMMON, Param("hold_s", 10.0, "seconds the replica stays stopped")),
    ),
    "dag-processor-kill": Entry(
        dag_processor_kill,
        "kill the dag-processor; running DAGs should not notice (parse gap only)",
        COMMON,
    ),
    "scheduler-kill": Entry(
        scheduler_kill,
        "kill a scheduler while DAG runs flow; gap in task starts, 1 vs N schedulers",
        COMMON,
    ),
}


def _coerce(value: Any, default: Any, name: str) -> Any:
    if isinstance(value, str):
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
        else:
            try:
                return type(default)(value)
            except ValueError:
                pass
        raise HarnessError(
            f"parameter {name}={value!r} is not a {type(default).__name__}",
            fix=f"pass e.g. --set {name}={default}",
        )
    return value


def build(name: str, overrides: dict[str, Any] | None = None) -> Experiment:
    """The experiment ``name`` with parameters ``overrides`` (unknown ones refused)."""
    if name not in CATALOGUE:
        raise HarnessError(
            f"unknown experiment {name!r}",
            fix=f"use one of: {', '.join(CATALOGUE)} (see `ha-bench list`)",
        )
    entry = CATALOGUE[name]
    known = {p.name: p for p in entry.params}
    params = {p.name: p.default for p in entry.params}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise HarnessError(
                f"experiment {name} has no parameter {key!r}",
                fix=f"use one of: {', '.join(known)}",
            )
        params[key] = _coerce(value, known[key].default, key)
    return entry.make(params)
