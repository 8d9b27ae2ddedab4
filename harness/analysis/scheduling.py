"""Scheduling figures: how fast triggered DAG runs start their first task, before vs after.

Per DAG run, trigger (acknowledged) → first task start (ledger): runs triggered before the
fault (and started before it) are the baseline; runs triggered after it measure what the
surviving (or restarted) schedulers do. A run triggered after the fault that never started
while the ledger was watched is censored at that watch time, so a stall that lasts to the
end shows as "never", not as a missing value. The largest gap between task starts counts
the open gap up to the end of observation.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.timeline import Censor, Timeline, col

QUANTILES = {"p50": 50, "p95": 95, "max": 100}


def task_start_gaps(
    ledger: list[dict[str, Any]], fault_wall: float, end_wall: float | None = None
) -> dict[str, float | None]:
    """Largest gap between consecutive task starts before and after the fault (wall s);
    after the fault it includes the open gap from the last start to ``end_wall``."""
    starts = sorted(r["t_wall"] for r in ledger if r.get("phase") == "start")
    if end_wall is not None:
        starts = [s for s in starts if s <= end_wall]
    gaps = [(b, b - a) for a, b in itertools.pairwise(starts)]
    before = [g for end, g in gaps if end < fault_wall]
    after = [g for end, g in gaps if end >= fault_wall]
    if end_wall is not None and end_wall > fault_wall and starts:
        after.append(end_wall - starts[-1])  # the open gap (a stall to the end counts)
    return {
        "task_start_gap_before_s": max(before) if before else None,
        "task_start_gap_after_s": max(after) if after else None,
    }


def _triggers(df: pd.DataFrame) -> dict[str, float]:
    w = df[(df["type"] == "workload") & (col(df, "event") == "trigger")
           & (col(df, "phase") == "ok")]  # fmt: skip
    return dict(zip(col(w, "run_id"), w["t_wall"].astype(float), strict=False))


def _first_starts(ledger: list[dict[str, Any]], runs: dict[str, float]) -> dict[str, float]:
    first: dict[str, float] = {}
    for row in ledger:
        run = row.get("run_id")
        if row.get("phase") == "start" and run in runs:
            first[run] = min(first.get(run, math.inf), float(row["t_wall"]))
    return first


def _quantiles(prefix: str, values: list[float], lower: list[float], censor: Censor,
               ) -> dict[str, float | None]:  # fmt: skip
    """p50/p95/max of ``values`` (+inf for unstarted runs, whose ``lower`` bound is the
    time watched); a quantile that lands on an unstarted run is censored."""
    out: dict[str, float | None] = {}
    for name, q in QUANTILES.items():
        key = f"{prefix}_{name}_s"
        if not values:
            out[key] = None
            continue
        value = float(np.percentile(values, q, method="inverted_cdf"))
        if math.isinf(value):
            bound = float(np.percentile(lower, q, method="inverted_cdf"))
            out[key] = censor.value(key, None, bound)
        else:
            out[key] = value
    return out


def scheduling_latency(
    df: pd.DataFrame, ledger: list[dict[str, Any]], timeline: Timeline, censor: Censor
) -> dict[str, Any]:
    """Trigger → first task start per run, before vs after the fault.

    ``start_latency_before_*``: runs triggered and started before the fault;
    ``start_latency_after_*``: runs triggered at/after it (an unstarted one is +inf);
    ``start_latency_caught_*``: runs the fault caught waiting (triggered before it, first
    task started after it) — where a dead scheduler's cost shows when its replacement is
    back before the next trigger;
    ``scheduling_resumed_s``: fault → first start of a run triggered after it;
    ``start_latency_points``: ``[t_trigger - t_fault, latency or None]`` per run (a scatter).
    """
    fault, end = timeline.fault_wall, timeline.ledger_end_wall
    triggered = _triggers(df)
    first = _first_starts(ledger, triggered)
    before = [first[r] - t for r, t in triggered.items() if r in first and first[r] < fault]
    after_runs = {r: t for r, t in triggered.items() if t >= fault and (end is None or t < end)}
    after = [first[r] - t if r in first else math.inf for r, t in after_runs.items()]
    watched = [first[r] - t if r in first else (end or t) - t for r, t in after_runs.items()]
    caught = {r: t for r, t in triggered.items() if t < fault and first.get(r, math.inf) >= fault}
    caught_lat = [first[r] - t if r in first else math.inf for r, t in caught.items()]
    caught_watched = [first[r] - t if r in first else (end or t) - t for r, t in caught.items()]
    starts_after = [first[r] for r in after_runs if r in first]
    resumed = min(starts_after) - fault if starts_after else None
    observed = end - fault if end is not None and not math.isnan(fault) else None
    out: dict[str, Any] = {
        "scheduling_runs_before": len(before),
        "scheduling_runs_after": len(after_runs),
        "scheduling_runs_never_started": sum(math.isinf(a) for a in after),
        "scheduling_resumed_s": censor.value("scheduling_resumed_s", resumed,
                                             observed if after_runs else None),
        **_quantiles("start_latency_before", before, before, censor),
        **_quantiles("start_latency_after", after, watched, censor),
        "scheduling_runs_caught": len(caught),
        **_quantiles("start_latency_caught", caught_lat, caught_watched, censor),
        "start_latency_points": sorted(
            [round(t - fault, 3), round(first[r] - t, 3) if r in first else None]
            for r, t in triggered.items() if not math.isnan(fault)
        ),
    }  # fmt: skip
    return out


def dag_run_latency(df: pd.DataFrame) -> dict[str, Any]:
    """Trigger acknowledged → run ``success``/``failed``, from the workload events."""
    w = df[df["type"] == "workload"] if "type" in df else df
    trig = w[(col(w, "event") == "trigger") & (col(w, "phase") == "ok")]
    ends = w[(col(w, "event") == "run_state") & col(w, "state").isin(["success", "failed"])]
    acked = dict(zip(col(trig, "run_id"), trig["t_mono"].astype(float), strict=False))
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


def excess(censor: Censor, metric: str, after: str, before: str, figures: dict[str, Any],
           ) -> float | None:  # fmt: skip
    """``figures[after] - figures[before]``; censored when ``after`` is."""
    a, b = figures.get(after), figures.get(before)
    if b is None:
        return None
    if a is None:
        bound = censor.observed.get(after)
        return censor.value(metric, None, None if bound is None else bound - b)
    return a - b


def ratio(censor: Censor, metric: str, top: str, bottom: str, figures: dict[str, Any],
          ) -> float | None:  # fmt: skip
    """``figures[top] / figures[bottom]``; censored when ``top`` is and ``bottom`` is known."""
    a, b = figures.get(top), figures.get(bottom)
    if not b:
        return None
    if a is None:
        bound = censor.observed.get(top)
        return censor.value(metric, None, None if bound is None else bound / b)
    return a / b
