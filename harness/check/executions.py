"""Jepsen-style checkers over a run's history and the DAGs' side-effect ledger.

:func:`check_executions` decides, for the runs the workload driver triggered, whether any
acknowledged run was lost, any task executed twice, or any run got stuck. ``valid`` is
True, False, or None (unknown: the evidence cannot decide, e.g. a run still not finished).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.core.airflow_api import FAILED_TASK_STATES

MAX_IDS = 100  # offending ids listed in details, per kind

RunKey = tuple[str, str]  # (dag_id, run_id)
TaskKey = tuple[str, str, str, int]  # (dag_id, run_id, task_id, map_index)


@dataclass
class CheckResult:
    """One checker's verdict: ``valid`` None means unknown."""

    name: str
    valid: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def compose(results: Iterable[CheckResult], name: str = "composed") -> CheckResult:
    """Invalid if any is invalid; else unknown if any is unknown; else valid."""
    results = list(results)
    valids = [r.valid for r in results]
    valid: bool | None
    if False in valids:
        valid = False
    elif None in valids:
        valid = None
    else:
        valid = True
    return CheckResult(
        name=name,
        valid=valid,
        details={r.name: {"valid": r.valid, **r.details} for r in results},
        problems=[f"{r.name}: {p}" for r in results for p in r.problems],
    )


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _workload_events(history_df: pd.DataFrame) -> list[dict[str, Any]]:
    if history_df.empty or "type" not in history_df or "event" not in history_df:
        return []
    df = history_df[history_df["type"] == "workload"]
    return [{k: _clean(v) for k, v in row.items()} for row in df.to_dict("records")]


def _map_index(value: Any) -> int:
    value = _clean(value)
    return -1 if value is None else int(value)


def _try(value: Any) -> int | None:
    value = _clean(value)
    return None if value is None else int(value)


def _run_name(key: RunKey) -> str:
    return f"{key[0]}/{key[1]}"


def _task_name(key: TaskKey, try_number: int | None = None) -> str:
    name = f"{key[0]}/{key[1]}/{key[2]}"
    if key[3] != -1:
        name += f"[{key[3]}]"
    return name if try_number is None else f"{name}#{try_number}"


@dataclass
class Observed:
    """What the execution checkers work from: the workload driver's events and the ledger's
    ``start``/``end`` rows, indexed."""

    trigger_outcome: dict[RunKey, str] = field(default_factory=dict)
    trigger_t: dict[RunKey, float] = field(default_factory=dict)  # t_wall of the outcome
    run_state: dict[RunKey, str | None] = field(default_factory=dict)
    run_state_t: dict[RunKey, float] = field(default_factory=dict)  # t_wall of the last one
    ti_state: dict[TaskKey, tuple[str | None, int | None]] = field(default_factory=dict)
    not_found: dict[RunKey, float] = field(default_factory=dict)  # t_wall of the first 404
    starts: Counter[tuple[str, str, str, int, int | None]] = field(default_factory=Counter)
    ends: dict[TaskKey, list[int | None]] = field(default_factory=lambda: defaultdict(list))
    started_runs: set[RunKey] = field(default_factory=set)
    ended_runs: set[RunKey] = field(default_factory=set)
    ledger_runs: set[RunKey] = field(default_factory=set)
    tasks_of: dict[RunKey, list[TaskKey]] = field(default_factory=lambda: defaultdict(list))
    ledger_rows: int = 0

    @property
    def acked(self) -> list[RunKey]:
        return [k for k, phase in self.trigger_outcome.items() if phase == "ok"]

    @property
    def unknown(self) -> list[RunKey]:
        return [k for k, phase in self.trigger_outcome.items() if phase == "info"]


