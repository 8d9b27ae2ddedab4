"""The figures of one repetition: downtime and recovery, scheduling, tasks, health, load.

Everything here is computed from the history (a DataFrame of events) and the side-effect
ledger alone, so a recorded repetition can be re-analysed offline. Imports only core.

Recovery is anchored on the fault: the *fault's outage* is the first LB outage that starts
within ``detect_window_s`` of the fault; ``recovery_s`` and ``time_to_detect_s`` come from
it, and later outages (a replacement rejoining) are ``rejoin_blips``. A figure whose event
never happened while the repetition was observed is left ``None`` and listed under
``censored`` with the seconds it was watched for ("never, observed for X s").
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import outages
from harness.analysis.health import health_unhealthy
from harness.analysis.links import link_effects
from harness.analysis.load import load_summary
from harness.analysis.scheduling import (
    dag_run_latency,
    excess,
    ratio,
    scheduling_latency,
    task_start_gaps,
)
from harness.analysis.tasks import fault_details, final_task_states, victim_figures
from harness.analysis.timeline import Censor, Timeline, col, markers
from harness.analysis.validity import invalid_reasons
from harness.core.airflow_api import DB_ENDPOINT, LIVENESS
from harness.core.faultops import PREPARATION, TARGET_STAYS_UP, UNDO

UNDO_OPS = frozenset(UNDO.values())

DETECT_WINDOW_S = 5.0


def _split_at(windows: pd.DataFrame, t: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outage windows from ``t`` on, and before ``t``; a window spanning ``t`` is cut in two."""
    if windows.empty or t != t:  # NaN: no fault recorded
        return windows, windows.iloc[0:0]
    after = windows[windows["end_mono"] > t].copy()
    cut = after["start_mono"] < t
    after.loc[cut, "start_wall"] += t - after.loc[cut, "start_mono"]
    after.loc[cut, "start_mono"] = t
    after["duration_s"] = after["end_mono"] - after["start_mono"]
    before = windows[windows["start_mono"] < t].copy()
    late = before["end_mono"] > t
    before.loc[late, "end_wall"] -= before.loc[late, "end_mono"] - t
    before.loc[late, "end_mono"] = t
    before["duration_s"] = before["end_mono"] - before["start_mono"]
    return after.reset_index(drop=True), before.reset_index(drop=True)


