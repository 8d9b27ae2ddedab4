"""Benchmark DAGs of airflow-ha-bench (loaded by Airflow only, never by the harness).

Every task execution appends JSON lines to the side-effect ledger (file named by
``HA_BENCH_LEDGER``): ``start`` when its body begins, a ``heartbeat`` every
``HA_BENCH_LEDGER_HEARTBEAT_S`` seconds (default 2; 0 turns them off) from a daemon thread
while the body runs, and ``end`` when it finishes (``error`` when it raises), so the
checker can tell lost from duplicated executions and knows when an execution killed
mid-task was last alive. The deferred wait writes ``start`` and ``defer`` before deferring,
then ``resume`` and ``end`` when resumed. The row format is documented in
:mod:`harness.core.ledger` (the authoritative list).
DAGs: ``ha_bench_short`` (two tasks), ``ha_bench_long`` (one long task),
``ha_bench_deferrable`` (a deferred wait, then a task), ``ha_bench_branchy`` (a branch over
six parallel tasks and a join). Runtime knob: the ``sleep_s`` param (per run, via
``conf``). Parse-time knobs (environment
of the dag-processor): ``HA_BENCH_RETRIES`` and ``HA_BENCH_RETRY_DELAY_S`` (default: Airflow's
``[core] default_task_retries`` / ``default_task_retry_delay``),
``HA_BENCH_DEFER_S`` (10), ``HA_BENCH_MAX_ACTIVE_RUNS`` (16).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import zlib
from datetime import timedelta
from typing import Any

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator, Param, dag, get_current_context, task

log = logging.getLogger(__name__)

LEDGER_ENV = "HA_BENCH_LEDGER"
HEARTBEAT_ENV = "HA_BENCH_LEDGER_HEARTBEAT_S"
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


def _celery_task_id() -> str | None:
    """The id of the Celery task that runs this task process, if a Celery worker runs it.

    The Task SDK does not expose it (the workload's ``external_executor_id`` is excluded
    from what the worker receives), but the task process is forked, without exec, from the
    Celery pool process while that process executes the Celery task, so Celery's current
    task is inherited. The scheduler pre-assigns this id as the task instance's
    ``external_executor_id`` (``CeleryExecutor.pre_assigns_external_executor_id``).
    """
    try:
        from celery import current_task
    except ImportError:
        return None
    try:
        request = current_task.request if current_task else None
        task_id = getattr(request, "id", None)
    except Exception:  # no Celery task on this thread's stack
        return None
    return str(task_id) if task_id else None


def _identity() -> dict[str, Any] | None:
    """The current task execution's ledger fields; None (and a warning) without a ledger."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        log.warning("%s is not set; not writing the side-effect ledger", LEDGER_ENV)
        return None
    ti = get_current_context()["ti"]
    return {
        "path": path,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index if ti.map_index is not None else -1,
        "try_number": ti.try_number,
        "ti_id": str(ti.id) if getattr(ti, "id", None) is not None else None,
        "celery_task_id": _celery_task_id(),
        "replica": os.environ.get("HA_BENCH_REPLICA"),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }


def _write(identity: dict[str, Any] | None, phase: str, **fields: Any) -> None:
    """Append one ``phase`` line for the execution ``identity`` names to the ledger file."""
    if identity is None:
        return
    record = {"phase": phase, **{k: v for k, v in identity.items() if k != "path"},
              "t_wall": time.time(), "t_mono": time.monotonic(), **fields}  # fmt: skip
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(identity["path"], os.O_APPEND | os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, line)  # one write per line: O_APPEND keeps concurrent lines whole
    finally:
        os.close(fd)


def ledger(phase: str, **fields: Any) -> None:
    """Append one ``phase`` line for the current task instance to the ledger file."""
    _write(_identity(), phase, **fields)


