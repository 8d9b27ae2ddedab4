"""A repetition's task history: executions from the ledger, states as the API reported them.

- :func:`executions`: the ledger's rows (format: :mod:`harness.core.ledger`) as one
  :class:`Execution` per (dag_id, run_id, task_id, map_index, try_number, pid, hostname) —
  when it started, when it was last known alive (its last heartbeat, ``end``, ``error`` or
  ``defer`` row), when it ended (``end``) and on which replica. A ``start`` or ``resume`` row
  after other rows of the same key begins a new execution (a pid reused on one host).
- :func:`task_states`: per task instance, the states the workload driver saw in its ~1 s
  polls of the REST API (``workload`` ``task_state`` events: state, try_number, times).
- :func:`fault_windows`: when each fault was in effect — ``invoke`` to its ``ok`` (or
  ``fail``/``info``), and for ``pause``/``stop_service`` until the undo (``resume`` /
  ``start_service``) on the same target completed.
- :func:`observed_until` and :func:`victim`: the end of the driver's observation, and the
  experiment's victim task (the ``victim_started`` marker).

Times are Unix seconds (``t_wall``); ``*_mono`` are ``time.monotonic()`` on the writer's
host (comparable between executions on one host, and with the harness's events there).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.core.airflow_api import TERMINAL_RUN_STATES
from harness.core.faultops import UNDO

__all__ = [
    "HOLD_UNDO",
    "Execution",
    "FaultWindow",
    "StateObservation",
    "TaskKey",
    "clean",
    "executions",
    "executions_by_task",
    "fault_windows",
    "observed_until",
    "task_name",
    "task_states",
    "victim",
]

TaskKey = tuple[str, str, str, int]  # (dag_id, run_id, task_id, map_index)
HOLD_UNDO = UNDO  # a held fault lasts from its op to its undo
FINAL_PHASES = ("end", "error", "defer")  # an execution's last word, when it had one
BEGIN_PHASES = ("start", "resume")


def clean(value: Any) -> Any:
    """None for NaN / pandas NA (a field an event did not have), else the value."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value) is True:
            return None
    except (TypeError, ValueError):
        pass
    return value


def _int(value: Any) -> int | None:
    value = clean(value)
    if value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    value = clean(value)
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    value = clean(value)
    return None if value is None else str(value)


def task_name(key: TaskKey, try_number: int | None = None) -> str:
    """``dag/run/task`` (``[map_index]`` when mapped, ``#try`` when given)."""
    name = f"{key[0]}/{key[1]}/{key[2]}"
    if key[3] != -1:
        name += f"[{key[3]}]"
    return name if try_number is None else f"{name}#{try_number}"