def _within(windows: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """The parts of ``windows`` inside ``[lo, hi)``."""
    if windows.empty:
        return windows
    after = _split_at(windows, lo)[0] if lo > -np.inf else windows
    return _split_at(after, hi)[1] if hi < np.inf else after


def anchored_recovery(
    df: pd.DataFrame, timeline: Timeline, censor: Censor, *, replica: str | None,
    detect_window_s: float, run_end: float | None,
) -> tuple[dict[str, Any], float | None]:  # fmt: skip
    """Detection and recovery of the fault's own outage; later outages are rejoin blips.
    Returns (figures, the monotonic time of recovery)."""
    fault = timeline.fault_mono
    rec = outages.recovery(df, fault, target="lb", endpoint=LIVENESS, replica=replica)
    first_failure = rec["first_failure_mono"]
    windows = _split_at(outages.outage_windows(df, target="lb", endpoint=LIVENESS,
                                               run_end_mono=run_end), fault)[0]  # fmt: skip
    caused = first_failure is not None and first_failure <= fault + detect_window_s
    recovered = rec["recovered_mono"] if caused else fault
    if caused:
        figures = {
            "time_to_detect_s": rec["time_to_detect_s"],
            "time_to_first_success_s": censor.value("time_to_first_success_s",
                                                    rec["time_to_first_success_s"],
                                                    timeline.observed_s),
            "recovery_s": censor.value("recovery_s", rec["time_to_recover_s"],
                                       timeline.observed_s),
        }  # fmt: skip
    else:  # nothing failed because of the fault (a later outage is not its doing)
        figures = {"time_to_detect_s": None, "time_to_first_success_s": None,
                   "recovery_s": 0.0 if timeline.observed_s is not None else None}  # fmt: skip
    blips = windows[windows["start_mono"] >= recovered] if recovered is not None else windows
    if not caused:
        blips = windows
    figures["fault_outage_s"] = (float(windows.iloc[0]["duration_s"])
                                 if caused and len(windows) else 0.0)  # fmt: skip
    figures["rejoin_blips"] = [{"after_s": round(r["start_mono"] - fault, 3),
                                "duration_s": round(r["duration_s"], 3)}
                               for r in blips.to_dict("records")]  # fmt: skip
    figures["rejoin_blips_s"] = round(float(blips["duration_s"].sum()), 6) if len(blips) else 0.0
    ready = rec["replacement_ready_s"]
    figures["replacement_ready_s"] = censor.value(
        "replacement_ready_s", ready, timeline.observed_s if replica else None
    )
    return figures, recovered


def baseline_figures(df: pd.DataFrame, timeline: Timeline, run_end: float | None) -> dict:
    """The LB's liveness probes in the baseline window (steady state → fault) only."""
    lo, hi = timeline.baseline_window()
    windows = outages.outage_windows(df, target="lb", endpoint=LIVENESS, run_end_mono=run_end)
    obs = outages.observations(df, target="lb", endpoint=LIVENESS)
    obs = obs[(obs["t_mono"] >= lo) & (obs["t_mono"] < hi)]
    lat = obs.loc[obs["ok"], "latency_s"].to_numpy(dtype=float)
    lat = lat[~np.isnan(lat)]
    return {
        "baseline_downtime_s": outages.downtime_s(_within(windows, lo, hi)),
        "baseline": {
            "window_s": round(hi - lo, 3) if lo > -np.inf else None,
            "probes": len(obs),
            "failures": int((~obs["ok"]).sum()),
            "error_rate": float((~obs["ok"]).mean()) if len(obs) else None,
            "p50_s": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_s": float(np.percentile(lat, 99)) if len(lat) else None,
        },
    }


def analyse_repetition(
    df: pd.DataFrame,
    ledger: list[dict[str, Any]],
    faults: list[dict],
    victim: dict[str, Any] | None = None,
    *,
    lb_endpoints: tuple[str, ...] = (LIVENESS,),
    detect_window_s: float = DETECT_WINDOW_S,
    load_users: int = 0,
    soak: bool = False,
) -> dict[str, Any]:
    """The figures of one repetition, from its history and ledger only (the execution
    checker's verdict is added by the runner, from :mod:`harness.check`)."""
    timeline, censor = Timeline.of(df), Censor()
    run_end = timeline.run_end_mono
    fault_mono = timeline.fault_mono
    lb = _split_at(outages.outage_windows(df, target="lb", endpoint=LIVENESS,
                                          run_end_mono=run_end), fault_mono)[0]  # fmt: skip
    targets = [f["target"] for f in faults if f.get("op") not in ("none", *PREPARATION)]
    # gray faults and state actions leave the target up: their `ok` event confirms them
    must_go_down = [f["target"] for f in faults if f.get("op") not in TARGET_STAYS_UP]
    rec, recovered = anchored_recovery(df, timeline, censor, replica=targets[0] if targets
                                       else None, detect_window_s=detect_window_s,
                                       run_end=run_end)  # fmt: skip
    figures: dict[str, Any] = {
        "fault": [{"op": f["op"], "target": f["target"], "t_wall": f["t_wall"]} for f in faults],
        "downtime_s": outages.downtime_s(lb),
        "outages": [{"start": r["start_wall"], "end": r["end_wall"],
                     "duration_s": r["duration_s"]} for r in lb.to_dict("records")],
        **rec,
        **baseline_figures(df, timeline, run_end),
        "observed_s": timeline.observed_s,
    }  # fmt: skip
    figures.update(_per_replica(df, fault_mono, run_end, lb_endpoints))
    degraded = outages.degraded_window(df, fault_mono, target="lb", endpoint=LIVENESS) \
        if timeline.has_fault and _has_lb(df) else None  # fmt: skip
    figures["degraded_s"] = float(degraded["duration_s"]) if degraded else 0.0
    if timeline.has_fault and _has_lb(df):
        phases = outages.phase_stats(df, fault_mono, recovered if recovered != fault_mono
                                     else None, target="lb", endpoint=LIVENESS)  # fmt: skip
        figures["phases"] = json.loads(phases.to_json(orient="index"))
    figures["load"] = load_summary(df, timeline, load_users, recovered)
    figures["failed_tasks"] = sum(s == "failed" for s in final_task_states(df))
    figures.update(_scheduling(df, ledger, timeline, censor, figures))
    figures.update(dag_run_latency(df))
    figures.update(fault_details(faults))
    figures["all_ready_after_s"] = _all_ready(df, timeline, censor)
    figures.update(health_unhealthy(df, fault_mono, run_end))
    if victim is not None:
        figures.update(victim_figures(df, ledger, victim, timeline, censor))
    figures.update(fault_timing(df, timeline, detect_window_s, run_end))
    figures["links"] = link_effects(df, fault_mono)
    reasons, coverage = invalid_reasons(df, timeline, must_go_down, soak=soak)
    figures.update(prober=coverage, valid=not reasons, invalid_reasons=reasons,
                   censored=dict(censor.observed))  # fmt: skip
    return figures


def _has_lb(df: pd.DataFrame) -> bool:
    return len(outages.observations(df, target="lb", endpoint=LIVENESS)) > 0


def _per_replica(df: pd.DataFrame, fault_mono: float, run_end: float | None,
                 lb_endpoints: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    def down(target: str, endpoint: str) -> float:
        w = outages.outage_windows(df, target=target, endpoint=endpoint, run_end_mono=run_end)
        return outages.downtime_s(_split_at(w, fault_mono)[0])

    probed = set(df.loc[df["type"] == "probe", "target"].dropna()) if "target" in df else set()
    out: dict[str, Any] = {
        "downtime_by_replica_s": {t: down(t, LIVENESS) for t in sorted(probed - {"lb"})}
    }
    if len(lb_endpoints) > 1:
        out["downtime_by_endpoint_s"] = {e: down("lb", e) for e in lb_endpoints[1:]}
        if DB_ENDPOINT in out["downtime_by_endpoint_s"]:
            out["db_endpoint_downtime_s"] = out["downtime_by_endpoint_s"][DB_ENDPOINT]
    return out  # fmt: skip


def _scheduling(df: pd.DataFrame, ledger: list[dict[str, Any]], timeline: Timeline,
                censor: Censor, figures: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    out = task_start_gaps(ledger, timeline.fault_wall, timeline.ledger_end_wall)
    out.update(scheduling_latency(df, ledger, timeline, censor))
    both = {**figures, **out}
    out["task_start_gap_excess_s"] = excess(censor, "task_start_gap_excess_s",
                                            "task_start_gap_after_s", "task_start_gap_before_s",
                                            both)  # fmt: skip
    out["task_start_gap_vs_restart"] = ratio(censor, "task_start_gap_vs_restart",
                                             "task_start_gap_after_s", "replacement_ready_s",
                                             both)  # fmt: skip
    out["scheduling_resumed_vs_restart"] = ratio(censor, "scheduling_resumed_vs_restart",
                                                 "scheduling_resumed_s", "replacement_ready_s",
                                                 both)  # fmt: skip
    out["scheduling_delay_excess_s"] = excess(censor, "scheduling_delay_excess_s",
                                              "scheduling_resumed_s",
                                              "start_latency_before_max_s", both)  # fmt: skip
    out["start_latency_excess_s"] = excess(censor, "start_latency_excess_s",
                                           "start_latency_after_max_s",
                                           "start_latency_before_max_s", both)  # fmt: skip
    return out


def _all_ready(df: pd.DataFrame, timeline: Timeline, censor: Censor) -> float | None:
    done = markers(df, "recovered")["t_mono"]
    if len(done):
        return float(done.iloc[0]) - timeline.fault_mono
    timeout = markers(df, "recover_timeout")["t_mono"]
    watched = float(timeout.iloc[0]) - timeline.fault_mono if len(timeout) else None
    return censor.value("all_ready_after_s", None, watched)


def fault_timing(df: pd.DataFrame, timeline: Timeline, detect_window_s: float,
                 run_end: float | None) -> dict[str, Any]:  # fmt: skip
    """Condition → injection delay (``trigger_delay_s``) and, per injected fault, the LB
    outage it caused and when its target was ready again (``fault_outcomes``)."""
    out: dict[str, Any] = {}
    met = markers(df, "trigger_met")
    if len(met) and timeline.has_fault:
        seen = float(met["detail"].iloc[0]["t_wall"])
        out["trigger_delay_s"] = round(timeline.fault_wall - seen, 6)
    faults = df[(df["type"] == "fault") & ~col(df, "op").isin(UNDO_OPS)]  # undos are not faults
    phases = col(faults, "phase")
    out["faults_injected"] = int((phases == "ok").sum())
    out["faults_failed"] = int((phases == "fail").sum())
    invokes = faults[phases == "invoke"].to_dict("records")
    if len(invokes) >= 2:
        out["fault_outcomes"] = [_outcome(df, f, timeline, detect_window_s, run_end)
                                 for f in invokes]  # fmt: skip
    return out


def _outcome(df: pd.DataFrame, fault: dict[str, Any], timeline: Timeline,
             detect_window_s: float, run_end: float | None) -> dict[str, Any]:  # fmt: skip
    t = float(fault["t_mono"])
    w = outages.outage_windows(df, target="lb", endpoint=LIVENESS, run_end_mono=run_end)
    hit = w[(w["start_mono"] >= t) & (w["start_mono"] <= t + detect_window_s)]
    life = df[df["type"] == "lifecycle"]
    ready = life[(col(life, "replica") == fault["target"]) & (col(life, "state") == "ready")
                 & (life["t_mono"] > t)]  # fmt: skip
    return {
        "op": fault["op"], "target": fault["target"], "at_s": round(t - timeline.fault_mono, 3),
        "outage_s": round(float(hit.iloc[0]["duration_s"]), 3) if len(hit) else 0.0,
        "ready_after_s": round(float(ready["t_mono"].min()) - t, 3) if len(ready) else None,
    }  # fmt: skip
