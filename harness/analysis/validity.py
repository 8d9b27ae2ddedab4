"""Is a repetition valid evidence? The reasons it is not, from its own history.

A repetition is invalid — excluded from figures, reported, rerun — when the harness could
not observe what it claims to measure:

- the prober fell behind: it sent fewer than ``MIN_ACHIEVED`` of its planned probes, or went
  more than ``MAX_SILENT_INTERVALS`` intervals without sending one (a stall or a dead
  prober reads as "no downtime" otherwise);
- the baseline was not clean: LB probes failed between the steady state and the fault;
- the fault was not confirmed: it failed, or its target was never seen down (a fault that
  leaves its target up by design — a CPU quota, a skewed clock, a memory limit, a full disk,
  a snapshot — is confirmed by its ``ok`` event, which the nemesis records only after it
  verified the effect);
- history is missing: no probes, no workload events, or the repetition did not finish;
- an observer reported an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.timeline import Timeline, col, markers
from harness.core.airflow_api import LIVENESS

MIN_ACHIEVED = 0.95
MAX_SILENT_INTERVALS = 5
DOWN_STATES = frozenset({"exited", "not_ready", "out_of_lb", "restarting", "terminating",
                         "deleted", "endpoint_removed", "died"})  # fmt: skip


def prober_coverage(df: pd.DataFrame, timeline: Timeline) -> dict[str, Any]:
    """Planned vs sent probes of the 50 ms prober (``source == "prober"``) up to ``run_end``."""
    start = markers(df, "prober_start")
    interval = _interval(start)
    probes = df[(df["type"] == "probe") & (col(df, "source") == "prober")]
    if probes.empty or interval is None:
        return {"planned": 0, "sent": 0, "achieved_fraction": 0.0, "longest_silence_s": None}
    t0 = float(probes["t_mono"].min())
    end = timeline.run_end_mono if timeline.run_end_mono is not None else float(
        probes["t_mono"].max())  # fmt: skip
    streams = probes.groupby(["target", "endpoint"]).ngroups
    sends = np.sort(probes.loc[probes["t_mono"] <= end, "t_mono"].to_numpy(dtype=float))
    planned = max(1, math.floor((end - t0) / interval) + 1) * streams
    ticks = np.unique(np.floor((sends - t0) / interval + 0.5)) * interval + t0  # per tick
    silence = np.diff(np.concatenate([ticks, [end]])) if len(ticks) else [end - t0]
    return {
        "interval_s": interval,
        "planned": int(planned),
        "sent": len(sends),
        "achieved_fraction": round(min(1.0, len(sends) / planned), 4),
        "longest_silence_s": round(float(np.max(silence)), 3) if len(silence) else 0.0,
    }


def _interval(start: pd.DataFrame) -> float | None:
    for detail in col(start, "detail"):
        if isinstance(detail, dict) and detail.get("source", "prober") == "prober":
            return float(detail.get("interval_s") or 0) or None
    return None


def baseline_failures(df: pd.DataFrame, timeline: Timeline) -> int:
    lo, hi = timeline.baseline_window()
    p = df[(df["type"] == "probe") & (col(df, "target") == "lb")
           & (col(df, "endpoint") == LIVENESS)]  # fmt: skip
    p = p[(p["t_mono"] >= lo) & (p["t_mono"] < hi)]
    return int((~p["ok"].astype(bool)).sum()) if len(p) else 0


def fault_problems(df: pd.DataFrame, timeline: Timeline, targets: list[str]) -> list[str]:
    """Why the fault cannot be taken as injected: it failed, or a target never went down."""
    faults = df[df["type"] == "fault"]
    if faults.empty:
        return ["no fault was injected"]
    faults = faults[col(faults, "op") != "none"]  # a marker, nothing to confirm
    out = [f"fault {r['op']} {r['target']} failed: {r.get('detail')}"
           for r in faults[col(faults, "phase") == "fail"].to_dict("records")]  # fmt: skip
    life = df[(df["type"] == "lifecycle") & (df["t_mono"] >= timeline.fault_mono)]
    if timeline.run_end_mono is not None:
        life = life[life["t_mono"] <= timeline.run_end_mono]
    down = set(col(life, "replica")[col(life, "state").isin(DOWN_STATES)].dropna())
    out += [f"the fault's target {t} was never seen down" for t in targets if t not in down]
    return out


def invalid_reasons(
    df: pd.DataFrame, timeline: Timeline, targets: list[str], *, soak: bool = False
) -> tuple[list[str], dict[str, Any]]:
    """(reasons, prober coverage); no reasons means valid. ``targets``: the replicas the
    fault hit; in a ``soak`` one confirmed fault of many suffices (a scheduled fault may
    find its target already down)."""
    reasons: list[str] = []
    timeout = markers(df, "trigger_timeout")
    if len(timeout):
        reasons.append("the trigger condition never held within "
                       f"{timeout['detail'].iloc[0].get('timeout_s')} s")  # fmt: skip
    if timeline.run_end_mono is None:
        reasons.append("the repetition did not finish (no run_end marker)")
    if df.empty or not (df["type"] == "workload").any():
        reasons.append("no workload history")
    coverage = prober_coverage(df, timeline)
    if coverage["sent"] == 0:
        reasons.append("no probe history")
    else:
        if coverage["achieved_fraction"] < MIN_ACHIEVED:
            reasons.append(f"the prober sent {coverage['achieved_fraction']:.1%} of its planned "
                           f"probes (< {MIN_ACHIEVED:.0%})")  # fmt: skip
        silent = coverage["longest_silence_s"] or 0.0
        if silent > MAX_SILENT_INTERVALS * coverage["interval_s"]:
            reasons.append(f"the prober sent nothing for {silent:.2f} s "
                           f"(> {MAX_SILENT_INTERVALS} intervals)")  # fmt: skip
    failed = baseline_failures(df, timeline)
    if failed:
        reasons.append(f"{failed} LB probe(s) failed in the baseline window")
    problems = fault_problems(df, timeline, targets)
    if soak and "no fault was injected" not in problems:
        # one confirmed fault of many suffices; only gray ones (nothing must go down): ok
        confirmed = len(set(targets)) - sum("never seen down" in p for p in problems)
        problems = [] if confirmed > 0 or not targets else ["no scheduled fault was confirmed"]
    reasons += problems
    errors = markers(df, "observer_error")
    reasons += [f"observer error: {d}" for d in col(errors, "detail")]
    return reasons, coverage
