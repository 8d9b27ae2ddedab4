"""Task figures: task outcomes, the victim task's fate after the fault, what the nemesis saw."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.analysis.timeline import Censor, Timeline, col


def final_task_states(df: pd.DataFrame) -> list[str]:
    w = df[(df["type"] == "workload") & (col(df, "event") == "task_state")]
    if w.empty:
        return []
    return list(w.groupby(["run_id", "task_id"])["state"].last())


def fault_details(faults: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures the nemesis reported: whether a graceful stop finished within its grace."""
    out: dict[str, Any] = {}
    details = [f.get("detail") or {} for f in faults]
    graceful = [d["graceful"] for d in details if isinstance(d, dict) and "graceful" in d]
    if graceful:
        out["terminate_graceful"] = int(all(graceful))
        out["shutdown_s"] = max(d["shutdown_s"] for d in details if "shutdown_s" in d)
    return out


def victim_figures(
    df: pd.DataFrame, ledger: list[dict[str, Any]], victim: dict[str, Any],
    timeline: Timeline, censor: Censor | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What happened to the victim task after the fault, from the ledger and task states.

    ``victim_failed``: 1 if its final state is failed; ``victim_failed_after_s``: fault →
    first observed ``failed``/``up_for_retry`` (1 s polls); ``victim_rerun_after_s``: fault →
    ledger start of a later try; ``victim_done_after_s``: fault → its last ledger ``end``;
    ``victim_executions``: ledger starts (tries that began running). A time whose event
    was not seen is censored at the end of observation.
    """
    censor = censor or Censor()
    fault_wall = timeline.fault_wall
    run_id, task_id = victim["run_id"], victim["task_id"]
    rows = [r for r in ledger if r.get("run_id") == run_id and r.get("task_id") == task_id]
    starts = [r for r in rows if r.get("phase") == "start"]
    ends = [r for r in rows if r.get("phase") == "end"]
    first_try = min((r.get("try_number") or 0) for r in starts) if starts else 0
    reruns = [r["t_wall"] for r in starts if (r.get("try_number") or 0) > first_try]
    states = df[(df["type"] == "workload") & (col(df, "event") == "task_state")
                & (col(df, "run_id") == run_id) & (col(df, "task_id") == task_id)]  # fmt: skip
    failing = states[states["state"].isin(["failed", "up_for_retry"])]
    final = str(states["state"].iloc[-1]) if len(states) else None
    observed = timeline.observed_s
    watched_ledger = (timeline.ledger_end_wall - fault_wall
                      if timeline.ledger_end_wall is not None else None)  # fmt: skip
    failed_after = float(failing["t_wall"].min()) - fault_wall if len(failing) else None
    return {
        "victim": {
            "dag_id": victim["dag_id"],
            "run_id": run_id,
            "task_id": task_id,
            "replica": victim.get("replica"),
            "final_state": final,
        },
        "victim_failed": int(final == "failed") if final else None,
        "victim_succeeded": int(final == "success") if final else None,
        "victim_failed_after_s": censor.value("victim_failed_after_s", failed_after, observed),
        "victim_rerun_after_s": censor.value(
            "victim_rerun_after_s", min(reruns) - fault_wall if reruns else None, watched_ledger
        ),
        "victim_done_after_s": censor.value(
            "victim_done_after_s",
            max(r["t_wall"] for r in ends) - fault_wall if ends else None,
            watched_ledger,
        ),
        "victim_executions": len(starts),
        "victim_run_s": max(r["t_wall"] for r in ends) - min(r["t_wall"] for r in starts)
        if ends and starts
        else None,
    }
