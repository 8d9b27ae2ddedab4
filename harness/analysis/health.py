"""What ``/api/v2/monitor/health`` said after the fault — the body, not the status code."""

from __future__ import annotations

import itertools

import pandas as pd

from harness.analysis.timeline import col
from harness.core.airflow_api import HEALTH

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def health_unhealthy(
    df: pd.DataFrame, fault_mono: float, run_end: float | None
) -> dict[str, float | None]:
    """Seconds after the fault that ``/api/v2/monitor/health`` (through the LB) reported each
    component unhealthy (0.5 s samples; a sample counts for at most 2 s)."""
    probes = df[df["type"] == "probe"]
    h = probes[(col(probes, "endpoint") == HEALTH) & (col(probes, "target") == "lb")]
    h = h[h["t_mono"] >= fault_mono] if fault_mono == fault_mono else h
    if run_end is not None:
        h = h[h["t_mono"] <= run_end]
    if h.empty or "body" not in h:
        return {}
    out: dict[str, float | None] = {}
    times = h["t_mono"].astype(float).to_numpy()
    steps = [b - a for a, b in itertools.pairwise(times)] + [0.5]
    for component in COMPONENTS:
        total = 0.0
        for body, step in zip(h["body"], steps, strict=True):
            status = (body or {}).get(component, {}) if isinstance(body, dict) else {}
            if isinstance(status, dict) and status.get("status") == "unhealthy":
                total += min(step, 2.0)
        out[f"health_{component}_unhealthy_s"] = round(total, 3)
    unanswered = h[~h["ok"].astype(bool)] if "ok" in h else h.iloc[0:0]
    out["health_unanswered"] = len(unanswered)
    return out
