"""Recovery curves: a repetition's probe streams binned over time, with faults and lifecycle.

Time is seconds since the fault (the first fault ``invoke``), on the monotonic clock. A
bin holds the probes *sent* in ``[t, t + bin_s)``; success and error rates are fractions
of those probes, latency percentiles are over the successful ones (as in
:mod:`harness.analysis.outages`, whose observation and outage rules apply unchanged).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import outages as analysis
from harness.analysis.links import link_label, link_windows
from harness.core.faultops import UNDO
from harness.core.history import OUTCOMES

__all__ = ["RecoveryCurve", "binned", "fault_time", "lifecycle_events", "recovery_curve"]

LB = "lb"
FAILURE_OUTCOMES = tuple(o for o in OUTCOMES if o != "ok")
BIN_COLUMNS = [
    "t_s",
    "count",
    "ok",
    "failures",
    "success_rate",
    "error_rate",
    *(f"error_rate_{o}" for o in FAILURE_OUTCOMES),
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
]


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index)


def fault_time(df: pd.DataFrame) -> float:
    """``t_mono`` of the first fault ``invoke``, else the ``fault_start`` marker, else NaN."""
    if df.empty or "type" not in df.columns:
        return math.nan
    faults = df[(df["type"] == "fault") & (_col(df, "phase") == "invoke")]
    if len(faults):
        return float(faults["t_mono"].astype(float).min())
    marker = df[(df["type"] == "marker") & (_col(df, "name") == "fault_start")]
    return float(marker["t_mono"].astype(float).min()) if len(marker) else math.nan


def main_streams(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(target, endpoint) per probed target, its most-probed endpoint; ``lb`` first."""
    obs = analysis.observations(df)
    if obs.empty:
        return []
    counts = obs.groupby(["target", "endpoint"]).size().reset_index(name="n")
    counts = counts.sort_values(["target", "n"], ascending=[True, False], kind="stable")
    best = counts.drop_duplicates("target")
    streams = [(str(t), str(e)) for t, e in zip(best["target"], best["endpoint"], strict=True)]
    return sorted(streams, key=lambda s: (s[0] != LB, s[0]))


def binned(obs: pd.DataFrame, t0: float, bin_s: float = 0.25) -> pd.DataFrame:
    """Per-bin stats of observations (an :func:`analysis.observations` frame).

    Columns :data:`BIN_COLUMNS`; ``t_s`` is the bin start relative to ``t0``. Bins between
    the first and the last observation are all present; empty ones have count 0 and NaN
    rates.
    """
    if obs.empty:
        return pd.DataFrame(columns=BIN_COLUMNS)
    rel = obs["t_mono"].to_numpy(dtype=float) - t0
    idx = np.floor(rel / bin_s + 1e-9).astype(int)
    g = pd.DataFrame(
        {
            "bin": idx,
            "ok": obs["ok"].to_numpy(dtype=bool),
            "outcome": obs["outcome"].to_numpy(dtype=object),
            "latency_s": obs["latency_s"].to_numpy(dtype=float),
        }
    )
    full = pd.RangeIndex(idx.min(), idx.max() + 1, name="bin")
    count = g.groupby("bin").size().reindex(full, fill_value=0)
    ok = g.groupby("bin")["ok"].sum().reindex(full, fill_value=0)
    denom = count.where(count > 0)
    out = pd.DataFrame(index=full)
    out["t_s"] = full.to_numpy() * bin_s
    out["count"] = count.astype(int)
    out["ok"] = ok.astype(int)
    out["failures"] = out["count"] - out["ok"]
    out["success_rate"] = ok / denom
    out["error_rate"] = out["failures"] / denom
    fails = g[~g["ok"]]
    for o in FAILURE_OUTCOMES:
        n = fails[fails["outcome"] == o].groupby("bin").size().reindex(full, fill_value=0)
        out[f"error_rate_{o}"] = n / denom
    good = g[g["ok"] & g["latency_s"].notna()]
    for q, name in ((0.5, "latency_p50_s"), (0.95, "latency_p95_s"), (0.99, "latency_p99_s")):
        out[name] = good.groupby("bin")["latency_s"].quantile(q).reindex(full)
    return out.reset_index(drop=True)[BIN_COLUMNS]


