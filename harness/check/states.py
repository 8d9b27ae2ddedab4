"""Checkers of what the API said against what the ledger shows (see :mod:`.checkers`,
which composes them with the others and re-exports them): a try reported failed that
ended normally, a task instance stuck queued or running, a state or try number going
backwards or skipping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

from harness.check.executions import CheckResult
from harness.check.findings import proc, result, utc
from harness.check.history import (
    Execution,
    StateObservation,
    TaskKey,
    executions,
    observed_until,
    run_observed_until,
    task_name,
    task_states,
)

STUCK_STATES = ("queued", "running")
FAILED_TRY_STATES = frozenset({"failed", "up_for_retry"})
BEFORE_RUNNING = frozenset({"scheduled", "queued"})
DEFERRING = frozenset({"deferred", "up_for_reschedule"})


def check_zombie_false_positives(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, Any]],
    *,
    expect_duplicates: bool = False,
    execs: list[Execution] | None = None,
    states: dict[TaskKey, list[StateObservation]] | None = None,
) -> CheckResult:
    """``zombie_false_positive``: a try the API reported failed (or up for retry) although
    an execution of it wrote ``end`` (its work was done)."""
    execs = executions(ledger_rows) if execs is None else execs
    states = task_states(history_df) if states is None else states
    ended: dict[tuple[TaskKey, int | None], list[Execution]] = defaultdict(list)
    for e in execs:
        if e.end is not None:
            ended[(e.task, e.try_number)].append(e)
    findings = []
    for task, observations in sorted(states.items(), key=str):
        reported: dict[int | None, StateObservation] = {}
        for o in observations:
            if o.state in FAILED_TRY_STATES and o.try_number not in reported:
                reported[o.try_number] = o
        for try_number, o in reported.items():
            for e in ended.get((task, try_number), []):
                findings.append({
                    "kind": "zombie_false_positive", "task": task_name(task),
                    "try_number": try_number, "api_state": o.state, "reported_at": o.t_wall,
                    "api_hostname": o.hostname, "ended_at": e.end,
                    "executions": [e.cite()],
                    "message": (
                        f"{task_name(task, try_number)}: the API reported {o.state} at "
                        f"{utc(o.t_wall)} but {proc(e)} ended it normally at {utc(e.end)}"
                    ),
                })  # fmt: skip
    problems = []
    if findings:
        problems.append(f"{len(findings)} try(s) reported failed although they ended "
                        f"normally: {[f['task'] for f in findings][:5]}")  # fmt: skip
    return result("zombie_false_positives", findings,
                  invalid=bool(findings) and not expect_duplicates, problems=problems,
                  expect_duplicates=expect_duplicates,
                  zombie_false_positives=len(findings))  # fmt: skip


def _spans(
    observations: list[StateObservation], until: float
) -> Iterable[tuple[StateObservation, float, bool]]:
    """(first observation of a state, when it was left or observation ended, still in it)."""
    for i, o in enumerate(observations):
        prev = observations[i - 1] if i else None
        if prev is not None and (prev.state, prev.try_number) == (o.state, o.try_number):
            continue
        nxt = next((n for n in observations[i + 1 :]
                    if (n.state, n.try_number) != (o.state, o.try_number)), None)  # fmt: skip
        yield o, (nxt.t_wall if nxt is not None else until), nxt is None


def check_stuck(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, Any]] | None = None,
    *,
    stuck_after_s: float = 120.0,
    execs: list[Execution] | None = None,
    states: dict[TaskKey, list[StateObservation]] | None = None,
) -> CheckResult:
    """``stuck``: a task instance ``queued`` or ``running`` (one try, as the API reported
    it) for more than ``stuck_after_s``, counted until it left that state or, if it never
    did, until the driver last polled its run."""
    execs = executions(ledger_rows or []) if execs is None else execs
    states = task_states(history_df) if states is None else states
    end_all = observed_until(history_df)
    run_end = run_observed_until(history_df)
    by_try: dict[tuple[TaskKey, int | None], list[Execution]] = defaultdict(list)
    for e in execs:
        by_try[(e.task, e.try_number)].append(e)
    findings = []
    for task, observations in sorted(states.items(), key=str):
        until = run_end.get(task[:2], end_all)
        if until is None:
            continue
        for o, left, still in _spans(observations, until):
            held = left - o.t_wall
            if o.state not in STUCK_STATES or held <= stuck_after_s:
                continue
            mine = by_try.get((task, o.try_number), [])
            alive = max((e.last_alive for e in mine), default=None)
            findings.append({
                "kind": "stuck", "task": task_name(task), "try_number": o.try_number,
                "state": o.state, "since": o.t_wall, "until": left, "for_s": held,
                "still_at_end": still, "api_hostname": o.hostname,
                "ledger_last_alive": alive, "executions": [e.cite() for e in mine],
                "message": (
                    f"{task_name(task, o.try_number)} {o.state} for {held:.1f} s "
                    f"(> {stuck_after_s:g} s) from {utc(o.t_wall)}"
                    + (" until the end of observation" if still else f" until {utc(left)}")
                    + (f"; ledger: last alive {utc(alive)}" if mine else "; no ledger execution")
                ),
            })  # fmt: skip
    problems = []
    if findings:
        problems.append(f"{len(findings)} task instance(s) stuck queued/running > "
                        f"{stuck_after_s:g} s: {[f['task'] for f in findings][:5]}")  # fmt: skip
    return result("stuck", findings, invalid=bool(findings), problems=problems,
                  stuck_after_s=stuck_after_s, stuck_task_instances=len(findings))  # fmt: skip


def check_state_regressions(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, Any]] | None = None,
    *,
    execs: list[Execution] | None = None,
    states: dict[TaskKey, list[StateObservation]] | None = None,
) -> CheckResult:
    """``running_to_queued`` (a try seen running, later scheduled/queued, with no deferral
    seen in between nor a ledger ``defer`` of that try), ``try_decreased`` (invalid) and
    ``try_jump`` (tries skipped with no ledger execution of them: unknown)."""
    execs = executions(ledger_rows or []) if execs is None else execs
    states = task_states(history_df) if states is None else states
    tries_run: dict[TaskKey, set[int | None]] = defaultdict(set)
    deferred: set[tuple[TaskKey, int | None]] = set()
    for e in execs:
        tries_run[e.task].add(e.try_number)
        if e.outcome == "defer":
            deferred.add((e.task, e.try_number))
    findings = []
    for task, observations in sorted(states.items(), key=str):
        findings += _task_regressions(task, observations, tries_run, deferred)
    invalid = any(f["kind"] != "try_jump" for f in findings)
    problems = []
    if findings:
        problems.append(f"{len(findings)} state regression(s): "
                        f"{[f['kind'] + ' ' + f['task'] for f in findings][:5]}")  # fmt: skip
    return result("state_regressions", findings, invalid=invalid, unknown=bool(findings),
                  problems=problems, state_regressions=len(findings))  # fmt: skip


def _task_regressions(
    task: TaskKey,
    observations: list[StateObservation],
    tries_run: dict[TaskKey, set[int | None]],
    deferred: set[tuple[TaskKey, int | None]],
) -> list[dict[str, Any]]:
    """The regressions in one task instance's observed states, in the order seen."""
    found: list[dict[str, Any]] = []

    def find(kind: str, task: TaskKey, before: StateObservation, after: StateObservation,
             message: str, **extra: Any) -> None:  # fmt: skip
        found.append({
            "kind": kind, "task": task_name(task),
            "before": {"state": before.state, "try_number": before.try_number,
                       "t_wall": before.t_wall},
            "after": {"state": after.state, "try_number": after.try_number,
                      "t_wall": after.t_wall},
            "message": f"{task_name(task)}: {message}", **extra,
        })  # fmt: skip

    ran: StateObservation | None = None  # the try's running observation, if current
    prev: StateObservation | None = None
    for o in observations:
        if prev is not None and prev.try_number is not None and o.try_number is not None:
            if o.try_number < prev.try_number:
                find("try_decreased", task, prev, o,
                     f"try {prev.try_number} ({prev.state}) at {utc(prev.t_wall)}, then try "
                     f"{o.try_number} ({o.state}) at {utc(o.t_wall)}")  # fmt: skip
            elif o.try_number > prev.try_number + 1:
                skipped = list(range(prev.try_number + 1, o.try_number))
                unseen = [k for k in skipped if k not in tries_run[task]]
                if unseen:
                    find("try_jump", task, prev, o,
                         f"try {prev.try_number} ({prev.state}) at {utc(prev.t_wall)}, then "
                         f"try {o.try_number} ({o.state}) at {utc(o.t_wall)}; tries "
                         f"{unseen} neither seen in the API nor in the ledger",
                         skipped=unseen)  # fmt: skip
        if ran is not None and o.try_number != ran.try_number:
            ran = None
        if o.state == "running":
            ran = o
        elif o.state in DEFERRING:
            ran = None
        elif o.state in BEFORE_RUNNING and ran is not None:
            if (task, o.try_number) in deferred:
                ran = None  # a deferral the ~1 s poll missed: the ledger shows it
            else:
                find("running_to_queued", task, ran, o,
                     f"try {o.try_number} running at {utc(ran.t_wall)}, then {o.state} "
                     f"at {utc(o.t_wall)} (no deferral seen)")  # fmt: skip
                ran = None
        prev = o
    return found
