"""Observations: the probe (or Locust request) events of a history as one normalised frame.

An *observation* is a ``probe`` event (or, with ``kind="request"``, a Locust ``request``
event). Probes the prober never sent (outcome ``other``, error ``overload``) are not
observations and are ignored. Observations are ordered by ``t_mono`` with a stable sort, so
equal ``t_mono`` keep the frame's (file, line) order; a *stream* is one target x endpoint.
Latency percentiles are over successful observations only, in seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

OBS_COLUMNS = [
    "t_wall",
    "t_mono",
    "target",
    "endpoint",
    "ok",
    "outcome",
    "status",
    "latency_s",
]


def column(df: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    """``df[name]``, or a column of ``default`` where the frame has none."""
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
        return pd.DataFrame(columns=OBS_COLUMNS)
    rows, targets, endpoints = _select(df, kind, target, endpoint)
    status = column(rows, "status")
    ok, outcomes = _ok_and_outcomes(rows, status)
    out = pd.DataFrame(
        {
            "t_wall": rows["t_wall"].astype(float).to_numpy(),
            "t_mono": rows["t_mono"].astype(float).to_numpy(),
            "target": targets.astype(object).to_numpy(),
            "endpoint": endpoints.astype(object).to_numpy(),
            "ok": np.array(ok, dtype=bool),
            "outcome": np.array(outcomes, dtype=object),
            "status": status.to_numpy(dtype=object),
            "latency_s": pd.to_numeric(column(rows, "latency_s"), errors="coerce").to_numpy(),
        }
    )
    return out.sort_values("t_mono", kind="stable").reset_index(drop=True)


def _select(
    df: pd.DataFrame, kind: str, target: str | None, endpoint: str | None
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The events of ``kind`` that are observations of ``target``/``endpoint``, with their
    target and endpoint columns."""
    rows = df[df["type"] == kind]
    if kind == "probe":
        overload = (column(rows, "outcome") == "other") & (column(rows, "error") == "overload")
        rows = rows[~overload.to_numpy(dtype=bool)]
        targets = column(rows, "target")
        endpoints = column(rows, "endpoint")
        if target is not None:
            keep = (targets == target).to_numpy(dtype=bool)
            rows, targets, endpoints = rows[keep], targets[keep], endpoints[keep]
    else:
        if target is not None:
            rows = rows[(column(rows, "source") == target).to_numpy(dtype=bool)]
        targets = pd.Series(["locust"] * len(rows), index=rows.index, dtype=object)
        endpoints = column(rows, "name")
    if endpoint is not None:
        keep = (endpoints == endpoint).to_numpy(dtype=bool)
        rows, targets, endpoints = rows[keep], targets[keep], endpoints[keep]
    return rows, targets, endpoints


def _ok_and_outcomes(rows: pd.DataFrame, status: pd.Series) -> tuple[list[bool], list[Any]]:
    """Each row's success (its ``ok``, else outcome ``ok``) and outcome (its own, else
    ``ok`` / ``http_error`` for a status >= 400 / ``other``)."""
    outcome = column(rows, "outcome")
    ok_raw = column(rows, "ok")
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
    return ok, outcomes


def streams(obs: pd.DataFrame) -> list[tuple[Any, Any, pd.DataFrame]]:
    """(target, endpoint, rows) per stream, in order of first appearance after sorting."""
    keys = list(zip(obs["target"], obs["endpoint"], strict=True))
    order: dict[tuple[Any, Any], list[int]] = {}
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    return [(t, e, obs.iloc[idx]) for (t, e), idx in order.items()]


def latency_percentiles(latencies: np.ndarray) -> dict[str, float | None]:
    """p50, p95 and p99 of ``latencies`` (NaN dropped); None each without any."""
    lat = latencies[~np.isnan(latencies)] if len(latencies) else latencies
    if len(lat) == 0:
        return {"latency_p50_s": None, "latency_p95_s": None, "latency_p99_s": None}
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {"latency_p50_s": float(p50), "latency_p95_s": float(p95), "latency_p99_s": float(p99)}


def basic_stats(obs: pd.DataFrame) -> dict[str, Any]:
    """Count, failures, error rate, availability and latency percentiles of ``obs``."""
    n = len(obs)
    failures = int((~obs["ok"]).sum()) if n else 0
    return {
        "count": n,
        "failures": failures,
        "error_rate": failures / n if n else None,
        "availability_pct": 100.0 * (n - failures) / n if n else None,
        **latency_percentiles(obs.loc[obs["ok"], "latency_s"].to_numpy(dtype=float)),
    }