@dataclass(frozen=True)
class Execution:
    """One process's run of one try of a task instance, as its ledger rows tell it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int | None
    pid: int | None
    hostname: str | None
    replica: str | None
    start: float  # t_wall of its first row (``start``, or ``resume`` for a resumed deferral)
    last_alive: float  # t_wall of its last row: the last moment it is known to have run
    end: float | None  # t_wall of its ``end`` row; None: it never said it finished
    outcome: str | None  # its final phase: end | error | defer; None: no last word (killed?)
    started: bool  # has a ``start`` row: a fresh execution of the try (else a resume)
    start_mono: float | None = None
    last_alive_mono: float | None = None
    heartbeats: int = 0
    heartbeat_s: float | None = None
    rows: int = 0
    ti_id: str | None = None
    celery_task_id: str | None = None
    error: str | None = None
    alive_at: tuple[float, ...] = ()  # t_wall of each of its rows, in order

    @property
    def task(self) -> TaskKey:
        return (self.dag_id, self.run_id, self.task_id, self.map_index)

    @property
    def process(self) -> tuple[int | None, str | None]:
        return (self.pid, self.hostname)

    @property
    def name(self) -> str:
        return f"{task_name(self.task, self.try_number)} pid {self.pid}@{self.hostname}"

    def interval(self, other: Execution | None = None) -> tuple[float, float]:
        """[start, last alive]: on the monotonic clock when ``other`` ran on the same host
        and both have it, else wall time."""
        if other is not None and self.same_clock(other):
            assert self.start_mono is not None and self.last_alive_mono is not None
            return self.start_mono, self.last_alive_mono
        return self.start, self.last_alive

    def same_clock(self, other: Execution) -> bool:
        return (
            self.hostname is not None
            and self.hostname == other.hostname
            and None not in (self.start_mono, self.last_alive_mono)
            and None not in (other.start_mono, other.last_alive_mono)
        )

    def silences(self, factor: float = 1.5) -> list[tuple[float, float]]:
        """Gaps between its rows longer than ``factor`` heartbeat intervals (t_wall): times
        it was not seen alive although it should have written (paused, or starved)."""
        if not self.heartbeat_s:
            return []
        bound = factor * self.heartbeat_s
        pairs = zip(self.alive_at, self.alive_at[1:], strict=False)
        return [(a, b) for a, b in pairs if b - a > bound]

    def cite(self) -> dict[str, Any]:
        """The evidence a finding cites: ids, process, replica and times."""
        return {
            "task": task_name(self.task),
            "try_number": self.try_number,
            "pid": self.pid,
            "hostname": self.hostname,
            "replica": self.replica,
            "start": self.start,
            "last_alive": self.last_alive,
            "end": self.end,
            "outcome": self.outcome,
            "started": self.started,
            "heartbeats": self.heartbeats,
            "ti_id": self.ti_id,
            "celery_task_id": self.celery_task_id,
        }


def _row_time(row: dict[str, Any]) -> float:
    t = _float(row.get("t_wall"))
    return t if t is not None else math.nan


def _execution(rows: list[dict[str, Any]]) -> Execution:
    first = rows[0]
    final = [r for r in rows if r.get("phase") in FINAL_PHASES]
    ends = [r for r in rows if r.get("phase") == "end"]
    starts = [r for r in rows if r.get("phase") == "start"]
    errors = [r for r in rows if r.get("phase") == "error"]
    heartbeat_s = next((_float(r.get("heartbeat_s")) for r in starts if "heartbeat_s" in r), None)
    last = rows[-1]

    def some(field: str) -> str | None:
        return next((_str(r.get(field)) for r in rows if clean(r.get(field)) is not None), None)

    return Execution(
        dag_id=str(first.get("dag_id")),
        run_id=str(first.get("run_id")),
        task_id=str(first.get("task_id")),
        map_index=_int(first.get("map_index")) if _int(first.get("map_index")) is not None else -1,
        try_number=_int(first.get("try_number")),
        pid=_int(first.get("pid")),
        hostname=_str(first.get("hostname")),
        replica=some("replica"),
        start=_row_time(first),
        last_alive=_row_time(last),
        end=_row_time(ends[-1]) if ends else None,
        outcome=str(final[-1].get("phase")) if final else None,
        started=bool(starts),
        start_mono=_float(first.get("t_mono")),
        last_alive_mono=_float(last.get("t_mono")),
        heartbeats=sum(1 for r in rows if r.get("phase") == "heartbeat"),
        heartbeat_s=heartbeat_s,
        rows=len(rows),
        ti_id=some("ti_id"),
        celery_task_id=some("celery_task_id"),
        error=_str(errors[-1].get("error")) if errors else None,
        alive_at=tuple(_row_time(r) for r in rows),
    )


def executions(ledger_rows: Iterable[dict[str, Any]]) -> list[Execution]:
    """The ledger's executions, ordered by start time (rows without a phase are skipped)."""
    groups: dict[tuple[Any, ...], list[list[dict[str, Any]]]] = defaultdict(list)
    keyed = []
    for n, row in enumerate(ledger_rows):
        if not isinstance(row, dict) or row.get("phase") is None:
            continue
        map_index = _int(row.get("map_index"))
        key = (row.get("dag_id"), row.get("run_id"), row.get("task_id"),
               -1 if map_index is None else map_index, _int(row.get("try_number")),
               _int(row.get("pid")), _str(row.get("hostname")))  # fmt: skip
        mono = _float(row.get("t_mono"))
        order = mono if mono is not None else _row_time(row)
        keyed.append((key, order, n, row))
    keyed.sort(key=lambda k: (str(k[0]), k[1] if not math.isnan(k[1]) else math.inf, k[2]))
    for key, _, _, row in keyed:
        runs = groups[key]
        if not runs or (row.get("phase") in BEGIN_PHASES and runs[-1]):
            runs.append([])
        runs[-1].append(row)
    out = [_execution(rows) for runs in groups.values() for rows in runs if rows]
    out.sort(key=lambda e: (e.start if not math.isnan(e.start) else math.inf, e.name))
    return out


def executions_by_task(execs: Iterable[Execution]) -> dict[TaskKey, list[Execution]]:
    by_task: dict[TaskKey, list[Execution]] = defaultdict(list)
    for e in execs:
        by_task[e.task].append(e)
    return dict(by_task)


@dataclass(frozen=True)
class StateObservation:
    """One ``task_state`` event: the state and try the API reported at ``t_wall``."""

    t_wall: float
    t_mono: float | None
    state: str | None
    try_number: int | None
    hostname: str | None


def workload_events(history_df: pd.DataFrame) -> list[dict[str, Any]]:
    """The ``workload`` events as dicts (NaN fields as None), in history order."""
    if history_df.empty or "type" not in history_df or "event" not in history_df:
        return []
    df = history_df[history_df["type"] == "workload"]
    return [{k: clean(v) for k, v in row.items()} for row in df.to_dict("records")]


