"""The fault catalogue: each experiment is a function of its parameters returning data.

Hypotheses come from ``shared/airflow-ha-notes.md`` ("what each experiment should
expect"); every one is checked against measured figures and reported as confirmed,
refuted or unknown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.core.errors import HarnessError
from harness.core.topology import Topology
from harness.run.runner import DB_ENDPOINT, LIVENESS, Experiment, Fault, Hypothesis


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


_WORKER_PARAMS = (
    Param("task_s", 20.0, "seconds the victim task runs"),
    Param("heartbeat_timeout_s", 30.0, "[scheduler] task_instance_heartbeat_timeout override"),
    Param("retries", 0, "[core] default_task_retries override"),
    Param("retry_delay_s", 5.0, "[core] default_task_retry_delay override (s)"),
)


def _topology(p: dict[str, Any]) -> dict[str, Any]:
    return {"api_servers": p["api_servers"], "schedulers": p["schedulers"],
            "workers": p["workers"]}  # fmt: skip


def api_server_kill(p: dict[str, Any]) -> Experiment:
    n = p["api_servers"]
    if n == 1 or p.get("all_replicas"):
        hypotheses = (
            Hypothesis("downtime_s", ">", 0.0,
                       "no api-server is left: clients see an outage until the first "
                       "replacement is ready"),
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


def _with_config(p: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Topology overrides plus Airflow config overrides (recorded and reported)."""
    return {**_topology(p), "airflow_config": {k: str(v) for k, v in config.items()}}


def _heartbeat_config(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "scheduler.task_instance_heartbeat_timeout": int(p["heartbeat_timeout_s"]),
        "scheduler.task_instance_heartbeat_timeout_detection_interval": 5,
        "core.default_task_retries": int(p["retries"]),
        "core.default_task_retry_delay": int(p["retry_delay_s"]),
    }


def worker_kill(p: dict[str, Any]) -> Experiment:
    timeout, retries, delay = p["heartbeat_timeout_s"], p["retries"], p["retry_delay_s"]
    # the task's last heartbeat is at most one [workers] min_heartbeat_interval (5 s) old
    # when it dies; the scheduler looks every detection interval (5 s); the driver polls 1 s
    bound = timeout + 5 + 5 + 5
    hypotheses = [
        Hypothesis("victim_failed_after_s", "<=", bound,
                   f"the heartbeat timeout ({timeout:g} s, shortened from 300) decides: the "
                   "SIGKILLed task is failed within timeout + detection interval + slack"),
        Hypothesis("victim_failed_after_s", ">=", timeout - 6,
                   "nothing notices the dead task sooner than the heartbeat timeout",
                   gate=False),
    ]  # fmt: skip
    if retries:
        hypotheses += [
            Hypothesis("victim_rerun_after_s", "<=", bound + delay + 10,
                       f"with {retries} retr{'y' if retries == 1 else 'ies'} the task reruns "
                       f"after the failure plus the retry delay ({delay:g} s)"),
            Hypothesis("victim_succeeded", "==", 1, "the rerun succeeds"),
        ]  # fmt: skip
    else:
        hypotheses.append(
            Hypothesis("victim_failed", "==", 1, "without retries the killed task fails for good")
        )
    return Experiment(
        name="worker-kill",
        description=f"SIGKILL the Celery worker running a {p['task_s']:g} s task (retries "
        f"{retries}, task_instance_heartbeat_timeout {timeout:g} s)",
        fault=Fault("kill", "worker/victim"),
        topology=_with_config(p, _heartbeat_config(p)),
        hypotheses=tuple(hypotheses),
        load_users=p["load_users"],
        victim_dag="ha_bench_long",
        victim_conf={"sleep_s": p["task_s"]},
        victim_timeout_s=bound + (delay + p["task_s"] + 30 if retries else 10),
        # a killed task is failed, not lost; a rerun is a new try, not a duplicate
        params=p,
    )


def worker_terminate(p: dict[str, Any]) -> Experiment:
    grace = p["grace_s"]
    return Experiment(
        name="worker-terminate",
        description=f"SIGTERM the Celery worker running a {p['task_s']:g} s task (warm "
        f"shutdown, grace {grace:g} s, DUMB_INIT_SETSID=0 semantics)",
        fault=Fault("terminate", "worker/victim", grace_s=grace),
        topology=_with_config(p, _heartbeat_config(p)),
        hypotheses=(
            Hypothesis(
                "terminate_graceful",
                "==",
                1,
                "warm shutdown: the worker exits by itself within the grace period",
            ),
            Hypothesis("victim_succeeded", "==", 1, "the running task finishes"),
            Hypothesis("victim_executions", "==", 1, "and runs exactly once"),
            Hypothesis("failed_tasks", "<=", 0, "no task fails"),
        ),
        load_users=p["load_users"],
        victim_dag="ha_bench_long",
        victim_conf={"sleep_s": p["task_s"]},
        victim_timeout_s=p["task_s"] + 60,
        params=p,
    )


def triggerer_kill(p: dict[str, Any]) -> Experiment:
    n = p["triggerers"]
    return Experiment(
        name="triggerer-kill",
        description=f"SIGKILL triggerer-0 of {n} while a deferred task waits on it",
        fault=Fault("kill", "triggerer-0"),
        topology={**_topology(p), "triggerers": n},
        hypotheses=(
            Hypothesis("victim_succeeded", "==", 1, "the deferred task resumes and succeeds"),
            Hypothesis(
                "victim_done_after_s",
                "<=",
                60.0,
                "deferred tasks resume within a minute of the kill",
            ),
            Hypothesis(
                "victim_done_after_s",
                ">=",
                20.0,
                "...but not before ~30 s after the last heartbeat of the dead triggerer "
                "(triggerer_health_check_threshold), even when its replacement is ready "
                "sooner: only then do its triggers move",
                gate=False,
            ),
            Hypothesis("failed_tasks", "<=", 0, "no task fails"),
        ),
        load_users=p["load_users"],
        workload_dags=("ha_bench_short",),
        victim_dag="ha_bench_deferrable",
        victim_wait_s=4.0,  # the task has deferred and its trigger runs on the triggerer
        victim_timeout_s=120.0,
        params=p,
    )


