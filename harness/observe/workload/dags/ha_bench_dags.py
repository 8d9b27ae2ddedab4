"""Benchmark DAGs of airflow-ha-bench (loaded by Airflow only, never by the harness).

Every task appends one JSON line to the side-effect ledger (file named by
``HA_BENCH_LEDGER``) when it starts and one when it ends, so the checker can tell lost from
duplicated executions (the deferred wait: start before deferring, end when resumed).
Runtime knob: the ``sleep_s`` param (per run, via ``conf``). Parse-time knobs (environment
of the dag-processor): ``HA_BENCH_RETRIES`` and ``HA_BENCH_RETRY_DELAY_S`` (default: Airflow's
``[core] default_task_retries`` / ``default_task_retry_delay``),
``HA_BENCH_DEFER_S`` (10), ``HA_BENCH_MAX_ACTIVE_RUNS`` (16).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import timedelta
from typing import Any

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator, Param, dag, get_current_context, task

log = logging.getLogger(__name__)

LEDGER_ENV = "HA_BENCH_LEDGER"
TAGS = ["ha-bench"]


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# Retries come from Airflow's own ``[core] default_task_retries`` and
# ``default_task_retry_delay`` unless these variables pin them for the benchmark DAGs.
DEFAULT_ARGS: dict[str, Any] = {}
if "HA_BENCH_RETRIES" in os.environ:
    DEFAULT_ARGS["retries"] = int(_env_number("HA_BENCH_RETRIES", 0))
if "HA_BENCH_RETRY_DELAY_S" in os.environ:
    DEFAULT_ARGS["retry_delay"] = timedelta(seconds=_env_number("HA_BENCH_RETRY_DELAY_S", 5))
MAX_ACTIVE_RUNS = int(_env_number("HA_BENCH_MAX_ACTIVE_RUNS", 16))
DEFER_S = _env_number("HA_BENCH_DEFER_S", 10)


def ledger(phase: str) -> None:
    """Append one ``phase`` line for the current task instance to the ledger file."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        log.warning("%s is not set; not writing the side-effect ledger", LEDGER_ENV)
        return
    ti = get_current_context()["ti"]
    record = {
        "phase": phase,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index if ti.map_index is not None else -1,
        "try_number": ti.try_number,
        "replica": os.environ.get("HA_BENCH_REPLICA"),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "t_wall": time.time(),
    }
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_APPEND | os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, line)  # one write per line: O_APPEND keeps concurrent lines whole
    finally:
        os.close(fd)


def _work() -> None:
    """The body of every benchmark task: ledger start, sleep ``params.sleep_s``, ledger end."""
    ledger("start")
    time.sleep(float(get_current_context()["params"]["sleep_s"]))
    ledger("end")


class DeferredWait(BaseOperator):
    """Defers to the triggerer for ``wait_s`` from its start, then resumes on a worker."""

    def __init__(self, *, wait_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_s = wait_s

    def execute(self, context: Any) -> None:
        ledger("start")
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=self.wait_s)),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: Any = None) -> None:
        ledger("end")


def _params(sleep_s: float) -> dict[str, Param]:
    return {"sleep_s": Param(sleep_s, type="number", minimum=0)}


_COMMON: dict[str, Any] = {
    "schedule": None,
    "catchup": False,
    "max_active_runs": MAX_ACTIVE_RUNS,
    "default_args": DEFAULT_ARGS,
    "is_paused_upon_creation": False,
    "tags": TAGS,
}


@dag(dag_id="ha_bench_short", params=_params(1), **_COMMON)
def ha_bench_short() -> None:
    """Two short tasks in sequence."""

    @task
    def step_1() -> None:
        _work()

    @task
    def step_2() -> None:
        _work()

    step_1() >> step_2()


@dag(dag_id="ha_bench_long", params=_params(60), **_COMMON)
def ha_bench_long() -> None:
    """One long task."""

    @task
    def long_sleep() -> None:
        _work()

    long_sleep()


@dag(dag_id="ha_bench_deferrable", params=_params(1), **_COMMON)
def ha_bench_deferrable() -> None:
    """A deferred wait on the triggerer (``HA_BENCH_DEFER_S`` from task start), then a task."""

    wait = DeferredWait(task_id="wait", wait_s=DEFER_S)

    @task
    def after_wait() -> None:
        _work()

    wait >> after_wait()


ha_bench_short()
ha_bench_long()
ha_bench_deferrable()