def task_states(history_df: pd.DataFrame) -> dict[TaskKey, list[StateObservation]]:
    """Per task instance, the API-reported states in the order they were observed."""
    out: dict[TaskKey, list[StateObservation]] = defaultdict(list)
    for e in workload_events(history_df):
        if e.get("event") != "task_state":
            continue
        map_index = _int(e.get("map_index"))
        key = (str(e.get("dag_id")), str(e.get("run_id")), str(e.get("task_id")),
               -1 if map_index is None else map_index)  # fmt: skip
        out[key].append(
            StateObservation(
                t_wall=float(e["t_wall"]),
                t_mono=_float(e.get("t_mono")),
                state=_str(e.get("state")),
                try_number=_int(e.get("try_number")),
                hostname=_str(e.get("hostname")),
            )
        )
    return dict(out)


def run_observed_until(history_df: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per terminal run (last run state ``success``/``failed``), when the driver last
    recorded anything of it: it stops polling a run once the run is terminal and its task
    states are read. Runs not terminal were polled until the end of observation."""
    last: dict[tuple[str, str], float] = {}
    state: dict[tuple[str, str], str | None] = {}
    for e in workload_events(history_df):
        if e.get("dag_id") is None or e.get("run_id") is None:
            continue
        key = (str(e["dag_id"]), str(e["run_id"]))
        last[key] = max(last.get(key, -math.inf), float(e["t_wall"]))
        if e.get("event") == "run_state":
            state[key] = _str(e.get("state"))
    return {k: t for k, t in last.items() if state.get(k) in TERMINAL_RUN_STATES}


def observed_until(history_df: pd.DataFrame) -> float | None:
    """The end of the driver's observation (t_wall): its last workload event (the drain
    ends after the last poll), the ``drain_end`` marker, else the history's last event."""
    if history_df.empty or "t_wall" not in history_df:
        return None
    df = history_df
    if "type" in df:
        watched = df[(df["type"] == "workload")
                     | ((df["type"] == "marker") & (_col(df, "name") == "drain_end"))]  # fmt: skip
        if len(watched):
            return float(watched["t_wall"].max())
    return float(df["t_wall"].max())


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index)


@dataclass(frozen=True)
class FaultWindow:
    """A fault in effect from ``start`` to ``end`` (t_wall); ``held``: a pause or stop held
    until its undo (``end`` is the undo's completion, or the end of the history)."""

    op: str
    target: str
    start: float
    end: float
    phase: str  # the fault's outcome: ok | fail | info | invoke (never completed)
    held: bool = False

    @property
    def label(self) -> str:
        return f"{self.op} {self.target}"


def fault_windows(history_df: pd.DataFrame) -> list[FaultWindow]:
    """The faults of a history and when each was in effect, in order of injection."""
    if history_df.empty or "type" not in history_df:
        return []
    df = history_df[history_df["type"] == "fault"]
    if df.empty:
        return []
    last = float(history_df["t_wall"].max())
    ops: dict[Any, dict[str, Any]] = {}
    for n, r in enumerate(df.to_dict("records")):
        op_id = clean(r.get("op_id"))
        key = op_id if op_id is not None else ("row", n)
        entry = ops.setdefault(key, {"op": _str(r.get("op")), "target": _str(r.get("target"))})
        phase = _str(r.get("phase"))
        if phase == "invoke":
            entry["invoke"] = float(r["t_wall"])
        elif phase in ("ok", "fail", "info"):
            entry["done"], entry["phase"] = float(r["t_wall"]), phase
    ordered = sorted(ops.values(), key=lambda e: e.get("invoke", e.get("done", math.inf)))
    windows: list[FaultWindow] = []
    undos = set(HOLD_UNDO.values())
    for i, e in enumerate(ordered):
        op, target = e["op"] or "?", e["target"] or "?"
        if op in undos:
            continue
        start = e.get("invoke", e.get("done"))
        if start is None:
            continue
        end = e.get("done", last)
        held = op in HOLD_UNDO
        if held:
            undo = next((u for u in ordered[i + 1 :]
                         if u["op"] == HOLD_UNDO[op] and u["target"] == target), None)  # fmt: skip
            end = (undo.get("done") or undo.get("invoke") or last) if undo else last
        windows.append(FaultWindow(op, target, start, max(end, start), e.get("phase", "invoke"),
                                   held))  # fmt: skip
    return windows


def _detail(value: Any) -> dict[str, Any]:
    value = clean(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def victim(history_df: pd.DataFrame) -> dict[str, Any] | None:
    """The victim task (``victim_started`` marker: dag_id, run_id, task_id, replica ...)."""
    if history_df.empty or "type" not in history_df:
        return None
    df = history_df[(history_df["type"] == "marker") & (_col(history_df, "name")
                                                         == "victim_started")]  # fmt: skip
    for value in df.get("detail", pd.Series(dtype=object)):
        detail = _detail(value)
        if detail.get("run_id") and detail.get("task_id"):
            return detail
    return None
