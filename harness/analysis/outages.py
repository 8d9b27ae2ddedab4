"""Pure, deterministic analysis of a run's event history (a :func:`history.read_history` frame).

Conventions shared by every function here:

- An *observation* is a ``probe`` event (or, with ``kind="request"``, a Locust ``request``
  event). Probes the prober never sent (outcome ``other``, error ``overload``) are not
  observations and are ignored.
- Observations are ordered by ``t_mono`` with a stable sort, so equal ``t_mono`` keep the
  frame's (file, line) order.
- An outage starts at the send time of the first failed observation and ends at the send
  time of the next successful one on the same stream (target x endpoint); streams are
  independent.
- Latency percentiles are over successful observations only, in seconds.

What an observation is lives in :mod:`.observations`, the times and spans after a fault
(:func:`recovery`, :func:`degraded_window`) in :mod:`.fault_response`; both are
re-exported here with the outage windows, the phase statistics and the run summary.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.fault_response import degraded_window, recovery
from harness.analysis.observations import basic_stats, observations, streams

__all__ = [
    "degraded_window",
    "downtime_s",
    "merge_windows",
    "observations",
    "outage_windows",
    "phase_stats",
    "recovery",
    "summarize_probes",
]

WINDOW_COLUMNS = [
    "target",
    "endpoint",
    "start_wall",
    "end_wall",
    "start_mono",
    "end_mono",
    "duration_s",
    "failures",
    "outcomes",
    "open_start",
    "open_end",
]
PHASES = ("before", "during", "after")


def _stream_windows(
    target: Any, endpoint: Any, rows: pd.DataFrame, run_end_mono: float | None
) -> list[dict[str, Any]]:
    t_wall = rows["t_wall"].to_numpy()
    t_mono = rows["t_mono"].to_numpy()
    ok = rows["ok"].to_numpy()
    outcome = rows["outcome"].to_numpy()
    windows: list[dict[str, Any]] = []
    start: int | None = None
    counts: Counter[str] = Counter()

    def emit(end_wall: float, end_mono: float, open_end: bool) -> None:
        assert start is not None
        windows.append(
            {
                "target": target,
                "endpoint": endpoint,
                "start_wall": float(t_wall[start]),
                "end_wall": float(end_wall),
                "start_mono": float(t_mono[start]),
                "end_mono": float(end_mono),
                "duration_s": float(end_mono - t_mono[start]),
                "failures": int(sum(counts.values())),
                "outcomes": dict(sorted(counts.items())),
                "open_start": start == 0,
                "open_end": open_end,
            }
        )

    for i in range(len(rows)):
        if not ok[i]:
            if start is None:
                start, counts = i, Counter()
            counts[str(outcome[i])] += 1
        elif start is not None:
            emit(t_wall[i], t_mono[i], False)
            start = None
    if start is not None:
        end_mono = float(t_mono[-1])
        end_wall = float(t_wall[-1])
        if run_end_mono is not None and run_end_mono > end_mono:
            end_wall += run_end_mono - end_mono
            end_mono = float(run_end_mono)
        emit(end_wall, end_mono, True)
    return windows


def outage_windows(
    df: pd.DataFrame,
    *,
    target: str | None = None,
    endpoint: str | None = None,
    kind: str = "probe",
    run_end_mono: float | None = None,
) -> pd.DataFrame:
    """Outages per (target, endpoint) stream, ordered by start then stream.

    Columns: :data:`WINDOW_COLUMNS`. ``outcomes`` is a dict of failure outcome counts;
    ``open_start`` means the stream's first observation already failed; ``open_end`` means it
    was still failing at its last observation, in which case the window ends at that
    observation's send time, or at ``run_end_mono`` if later.
    """
    obs = observations(df, kind=kind, target=target, endpoint=endpoint)
    windows: list[dict[str, Any]] = []
    for t, e, rows in streams(obs):
        windows.extend(_stream_windows(t, e, rows, run_end_mono))
    out = pd.DataFrame(windows, columns=WINDOW_COLUMNS)
    if out.empty:
        return out
    out["_t"] = out["target"].astype(str)
    out["_e"] = out["endpoint"].astype(str)
    out = out.sort_values(["start_mono", "_t", "_e"], kind="stable")
    return out.drop(columns=["_t", "_e"]).reset_index(drop=True)


def downtime_s(windows: pd.DataFrame) -> float:
    """Total duration of ``windows`` (summed per stream; see :func:`merge_windows` for union)."""
    if windows is None or len(windows) == 0:
        return 0.0
    return float(windows["duration_s"].sum())


def merge_windows(windows: pd.DataFrame) -> list[dict[str, float]]:
    """Union of windows over all streams: [{start_mono, end_mono, start_wall, end_wall}]."""
    if windows is None or len(windows) == 0:
        return []
    w = windows.sort_values(["start_mono", "end_mono"], kind="stable")
    merged: list[dict[str, float]] = []
    for row in w.itertuples(index=False):
        if merged and row.start_mono <= merged[-1]["end_mono"]:
            if row.end_mono > merged[-1]["end_mono"]:
                merged[-1]["end_mono"] = float(row.end_mono)
                merged[-1]["end_wall"] = float(row.end_wall)
        else:
            merged.append(
                {
                    "start_mono": float(row.start_mono),
                    "end_mono": float(row.end_mono),
                    "start_wall": float(row.start_wall),
                    "end_wall": float(row.end_wall),
                }
            )
    return merged


def phase_stats(
    df: pd.DataFrame,
    fault_start_mono: float,
    fault_end_mono: float | None = None,
    *,
    target: str | None = None,
    endpoint: str | None = None,
    kind: str = "probe",
) -> pd.DataFrame:
    """Stats per phase, indexed ``before`` / ``during`` / ``after``.

    before: ``t < fault_start``; during: ``fault_start <= t < fault_end``; after: the rest.
    With ``fault_end_mono=None`` (an instantaneous fault such as a kill) ``during`` lasts until
    the end of the first outage (union over the selected streams) that ends after the fault,
    and is empty if there is none. Columns: start_mono, end_mono, count, failures,
    error_rate, availability_pct, latency_p50_s, latency_p95_s, latency_p99_s.
    """
    obs = observations(df, kind=kind, target=target, endpoint=endpoint)
    if fault_end_mono is None:
        fault_end_mono = fault_start_mono
        for w in merge_windows(outage_windows(df, target=target, endpoint=endpoint, kind=kind)):
            if w["end_mono"] > fault_start_mono:
                fault_end_mono = max(fault_start_mono, w["end_mono"])
                break
    if fault_end_mono < fault_start_mono:
        raise ValueError("fault_end_mono is before fault_start_mono")
    t = obs["t_mono"]
    bounds = {
        "before": (-np.inf, fault_start_mono),
        "during": (fault_start_mono, fault_end_mono),
        "after": (fault_end_mono, np.inf),
    }
    rows = []
    for phase in PHASES:
        lo, hi = bounds[phase]
        part = obs[(t >= lo) & (t < hi)]
        rows.append({"phase": phase, "start_mono": lo, "end_mono": hi, **basic_stats(part)})
    return pd.DataFrame(rows).set_index("phase")


def _outage_list(merged: list[dict[str, float]]) -> list[dict[str, float]]:
    return [
        {
            "start": w["start_wall"],
            "end": w["end_wall"],
            "duration_s": w["end_mono"] - w["start_mono"],
        }
        for w in merged
    ]


def summarize_probes(df: pd.DataFrame, *, run_end_mono: float | None = None) -> dict[str, Any]:
    """Run summary of all probes.

    ``downtime_s``/``outages`` (``[{start, end, duration_s}]``, unix seconds) cover the union
    of outages over all streams (time when anything probed was down; for a single URL simply
    its outages); ``streams`` has the per target/endpoint breakdown with full windows.
    """
    obs = observations(df)
    windows = outage_windows(df, run_end_mono=run_end_mono)
    merged = merge_windows(windows)
    outages = _outage_list(merged)
    stats = basic_stats(obs)
    per_stream = [
        _stream_summary(target, endpoint, rows, windows) for target, endpoint, rows in streams(obs)
    ]
    return {
        "downtime_s": float(sum(o["duration_s"] for o in outages)),
        "outages": outages,
        "probes": stats["count"],
        "failures": stats["failures"],
        "error_rate": stats["error_rate"],
        "availability_pct": stats["availability_pct"],
        "latency_p50_s": stats["latency_p50_s"],
        "latency_p95_s": stats["latency_p95_s"],
        "latency_p99_s": stats["latency_p99_s"],
        "outcomes": dict(sorted(Counter(obs["outcome"]).items())),
        "open_start": bool(windows["open_start"].any()) if len(windows) else False,
        "open_end": bool(windows["open_end"].any()) if len(windows) else False,
        "streams": per_stream,
    }


def _stream_summary(
    target: Any, endpoint: Any, rows: pd.DataFrame, windows: pd.DataFrame
) -> dict[str, Any]:
    """One stream's part of :func:`summarize_probes`: its stats and full outage windows."""
    w = windows[(windows["target"] == target) & (windows["endpoint"] == endpoint)]
    s = basic_stats(rows)
    return {
        "target": target,
        "endpoint": endpoint,
        "probes": s.pop("count"),
        **s,
        "outcomes": dict(sorted(Counter(rows["outcome"]).items())),
        "downtime_s": downtime_s(w),
        "outages": [
            {
                "start": r["start_wall"],
                "end": r["end_wall"],
                "duration_s": r["duration_s"],
                "start_mono": r["start_mono"],
                "end_mono": r["end_mono"],
                "failures": r["failures"],
                "outcomes": r["outcomes"],
                "open_start": bool(r["open_start"]),
                "open_end": bool(r["open_end"]),
            }
            for r in w.to_dict("records")
        ],
    }
