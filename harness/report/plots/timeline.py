"""What an execution timeline shows: the task instances of one repetition that matter —
the victim's, those with task-history findings, those running when a fault hit or during
a fault window — with their executions from the ledger and the API-reported states
(:func:`execution_timeline`; :mod:`harness.report.plots.timeline_figure` draws it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.check.history import (
    Execution,
    FaultWindow,
    StateObservation,
    TaskKey,
    executions,
    executions_by_task,
    fault_windows,
    observed_until,
    run_observed_until,
    task_name,
    task_states,
)

if TYPE_CHECKING:
    import pandas as pd

    from harness.check.executions import CheckResult

CONTEXT_REASONS = ("victim", "at fault", "during fault")  # why a row is shown, besides findings
EXECUTION_FINDINGS = frozenset({"same_try_twice", "ended_twice", "overlap"})
FINDING_MARKS = {  # kind -> (marker, colour, label) drawn on the API strip
    "zombie_false_positive": ("X", "#d62728", "API reported the try failed (false positive)"),
    "stuck": ("s", "#ff7f0e", "stuck queued/running"),
    "running_to_queued": ("<", "#e7298a", "state regression"),
    "try_decreased": ("<", "#e7298a", "state regression"),
    "try_jump": ("<", "#e7298a", "state regression"),
    "lost_run": ("D", "#000000", "lost run"),
}
STATE_REGRESSIONS = ("running_to_queued", "try_decreased", "try_jump")


def execution_id(e: Execution) -> tuple[object, ...]:
    """An execution as the checkers' findings cite it."""
    return (task_name(e.task), e.try_number, e.pid, e.hostname, e.start)


def _cited_id(c: dict[str, object]) -> tuple[object, ...]:
    return (c.get("task"), c.get("try_number"), c.get("pid"), c.get("hostname"), c.get("start"))


@dataclass
class TimelineRow:
    """One task instance: its executions, API states, and why it is shown."""

    key: TaskKey
    label: str
    why: list[str]
    executions: list[Execution]
    states: list[StateObservation]
    states_until: float | None


@dataclass
class ExecutionTimeline:
    """What :func:`execution_timeline_figure` draws; times are t_wall, ``t0`` the origin."""

    rows: list[TimelineRow]
    faults: list[FaultWindow]
    t0: float
    flagged: set[tuple[object, ...]] = field(default_factory=set)
    marks: list[tuple[TaskKey, float, str, str]] = field(default_factory=list)
    overlaps: list[tuple[TaskKey, float, float]] = field(default_factory=list)
    omitted: int = 0
    task_instances: int = 0
    replicas: list[str] = field(default_factory=list)


def _row_label(key: TaskKey) -> str:
    dag, run, task, map_index = key
    tail = run.rsplit("_", 1)[-1] if "_" in run else run
    tail = tail if len(tail) <= 18 else "…" + tail[-17:]
    name = f"{dag.removeprefix('ha_bench_')} {tail} {task}"
    return name + (f"[{map_index}]" if map_index != -1 else "")


def execution_timeline(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, object]],
    check: CheckResult | None = None,
    *,
    victim: dict[str, object] | None = None,
    max_rows: int = 30,
) -> ExecutionTimeline | None:
    """The rows worth drawing: the victim's task instance, those with findings, those
    running when a fault hit, then those running during a fault window — at most
    ``max_rows`` (``omitted`` counts the rest). None without ledger executions."""
    execs = executions(ledger_rows)
    if not execs:
        return None
    by_task = executions_by_task(execs)
    states = task_states(history_df)
    faults = fault_windows(history_df)
    keys = set(by_task) | set(states)
    why: dict[TaskKey, list[str]] = {}

    def add(key: TaskKey | None, reason: str) -> None:
        if key is not None and key in keys and reason not in why.setdefault(key, []):
            why[key].append(reason)

    if victim and victim.get("run_id") and victim.get("task_id"):
        run_id, task_id = str(victim["run_id"]), str(victim["task_id"])
        for k in keys:
            if k[1] == run_id and k[2] == task_id:
                add(k, "victim")
    timeline = ExecutionTimeline([], faults, faults[0].start if faults else
                                 min(e.start for e in execs))  # fmt: skip
    findings = check.details.get("findings", []) if check is not None else []
    _note_findings(timeline, findings, keys, add)
    _note_faults(faults, by_task, why, add)
    chosen = list(why)[:max_rows]
    timeline.omitted = len(why) - len(chosen)
    timeline.task_instances = len(keys)
    run_end = run_observed_until(history_df)
    end_all = observed_until(history_df)
    first = {k: min([e.start for e in by_task.get(k, [])] +
                    [o.t_wall for o in states.get(k, [])]) for k in chosen}  # fmt: skip
    for k in sorted(chosen, key=lambda k: (first[k], k)):
        row = TimelineRow(k, _row_label(k), why[k], by_task.get(k, []), states.get(k, []),
                          run_end.get(k[:2], end_all))  # fmt: skip
        timeline.rows.append(row)
    timeline.replicas = sorted({str(e.replica) for r in timeline.rows for e in r.executions})
    return timeline


def _finding_at(kind: str, f: dict[str, Any]) -> object:
    """When a finding is marked on the API strip (None: not marked)."""
    if kind in STATE_REGRESSIONS:
        return (f.get("after") or {}).get("t_wall")
    return {"zombie_false_positive": f.get("reported_at"), "stuck": f.get("since"),
            "lost_run": f.get("run_state_at")}.get(kind)  # fmt: skip


def _note_findings(
    timeline: ExecutionTimeline,
    findings: list[dict[str, Any]],
    keys: set[TaskKey],
    add: Callable[[TaskKey | None, str], None],
) -> None:
    """Each finding's rows (a reason to show them), its flagged executions, the overlap it
    names and its mark."""
    names = {task_name(k): k for k in keys}
    for f in findings:
        kind = str(f.get("kind"))
        rows = [names.get(str(f.get("task")))] if f.get("task") else []
        if kind == "lost_run":
            rows = [k for k in keys if (k[0], k[1]) == (f.get("dag_id"), f.get("run_id"))]
        for k in rows:
            add(k, kind)
        for c in f.get("executions", []) or []:
            if kind in EXECUTION_FINDINGS:
                timeline.flagged.add(_cited_id(c))
        if kind == "overlap" and rows and rows[0] is not None:
            timeline.overlaps.append((rows[0], float(f["from"]), float(f["until"])))
        mark = FINDING_MARKS.get(kind)
        at = _finding_at(kind, f)
        if mark is not None and at is not None:
            for k in rows:
                if k is not None:
                    timeline.marks.append((k, float(at), kind, mark[2]))


def _note_faults(
    faults: list[FaultWindow],
    by_task: dict[TaskKey, list[Execution]],
    why: dict[TaskKey, list[str]],
    add: Callable[[TaskKey | None, str], None],
) -> None:
    """The task instances running when a fault hit, then those running during one."""
    for w in faults:
        for k, group in by_task.items():
            if any(e.start <= w.start <= e.last_alive for e in group):
                add(k, "at fault")
    for w in faults:
        for k, group in by_task.items():
            if "at fault" not in why.get(k, []) and any(
                e.start <= w.end and e.last_alive >= w.start for e in group
            ):
                add(k, "during fault")
