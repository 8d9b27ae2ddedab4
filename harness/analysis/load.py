"""What the Locust users saw: requests, failures and latency overall and per phase."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.outages import observations
from harness.analysis.timeline import Timeline


def _stats(obs: pd.DataFrame) -> dict[str, Any]:
    n = len(obs)
    failures = int((~obs["ok"]).sum()) if n else 0
    lat = obs.loc[obs["ok"], "latency_s"].to_numpy(dtype=float)
    lat = lat[~np.isnan(lat)]
    p = np.percentile(lat, [50, 95, 99]) if len(lat) else [None] * 3
    return {"requests": n, "failures": failures, "error_rate": failures / n if n else None,
            "p50_s": _f(p[0]), "p95_s": _f(p[1]), "p99_s": _f(p[2])}  # fmt: skip


def _f(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def load_summary(
    df: pd.DataFrame, timeline: Timeline, users: int, recovered_mono: float | None
) -> dict[str, Any]:
    """``{"users", "requests", "failures", "error_rate", "p50_s", "p95_s", "p99_s",
    "phases": {"before", "during", "after"}}``: before = the baseline window, during =
    fault → recovery (or the end if never recovered), after = recovery → run end."""
    obs = observations(df, kind="request")
    lo, fault = timeline.baseline_window()
    end = timeline.run_end_mono if timeline.run_end_mono is not None else math.inf
    back = recovered_mono if recovered_mono is not None else end
    t = obs["t_mono"] if len(obs) else pd.Series(dtype=float)
    bounds = {"before": (lo, fault), "during": (fault, back), "after": (back, end)}
    phases = {name: _stats(obs[(t >= a) & (t < b)]) for name, (a, b) in bounds.items()}
    return {"users": users, **_stats(obs[t < end]), "phases": phases}