def observe(history_df: pd.DataFrame, ledger_rows: list[dict[str, Any]]) -> Observed:
    """Index the workload events and the ledger rows for the checkers."""
    obs = Observed(ledger_rows=len(ledger_rows))
    for e in _workload_events(history_df):
        key = (e.get("dag_id"), e.get("run_id"))
        kind = e.get("event")
        t = _clean(e.get("t_wall"))
        if kind == "trigger" and e.get("phase") in ("ok", "fail", "info"):
            obs.trigger_outcome[key] = e["phase"]
            if t is not None:
                obs.trigger_t[key] = float(t)
        elif kind == "run_state":
            obs.run_state[key] = e.get("state")
            if t is not None:
                obs.run_state_t[key] = float(t)
        elif kind == "task_state":
            tkey = (*key, e.get("task_id"), _map_index(e.get("map_index")))
            obs.ti_state[tkey] = (e.get("state"), _try(e.get("try_number")))
        elif kind == "poll_error" and e.get("what") == "run" and _clean(e.get("status")) == 404:
            obs.not_found.setdefault(key, float(t) if t is not None else math.nan)
    for row in ledger_rows:
        tkey = (row.get("dag_id"), row.get("run_id"), row.get("task_id"))
        tkey = (*tkey, _map_index(row.get("map_index")))
        obs.ledger_runs.add(tkey[:2])
        if row.get("phase") == "start":
            obs.starts[(*tkey, _try(row.get("try_number")))] += 1
            obs.started_runs.add(tkey[:2])
        elif row.get("phase") == "end":
            obs.ends[tkey].append(_try(row.get("try_number")))
            obs.ended_runs.add(tkey[:2])
    for tkey in obs.ti_state:
        obs.tasks_of[tkey[:2]].append(tkey)
    return obs


@dataclass
class RunFates:
    """The acknowledged runs by fate; ``lost`` holds one finding (a dict) per lost run."""

    lost: list[dict[str, Any]] = field(default_factory=list)
    lost_tasks: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    stuck_unstarted: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    succeeded: int = 0

    @property
    def lost_runs(self) -> list[str]:
        return [f["run"] for f in self.lost]


def run_fates(obs: Observed) -> RunFates:
    """Lost, stuck, failed and succeeded acknowledged runs (see :func:`check_executions`)."""
    fates = RunFates()

    def lose(key: RunKey, reason: str, tasks: list[str] | None = None) -> None:
        fates.lost.append({
            "kind": "lost_run", "run": _run_name(key), "dag_id": key[0], "run_id": key[1],
            "reason": reason, "tasks": tasks or [], "acknowledged_at": obs.trigger_t.get(key),
            "run_state": obs.run_state.get(key), "run_state_at": obs.run_state_t.get(key),
            "not_found_at": obs.not_found.get(key),
        })  # fmt: skip

    for key in obs.acked:
        state = obs.run_state.get(key)
        if state == "success":
            fates.succeeded += 1
            if not obs.ledger_rows:
                continue  # no ledger at all: cannot tell (reported as unknown)
            done = [t for t in obs.tasks_of[key] if obs.ti_state[t][0] == "success"]
            if not done:
                if key not in obs.ended_runs:
                    lose(key, "run succeeded but no task of it has a ledger end")
                continue
            missing = [_task_name(t, obs.ti_state[t][1]) for t in done if not obs.ends.get(t)]
            fates.lost_tasks.extend(missing)
            if missing:
                lose(key, "run succeeded but these successful tasks have no ledger end", missing)
        elif state == "failed":
            fates.failed_runs.append(_run_name(key))
        elif key in obs.not_found:
            lose(key, "acknowledged, then the API answered 404 for it, and it never finished")
        else:
            fates.stuck.append(_run_name(key))
            if key not in obs.started_runs:
                fates.stuck_unstarted.append(_run_name(key))
    return fates


def duplicate_ids(obs: Observed) -> tuple[list[str], list[str]]:
    """(same-try starts ``task#try xN``, tasks ended in several tries ``task tries=[..]``)."""
    duplicate_starts = [
        _task_name(k[:4], k[4]) + f" x{n}" for k, n in sorted(obs.starts.items(), key=str) if n > 1
    ]
    duplicate_ends = [
        _task_name(k) + f" tries={sorted(tries, key=str)}"
        for k, tries in sorted(obs.ends.items(), key=str)
        if len(tries) > 1
    ]
    return duplicate_starts, duplicate_ends