class _Heartbeat:
    """Writes a ``heartbeat`` row every ``interval_s`` from a daemon thread while entered."""

    def __init__(self, identity: dict[str, Any] | None, interval_s: float) -> None:
        self.identity = identity
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        beat = 0
        while not self._stop.wait(self.interval_s):
            beat += 1
            try:
                _write(self.identity, "heartbeat", beat=beat)
            except OSError:
                log.exception("could not write a ledger heartbeat")

    def __enter__(self) -> _Heartbeat:
        if self.identity is not None and self.interval_s > 0:
            self._thread = threading.Thread(target=self._beat, name="ledger-heartbeat",
                                            daemon=True)  # fmt: skip
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _body(sleep_s: float, alloc_mb: float, alloc_after_s: float) -> None:
    """Sleep ``sleep_s``; with ``alloc_mb``, allocate and touch that many MiB
    ``alloc_after_s`` into it (a task that runs out of memory) and hold them."""
    if alloc_mb <= 0:
        time.sleep(sleep_s)
        return
    time.sleep(min(alloc_after_s, sleep_s))
    held = []
    for _ in range(int(alloc_mb)):
        block = bytearray(1 << 20)
        block[::4096] = b"\x01" * len(block[::4096])  # touch every page: resident
        held.append(block)
    time.sleep(max(0.0, sleep_s - alloc_after_s))


def _work() -> None:
    """The body of every benchmark task: ledger start, sleep ``params.sleep_s`` (with ledger
    heartbeats), ledger end; ``error`` (and re-raise) if the body is interrupted."""
    identity = _identity()
    interval_s = _env_number(HEARTBEAT_ENV, 2.0)
    _write(identity, "start", heartbeat_s=interval_s)
    params = get_current_context()["params"]
    try:
        with _Heartbeat(identity, interval_s):
            _body(float(params["sleep_s"]), float(params.get("alloc_mb") or 0),
                  float(params.get("alloc_after_s") or 0))  # fmt: skip
    except BaseException as exc:  # e.g. AirflowTaskTerminated on SIGTERM: evidence, then on
        _write(identity, "error", error=type(exc).__name__)
        raise
    _write(identity, "end")


class DeferredWait(BaseOperator):
    """Defers to the triggerer for ``wait_s`` from its start, then resumes on a worker."""

    def __init__(self, *, wait_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_s = wait_s

    def execute(self, context: Any) -> None:
        identity = _identity()
        _write(identity, "start", heartbeat_s=0.0)
        _write(identity, "defer", wait_s=self.wait_s)
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=self.wait_s)),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: Any = None) -> None:
        identity = _identity()
        _write(identity, "resume")
        _write(identity, "end")


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


@dag(dag_id="ha_bench_long", params={**_params(60),
                                     "alloc_mb": Param(0, type="number", minimum=0),
                                     "alloc_after_s": Param(0, type="number", minimum=0)},
     **_COMMON)  # fmt: skip
def ha_bench_long() -> None:
    """One long task (``alloc_mb`` MiB allocated ``alloc_after_s`` into it: out of memory)."""

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


BRANCHES = 6


@dag(dag_id="ha_bench_branchy", params=_params(0.5), **_COMMON)
def ha_bench_branchy() -> None:
    """A branch choosing half of ``BRANCHES`` short parallel tasks, skipping the rest, then
    a join: many task instances change state at once (scheduler races, #57618, #59378)."""

    @task.branch
    def choose() -> list[str]:
        ledger("start")
        run_id = get_current_context()["ti"].run_id
        bits = zlib.crc32(run_id.encode())  # the same branches for a run, in any process
        picked = [f"branch_{i}" for i in range(BRANCHES) if (bits >> i) & 1]
        ledger("end")
        return picked or ["branch_0"]

    @task(trigger_rule="none_failed_min_one_success")
    def join() -> None:
        _work()

    branches = []
    for i in range(BRANCHES):

        @task(task_id=f"branch_{i}")
        def branch() -> None:
            _work()

        branches.append(branch())
    choose() >> branches >> join()


ha_bench_short()
ha_bench_long()
ha_bench_deferrable()
ha_bench_branchy()
