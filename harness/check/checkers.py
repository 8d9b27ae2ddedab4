"""Checkers that compose, over a repetition's task history (:mod:`harness.check.history`).

Each returns a :class:`~harness.check.executions.CheckResult` — ``valid`` True, False or
None (unknown: the evidence cannot decide) — and cites the events behind every finding in
``details["findings"]``: a list of dicts, each with ``kind``, ``message`` (one line) and
the ids and times it rests on (task, try, pid, hostname, replica, ``t_wall`` seconds;
messages show them as UTC times of day).

- :func:`check_lost`: an acknowledged run that never completed its work (the lost logic
  of :func:`~harness.check.executions.check_executions`); unknown while a run is not
  finished or the ledger is empty although runs succeeded.
- :func:`check_duplicates`: the same try executed twice (two executions with a ``start``
  row, same try, different pid/host), and a task whose work ended more than once.
- :func:`check_overlaps`: two executions of one task instance whose [start, last alive]
  intervals intersect — two processes running it at the same time.
- :func:`check_zombie_false_positives`: the API reported a try ``failed`` /
  ``up_for_retry`` while the ledger shows an execution of that try ended normally (``end``).
- :func:`check_stuck`: a task instance ``queued`` or ``running`` in the API for longer than
  ``stuck_after_s``, measured within the observed window (until the run was last polled).
- :func:`check_state_regressions`: ``running`` → ``scheduled``/``queued`` for the same try
  (not explained by a deferral), or the try number decreasing (invalid); or jumping by
  more than 1 over tries of which the ledger has no execution (unknown: a try the scheduler
  skipped cannot be told from one the ~1 s poll missed).

:func:`check_repetition` composes them all (:func:`~harness.check.executions.compose`).
``expect_lost`` / ``expect_duplicates`` report lost runs / duplicated, overlapping and
falsely-failed executions without making the result invalid (an experiment that expects
a task to be declared dead while it runs).

The last three, which read the API's task states, live in :mod:`.states`; what findings
share (times in messages, :func:`finding_line`, the result) in :mod:`.findings`. All are
importable from here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pandas as pd

from harness.check.executions import (
    MAX_IDS,
    CheckResult,
    compose,
    duplicate_ids,
    observe,
    run_fates,
)
from harness.check.findings import finding_line, proc, result, span, utc
from harness.check.history import (
    Execution,
    TaskKey,
    executions,
    executions_by_task,
    task_name,
    task_states,
)
from harness.check.states import (
    FAILED_TRY_STATES,
    STUCK_STATES,
    check_state_regressions,
    check_stuck,
    check_zombie_false_positives,
)

__all__ = [
    "CHECKS",
    "FAILED_TRY_STATES",
    "STUCK_STATES",
    "check_duplicates",
    "check_lost",
    "check_overlaps",
    "check_repetition",
    "check_state_regressions",
    "check_stuck",
    "check_zombie_false_positives",
    "finding_line",
]

CHECKS = ("lost", "duplicates", "overlaps", "zombie_false_positives", "stuck",
          "state_regressions")  # fmt: skip


# --- lost work --------------------------------------------------------------------------


def check_lost(
    history_df: pd.DataFrame, ledger_rows: list[dict[str, Any]], *, expect_lost: bool = False
) -> CheckResult:
    """Acknowledged runs whose work never completed (``lost_run`` findings)."""
    obs = observe(history_df, ledger_rows)
    fates = run_fates(obs)
    findings = []
    for f in fates.lost:
        tasks = f" ({', '.join(f['tasks'][:5])})" if f["tasks"] else ""
        findings.append({**f, "message": (
            f"{f['run']}: {f['reason']}{tasks}; acknowledged at {utc(f['acknowledged_at'])}, "
            f"last run state {f['run_state']} at {utc(f['run_state_at'])}"
        )})  # fmt: skip
    problems = []
    if findings:
        problems.append(f"{len(findings)} acknowledged run(s) lost: {fates.lost_runs[:5]}")
    unknown = False
    if fates.stuck:
        problems.append(f"{len(fates.stuck)} acknowledged run(s) not finished (lost or not "
                        f"cannot be told): {fates.stuck[:5]}")  # fmt: skip
        unknown = True
    if fates.succeeded and not ledger_rows:
        problems.append("ledger is empty although runs succeeded (HA_BENCH_LEDGER not set?)")
        unknown = True
    outcomes = list(obs.trigger_outcome.values())
    unknown_seen = [f"{k[0]}/{k[1]}" for k in obs.unknown
                    if k in obs.run_state or k in obs.ledger_runs]  # fmt: skip
    return result(
        "lost", findings, invalid=bool(findings) and not expect_lost, unknown=unknown,
        problems=problems, expect_lost=expect_lost,
        triggered=len(outcomes), acknowledged=len(obs.acked),
        trigger_failed=outcomes.count("fail"), trigger_unknown=outcomes.count("info"),
        trigger_unknown_materialized=len(unknown_seen),
        succeeded_runs=fates.succeeded, failed_runs=len(fates.failed_runs),
        lost_runs=len(findings), lost_tasks=len(fates.lost_tasks),
        stuck_runs=len(fates.stuck), stuck_unstarted=len(fates.stuck_unstarted),
        ids={"lost_runs": fates.lost_runs[:MAX_IDS], "lost_tasks": fates.lost_tasks[:MAX_IDS],
             "stuck_runs": fates.stuck[:MAX_IDS],
             "stuck_unstarted": fates.stuck_unstarted[:MAX_IDS],
             "failed_runs": fates.failed_runs[:MAX_IDS]},
    )  # fmt: skip


# --- duplicated and overlapping executions ----------------------------------------------


def check_duplicates(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, Any]],
    *,
    expect_duplicates: bool = False,
    execs: list[Execution] | None = None,
) -> CheckResult:
    """``same_try_twice``: a try with more than one execution that has a ``start`` row;
    ``ended_twice``: a task instance whose work ended (``end``) more than once, in one try
    or several (a retry of a try that had finished)."""
    execs = executions(ledger_rows) if execs is None else execs
    starts: dict[tuple[TaskKey, int | None], list[Execution]] = defaultdict(list)
    ended: dict[TaskKey, list[Execution]] = defaultdict(list)
    for e in execs:
        if e.started:
            starts[(e.task, e.try_number)].append(e)
        if e.end is not None:
            ended[e.task].append(e)
    findings = []
    for (task, try_number), group in sorted(starts.items(), key=str):
        if len(group) < 2:
            continue
        procs = ", ".join(f"{proc(e)} {span(e)}" for e in group)
        findings.append({
            "kind": "same_try_twice", "task": task_name(task), "try_number": try_number,
            "executions": [e.cite() for e in group],
            "message": f"{task_name(task, try_number)} executed {len(group)} times: {procs}",
        })  # fmt: skip
    for task, group in sorted(ended.items(), key=str):
        if len(group) < 2:
            continue
        tries = sorted((e.try_number for e in group), key=str)
        procs = ", ".join(f"try {e.try_number} {proc(e)} ended {utc(e.end)}" for e in group)
        findings.append({
            "kind": "ended_twice", "task": task_name(task), "tries": tries,
            "executions": [e.cite() for e in group],
            "message": f"{task_name(task)} did its work {len(group)} times: {procs}",
        })  # fmt: skip
    obs = observe(history_df, ledger_rows)
    duplicate_starts, duplicate_ends = duplicate_ids(obs)
    problems = []
    if findings:
        names = [f["message"].split(":")[0] for f in findings]
        problems.append(f"duplicated executions: {names[:5]} ({len(duplicate_starts)} same-try "
                        f"starts, {len(duplicate_ends)} repeated ends)")  # fmt: skip
    return result(
        "duplicates", findings, invalid=bool(findings) and not expect_duplicates,
        problems=problems, expect_duplicates=expect_duplicates,
        duplicate_starts=len(duplicate_starts), duplicate_ends=len(duplicate_ends),
        ids={"duplicate_starts": duplicate_starts[:MAX_IDS],
             "duplicate_ends": duplicate_ends[:MAX_IDS]},
    )  # fmt: skip


def overlap(a: Execution, b: Execution) -> tuple[float, str] | None:
    """(seconds both were known alive, clock) when the intervals intersect, else None."""
    (s1, e1), (s2, e2) = a.interval(b), b.interval(a)
    if any(math.isnan(x) for x in (s1, e1, s2, e2)):
        return None
    both = min(e1, e2) - max(s1, s2)
    return (both, "monotonic" if a.same_clock(b) else "wall") if both >= 0 else None


def check_overlaps(
    ledger_rows: list[dict[str, Any]],
    *,
    expect_duplicates: bool = False,
    execs: list[Execution] | None = None,
) -> CheckResult:
    """``overlap``: two executions of one task instance alive at the same time."""
    execs = executions(ledger_rows) if execs is None else execs
    findings = []
    for task, group in sorted(executions_by_task(execs).items(), key=str):
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                found = overlap(a, b)
                if found is None:
                    continue
                both, clock = found
                findings.append({
                    "kind": "overlap", "task": task_name(task),
                    "tries": [a.try_number, b.try_number], "overlap_s": both, "clock": clock,
                    "from": max(a.start, b.start), "until": min(a.last_alive, b.last_alive),
                    "executions": [a.cite(), b.cite()],
                    "message": (
                        f"{task_name(task)}: try {a.try_number} {proc(a)} {span(a)} and "
                        f"try {b.try_number} {proc(b)} {span(b)} ran at the same time for "
                        f"{both:.3f} s ({clock} clock)"
                    ),
                })  # fmt: skip
    problems = []
    if findings:
        problems.append(f"{len(findings)} overlapping execution pair(s): "
                        f"{[f['task'] for f in findings][:5]}")  # fmt: skip
    return result("overlaps", findings, invalid=bool(findings) and not expect_duplicates,
                  problems=problems, expect_duplicates=expect_duplicates,
                  overlapping_executions=len(findings))  # fmt: skip


# --- all of them -------------------------------------------------------------------------

TOP_LEVEL = {  # composed details lifted to the top level: checker -> keys
    "lost": ("triggered", "acknowledged", "trigger_failed", "trigger_unknown",
             "trigger_unknown_materialized", "succeeded_runs", "failed_runs", "lost_runs",
             "lost_tasks", "stuck_runs", "stuck_unstarted", "expect_lost"),
    "duplicates": ("duplicate_starts", "duplicate_ends", "expect_duplicates"),
    "overlaps": ("overlapping_executions",),
    "zombie_false_positives": ("zombie_false_positives",),
    "stuck": ("stuck_task_instances", "stuck_after_s"),
    "state_regressions": ("state_regressions",),
}  # fmt: skip


def check_repetition(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, Any]],
    *,
    expect_lost: bool = False,
    expect_duplicates: bool = False,
    stuck_after_s: float = 120.0,
) -> CheckResult:
    """Every checker over one repetition, composed: invalid if any is, else unknown if any
    is, else valid (``valid``/``problems`` mean what :func:`check_executions`' do).

    ``details``: each checker's details under its name (:data:`CHECKS`; its findings
    counted there as ``count``, listed once at the top level); at the top level
    the counts (``lost_runs``, ``duplicate_starts``, ``duplicate_ends``, ``stuck_runs``,
    ``overlapping_executions``, ``zombie_false_positives``, ``stuck_task_instances``,
    ``state_regressions`` ...), ``ledger_rows``, ``ledger_executions`` (how many the ledger holds)
    and ``findings``: every checker's findings, each with its ``check``.
    """
    execs = executions(ledger_rows)
    states = task_states(history_df)
    results = [
        check_lost(history_df, ledger_rows, expect_lost=expect_lost),
        check_duplicates(history_df, ledger_rows, expect_duplicates=expect_duplicates,
                         execs=execs),
        check_overlaps(ledger_rows, expect_duplicates=expect_duplicates, execs=execs),
        check_zombie_false_positives(history_df, ledger_rows,
                                     expect_duplicates=expect_duplicates, execs=execs,
                                     states=states),
        check_stuck(history_df, ledger_rows, stuck_after_s=stuck_after_s, execs=execs,
                    states=states),
        check_state_regressions(history_df, ledger_rows, execs=execs, states=states),
    ]  # fmt: skip
    composed = compose(results, name="repetition")
    for details in composed.details.values():  # the findings once, at the top level
        details.pop("findings", None)
    top: dict[str, Any] = {}
    for r in results:
        for key in TOP_LEVEL.get(r.name, ()):
            top[key] = r.details.get(key)
    findings = [{"check": r.name, **f} for r in results for f in r.details.get("findings", [])]
    checks = composed.details
    # the counts win over a checker of the same name (state_regressions,
    # zombie_false_positives); every checker's own details stay under "checks"
    composed.details = {**checks, **top, "ledger_rows": len(ledger_rows),
                        "ledger_executions": len(execs), "task_instances": len(states),
                        "checks": checks, "findings": findings}  # fmt: skip
    return composed