def check_executions(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, Any]],
    *,
    expect_lost: bool = False,
    expect_duplicates: bool = False,
    stuck_is_unknown: bool = True,
) -> CheckResult:
    """Lost, duplicated and stuck executions of the runs the workload driver triggered.

    - lost: an acknowledged run that ended ``success`` while a task of it (every task whose
      final state is success, or the run as a whole if no task state was seen) has no
      ledger ``end``; or an acknowledged run the API answered 404 for and never finished.
    - duplicated: one (dag, run, task, map_index, try) started more than once in the ledger,
      or one task with more than one ledger ``end`` across its tries.
    - stuck: an acknowledged run not terminal at the end (``stuck_unstarted``: no ledger
      start either) → unknown, or invalid if ``stuck_is_unknown`` is False.
    - runs whose trigger outcome is unknown (``info``) are never lost; reported if seen.
    ``expect_lost`` / ``expect_duplicates`` report those without making the result invalid.
    """
    obs = observe(history_df, ledger_rows)
    fates = run_fates(obs)
    acked, unknown = obs.acked, obs.unknown
    lost_runs, lost_tasks = fates.lost_runs, fates.lost_tasks
    stuck, stuck_unstarted = fates.stuck, fates.stuck_unstarted
    failed_runs, succeeded = fates.failed_runs, fates.succeeded
    trigger_outcome, run_state, ti_state = obs.trigger_outcome, obs.run_state, obs.ti_state
    duplicate_starts, duplicate_ends = duplicate_ids(obs)
    failed_tasks = [_task_name(k, s[1]) for k, s in ti_state.items() if s[0] in FAILED_TASK_STATES]
    unknown_seen = [_run_name(k) for k in unknown if k in run_state or k in obs.ledger_runs]

    problems: list[str] = []
    invalid = False
    if lost_runs:
        problems.append(f"{len(lost_runs)} acknowledged run(s) lost: {lost_runs[:5]}")
        invalid |= not expect_lost
    if duplicate_starts or duplicate_ends:
        problems.append(
            f"duplicated executions: {(duplicate_starts + duplicate_ends)[:5]} "
            f"({len(duplicate_starts)} same-try starts, {len(duplicate_ends)} repeated ends)"
        )
        invalid |= not expect_duplicates
    unknown_reason = False
    if stuck:
        problems.append(f"{len(stuck)} acknowledged run(s) not finished: {stuck[:5]}")
        if stuck_is_unknown:
            unknown_reason = True
        else:
            invalid = True
    if succeeded and not ledger_rows:
        problems.append("ledger is empty although runs succeeded (HA_BENCH_LEDGER not set?)")
        unknown_reason = True

    valid: bool | None = False if invalid else (None if unknown_reason else True)
    details = {
        "triggered": len(trigger_outcome),
        "acknowledged": len(acked),
        "trigger_failed": sum(1 for p in trigger_outcome.values() if p == "fail"),
        "trigger_unknown": len(unknown),
        "trigger_unknown_materialized": len(unknown_seen),
        "succeeded_runs": succeeded,
        "failed_runs": len(failed_runs),
        "failed_tasks": len(failed_tasks),
        "lost_runs": len(lost_runs),
        "lost_tasks": len(lost_tasks),
        "duplicate_starts": len(duplicate_starts),
        "duplicate_ends": len(duplicate_ends),
        "stuck_runs": len(stuck),
        "stuck_unstarted": len(stuck_unstarted),
        "ledger_rows": len(ledger_rows),
        "expect_lost": expect_lost,
        "expect_duplicates": expect_duplicates,
        "ids": {
            "lost_runs": lost_runs[:MAX_IDS],
            "lost_tasks": lost_tasks[:MAX_IDS],
            "duplicate_starts": duplicate_starts[:MAX_IDS],
            "duplicate_ends": duplicate_ends[:MAX_IDS],
            "stuck_runs": stuck[:MAX_IDS],
            "stuck_unstarted": stuck_unstarted[:MAX_IDS],
            "failed_runs": failed_runs[:MAX_IDS],
            "failed_tasks": failed_tasks[:MAX_IDS],
            "trigger_unknown_materialized": unknown_seen[:MAX_IDS],
        },
    }
    return CheckResult("executions", valid, details, problems)