def lifecycle_events(df: pd.DataFrame, t0: float) -> pd.DataFrame:
    """Faults and lifecycle events: ``t_s`` (since ``t0``), ``replica``, ``state``, ``label``.

    A fault ``invoke`` becomes state ``killed`` for ``kill`` (else the op's name, e.g.
    ``pause``) on its target; lifecycle states are those of :data:`history.LIFECYCLE_STATES`.
    """
    cols = ["t_s", "replica", "state", "label"]
    if df.empty or "type" not in df.columns:
        return pd.DataFrame(columns=cols)
    rows: list[dict[str, Any]] = []
    faults = df[(df["type"] == "fault") & (_col(df, "phase") == "invoke")]
    for r in faults.to_dict("records"):
        op = str(r.get("op"))
        state = "killed" if op == "kill" else op
        rows.append(
            {
                "t_s": float(r["t_mono"]) - t0,
                "replica": str(r.get("target")),
                "state": state,
                "label": f"{op} {r.get('target')} (fault)",
            }
        )
    life = df[df["type"] == "lifecycle"]
    for r in life.to_dict("records"):
        rows.append(
            {
                "t_s": float(r["t_mono"]) - t0,
                "replica": str(r.get("replica")),
                "state": str(r.get("state")),
                "label": str(r.get("state")),
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("t_s", kind="stable").reset_index(drop=True)


@dataclass
class RecoveryCurve:
    """One repetition's recovery curve; all times in seconds since the fault.

    ``streams`` maps a probed target (``lb`` first, then each replica) to its binned
    stats; ``outages`` are the load balancer stream's outages (start, end); ``marks``
    holds the key moments: ``fault``, ``replacement_ready``, ``back_in_lb``, ``recovered``
    (None if it did not happen).
    """

    t0_mono: float
    bin_s: float
    streams: dict[str, pd.DataFrame]
    endpoints: dict[str, str]
    events: pd.DataFrame
    outages: list[tuple[float, float]]
    marks: dict[str, float | None]
    fault_label: str
    span: tuple[float, float]
    figures: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[str, float, float]] = field(default_factory=list)  # (link, from, to)

    @property
    def lb(self) -> pd.DataFrame:
        return self.streams.get(LB, pd.DataFrame(columns=BIN_COLUMNS))


def recovery_curve(
    df: pd.DataFrame, *, bin_s: float = 0.25, figures: dict[str, Any] | None = None
) -> RecoveryCurve:
    """The recovery curve of a repetition's history (``figures``: its summary figures)."""
    figures = figures or {}
    t0 = fault_time(df)
    obs_all = analysis.observations(df)
    if math.isnan(t0):
        t0 = float(obs_all["t_mono"].min()) if len(obs_all) else 0.0
    streams: dict[str, pd.DataFrame] = {}
    endpoints: dict[str, str] = {}
    for target, endpoint in main_streams(df):
        obs = analysis.observations(df, target=target, endpoint=endpoint)
        streams[target] = binned(obs, t0, bin_s)
        endpoints[target] = endpoint
    events = lifecycle_events(df, t0)
    run_end = df[(df["type"] == "marker") & (_col(df, "name") == "run_end")]["t_mono"]
    run_end_mono = float(run_end.min()) if len(run_end) else None
    outages: list[tuple[float, float]] = []
    if LB in endpoints:
        windows = analysis.outage_windows(
            df, target=LB, endpoint=endpoints[LB], run_end_mono=run_end_mono
        )
        outages = [(w["start_mono"] - t0, w["end_mono"] - t0) for w in windows.to_dict("records")]
    faults = events[~events["label"].eq(events["state"])]
    fault_label = _fault_label(list(faults["label"].str.replace(" (fault)", "")))
    target = str(faults["replica"].iloc[0]) if len(faults) else None
    mine = events[(events["replica"] == target) & (events["t_s"] >= 0)]

    def first(state: str) -> float | None:
        t = mine.loc[mine["state"] == state, "t_s"]
        return float(t.min()) if len(t) else None

    recovered = figures.get("recovery_s")
    if recovered is None and LB in endpoints and not math.isnan(fault_time(df)):
        recovered = analysis.recovery(df, t0, target=LB, endpoint=endpoints[LB]).get(
            "time_to_recover_s"
        )
    marks = {
        "fault": 0.0 if len(faults) else None,
        "replacement_ready": first("ready"),
        "back_in_lb": first("in_lb") if first("in_lb") is not None else first("endpoint_added"),
        "recovered": float(recovered) if recovered else None,
    }
    if len(obs_all):
        lo = float(obs_all["t_mono"].min()) - t0
        hi = float(obs_all["t_mono"].max()) - t0 + bin_s
    else:
        lo, hi = -1.0, 1.0
    if len(events):
        lo = min(lo, float(events["t_s"].min()) - 0.5)
    links = [(link_label(w), w["start"] - t0, w["end"] - t0) for w in link_windows(df)]
    return RecoveryCurve(
        t0,
        bin_s,
        streams,
        endpoints,
        events,
        outages,
        marks,
        fault_label,
        (lo, hi),
        figures,
        links,
    )


def _fault_label(labels: list[str], most: int = 4) -> str:
    """The faults in order (``op target; ...``), or for more than ``most`` (a soak) their
    count per op, undos left out: ``28 faults: 8 pause, 7 freeze, ...``."""
    distinct = list(dict.fromkeys(labels))
    if len(distinct) <= most:
        return "; ".join(distinct)
    undos = set(UNDO.values())
    ops = Counter(label.split(" ", 1)[0] for label in labels)
    faults = {op: n for op, n in ops.most_common() if op not in undos}
    return f"{sum(faults.values())} faults: " + ", ".join(f"{n} {op}" for op, n in faults.items())
