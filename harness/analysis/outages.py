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
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

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
_OBS_COLUMNS = [
    "t_wall",
    "t_mono",
    "target",
    "endpoint",
    "ok",
    "outcome",
    "status",
    "latency_s",
]
PHASES = ("before", "during", "after")


def _column(df: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([default] * len(df), index=df.index, dtype=object)


def observations(
    df: pd.DataFrame,
    *,
    kind: str = "probe",
    target: str | None = None,
    endpoint: str | None = None,
) -> pd.DataFrame:
    """Observation rows normalized to ``t_wall, t_mono, target, endpoint, ok, outcome, status,
    latency_s``, stably ordered by ``t_mono``.

    ``kind="probe"``: probe events; ``target``/``endpoint`` filter those fields.
    ``kind="request"``: Locust request events; ``endpoint`` is the request ``name`` and
    ``target`` is ``"locust"`` (the ``target`` argument filters on ``source``).
    """
    if kind not in ("probe", "request"):
        raise ValueError(f"kind must be 'probe' or 'request', not {kind!r}")
    if df.empty or "type" not in df.columns:
        return pd.DataFrame(columns=_OBS_COLUMNS)
    rows = df[df["type"] == kind]
    if kind == "probe":
        overload = (_column(rows, "outcome") == "other") & (_column(rows, "error") == "overload")
        rows = rows[~overload.to_numpy(dtype=bool)]
        targets = _column(rows, "target")
        endpoints = _column(rows, "endpoint")
        if target is not None:
            keep = (targets == target).to_numpy(dtype=bool)
            rows, targets, endpoints = rows[keep], targets[keep], endpoints[keep]
    else:
        if target is not None:
            rows = rows[(_column(rows, "source") == target).to_numpy(dtype=bool)]
        targets = pd.Series(["locust"] * len(rows), index=rows.index, dtype=object)
        endpoints = _column(rows, "name")
    if endpoint is not None:
        keep = (endpoints == endpoint).to_numpy(dtype=bool)
        rows, targets, endpoints = rows[keep], targets[keep], endpoints[keep]

    outcome = _column(rows, "outcome")
    status = _column(rows, "status")
    ok_raw = _column(rows, "ok")
    ok = [
        bool(o) if isinstance(o, bool | np.bool_) else (oc == "ok")
        for o, oc in zip(ok_raw, outcome, strict=True)
    ]
    outcomes = []
    for o, oc, st in zip(ok, outcome, status, strict=True):
        if isinstance(oc, str):
            outcomes.append(oc)
        elif o:
            outcomes.append("ok")
        elif st is not None and not pd.isna(st) and float(st) >= 400:
            outcomes.append("http_error")
        else:
            outcomes.append("other")
    out = pd.DataFrame(
        {
            "t_wall": rows["t_wall"].astype(float).to_numpy(),
            "t_mono": rows["t_mono"].astype(float).to_numpy(),
            "target": targets.astype(object).to_numpy(),
            "endpoint": endpoints.astype(object).to_numpy(),
            "ok": np.array(ok, dtype=bool),
            "outcome": np.array(outcomes, dtype=object),
            "status": status.to_numpy(dtype=object),
            "latency_s": pd.to_numeric(_column(rows, "latency_s"), errors="coerce").to_numpy(),
        }
    )
    return out.sort_values("t_mono", kind="stable").reset_index(drop=True)


def _streams(obs: pd.DataFrame) -> list[tuple[Any, Any, pd.DataFrame]]:
    """(target, endpoint, rows) per stream, in order of first appearance after sorting."""
    keys = list(zip(obs["target"], obs["endpoint"], strict=True))
    order: dict[tuple[Any, Any], list[int]] = {}
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    return [(t, e, obs.iloc[idx]) for (t, e), idx in order.items()]


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
    for t, e, rows in _streams(obs):
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


def _latency_percentiles(latencies: np.ndarray) -> dict[str, float | None]:
    lat = latencies[~np.isnan(latencies)] if len(latencies) else latencies
    if len(lat) == 0:
        return {"latency_p50_s": None, "latency_p95_s": None, "latency_p99_s": None}
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {"latency_p50_s": float(p50), "latency_p95_s": float(p95), "latency_p99_s": float(p99)}


def _basic_stats(obs: pd.DataFrame) -> dict[str, Any]:
    n = len(obs)
    failures = int((~obs["ok"]).sum()) if n else 0
    return {
        "count": n,
        "failures": failures,
        "error_rate": failures / n if n else None,
        "availability_pct": 100.0 * (n - failures) / n if n else None,
        **_latency_percentiles(obs.loc[obs["ok"], "latency_s"].to_numpy(dtype=float)),
    }


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
        rows.append({"phase": phase, "start_mono": lo, "end_mono": hi, **_basic_stats(part)})
    return pd.DataFrame(rows).set_index("phase")


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
        cum = np.concatenate([[0], np.cumsum(ok)])
        for c in successes:
            c = int(c)
            window_end = t[c] + sustain_s
            if len(t) == 0 or t[-1] < window_end:
                break  # not fully observed (later candidates are neither)
            j = int(np.searchsorted(t, window_end, side="left"))
            rate = (cum[j] - cum[c]) / (j - c)
            if rate >= baseline - tolerance - 1e-12:
                result["recovered_mono"] = float(t[c])
                result["time_to_recover_s"] = float(t[c] - fault_mono)
                break
    if not df.empty and "type" in df.columns:
        life = df[df["type"] == "lifecycle"]
        ready = life[
            (_column(life, "state") == "ready").to_numpy(dtype=bool)
            & (life["t_mono"].astype(float) >= fault_mono).to_numpy(dtype=bool)
        ]
        if replica is not None:
            ready = ready[(_column(ready, "replica") == replica).to_numpy(dtype=bool)]
        if len(ready):
            result["replacement_ready_s"] = float(ready["t_mono"].astype(float).min() - fault_mono)
    return result


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
    stats = _basic_stats(obs)
    streams = []
    for target, endpoint, rows in _streams(obs):
        w = windows[(windows["target"] == target) & (windows["endpoint"] == endpoint)]
        s = _basic_stats(rows)
        streams.append(
            {
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
        )
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
        "streams": streams,
    }
