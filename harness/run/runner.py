"""Experiments as data, and the runner that turns one into a measured, checked result.

An :class:`Experiment` is topology overrides + workload + load + one fault + hypotheses.
:func:`run_repetition` runs it once on any :class:`~harness.platform.base.Cluster`:
warm-up, a pre-fault baseline, the fault at a seeded random moment inside a window, then
observation until the cluster is back (sustained, not one success) — with open-loop
probes, optional Locust load and the DAG workload all writing one history. The
history decides: analysis gives downtime and recovery, the ledger checker gives lost or
duplicated executions, and each hypothesis becomes a verdict.
"""

from __future__ import annotations

import itertools
import json
import operator
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.analysis import outages as analysis
from harness.check.executions import CheckResult, check_executions
from harness.core.errors import HarnessError
from harness.core.history import SCHEMA_VERSION, HistoryWriter, finalize, read_history
from harness.observe.load.process import LoadProcess
from harness.observe.probe.prober import ProberProcess, ProbeTarget
from harness.observe.workload.driver import TERMINAL_RUN_STATES, WorkloadDriver

LIVENESS = "/api/v2/version"
HEALTH = "/api/v2/monitor/health"
DB_ENDPOINT = "/api/v2/dags?limit=1"  # served from the metadata DB
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
        "==": operator.eq}  # fmt: skip


@dataclass(frozen=True)
class Fault:
    """One fault: ``op`` on ``target`` — a replica name, ``<component>/all`` for every
    replica of a component in a row, or ``<component>/victim`` for the replica running the
    experiment's victim task (from the side-effect ledger); ``hold_s`` before resume/start
    for pause/stop_service."""

    op: str
    target: str
    hold_s: float = 0.0
    grace_s: float | None = None  # terminate only: the grace period (None: the replica's)


@dataclass(frozen=True)
class Hypothesis:
    """``metric op value`` over a repetition's figures, e.g. ``downtime_s <= 1``.

    A ``gate`` is an SLO: refuting it fails the run (and the pytest case). A hypothesis
    that is not a gate is an expectation under study: it is reported, confirmed or
    refuted, without failing anything.
    """

    metric: str
    op: str
    value: float
    why: str = ""
    gate: bool = True

    def check(self, figures: dict[str, Any]) -> dict[str, Any]:
        measured = figures.get(self.metric)
        if measured is None:
            verdict = "unknown"
        else:
            verdict = "confirmed" if _OPS[self.op](measured, self.value) else "refuted"
        return {"hypothesis": f"{self.metric} {self.op} {self.value}", "why": self.why,
                "measured": measured, "verdict": verdict}  # fmt: skip


@dataclass(frozen=True)
class Experiment:
    """An experiment as data.

    ``topology`` holds topology overrides, Airflow config overrides included under
    ``airflow_config`` (recorded and stated in every report). A ``victim_dag`` is triggered
    once after the baseline; the fault waits until its first task has started (ledger) plus
    ``victim_wait_s`` and the seeded offset, so it lands mid-task; the run then waits up to
    ``victim_timeout_s`` for the victim's outcome. ``lb_endpoints`` are probed through the
    load balancer every 50 ms (the first is the liveness endpoint downtime is measured on).
    """

    name: str
    description: str
    fault: Fault
    topology: dict[str, Any] = field(default_factory=dict)
    hypotheses: tuple[Hypothesis, ...] = ()
    warmup_s: float = 5.0
    steady_hold_s: float = 3.0
    baseline_s: float = 5.0
    fault_window_s: float = 2.0
    recover_timeout_s: float = 90.0
    settle_s: float = 5.0
    load_users: int = 0
    workload_dags: tuple[str, ...] = ("ha_bench_short",)
    trigger_interval_s: float = 3.0
    drain_timeout_s: float = 45.0
    expect_lost: bool = False
    expect_duplicates: bool = False
    lb_endpoints: tuple[str, ...] = (LIVENESS,)
    victim_dag: str | None = None
    victim_conf: dict[str, Any] = field(default_factory=dict)
    victim_wait_s: float = 3.0
    victim_timeout_s: float = 120.0
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _targets(fault: Fault, cluster, victim: dict[str, Any] | None = None) -> list[str]:
    if fault.target.endswith("/all"):
        names = cluster.replica_names(fault.target[: -len("/all")])
        if not names:
            raise HarnessError(f"no replicas for {fault.target}", fix="check the topology")
        return names
    if fault.target.endswith("/victim"):
        if not victim or not victim.get("replica"):
            raise HarnessError(
                f"{fault.target}: no replica is known to run the victim task",
                fix="give the experiment a victim_dag whose tasks write the ledger",
            )
        return [victim["replica"]]
    return [fault.target]


