"""The side-effect ledger: JSON rows written by the benchmark DAGs' task executions.

The benchmark DAGs (``harness/observe/workload/dags/ha_bench_dags.py``) append one JSON line
per event of a task execution to the file named by ``HA_BENCH_LEDGER`` (one ``os.write``
of a whole line with ``O_APPEND``, so concurrent writers never interleave; a writer killed
mid-write leaves at most a torn final line, which :func:`parse_ledger` skips). Platforms
read it (a file, or a pod's file) with :func:`parse_ledger`. This is the authoritative list
of the row format; fields may be added, none renamed.

``phase`` — what happened, one of :data:`PHASES`:

- ``start``: the task's body began (a fresh execution of a try);
- ``heartbeat``: the body is still running (written every ``HA_BENCH_LEDGER_HEARTBEAT_S``
  seconds, default 2, from a daemon thread of the task process; 0 turns them off), so an
  execution killed mid-task has a known last-alive time;
- ``end``: the body finished normally (the side effect is done);
- ``error``: the body raised (``error``: the exception's type name, e.g.
  ``AirflowTaskTerminated`` on SIGTERM) — it ended, abnormally, and said so;
- ``defer``: the execution handed the try to the triggerer (the deferred wait: ``start``
  then ``defer`` in one process);
- ``resume``: a new process took the deferred try back (then ``end``).

Fields of every row:

- ``dag_id``, ``run_id``, ``task_id``, ``map_index`` (-1 when not mapped), ``try_number``:
  the task instance and try, as the Task SDK gave them to the task process;
- ``ti_id``: the task instance's id (a UUID; Airflow gives every try a new one);
- ``celery_task_id``: the Celery task that runs the task process (null if none): the Task
  SDK does not expose it, but the task process is forked from the Celery pool process
  inside that Celery task and inherits Celery's current task. The scheduler pre-assigns it
  as the task instance's ``external_executor_id``;
- ``replica``: the worker replica that ran it (``HA_BENCH_REPLICA``: a local replica name or
  a pod name), ``hostname``, ``pid``: the task process;
- ``t_wall``: ``time.time()`` (Unix s; comparable across hosts only as far as their clocks
  agree), ``t_mono``: ``time.monotonic()`` (CLOCK_MONOTONIC: comparable with other rows and
  with the harness's history events on the same host; absent in older ledgers).

Fields of some rows: ``heartbeat_s`` (``start``: the heartbeat interval in force, 0 for
none), ``beat`` (``heartbeat``: 1, 2, ... within the execution), ``error`` (``error``),
``wait_s`` (``defer``).

One *execution* is the rows of one (dag_id, run_id, task_id, map_index, try_number, pid,
hostname) — see :mod:`harness.check.history`. Ledgers written before heartbeats have only
``start`` and ``end`` rows (and an ``end`` without a ``start`` for a resumed deferral).
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

PHASES = ("start", "heartbeat", "end", "error", "defer", "resume")


def parse_ledger(data: bytes, *, source: str = "ledger") -> list[dict[str, Any]]:
    """Ledger rows from raw JSONL bytes; a torn final line (a writer died) is skipped."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(True), 1):
        if not line.endswith("\n"):
            break  # torn final line of a writer that died mid-write
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s:%d: skipping corrupt ledger line", source, number)
    return rows
