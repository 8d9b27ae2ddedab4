"""The figures of one repetition: downtime and recovery, scheduling, task outcomes, health.

Everything here is computed from the history (a DataFrame of events) and the side-effect
ledger alone, so a recorded repetition can be re-analysed offline. Imports only core.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pandas as pd

from harness.analysis import outages
from harness.core.airflow_api import DB_ENDPOINT, HEALTH, LIVENESS


def task_start_gaps(ledger: list[dict[str, Any]], fault_wall: float) -> dict[str, float | None]:
    """Largest gap between consecutive task starts before and after the fault (wall s)."""
    starts = sorted(r["t_wall"] for r in ledger if r.get("phase") == "start")
    if len(starts) < 2:
        return {"task_start_gap_before_s": None, "task_start_gap_after_s": None}
    gaps = [(b, b - a) for a, b in itertools.pairwise(starts)]
    before = [g for end, g in gaps if end < fault_wall]
    after = [g for end, g in gaps if end >= fault_wall]
    return {
        "task_start_gap_before_s": max(before) if before else None,
        "task_start_gap_after_s": max(after) if after else None,
    }


def scheduling_latency(
    df: pd.DataFrame, ledger: list[dict[str, Any]], fault_wall: float
) -> dict[str, float | None]:
    """How fast newly triggered runs get their first task started, before vs after the fault.

    ``scheduling_resumed_s``: fault → first task start of a run *triggered after* the fault
    (only a live scheduler can start it); ``start_latency_before_p50_s`` /
    ``start_latency_before_max_s``: trigger → first task start of runs triggered *and*
    started before the fault (a run caught by the fault would inflate the baseline).
    """
    w = df[(df["type"] == "workload") & (_col(df, "event") == "trigger")
           & (_col(df, "phase") == "ok")]  # fmt: skip
    triggered = dict(zip(w["run_id"], w["t_wall"].astype(float), strict=False))
    first_start: dict[str, float] = {}
    for row in ledger:
        if row.get("phase") == "start" and row.get("run_id") in triggered:
            run = row["run_id"]
            first_start[run] = min(first_start.get(run, float("inf")), float(row["t_wall"]))
    before = [first_start[r] - t for r, t in triggered.items()
              if r in first_start and first_start[r] < fault_wall]  # fmt: skip
    after = [first_start[r] for r, t in triggered.items() if t >= fault_wall and r in first_start]
    return {
        "scheduling_resumed_s": min(after) - fault_wall if after else None,
        "start_latency_before_p50_s": float(pd.Series(before).median()) if before else None,
        "start_latency_before_max_s": max(before) if before else None,
    }


def dag_run_latency(df: pd.DataFrame) -> dict[str, Any]:
    """Trigger acknowledged → run ``success``/``failed``, from the workload events."""
    w = df[df["type"] == "workload"] if "type" in df else df
    trig = w[(_col(w, "event") == "trigger") & (_col(w, "phase") == "ok")]
    ends = w[(_col(w, "event") == "run_state") & _col(w, "state").isin(["success", "failed"])]
    acked = dict(zip(trig["run_id"], trig["t_mono"].astype(float), strict=False))
    done = ends.groupby("run_id")["t_mono"].min() if len(ends) else pd.Series(dtype=float)
    latencies = [float(done[r]) - t for r, t in acked.items() if r in done.index]
    series = pd.Series(latencies, dtype=float)
    return {
        "dag_runs_acknowledged": len(acked),
        "dag_runs_finished": len(latencies),
        "dag_run_latency_p50_s": float(series.quantile(0.5)) if len(series) else None,
        "dag_run_latency_p95_s": float(series.quantile(0.95)) if len(series) else None,
        "dag_run_latency_max_s": float(series.max()) if len(series) else None,
    }


def analyse_repetition(
    df: pd.DataFrame,
    ledger: list[dict[str, Any]],
    faults: list[dict],
    victim: dict[str, Any] | None = None,
    *,
    lb_endpoints: tuple[str, ...] = (LIVENESS,),
) -> dict[str, Any]:
    """The figures of one repetition, from its history and ledger only (the execution
    checker's verdict is added by the runner, from :mod:`harness.check`)."""
    end = df[(df["type"] == "marker") & (_col(df, "name") == "run_end")]["t_mono"]
    run_end = float(end.iloc[0]) if len(end) else None
    invokes = df[(df["type"] == "fault") & (df["phase"] == "invoke")]
    fault_mono = float(invokes["t_mono"].min()) if len(invokes) else float("nan")
    fault_wall = float(invokes["t_wall"].min()) if len(invokes) else float("nan")
    lb_all = outages.outage_windows(df, target="lb", endpoint=LIVENESS, run_end_mono=run_end)
    lb, before_fault = _split_at(lb_all, fault_mono)
    rec = outages.recovery(df, fault_mono, target="lb", endpoint=LIVENESS,
                            replica=faults[0]["target"] if faults else None)  # fmt: skip
    figures: dict[str, Any] = {
        "fault": [{"op": f["op"], "target": f["target"], "t_wall": f["t_wall"]} for f in faults],
        "downtime_s": outages.downtime_s(lb),
        "baseline_downtime_s": outages.downtime_s(before_fault),
        "outages": [
            {"start": r["start_wall"], "end": r["end_wall"], "duration_s": r["duration_s"]}
            for r in lb.to_dict("records")
        ],
        "recovery_s": rec["time_to_recover_s"],
        "time_to_detect_s": rec["time_to_detect_s"],
        "time_to_first_success_s": rec["time_to_first_success_s"],
        "replacement_ready_s": rec["replacement_ready_s"],
    }
    per_replica = {}
    for target in sorted(set(df.loc[df["type"] == "probe", "target"].dropna()) - {"lb"}):
        w = outages.outage_windows(df, target=target, endpoint=LIVENESS, run_end_mono=run_end)
        per_replica[target] = outages.downtime_s(_split_at(w, fault_mono)[0])
    figures["downtime_by_replica_s"] = per_replica
    degraded = outages.degraded_window(df, fault_mono, target="lb", endpoint=LIVENESS)
    figures["degraded_s"] = _jsonable(degraded.get("duration_s")) if degraded else 0.0
    phases = outages.phase_stats(df, fault_mono, rec.get("recovered_mono"), target="lb",
                                  endpoint=LIVENESS)  # fmt: skip
    figures["phases"] = json.loads(phases.to_json(orient="index"))
    requests = df[df["type"] == "request"]
    if len(requests):
        during = requests[requests["t_mono"] >= fault_mono]
        figures["load_requests"] = len(requests)
        figures["load_errors_after_fault"] = int((~during["ok"].astype(bool)).sum())
    failed = [e for e in _task_states(df) if e == "failed"]
    figures["failed_tasks"] = len(failed)
    figures.update(task_start_gaps(ledger, fault_wall))
    before, after = figures["task_start_gap_before_s"], figures["task_start_gap_after_s"]
    figures["task_start_gap_excess_s"] = (
        after - before if after is not None and before is not None else None
    )
    ready = figures["replacement_ready_s"]
    figures["task_start_gap_vs_restart"] = after / ready if after and ready else None
    figures.update(scheduling_latency(df, ledger, fault_wall))
    figures.update(dag_run_latency(df))
    resumed, normal = figures["scheduling_resumed_s"], figures["start_latency_before_max_s"]
    figures["scheduling_resumed_vs_restart"] = resumed / ready if resumed and ready else None
    figures["scheduling_delay_excess_s"] = (
        resumed - normal if resumed is not None and normal is not None else None
    )
    figures.update(fault_details(faults))
    rec_marker = df[(df["type"] == "marker") & (_col(df, "name") == "recovered")]["t_mono"]
    figures["all_ready_after_s"] = (
        float(rec_marker.iloc[0]) - fault_mono if len(rec_marker) else None
    )
    figures.update(health_unhealthy(df, fault_mono, run_end))
    for endpoint in lb_endpoints[1:]:
        w = outages.outage_windows(df, target="lb", endpoint=endpoint, run_end_mono=run_end)
        figures.setdefault("downtime_by_endpoint_s", {})[endpoint] = outages.downtime_s(
            _split_at(w, fault_mono)[0]
        )
    by_endpoint = figures.get("downtime_by_endpoint_s", {})
    if DB_ENDPOINT in by_endpoint:
        figures["db_endpoint_downtime_s"] = by_endpoint[DB_ENDPOINT]
    if victim is not None:
        figures.update(victim_figures(df, ledger, victim, fault_wall))
    return figures


def fault_details(faults: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures the nemesis reported: whether a graceful stop finished within its grace."""
    out: dict[str, Any] = {}
    details = [f.get("detail") or {} for f in faults]
    graceful = [d["graceful"] for d in details if isinstance(d, dict) and "graceful" in d]
    if graceful:
        out["terminate_graceful"] = int(all(graceful))
        out["shutdown_s"] = max(d["shutdown_s"] for d in details if "shutdown_s" in d)
    return out


def health_unhealthy(
    df: pd.DataFrame, fault_mono: float, run_end: float | None
) -> dict[str, float | None]:
    """Seconds after the fault that ``/api/v2/monitor/health`` (through the LB) reported each
    component unhealthy — the body, not the status code, carries it (0.5 s samples)."""
    probes = df[df["type"] == "probe"]
    h = probes[(_col(probes, "endpoint") == HEALTH) & (_col(probes, "target") == "lb")]
    h = h[h["t_mono"] >= fault_mono] if fault_mono == fault_mono else h
    if run_end is not None:
        h = h[h["t_mono"] <= run_end]
    if h.empty or "body" not in h:
        return {}
    out: dict[str, float | None] = {}
    times = h["t_mono"].astype(float).to_numpy()
    steps = [b - a for a, b in itertools.pairwise(times)] + [0.5]
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        total = 0.0
        for body, step in zip(h["body"], steps, strict=True):
            status = (body or {}).get(component, {}) if isinstance(body, dict) else {}
            if isinstance(status, dict) and status.get("status") == "unhealthy":
                total += min(step, 2.0)
        out[f"health_{component}_unhealthy_s"] = round(total, 3)
    unanswered = h[~h["ok"].astype(bool)] if "ok" in h else h.iloc[0:0]
    out["health_unanswered"] = len(unanswered)
    return out


def victim_figures(
    df: pd.DataFrame, ledger: list[dict[str, Any]], victim: dict[str, Any], fault_wall: float
) -> dict[str, Any]:
    """What happened to the victim task after the fault, from the ledger and task states.

    ``victim_failed``: 1 if its final state is failed; ``victim_failed_after_s``: fault →
    first observed ``failed``/``up_for_retry`` (1 s polls); ``victim_rerun_after_s``: fault →
    ledger start of a later try; ``victim_done_after_s``: fault → its last ledger ``end``;
    ``victim_executions``: ledger starts (tries that began running).
    """
    run_id, task_id = victim["run_id"], victim["task_id"]
    rows = [r for r in ledger if r.get("run_id") == run_id and r.get("task_id") == task_id]
    starts = [r for r in rows if r.get("phase") == "start"]
    ends = [r for r in rows if r.get("phase") == "end"]
    first_try = min((r.get("try_number") or 0) for r in starts) if starts else 0
    reruns = [r["t_wall"] for r in starts if (r.get("try_number") or 0) > first_try]
    states = df[(df["type"] == "workload") & (_col(df, "event") == "task_state")
                & (_col(df, "run_id") == run_id) & (_col(df, "task_id") == task_id)]  # fmt: skip
    failing = states[states["state"].isin(["failed", "up_for_retry"])]
    final = str(states["state"].iloc[-1]) if len(states) else None
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
        "victim_failed_after_s": float(failing["t_wall"].min()) - fault_wall
        if len(failing)
        else None,
        "victim_rerun_after_s": min(reruns) - fault_wall if reruns else None,
        "victim_done_after_s": max(r["t_wall"] for r in ends) - fault_wall if ends else None,
        "victim_executions": len(starts),
        "victim_run_s": max(r["t_wall"] for r in ends) - min(r["t_wall"] for r in starts)
        if ends and starts
        else None,
    }


def _split_at(windows: pd.DataFrame, t: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outage windows from ``t`` on, and before ``t``; a window spanning ``t`` is cut in two."""
    if windows.empty or t != t:  # NaN: no fault recorded
        return windows, windows.iloc[0:0]
    after = windows[windows["end_mono"] > t].copy()
    cut = after["start_mono"] < t
    after.loc[cut, "start_wall"] += t - after.loc[cut, "start_mono"]
    after.loc[cut, "start_mono"] = t
    after["duration_s"] = after["end_mono"] - after["start_mono"]
    before = windows[windows["start_mono"] < t].copy()
    late = before["end_mono"] > t
    before.loc[late, "end_wall"] -= before.loc[late, "end_mono"] - t
    before.loc[late, "end_mono"] = t
    before["duration_s"] = before["end_mono"] - before["start_mono"]
    return after.reset_index(drop=True), before.reset_index(drop=True)


def _task_states(df: pd.DataFrame) -> list[str]:
    w = df[(df["type"] == "workload") & (_col(df, "event") == "task_state")]
    if w.empty:
        return []
    final = w.groupby(["run_id", "task_id"])["state"].last()
    return list(final)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
