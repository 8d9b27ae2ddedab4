"""The runner: one experiment, repeated, on any cluster, into histories and a summary.

:func:`run_repetition` runs an :class:`~harness.run.model.Experiment` once on any
:class:`~harness.platform.base.Cluster`: warm-up, a steady state, a pre-fault baseline, the
fault at a seeded random moment inside a window, then observation until the cluster is
back (sustained, not one success) — with open-loop probes, optional Locust load and the DAG
workload all writing one history. The history decides: :mod:`harness.analysis` gives the
figures, :mod:`harness.check` the execution checker's verdict and each hypothesis's.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from harness import __version__
from harness.analysis.figures import analyse_repetition
from harness.check.checkers import check_repetition
from harness.check.hypothesis import evaluate, unknown_gates
from harness.core.airflow_api import HEALTH, LIVENESS, TERMINAL_RUN_STATES
from harness.core.errors import HarnessError
from harness.core.history import HistoryWriter, finalize, read_history
from harness.core.polling import poll
from harness.core.provenance import harness_source, machine
from harness.core.results import SUMMARY_SCHEMA_VERSION, write_summary
from harness.faults.ops import inject
from harness.faults.ops import targets as fault_targets
from harness.observe import replica_logs
from harness.observe.load.process import LoadProcess
from harness.observe.probe.prober import ProbeTarget
from harness.observe.probe.process import ProberProcess
from harness.observe.workload.driver import WorkloadDriver
from harness.platform.base import Cluster
from harness.run.faulting import scheduled_faults, triggered_fault
from harness.run.model import Experiment


def _all_ready(cluster: Cluster) -> bool:
    return all(cluster.is_ready(n) for n in cluster.replica_names())


def _wait_recovered(cluster: Cluster, names: list[str], deadline: float) -> bool:
    """The faulted replicas were seen not ready (or 5 s passed), then every replica is ready."""
    poll(lambda: any(not cluster.is_ready(t) for t in names), timeout_s=5.0, interval_s=0.05,
         deadline=deadline)  # fmt: skip
    return bool(poll(lambda: _all_ready(cluster), timeout_s=float("inf"), interval_s=0.2,
                     deadline=deadline))  # fmt: skip


def _lb_answers(lb_url: str) -> bool:
    lb = urlsplit(lb_url)
    conn = http.client.HTTPConnection(lb.hostname, lb.port, timeout=1.0)
    try:
        conn.request("GET", LIVENESS)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_steady_state(
    cluster: Cluster, *, hold_s: float, timeout_s: float, driver: WorkloadDriver | None = None,
    min_runs: int = 2, all_ready: bool = True,
) -> float:  # fmt: skip
    """Wait until every replica is ready (unless not ``all_ready``), ``min_runs`` DAG runs
    succeeded (so task calls have warmed every api-server's Execution API) and the LB
    answered every check for ``hold_s``.

    Returns the seconds it took; raises if the cluster never reaches a steady state, as a
    fault injected into an unsteady cluster measures nothing.
    """
    start = time.monotonic()
    since: list[float] = []  # when the current steady stretch began

    def steady() -> bool:
        ok = _all_ready(cluster) if all_ready else True
        if ok and driver is not None:
            ok = sum(s == "success" for s in driver.runs().values()) >= min_runs
        ok = ok and _lb_answers(cluster.lb_url)
        now = time.monotonic()
        if not ok:
            since.clear()
        elif not since:
            since.append(now)
        return bool(since) and now - since[0] >= hold_s

    if poll(steady, timeout_s=timeout_s, interval_s=0.25):
        return time.monotonic() - start
    raise HarnessError(
        f"the cluster did not reach a steady state within {timeout_s:.0f}s",
        fix="check the replica logs in the results' logs directory",
    )


def start_victim(
    driver: WorkloadDriver, cluster: Cluster, experiment: Experiment, mark: int,
    timeout_s: float = 90.0,
) -> dict[str, Any]:  # fmt: skip
    """Trigger the victim run and wait for its first task's ledger ``start`` row."""
    assert experiment.victim_dag is not None
    run_id = driver.trigger_once(experiment.victim_dag, experiment.victim_conf)
    if run_id is None:
        raise HarnessError(
            f"the victim run of {experiment.victim_dag} was not acknowledged",
            fix="check the api-server logs; the cluster was steady just before",
        )

    def started() -> dict[str, Any] | None:
        rows = cluster.ledger_since(mark)
        row = next((r for r in rows if r.get("run_id") == run_id and r.get("phase") == "start"),
                   None)  # fmt: skip
        return {"dag_id": experiment.victim_dag, **row} if row else None

    victim = poll(started, timeout_s=timeout_s, interval_s=0.1)
    if victim is None:
        raise HarnessError(
            f"the victim task of {experiment.victim_dag} ({run_id}) did not start within "
            f"{timeout_s:.0f}s",
            fix="check the worker and scheduler logs in the results' logs directory",
        )
    return victim


def _wait_victim_done(driver: WorkloadDriver, victim: dict[str, Any], timeout_s: float) -> bool:
    key = (victim["dag_id"], victim["run_id"])
    return bool(poll(lambda: driver.runs().get(key) in TERMINAL_RUN_STATES,
                     timeout_s=timeout_s, interval_s=0.5))  # fmt: skip


def _faults(experiment: Experiment, cluster: Cluster, writer: HistoryWriter,
            victim: dict[str, Any] | None, seed: int) -> list[dict[str, Any]]:  # fmt: skip
    """Inject the experiment's fault(s): at once, when its trigger holds, or a schedule."""
    if experiment.schedule is not None:
        return scheduled_faults(experiment, cluster, writer, seed=seed, victim=victim)
    if experiment.trigger is not None:
        return triggered_fault(experiment, cluster, writer, victim)
    return inject(experiment.fault, cluster, victim)


def execution_figures(
    history: pd.DataFrame, ledger: list[dict[str, Any]], experiment: Experiment
) -> dict[str, Any]:
    """Every execution checker's verdict on the repetition (lost, duplicated, overlapping,
    zombie false positives, stuck, state regressions), composed, as a figure."""
    check = check_repetition(history, ledger, expect_lost=experiment.expect_lost,
                             expect_duplicates=experiment.expect_duplicates,
                             stuck_after_s=experiment.stuck_after_s)  # fmt: skip
    details = json.loads(json.dumps(check.details, default=str))
    return {"valid": check.valid, "problems": check.problems, **details}


def run_repetition(
    experiment: Experiment, cluster, out_dir: Path, *, seed: int, repetition: int
) -> dict[str, Any]:
    """Run one repetition; writes ``out_dir`` (history, parquet, figures) and returns them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    restarts = cluster.prepare_repetition()  # restart back-off cleared: independent reps
    rng = random.Random(seed)
    offset = rng.uniform(0, experiment.fault_window_s)
    writer = HistoryWriter(out_dir, "cluster")
    unsubscribe = cluster.bus.record_to(writer)
    ledger_mark = cluster.ledger_mark()
    log_mark, log_since = cluster.replica_log_mark(), time.time()
    targets = [ProbeTarget("lb", cluster.lb_url, experiment.lb_endpoints)]
    targets += [ProbeTarget(n, u, (LIVENESS,)) for n, u in cluster.api_server_urls.items()]
    prober = ProberProcess(targets, out_dir, interval_s=0.05, timeout_s=1.0)
    health = ProberProcess([ProbeTarget("lb", cluster.lb_url, (HEALTH,))], out_dir,
                           interval_s=0.5, timeout_s=2.0, source="health")  # fmt: skip
    load = LoadProcess(out_dir, cluster.lb_url, users=experiment.load_users, spawn_rate=10)
    workload_writer = HistoryWriter(out_dir, "workload")
    driver = WorkloadDriver(cluster.lb_url, workload_writer, experiment.workload_dags,
                            trigger_interval_s=experiment.trigger_interval_s,
                            arrival=experiment.trigger_arrival, seed=seed,
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
            time.sleep(experiment.baseline_s + (0.0 if experiment.trigger else offset))
        writer.append("marker", name="fault_start", detail={"offset_s": offset, "seed": seed})
        faults = _faults(experiment, cluster, writer, victim, seed)
        hit = sorted({f["target"] for f in faults if f["op"] != "none"})
        if not hit and experiment.fault is not None and experiment.fault.op != "none":
            hit = fault_targets(experiment.fault, cluster, victim)
        recovered = _wait_recovered(cluster, hit,
                                    time.monotonic() + experiment.recover_timeout_s)  # fmt: skip
        writer.append("marker", name="recovered" if recovered else "recover_timeout")
        if victim is not None:
            done = _wait_victim_done(driver, victim, experiment.victim_timeout_s)
            writer.append("marker", name="victim_done" if done else "victim_timeout")
        # observe until the LB has answered for settle_s in a row, so a late blip (a
        # replacement rejoining) is followed by a fully observed recovery window
        try:
            wait_steady_state(cluster, hold_s=experiment.settle_s, timeout_s=60, all_ready=False)
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
        writer.append("marker", name="drain_end", detail={"drained": drained})
        driver.stop()
        _record_replica_logs(cluster, out_dir, writer, log_mark, log_since)
        unsubscribe()
        writer.close()
        workload_writer.close()
    ledger = cluster.ledger_since(ledger_mark)
    (out_dir / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))
    finalize(out_dir)
    history = read_history(out_dir)
    figures = analyse_repetition(history, ledger, faults, victim,
                                 lb_endpoints=experiment.lb_endpoints,
                                 detect_window_s=experiment.detect_window_s,
                                 load_users=experiment.load_users,
                                 soak=experiment.schedule is not None)  # fmt: skip
    figures["executions"] = execution_figures(history, ledger, experiment)
    figures.update(execution_counts(figures["executions"]))
    figures.update(seed=seed, repetition=repetition, fault_offset_s=offset,
                   recovered=recovered, drained=drained, restarts_before=restarts)  # fmt: skip
    figures["invalid_reasons"] += unknown_gates(experiment.hypotheses, figures)
    figures["valid"] = not figures["invalid_reasons"]
    return figures


def _record_replica_logs(
    cluster: Cluster, out_dir: Path, writer: HistoryWriter, mark: Any, since_wall: float
) -> None:
    """The replicas' log lines of the repetition as ``log`` events (an observer: a failure
    is an ``observer_error``, the repetition's other results stay)."""
    logs = HistoryWriter(out_dir, "replica-logs")
    try:
        replica_logs.record(logs, cluster.replica_log_lines(mark), since_wall)
    except Exception as exc:
        writer.append("marker", name="observer_error", detail=f"replica logs: {exc!r}")
    finally:
        logs.close()


EXECUTION_COUNTS = ("lost_runs", "overlapping_executions", "zombie_false_positives",
                    "stuck_task_instances", "state_regressions")  # fmt: skip


def execution_counts(executions: dict[str, Any]) -> dict[str, Any]:
    """The checkers' counts as figures hypotheses can name (``duplicated_executions``: the
    same try started twice plus a task ended more than once)."""
    out = {k: executions.get(k) for k in EXECUTION_COUNTS}
    starts, ends = executions.get("duplicate_starts"), executions.get("duplicate_ends")
    out["duplicated_executions"] = None if starts is None else starts + (ends or 0)
    return out


def summarize(
    experiment: Experiment, repetitions: list[dict[str, Any]], metadata: dict[str, Any],
    *, repeat: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``summary.json`` content: the documented contract plus the setup that produced it.

    ``valid`` is False while fewer than ``repeat`` repetitions are valid (an invalid run:
    exit 3); verdicts are over the valid repetitions only.
    """
    valid = sum(bool(r.get("valid", True)) for r in repetitions)
    repeat = len(repetitions) if repeat is None else repeat
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "experiment": experiment.name,
        "params": {**experiment.params, "topology": experiment.topology},
        "valid": valid >= repeat,
        "repeat": repeat,
        "valid_repetitions": valid,
        "invalid_repetitions": len(repetitions) - valid,
        "repetitions": repetitions,
        "verdicts": evaluate(
            experiment.hypotheses, repetitions, executions_gate=experiment.reproduces is None
        ),
        "experiment_definition": experiment.describe(),
        "metadata": {
            **metadata,
            "harness_version": __version__,
            "machine": machine(),
            **harness_source(),
        },
    }


def _attempt(
    experiment: Experiment, cluster: Cluster, out: Path, *, seed: int, number: int
) -> dict[str, Any]:
    """One repetition; a harness failure inside it makes it invalid, not the run lost."""
    try:
        return run_repetition(experiment, cluster, out, seed=seed, repetition=number)
    except Exception as exc:
        (out / "error.txt").write_text(traceback.format_exc())
        return {"repetition": number, "seed": seed, "valid": False,
                "invalid_reasons": [f"harness error: {type(exc).__name__}: {exc}"],
                "executions": {"valid": None, "problems": []}}  # fmt: skip


def run_experiment(
    experiment: Experiment,
    cluster: Cluster | Callable[[], Cluster],
    out_dir: Path,
    *,
    repeat: int = 1,
    seed: int = 0,
    max_reruns: int | None = None,
    log=None,
) -> dict[str, Any]:
    """Run until ``repeat`` repetitions are valid, rerunning invalid ones at most
    ``max_reruns`` times (default: ``repeat``); writes ``out_dir/summary.json`` after each.

    ``cluster``: the cluster, or a function giving the cluster for each repetition (a fresh
    one per repetition with ``--fresh-cluster``). Attempts are numbered ``rep-1``, ``rep-2``
    ... in order, invalid ones included.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    get = cluster if not isinstance(cluster, Cluster) else lambda: cluster
    max_reruns = repeat if max_reruns is None else max_reruns
    repetitions: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    valid = number = 0
    while valid < repeat and number < repeat + max_reruns:
        number += 1
        if log:
            log(f"{experiment.name} {experiment.params}: repetition {number} "
                f"({valid}/{repeat} valid so far)")  # fmt: skip
        current = get()
        figures = _attempt(experiment, current, out_dir / f"rep-{number}",
                           seed=seed * 1000 + number - 1, number=number)  # fmt: skip
        _write_packages(out_dir, current)
        repetitions.append(json.loads(json.dumps(figures, default=str)))
        valid += bool(figures.get("valid"))
        summary = summarize(experiment, repetitions, _metadata(current, out_dir), repeat=repeat)
        summary["max_reruns"] = max_reruns
        write_summary(out_dir / "summary.json", summary)  # results survive a later failure
    return summary


PACKAGES_FILE = "airflow-packages.txt"


def _metadata(cluster: Cluster, out_dir: Path) -> dict[str, Any]:
    """The cluster's metadata, with the Airflow environment's package list as a file."""
    metadata = dict(cluster.metadata())
    env = dict(metadata.get("airflow_env") or {})
    if env.pop("packages", None) is not None:
        env["packages_file"] = PACKAGES_FILE
    if env:
        metadata["airflow_env"] = env
    return metadata


def _write_packages(out_dir: Path, cluster: Cluster) -> None:
    packages = (cluster.metadata().get("airflow_env") or {}).get("packages")
    if packages is not None:
        (out_dir / PACKAGES_FILE).write_text("\n".join(packages) + "\n")