def _inject(fault: Fault, cluster, victim: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run the fault; returns the ``ok`` fault events (times are when it took effect)."""
    nemesis = cluster.nemesis
    done = []
    for target in _targets(fault, cluster, victim):
        if fault.op == "terminate":
            done.append(nemesis.terminate(target, grace_s=fault.grace_s))
            continue
        done.append(getattr(nemesis, fault.op)(target))
        if fault.op in ("pause", "stop_service"):
            time.sleep(fault.hold_s)
            undo = "resume" if fault.op == "pause" else "start_service"
            getattr(nemesis, undo)(target)
    return done


def _wait_recovered(cluster, targets: list[str], deadline: float) -> bool:
    """The faulted replicas were seen not ready (or 5 s passed), then every replica is ready."""
    seen_down = time.monotonic() + 5.0
    while time.monotonic() < min(seen_down, deadline):
        if any(not cluster.is_ready(t) for t in targets):
            break
        time.sleep(0.05)
    while time.monotonic() < deadline:
        if all(cluster.is_ready(n) for n in cluster.replica_names()):
            return True
        time.sleep(0.2)
    return False


def wait_steady_state(
    cluster, *, hold_s: float, timeout_s: float, driver: WorkloadDriver | None = None,
    min_runs: int = 2,
) -> float:  # fmt: skip
    """Wait until every replica is ready, ``min_runs`` DAG runs succeeded (so task calls
    have warmed every api-server's Execution API) and the LB answered every check for
    ``hold_s``.

    Returns the seconds it took; raises if the cluster never reaches a steady state, as a
    fault injected into an unsteady cluster measures nothing.
    """
    import http.client
    from urllib.parse import urlsplit

    lb = urlsplit(cluster.lb_url)
    start = time.monotonic()
    steady_since = None
    while time.monotonic() - start < timeout_s:
        ok = all(cluster.is_ready(n) for n in cluster.replica_names())
        if ok and driver is not None:
            ok = sum(s == "success" for s in driver.runs().values()) >= min_runs
        if ok:
            conn = http.client.HTTPConnection(lb.hostname, lb.port, timeout=1.0)
            try:
                conn.request("GET", LIVENESS)
                ok = conn.getresponse().status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            finally:
                conn.close()
        now = time.monotonic()
        steady_since = (steady_since or now) if ok else None
        if steady_since is not None and now - steady_since >= hold_s:
            return now - start
        time.sleep(0.25)
    raise HarnessError(
        f"the cluster did not reach a steady state within {timeout_s:.0f}s",
        fix="check the replica logs in the results' logs directory",
    )


def task_start_gaps(ledger: list[dict[str, Any]], fault_wall: float) -> dict[str, float | None]:
    """Largest gap between consecutive task starts before and after the fault (wall s)."""
    starts = sorted(r["t_wall"] for r in ledger if r.get("phase") == "start")
    if len(starts) < 2:
        return {"task_start_gap_before_s": None, "task_start_gap_after_s": None}
    gaps = [(b, b - a) for a, b in itertools.pairwise(starts)]
    before = [g for end, g in gaps if end < fault_wall]
    after = [g for end, g in gaps if end >= fault_wall]
    return {
        "task_start_gap_before_s": max(before) if before else None,
        "task_start_gap_after_s": max(after) if after else None,
    }


def scheduling_latency(
    df: pd.DataFrame, ledger: list[dict[str, Any]], fault_wall: float
) -> dict[str, float | None]:
    """How fast newly triggered runs get their first task started, before vs after the fault.

    ``scheduling_resumed_s``: fault → first task start of a run *triggered after* the fault
    (only a live scheduler can start it); ``start_latency_before_p50_s`` /
    ``start_latency_before_max_s``: trigger → first task start of runs triggered *and*
    started before the fault (a run caught by the fault would inflate the baseline).
    """
    w = df[(df["type"] == "workload") & (_col(df, "event") == "trigger")
           & (_col(df, "phase") == "ok")]  # fmt: skip
    triggered = dict(zip(w["run_id"], w["t_wall"].astype(float), strict=False))
    first_start: dict[str, float] = {}
    for row in ledger:
        if row.get("phase") == "start" and row.get("run_id") in triggered:
            run = row["run_id"]
            first_start[run] = min(first_start.get(run, float("inf")), float(row["t_wall"]))
    before = [first_start[r] - t for r, t in triggered.items()
              if r in first_start and first_start[r] < fault_wall]  # fmt: skip
    after = [first_start[r] for r, t in triggered.items() if t >= fault_wall and r in first_start]
    return {
        "scheduling_resumed_s": min(after) - fault_wall if after else None,
        "start_latency_before_p50_s": float(pd.Series(before).median()) if before else None,
        "start_latency_before_max_s": max(before) if before else None,
    }


def dag_run_latency(df: pd.DataFrame) -> dict[str, Any]:
    """Trigger acknowledged → run ``success``/``failed``, from the workload events."""
    w = df[df["type"] == "workload"] if "type" in df else df
    trig = w[(_col(w, "event") == "trigger") & (_col(w, "phase") == "ok")]
    ends = w[(_col(w, "event") == "run_state") & _col(w, "state").isin(["success", "failed"])]
    acked = dict(zip(trig["run_id"], trig["t_mono"].astype(float), strict=False))
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


def start_victim(
    driver: WorkloadDriver, cluster, experiment: Experiment, mark: int, timeout_s: float = 90.0
) -> dict[str, Any]:
    """Trigger the victim run and wait for its first task's ledger ``start`` row."""
    assert experiment.victim_dag is not None
    run_id = driver.trigger_once(experiment.victim_dag, experiment.victim_conf)
    if run_id is None:
        raise HarnessError(
            f"the victim run of {experiment.victim_dag} was not acknowledged",
            fix="check the api-server logs; the cluster was steady just before",
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for row in cluster.ledger_since(mark):
            if row.get("run_id") == run_id and row.get("phase") == "start":
                return {"dag_id": experiment.victim_dag, **row}
        time.sleep(0.1)
    raise HarnessError(
        f"the victim task of {experiment.victim_dag} ({run_id}) did not start within "
        f"{timeout_s:.0f}s",
        fix="check the worker and scheduler logs in the results' logs directory",
    )


def _wait_victim_done(driver: WorkloadDriver, victim: dict[str, Any], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    key = (victim["dag_id"], victim["run_id"])
    while time.monotonic() < deadline:
        if driver.runs().get(key) in TERMINAL_RUN_STATES:
            return True
        time.sleep(0.5)
    return False


def run_repetition(
    experiment: Experiment, cluster, out_dir: Path, *, seed: int, repetition: int
) -> dict[str, Any]:
    """Run one repetition; writes ``out_dir`` (history, parquet, figures) and returns them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    offset = rng.uniform(0, experiment.fault_window_s)
    writer = HistoryWriter(out_dir, "cluster")
    unsubscribe = cluster.bus.record_to(writer)
    ledger_mark = cluster.ledger_mark()
    targets = [ProbeTarget("lb", cluster.lb_url, experiment.lb_endpoints)]
    targets += [ProbeTarget(n, u, (LIVENESS,)) for n, u in cluster.api_server_urls.items()]
    prober = ProberProcess(targets, out_dir, interval_s=0.05, timeout_s=1.0)
    health = ProberProcess([ProbeTarget("lb", cluster.lb_url, (HEALTH,))], out_dir,
                           interval_s=0.5, timeout_s=2.0, source="health")  # fmt: skip
    load = LoadProcess(out_dir, cluster.lb_url, users=experiment.load_users, spawn_rate=10)
    workload_writer = HistoryWriter(out_dir, "workload")
    driver = WorkloadDriver(cluster.lb_url, workload_writer, experiment.workload_dags,
                            trigger_interval_s=experiment.trigger_interval_s,
                            run_id_prefix=f"hab-{experiment.name}-{repetition}")  # fmt: skip
    faults: list[dict[str, Any]] = []
    recovered = False
    victim: dict[str, Any] | None = None
    try:
        prober.start()
        health.start()
        if experiment.load_users:
            load.start()
        driver.start()
        time.sleep(experiment.warmup_s)
        took = wait_steady_state(cluster, hold_s=experiment.steady_hold_s, timeout_s=180,
                                 driver=driver)  # fmt: skip
        writer.append("marker", name="baseline_start", detail={"steady_state_wait_s": took})
        if experiment.victim_dag:
            time.sleep(experiment.baseline_s)
            victim = start_victim(driver, cluster, experiment, ledger_mark)
            writer.append("marker", name="victim_started", detail=victim)
            time.sleep(experiment.victim_wait_s + offset)
        else:
            time.sleep(experiment.baseline_s + offset)
        writer.append("marker", name="fault_start", detail={"offset_s": offset, "seed": seed})
        faults = _inject(experiment.fault, cluster, victim)
        recovered = _wait_recovered(cluster, _targets(experiment.fault, cluster, victim),
                                    time.monotonic() + experiment.recover_timeout_s)  # fmt: skip
        writer.append("marker", name="recovered" if recovered else "recover_timeout")
        if victim is not None:
            done = _wait_victim_done(driver, victim, experiment.victim_timeout_s)
            writer.append("marker", name="victim_done" if done else "victim_timeout")
        # observe until the LB has answered for settle_s in a row, so a late blip (a
        # replacement rejoining) is followed by a fully observed recovery window
        try:
            wait_steady_state(cluster, hold_s=experiment.settle_s, timeout_s=60)
        except HarnessError as exc:
            writer.append("marker", name="not_steady_after_fault", detail=str(exc))
        writer.append("marker", name="run_end")
    finally:
        driver.stop_triggering()
        for stop in (load.stop, prober.stop, health.stop):
            try:
                stop()
            except Exception as exc:  # an observer must not lose the results
                writer.append("marker", name="observer_error", detail=repr(exc))
        drained = driver.drain(experiment.drain_timeout_s)
        driver.stop()
        unsubscribe()
        writer.close()
        workload_writer.close()
    ledger = cluster.ledger_since(ledger_mark)
    (out_dir / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))
    finalize(out_dir)
    figures = analyse_repetition(read_history(out_dir), ledger, experiment, faults, victim)
    figures.update(seed=seed, repetition=repetition, fault_offset_s=offset,
                   recovered=recovered, drained=drained)  # fmt: skip
    return figures


def analyse_repetition(
    df: pd.DataFrame,
    ledger: list[dict[str, Any]],
    experiment: Experiment,
    faults: list[dict],
    victim: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The figures of one repetition, from its history and ledger only."""
    end = df[(df["type"] == "marker") & (_col(df, "name") == "run_end")]["t_mono"]
    run_end = float(end.iloc[0]) if len(end) else None
    invokes = df[(df["type"] == "fault") & (df["phase"] == "invoke")]
    fault_mono = float(invokes["t_mono"].min()) if len(invokes) else float("nan")
    fault_wall = float(invokes["t_wall"].min()) if len(invokes) else float("nan")
    lb_all = analysis.outage_windows(df, target="lb", endpoint=LIVENESS, run_end_mono=run_end)
    lb, before_fault = _split_at(lb_all, fault_mono)
    rec = analysis.recovery(df, fault_mono, target="lb", endpoint=LIVENESS,
                            replica=faults[0]["target"] if faults else None)  # fmt: skip
    figures: dict[str, Any] = {
        "fault": [{"op": f["op"], "target": f["target"], "t_wall": f["t_wall"]} for f in faults],
        "downtime_s": analysis.downtime_s(lb),
        "baseline_downtime_s": analysis.downtime_s(before_fault),
        "outages": [
            {"start": r["start_wall"], "end": r["end_wall"], "duration_s": r["duration_s"]}
            for r in lb.to_dict("records")
        ],
        "recovery_s": rec["time_to_recover_s"],
        "time_to_detect_s": rec["time_to_detect_s"],
        "time_to_first_success_s": rec["time_to_first_success_s"],
        "replacement_ready_s": rec["replacement_ready_s"],
    }
    per_replica = {}
    for target in sorted(set(df.loc[df["type"] == "probe", "target"].dropna()) - {"lb"}):
        w = analysis.outage_windows(df, target=target, endpoint=LIVENESS, run_end_mono=run_end)
        per_replica[target] = analysis.downtime_s(_split_at(w, fault_mono)[0])
    figures["downtime_by_replica_s"] = per_replica
    degraded = analysis.degraded_window(df, fault_mono, target="lb", endpoint=LIVENESS)
    figures["degraded_s"] = _jsonable(degraded.get("duration_s")) if degraded else 0.0
    phases = analysis.phase_stats(df, fault_mono, rec.get("recovered_mono"), target="lb",
                                  endpoint=LIVENESS)  # fmt: skip
    figures["phases"] = json.loads(phases.to_json(orient="index"))
    requests = df[df["type"] == "request"]
    if len(requests):
        during = requests[requests["t_mono"] >= fault_mono]
        figures["load_requests"] = len(requests)
        figures["load_errors_after_fault"] = int((~during["ok"].astype(bool)).sum())
    check: CheckResult = check_executions(
        df,
        ledger,
        expect_lost=experiment.expect_lost,
        expect_duplicates=experiment.expect_duplicates,
    )
    figures["executions"] = {"valid": check.valid, "problems": check.problems,
                             **_jsonable(check.details)}  # fmt: skip
    failed = [e for e in _task_states(df) if e == "failed"]
    figures["failed_tasks"] = len(failed)
    figures.update(task_start_gaps(ledger, fault_wall))
    before, after = figures["task_start_gap_before_s"], figures["task_start_gap_after_s"]
    figures["task_start_gap_excess_s"] = (
        after - before if after is not None and before is not None else None
    )
    ready = figures["replacement_ready_s"]
    figures["task_start_gap_vs_restart"] = after / ready if after and ready else None
    figures.update(scheduling_latency(df, ledger, fault_wall))
    figures.update(dag_run_latency(df))
    resumed, normal = figures["scheduling_resumed_s"], figures["start_latency_before_max_s"]
    figures["scheduling_resumed_vs_restart"] = resumed / ready if resumed and ready else None
    figures["scheduling_delay_excess_s"] = (
        resumed - normal if resumed is not None and normal is not None else None
    )
    figures.update(fault_details(faults))
    rec_marker = df[(df["type"] == "marker") & (_col(df, "name") == "recovered")]["t_mono"]
    figures["all_ready_after_s"] = (
        float(rec_marker.iloc[0]) - fault_mono if len(rec_marker) else None
    )
    figures.update(health_unhealthy(df, fault_mono, run_end))
    for endpoint in experiment.lb_endpoints[1:]:
        w = analysis.outage_windows(df, target="lb", endpoint=endpoint, run_end_mono=run_end)
        figures.setdefault("downtime_by_endpoint_s", {})[endpoint] = analysis.downtime_s(
            _split_at(w, fault_mono)[0]
        )
    by_endpoint = figures.get("downtime_by_endpoint_s", {})
    if DB_ENDPOINT in by_endpoint:
        figures["db_endpoint_downtime_s"] = by_endpoint[DB_ENDPOINT]
    if victim is not None:
        figures.update(victim_figures(df, ledger, victim, fault_wall))
    return figures


def fault_details(faults: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures the nemesis reported: whether a graceful stop finished within its grace."""
    out: dict[str, Any] = {}
    details = [f.get("detail") or {} for f in faults]
    graceful = [d["graceful"] for d in details if isinstance(d, dict) and "graceful" in d]
    if graceful:
        out["terminate_graceful"] = int(all(graceful))
        out["shutdown_s"] = max(d["shutdown_s"] for d in details if "shutdown_s" in d)
    return out


def health_unhealthy(
    df: pd.DataFrame, fault_mono: float, run_end: float | None
) -> dict[str, float | None]:
    """Seconds after the fault that ``/api/v2/monitor/health`` (through the LB) reported each
    component unhealthy — the body, not the status code, carries it (0.5 s samples)."""
    probes = df[df["type"] == "probe"]
    h = probes[(_col(probes, "endpoint") == HEALTH) & (_col(probes, "target") == "lb")]
    h = h[h["t_mono"] >= fault_mono] if fault_mono == fault_mono else h
    if run_end is not None:
        h = h[h["t_mono"] <= run_end]
    if h.empty or "body" not in h:
        return {}
    out: dict[str, float | None] = {}
    times = h["t_mono"].astype(float).to_numpy()
    steps = [b - a for a, b in itertools.pairwise(times)] + [0.5]
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        total = 0.0
        for body, step in zip(h["body"], steps, strict=True):
            status = (body or {}).get(component, {}) if isinstance(body, dict) else {}
            if isinstance(status, dict) and status.get("status") == "unhealthy":
                total += min(step, 2.0)
        out[f"health_{component}_unhealthy_s"] = round(total, 3)
    unanswered = h[~h["ok"].astype(bool)] if "ok" in h else h.iloc[0:0]
    out["health_unanswered"] = len(unanswered)
    return out


def victim_figures(
    df: pd.DataFrame, ledger: list[dict[str, Any]], victim: dict[str, Any], fault_wall: float
) -> dict[str, Any]:
    """What happened to the victim task after the fault, from the ledger and task states.

    ``victim_failed``: 1 if its final state is failed; ``victim_failed_after_s``: fault →
    first observed ``failed``/``up_for_retry`` (1 s polls); ``victim_rerun_after_s``: fault →
    ledger start of a later try; ``victim_done_after_s``: fault → its last ledger ``end``;
    ``victim_executions``: ledger starts (tries that began running).
    """
    run_id, task_id = victim["run_id"], victim["task_id"]
    rows = [r for r in ledger if r.get("run_id") == run_id and r.get("task_id") == task_id]
    starts = [r for r in rows if r.get("phase") == "start"]
    ends = [r for r in rows if r.get("phase") == "end"]
    first_try = min((r.get("try_number") or 0) for r in starts) if starts else 0
    reruns = [r["t_wall"] for r in starts if (r.get("try_number") or 0) > first_try]
    states = df[(df["type"] == "workload") & (_col(df, "event") == "task_state")
                & (_col(df, "run_id") == run_id) & (_col(df, "task_id") == task_id)]  # fmt: skip
    failing = states[states["state"].isin(["failed", "up_for_retry"])]
    final = str(states["state"].iloc[-1]) if len(states) else None
    return {
        "victim": {
            "dag_id": victim["dag_id"],
            "run_id": run_id,
            "task_id": task_id,
            "replica": victim.get("replica"),
            "final_state": final,
        },
        "victim_failed": int(final == "failed") if final else None,
        "victim_succeeded": int(final == "success") if final else None,
        "victim_failed_after_s": float(failing["t_wall"].min()) - fault_wall
        if len(failing)
        else None,
        "victim_rerun_after_s": min(reruns) - fault_wall if reruns else None,
        "victim_done_after_s": max(r["t_wall"] for r in ends) - fault_wall if ends else None,
        "victim_executions": len(starts),
        "victim_run_s": max(r["t_wall"] for r in ends) - min(r["t_wall"] for r in starts)
        if ends and starts
        else None,
    }


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


def _task_states(df: pd.DataFrame) -> list[str]:
    w = df[(df["type"] == "workload") & (_col(df, "event") == "task_state")]
    if w.empty:
        return []
    final = w.groupby(["run_id", "task_id"])["state"].last()
    return list(final)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def summarize(
    experiment: Experiment, repetitions: list[dict[str, Any]], metadata: dict[str, Any]
) -> dict[str, Any]:
    """``summary.json`` content: the documented contract plus the setup that produced it."""
    verdicts: dict[str, Any] = {}
    for h in experiment.hypotheses:
        checks = [h.check(r) for r in repetitions]
        outcomes = {c["verdict"] for c in checks}
        verdict = ("refuted" if "refuted" in outcomes
                   else "unknown" if "unknown" in outcomes else "confirmed")  # fmt: skip
        verdicts[f"{h.metric} {h.op} {h.value}"] = {
            "verdict": verdict, "why": h.why, "gate": h.gate,
            "measured": [c["measured"] for c in checks],
        }  # fmt: skip
    executions = [r["executions"]["valid"] for r in repetitions]
    verdicts["executions"] = {
        "verdict": "refuted" if False in executions
        else "unknown" if None in executions else "confirmed",
        "why": "no lost or duplicated task executions (ledger checker)",
        "gate": True,
        "measured": [r["executions"]["problems"] for r in repetitions],
    }  # fmt: skip
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment.name,
        "params": {**experiment.params, "topology": experiment.topology},
        "repetitions": repetitions,
        "verdicts": verdicts,
        "experiment_definition": _jsonable(experiment.describe()),
        "metadata": {**metadata, "harness_version": __version__, "machine": machine()},
    }


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    import os
    import platform

    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def failed_verdicts(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines for every refuted gate (SLO), with the measured figures."""
    return [
        f"{name}: refuted, measured {v['measured']} ({v['why']})"
        for name, v in summary["verdicts"].items()
        if v["verdict"] == "refuted" and v.get("gate", True)
    ]


def run_experiment(
    experiment: Experiment,
    cluster,
    out_dir: Path,
    *,
    repeat: int = 1,
    seed: int = 0,
    log=None,
) -> dict[str, Any]:
    """Run ``repeat`` repetitions; writes ``out_dir/summary.json`` after each one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    repetitions: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for i in range(repeat):
        rep_seed = seed * 1000 + i
        if log:
            log(f"{experiment.name} {experiment.params}: repetition {i + 1}/{repeat}")
        figures = run_repetition(experiment, cluster, out_dir / f"rep-{i + 1}", seed=rep_seed,
                                 repetition=i + 1)  # fmt: skip
        repetitions.append(_jsonable(figures))
        summary = summarize(experiment, repetitions, cluster.metadata())
        write_json(out_dir / "summary.json", summary)  # results survive a later failure
    return summary


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
