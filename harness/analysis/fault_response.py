"""How the probes respond to a fault: detection and recovery times, and the span of
degraded latency (the observation rules of :mod:`.observations`). Both are re-exported by
:mod:`.outages`, where callers find them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.observations import column, observations


def degraded_window(
    df: pd.DataFrame,
    baseline_end_mono: float,
    *,
    k: float = 3.0,
    window_s: float = 1.0,
    target: str | None = None,
    endpoint: str | None = None,
    kind: str = "probe",
    min_samples: int = 3,
) -> dict[str, Any] | None:
    """The span where the trailing ``window_s`` p95 latency exceeds ``k`` x the baseline p95.

    Baseline: successful observations before ``baseline_end_mono``. After it, each successful
    observation gets the p95 of successful latencies in ``(t - window_s, t]`` (needs
    ``min_samples``). The span runs from the first observation above the threshold to the
    first one after the last exceedance that is back under it (``open_end`` if none).
    Returns None if the threshold is never exceeded; raises ValueError without a baseline.
    """
    obs = observations(df, kind=kind, target=target, endpoint=endpoint)
    good = obs[obs["ok"] & obs["latency_s"].notna()].reset_index(drop=True)
    base = good.loc[good["t_mono"] < baseline_end_mono, "latency_s"].to_numpy(dtype=float)
    if len(base) == 0:
        raise ValueError("no successful observations before baseline_end_mono")
    baseline_p95 = float(np.percentile(base, 95))
    threshold = k * baseline_p95
    times = good["t_mono"].to_numpy(dtype=float)
    walls = good["t_wall"].to_numpy(dtype=float)
    lat = good["latency_s"].to_numpy(dtype=float)
    evaluated: list[tuple[int, float]] = []
    for i in range(int(np.searchsorted(times, baseline_end_mono, side="left")), len(good)):
        j = int(np.searchsorted(times, times[i] - window_s, side="right"))
        if i + 1 - j >= min_samples:
            evaluated.append((i, float(np.percentile(lat[j : i + 1], 95))))
    above = [n for n, (_, p95) in enumerate(evaluated) if p95 > threshold]
    if not above:
        return None
    first_i = evaluated[above[0]][0]
    after_last = above[-1] + 1
    open_end = after_last >= len(evaluated)
    end_i = evaluated[above[-1]][0] if open_end else evaluated[after_last][0]
    return {
        "start_mono": float(times[first_i]),
        "end_mono": float(times[end_i]),
        "start_wall": float(walls[first_i]),
        "end_wall": float(walls[end_i]),
        "duration_s": float(times[end_i] - times[first_i]),
        "baseline_p95_s": baseline_p95,
        "threshold_s": threshold,
        "peak_p95_s": max(evaluated[n][1] for n in above),
        "open_end": open_end,
    }


def recovery(
    df: pd.DataFrame,
    fault_mono: float,
    *,
    target: str | None = None,
    endpoint: str | None = None,
    sustain_s: float = 2.0,
    tolerance: float = 0.05,
    replica: str | None = None,
    kind: str = "probe",
) -> dict[str, Any]:
    """Detection and recovery times after a fault at ``fault_mono`` (seconds from the fault).

    - ``time_to_detect_s``: first failed observation at/after the fault (None if none);
    - ``time_to_first_success_s``: first success after that failure (None if none);
    - ``time_to_recover_s``: start of the first ``sustain_s`` window, beginning with a success
      after the first failure and fully observed (some observation at or after its end),
      whose success rate is >= baseline rate - ``tolerance`` (baseline: before the fault,
      1.0 if unobserved); 0.0 if nothing failed, None if never recovered or nothing was
      observed after the fault;
    - ``replacement_ready_s``: first ``lifecycle`` event with state ``ready`` at/after the
      fault (of ``replica`` if given); None if there is none.
    """
    obs = observations(df, kind=kind, target=target, endpoint=endpoint)
    t = obs["t_mono"].to_numpy(dtype=float)
    ok = obs["ok"].to_numpy(dtype=bool)
    before = ok[t < fault_mono]
    baseline = float(before.mean()) if len(before) else 1.0
    result: dict[str, Any] = {
        "fault_mono": float(fault_mono),
        "baseline_success_rate": baseline,
        "first_failure_mono": None,
        "first_success_mono": None,
        "recovered_mono": None,
        "time_to_detect_s": None,
        "time_to_first_success_s": None,
        "time_to_recover_s": None,
        "replacement_ready_s": None,
    }
    start = int(np.searchsorted(t, fault_mono, side="left"))
    failed = np.flatnonzero(~ok[start:])
    if start == len(t):
        pass  # nothing observed after the fault: unknown
    elif len(failed) == 0:
        result["time_to_recover_s"] = 0.0
    else:
        f = start + int(failed[0])
        result["first_failure_mono"] = float(t[f])
        result["time_to_detect_s"] = float(t[f] - fault_mono)
        successes = f + np.flatnonzero(ok[f:])
        if len(successes):
            s = int(successes[0])
            result["first_success_mono"] = float(t[s])
            result["time_to_first_success_s"] = float(t[s] - fault_mono)
        c = _sustained_from(t, ok, successes, sustain_s, baseline - tolerance - 1e-12)
        if c is not None:
            result["recovered_mono"] = float(t[c])
            result["time_to_recover_s"] = float(t[c] - fault_mono)
    result["replacement_ready_s"] = _replacement_ready_s(df, fault_mono, replica)
    return result


def _sustained_from(
    t: np.ndarray, ok: np.ndarray, successes: np.ndarray, sustain_s: float, min_rate: float
) -> int | None:
    """The first of ``successes`` (indices into ``t``/``ok``) that begins a ``sustain_s``
    window, fully observed (some observation at or after its end), whose success rate is
    >= ``min_rate``; None if there is none."""
    cum = np.concatenate([[0], np.cumsum(ok)])
    for c in successes:
        c = int(c)
        window_end = t[c] + sustain_s
        if len(t) == 0 or t[-1] < window_end:
            return None  # not fully observed (later candidates are neither)
        j = int(np.searchsorted(t, window_end, side="left"))
        rate = (cum[j] - cum[c]) / (j - c)
        if rate >= min_rate:
            return c
    return None


def _replacement_ready_s(df: pd.DataFrame, fault_mono: float, replica: str | None) -> float | None:
    """Seconds from the fault to the first ``lifecycle`` ``ready`` at/after it (of
    ``replica`` if given); None if there is none."""
    if not df.empty and "type" in df.columns:
        life = df[df["type"] == "lifecycle"]
        ready = life[
            (column(life, "state") == "ready").to_numpy(dtype=bool)
            & (life["t_mono"].astype(float) >= fault_mono).to_numpy(dtype=bool)
        ]
        if replica is not None:
            ready = ready[(column(ready, "replica") == replica).to_numpy(dtype=bool)]
        if len(ready):
            return float(ready["t_mono"].astype(float).min() - fault_mono)
    return None
