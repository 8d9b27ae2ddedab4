"""What crossed each cut or slowed link: a network fault's window and what the clients, the
tasks and the replicas' logs saw in it.

A *link window* runs from a network fault's ``ok`` (its rules in place) to the ``ok`` of the
next ``heal`` of the same target (the undo), or to the end of observation when it was never
healed (``healed: false``). In it: the probes per target (sent, failed, p99 of the answered),
Locust's requests, the task instances that failed or were set up for retry, and the
replicas' ``log`` events per kind and replica (``heartbeat``, ``execution_api``, ``db``,
``broker``, ``error``) — counted up to :data:`AFTER_HEAL_S` after the heal too, since what a
cut causes is often logged when it ends (a reconnect, a task told it should not run).
Times are seconds since the repetition's first fault.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.observations import basic_stats, column, observations
from harness.core.faultops import NETWORK_OPS

AFTER_HEAL_S = 5.0
SAMPLES_PER_KIND = 3
PARAMS = ("mode", "both_ways", "delay_ms", "jitter_ms", "percent", "rate_kbit")


def _faults(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty or "type" not in df.columns:
        return pd.DataFrame()
    return df[df["type"] == "fault"].sort_values("t_mono", kind="stable")


def link_windows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Each network fault that took effect: ``op``, ``target``, ``peers``, its parameters,
    ``start``/``end`` (monotonic), ``healed``, ``op_id``."""
    faults = _faults(df)
    if faults.empty:
        return []
    end_of_observation = float(df["t_mono"].max())
    ops = column(faults, "op")
    phases = column(faults, "phase")
    windows = []
    for _, invoke in faults[ops.isin(NETWORK_OPS) & (phases == "invoke")].iterrows():
        done = faults[(column(faults, "op_id") == invoke.get("op_id")) & (phases == "ok")]
        if done.empty:  # failed or unknown: no rule to speak of
            continue
        start = float(done["t_mono"].iloc[0])
        heals = faults[(ops == "heal") & (phases == "ok")
                       & (column(faults, "target") == invoke["target"])
                       & (faults["t_mono"] > start)]  # fmt: skip
        healed = not heals.empty
        peers = invoke.get("peers")
        if isinstance(peers, str):  # history.parquet keeps nested values as JSON text
            peers = json.loads(peers)
        windows.append({
            "op": invoke["op"], "target": invoke["target"],
            "peers": list(peers) if isinstance(peers, list | tuple | np.ndarray) else [],
            **{k: _plain(invoke.get(k)) for k in PARAMS if _present(invoke.get(k))},
            "start": start, "end": float(heals["t_mono"].iloc[0]) if healed else end_of_observation,
            "healed": healed, "op_id": _plain(invoke.get("op_id")),
        })  # fmt: skip
    return windows


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def link_label(window: dict[str, Any]) -> str:
    """``worker-0 ↔ api-server-0, api-server-1`` (``→`` when one way)."""
    arrow = "↔" if window.get("both_ways", True) else "→"
    return f"{window['target']} {arrow} {', '.join(window.get('peers') or []) or '?'}"


def _between(frame: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    return frame[(frame["t_mono"] >= start) & (frame["t_mono"] <= end)]


def _crossed(rows: pd.DataFrame) -> dict[str, Any]:
    """``sent``, ``failed`` and the ``p99_s`` of the answered (:func:`basic_stats`)."""
    stats = basic_stats(rows)
    return {"sent": stats["count"], "failed": stats["failures"],
            "p99_s": stats["latency_p99_s"]}  # fmt: skip


def _probes(df: pd.DataFrame, start: float, end: float) -> dict[str, dict[str, Any]]:
    seen = _between(observations(df), start, end)
    return {str(target): _crossed(rows) for target, rows in seen.groupby("target", sort=True)}


def _requests(df: pd.DataFrame, start: float, end: float) -> dict[str, Any] | None:
    seen = _between(observations(df, kind="request"), start, end)
    return _crossed(seen) if len(seen) else None


def _tasks(df: pd.DataFrame, start: float, end: float) -> dict[str, int]:
    if "event" not in df.columns:
        return {}
    rows = _between(df[(df["type"] == "workload") & (df["event"] == "task_state")], start, end)
    states = column(rows, "state").value_counts()
    return {s: int(states[s]) for s in ("failed", "up_for_retry") if s in states}


def _logs(df: pd.DataFrame, start: float, end: float, t0: float) -> dict[str, Any]:
    rows = _between(df[df["type"] == "log"], start, end)
    if rows.empty:
        return {"counts": {}, "by_replica": {}, "samples": []}
    counts = rows["kind"].value_counts()
    by_replica: dict[str, dict[str, int]] = {}
    for (replica, kind), n in rows.groupby(["replica", "kind"]).size().items():
        by_replica.setdefault(str(replica), {})[str(kind)] = int(n)
    samples = []
    for _, group in rows.groupby("kind", sort=True):
        for _, r in group.head(SAMPLES_PER_KIND).iterrows():
            cause = r.get("cause")
            samples.append({
                "at_s": round(float(r["t_mono"]) - t0, 3), "replica": r["replica"],
                "kind": r["kind"], "line": r["line"],
                **({"cause": cause} if isinstance(cause, str) else {}),
            })  # fmt: skip
    samples.sort(key=lambda x: x["at_s"])  # the first of each kind, in time order
    return {"counts": {str(k): int(v) for k, v in counts.items()}, "by_replica": by_replica,
            "samples": samples}  # fmt: skip


def link_effects(df: pd.DataFrame, t0: float | None = None) -> list[dict[str, Any]]:
    """Per network fault of the history (:func:`link_windows`): the link, when it was cut or
    slowed and for how long, and what crossed it (see the module docstring); ``at_s``
    and the samples' times are seconds since ``t0`` (default: the first fault)."""
    windows = link_windows(df)
    if not windows:
        return []
    if t0 is None:
        faults = _faults(df)
        t0 = float(faults["t_mono"].iloc[0])
    # logs read: a `log` event, or the reader's marker when it found nothing to keep
    logs_read = bool((df["type"] == "log").any()) or (
        "name" in df.columns and bool((df["name"] == "replica_logs").any()))  # fmt: skip
    out = []
    for w in windows:
        start, end = w["start"], w["end"]
        out.append({
            "link": link_label(w), "op": w["op"], "target": w["target"], "peers": w["peers"],
            "params": {k: w[k] for k in PARAMS if k in w},
            "at_s": round(start - t0, 3), "held_s": round(end - start, 3),
            "healed": w["healed"],
            "probes": _probes(df, start, end), "locust": _requests(df, start, end),
            "tasks": _tasks(df, start, end + AFTER_HEAL_S),
            "logs": _logs(df, start, end + AFTER_HEAL_S, t0) if logs_read else None,
        })  # fmt: skip
    return out