def postgres_restart(p: dict[str, Any]) -> Experiment:
    hold = float(p["hold_s"])
    return Experiment(
        name="postgres-restart",
        description=f"stop PostgreSQL (fast shutdown) for {hold:g} s, then start it again",
        fault=Fault("stop_service", "postgres", hold_s=hold),
        topology=_topology(p),
        hypotheses=(
            Hypothesis(
                "db_endpoint_downtime_s",
                ">=",
                0.8 * hold,
                "API calls that need the DB fail for the whole outage",
                gate=False,
            ),
            Hypothesis(
                "downtime_s",
                "<=",
                1.0,
                "the api-servers stay up: /api/v2/version needs no DB",
                gate=False,
            ),
            Hypothesis("recovered", "==", True, "every component is ready again"),
            Hypothesis(
                "all_ready_after_s", "<=", hold + 90, "full recovery within 90 s of the DB's return"
            ),
        ),
        load_users=p["load_users"],
        lb_endpoints=(LIVENESS, DB_ENDPOINT),
        recover_timeout_s=hold + 120,
        drain_timeout_s=90.0,
        params=p,
    )


def redis_restart(p: dict[str, Any]) -> Experiment:
    hold, queued = float(p["hold_s"]), p["queued_timeout_s"]
    return Experiment(
        name="redis-restart",
        description=f"stop Redis (the Celery broker, no persistence) for {hold:g} s, then "
        f"start it again; task_queued_timeout {queued:g} s",
        fault=Fault("stop_service", "redis", hold_s=hold),
        topology=_with_config(
            p,
            {
                "scheduler.task_queued_timeout": int(queued),
                "scheduler.task_queued_timeout_check_interval": 10,
            },
        ),
        hypotheses=(
            Hypothesis(
                "failed_tasks",
                "<=",
                0,
                "no task fails: the executor and the workers reconnect to the broker",
                gate=False,
            ),
            Hypothesis("recovered", "==", True, "every component is ready again"),
            Hypothesis(
                "scheduling_resumed_s",
                "<=",
                hold + 60,
                "tasks start again within a minute of Redis's return",
            ),
            Hypothesis(
                "dag_run_latency_max_s",
                ">=",
                queued,
                f"a task queued in the lost broker waits for task_queued_timeout "
                f"({queued:g} s, shortened from 600)",
                gate=False,
            ),
        ),
        load_users=p["load_users"],
        recover_timeout_s=hold + 120,
        drain_timeout_s=queued + 90,
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
    "worker-kill": Entry(
        worker_kill,
        "SIGKILL the worker running a task: time to failure (heartbeat timeout) or retry",
        (*COMMON, *_WORKER_PARAMS),
    ),
    "worker-terminate": Entry(
        worker_terminate,
        "SIGTERM the worker running a task: warm shutdown lets it finish, nothing lost",
        (*COMMON, *_WORKER_PARAMS, Param("grace_s", 60.0, "termination grace period (s)")),
    ),
    "triggerer-kill": Entry(
        triggerer_kill,
        "kill the triggerer while a deferred task waits: time until it resumes",
        (*COMMON, Param("triggerers", 1, "triggerer replicas")),
    ),
    "postgres-restart": Entry(
        postgres_restart,
        "take the metadata DB down and back: API errors, task outcomes, full recovery",
        (*COMMON, Param("hold_s", 30.0, "seconds PostgreSQL stays down")),
    ),
    "redis-restart": Entry(
        redis_restart,
        "take the Celery broker down and back: queued tasks, time until tasks start again",
        (
            *COMMON,
            Param("hold_s", 10.0, "seconds Redis stays down"),
            Param("queued_timeout_s", 60.0, "[scheduler] task_queued_timeout override (s)"),
        ),
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
    """The experiment ``name`` with parameters ``overrides`` (unknown ones refused).

    A key with a dot (``scheduler.task_queued_timeout``) is an Airflow config override,
    applied to every component on top of the experiment's own and stated in its report.
    """
    if name not in CATALOGUE:
        raise HarnessError(
            f"unknown experiment {name!r}",
            fix=f"use one of: {', '.join(CATALOGUE)} (see `ha-bench list`)",
        )
    entry = CATALOGUE[name]
    known = {p.name: p for p in entry.params}
    params = {p.name: p.default for p in entry.params}
    overrides = dict(overrides or {})
    airflow_config = {k: str(overrides.pop(k)) for k in list(overrides) if "." in k}
    for key, value in overrides.items():
        if key not in known:
            raise HarnessError(
                f"experiment {name} has no parameter {key!r}",
                fix=f"use one of: {', '.join(known)}",
            )
        params[key] = _coerce(value, known[key].default, key)
    experiment = entry.make(params)
    if airflow_config:  # "section.key" parameters are Airflow config overrides
        topology = dict(experiment.topology)
        topology["airflow_config"] = {**topology.get("airflow_config", {}), **airflow_config}
        Topology().with_overrides(**topology)  # a malformed key fails here, before any start
        experiment = dataclasses.replace(experiment, topology=topology)
    return experiment
