"""The recorded smoke run shipped with the tests, and runs synthesised from it.

``tests/data/smoke-run-1`` is a real run (4 experiment variants x 1 repetition, Airflow
3.3.2, local platform) with each repetition's ``history.parquet``; the raw
``history/*.jsonl`` and ledgers were dropped to keep it small.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from harness.analysis.links import link_effects
from harness.core import results
from harness.core.history import events_frame

DATA = Path(__file__).parent / "data"
SMOKE_RUN = DATA / "smoke-run-1"
VARIANTS = (
    "api-server-kill-a1-s1-w1",
    "api-server-kill-a2-s2-w1",
    "scheduler-kill-a1-s1-w1",
    "scheduler-kill-a2-s2-w1",
)


def copy_run(dst: Path, src: Path = SMOKE_RUN) -> Path:
    """A writable copy of a recorded run."""
    shutil.copytree(src, dst)
    return dst


def synth_run(
    dst: Path,
    *,
    reps: int = 6,
    jitter_s: float = 0.3,
    seed: int = 0,
    src: Path = SMOKE_RUN,
) -> Path:
    """A run of ``reps`` repetitions per variant: the recorded one, its downtime and
    recovery jittered by up to ``jitter_s`` (summaries only; no histories)."""
    rng = random.Random(seed)
    dst.mkdir(parents=True)
    for path in sorted(src.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        first = summary["repetitions"][0]
        repetitions = []
        for i in range(reps):
            r = dict(first, repetition=i + 1, seed=i)
            for key in ("downtime_s", "recovery_s"):
                if r.get(key) is not None:
                    r[key] = max(0.0, r[key] + rng.uniform(-jitter_s, jitter_s))
            repetitions.append(r)
        summary["repetitions"] = repetitions
        write_summary(dst / path.parent.name, summary)
    return dst


def perturb(
    src: Path,
    dst: Path,
    *,
    noise_s: float = 0.0,
    add: dict[str, dict[str, float]] | None = None,
    metadata: dict[str, dict[str, Any]] | None = None,
    seed: int = 1,
) -> Path:
    """A copy of a synthesised run: every figure moved by up to ``noise_s``, plus
    ``add[variant][metric]`` seconds, and ``metadata[variant]`` merged into its metadata."""
    rng = random.Random(seed)
    dst.mkdir(parents=True)
    for path in sorted(src.glob("*/summary.json")):
        name = path.parent.name
        summary = json.loads(path.read_text())
        for r in summary["repetitions"]:
            for key in ("downtime_s", "recovery_s"):
                if r.get(key) is not None:
                    r[key] = max(0.0, r[key] + rng.uniform(-noise_s, noise_s))
                    r[key] += (add or {}).get(name, {}).get(key, 0.0)
        summary["metadata"].update((metadata or {}).get(name, {}))
        write_summary(dst / name, summary)
    return dst


def write_summary(variant_dir: Path, summary: dict[str, Any]) -> None:
    results.write_summary(variant_dir / "summary.json", summary)


# --- synthesized runs with the newer summary keys ----------------------------------------
# Nothing below was measured: the recorded scheduler-kill summary is the template, and the
# figures the runner now writes (headline, baseline, load, per-run scheduling points, rejoin
# blips, a soak's fault outcomes) are made up by these builders.

SCHEDULER_HEADLINE = ["start_latency_after_max_s", "task_start_gap_after_s", "scheduling_resumed_s"]
SOAK_HEADLINE = ["downtime_s", "faults_injected", "failed_tasks"]
SYNTHESIZED_SCHEDULER = "scheduler-kill-synthesized"
SYNTHESIZED_SOAK = "soak-synthesized"
BASELINE_INVALID = "LB probes failed in the baseline window (3 of 160)"


def _synthesized_points(rng: random.Random, never: int) -> list[list[float | None]]:
    """[t_trigger - t_fault, latency] per DAG run: ~1 s apart from -8 s to +30 s, normal
    latency ~0.8 s, runs triggered in the first 9 s after the fault wait for the takeover,
    and the last ``never`` runs never start."""
    points: list[list[float | None]] = []
    t = -8.0
    while t < 30.0:
        latency = 0.6 + rng.uniform(0, 0.5)
        if 0 <= t < 9.0:
            latency += 9.0 - t
        points.append([round(t, 3), round(latency, 3)])
        t += rng.uniform(0.6, 1.4)
    for p in points[len(points) - never :]:
        p[1] = None
    return points


def _phase(rng: random.Random, requests: int, failures: int, slow: float = 1.0) -> dict:
    return {
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else None,
        "p50_s": round(0.012 * slow + rng.uniform(0, 0.002), 6),
        "p95_s": round(0.040 * slow + rng.uniform(0, 0.005), 6),
        "p99_s": round(0.090 * slow + rng.uniform(0, 0.010), 6),
    }


def synthesized_scheduler_repetition(
    number: int, rng: random.Random, *, never: int = 0, baseline_failures: int = 0
) -> dict[str, Any]:
    template = json.loads((SMOKE_RUN / VARIANTS[3] / "summary.json").read_text())
    rep = dict(template["repetitions"][0], repetition=number, seed=number)
    points = _synthesized_points(rng, never)
    after = [p for p in points if p[0] >= 0]
    unstarted = [p[0] for p in after if p[1] is None]
    watched = round(40.0 - min(unstarted), 3) if unstarted else None  # observed to +40 s
    started_after = [p[1] for p in after if p[1] is not None]
    rep.update(
        {
            "valid": True,
            "invalid_reasons": [],
            "start_latency_points": points,
            "start_latency_before_p50_s": 0.85,
            "start_latency_after_p50_s": sorted(started_after)[len(started_after) // 2],
            "start_latency_after_max_s": None if never else max(started_after),
            "task_start_gap_after_s": round(8.5 + rng.uniform(0, 1.5), 3),
            "scheduling_resumed_s": round(9.0 + rng.uniform(0, 1.0), 3),
            "censored": {"start_latency_after_max_s": watched} if never else {},
            "downtime_s": 0.0,
            "recovery_s": 0.0,
            "fault_outage_s": 0.0,
            "rejoin_blips": [{"after_s": 11.4, "duration_s": 0.15}] if number % 2 else [],
            "restarts_before": {"scheduler-0": 0, "scheduler-1": 0},
            "baseline_downtime_s": 0.15 if baseline_failures else 0.0,
            "baseline": {
                "window_s": 8.0,
                "probes": 160,
                "failures": baseline_failures,
                "error_rate": baseline_failures / 160,
                "p50_s": 0.004,
                "p99_s": 0.021,
            },
            "prober": {
                "planned": 900,
                "sent": 897,
                "achieved_fraction": 0.9967,
                "longest_silence_s": 0.11,
            },
            "load": {
                "users": 10,
                **_phase(rng, 1200, 4),
                "phases": {
                    "before": _phase(rng, 300, 0),
                    "during": _phase(rng, 100, 4, slow=3.0),
                    "after": _phase(rng, 800, 0),
                },
            },
        }
    )
    if baseline_failures:
        rep.update(valid=False, invalid_reasons=[BASELINE_INVALID])
    return rep


def synthesized_soak_repetition(number: int) -> dict[str, Any]:
    template = json.loads((SMOKE_RUN / VARIANTS[1] / "summary.json").read_text())
    rep = dict(template["repetitions"][0], repetition=number, seed=number)
    outcomes = [
        {"op": "kill", "target": "api-server-0", "at_s": 0.0, "outage_s": 0.4,
         "ready_after_s": 21.3},
        {"op": "kill", "target": "scheduler-1", "at_s": 60.2, "outage_s": 0.0,
         "ready_after_s": 12.8},
        {"op": "stop", "target": "worker-0", "at_s": 120.5, "outage_s": 0.0,
         "ready_after_s": None},
    ]  # fmt: skip
    rep.update(fault_outcomes=outcomes, faults_injected=3, failed_tasks=0, downtime_s=0.4,
               links=synthesized_links())  # fmt: skip
    return rep


def synthesized_links() -> list[dict[str, Any]]:
    """``links`` of a repetition, by the analysis, from a synthesized history: worker-0 cut
    from both api-servers 10-30 s (healed), two failed heartbeats logged meanwhile; then
    200 ms of latency on postgres to scheduler-0 from 40 s, never healed."""

    def ev(t: float, type_: str, **fields: Any) -> dict[str, Any]:
        return {"t_mono": t, "t_wall": t + 1000.0, "type": type_, **fields}

    rows = [ev(t / 10, "probe", target="lb", endpoint="/api/v2/monitor/health", ok=True,
               outcome="ok", latency_s=0.004) for t in range(0, 600)]  # fmt: skip
    rows += [
        ev(10.0, "fault", op="partition", target="worker-0", phase="invoke", op_id=1,
           peers=["api-server-0", "api-server-1"], both_ways=True, mode="blackhole"),
        ev(10.01, "fault", op="partition", target="worker-0", phase="ok", op_id=1),
        ev(30.0, "fault", op="heal", target="worker-0", phase="invoke", op_id=2),
        ev(30.01, "fault", op="heal", target="worker-0", phase="ok", op_id=2),
        ev(40.0, "fault", op="latency", target="postgres", phase="invoke", op_id=3,
           peers=["scheduler-0"], both_ways=False, delay_ms=200.0, jitter_ms=50.0),
        ev(40.01, "fault", op="latency", target="postgres", phase="ok", op_id=3),
        *[ev(t, "log", replica="worker-0", kind="heartbeat", level="warning",
             line="Failed to send heartbeat. Will be retried",
             cause="httpx.ConnectTimeout: timed out") for t in (15.0, 20.0)],
        ev(59.0, "marker", name="replica_logs", detail={}),
    ]  # fmt: skip
    return link_effects(events_frame(rows))


def synthesized_fault_run(
    dst: Path,
    *,
    reps: int = 6,
    never: tuple[int, ...] = (0, 2, 0, 1, 0, 0),
    invalid_baseline: int | None = 7,
    seed: int = 0,
) -> Path:
    """A run of two synthesized variants, with every key the runner now writes:

    - ``scheduler-kill-synthesized``: ``reps`` valid repetitions whose headline is about
      scheduling; repetition i has ``never[i - 1]`` DAG runs that never started (its max
      start latency censored), 10 Locust users, a rejoin blip in every odd repetition; plus
      repetition ``invalid_baseline`` (None: none), invalid because 3 baseline probes failed;
    - ``soak-synthesized``: one repetition of three faults in order (``fault_outcomes``).
    """
    rng = random.Random(seed)
    template = json.loads((SMOKE_RUN / VARIANTS[3] / "summary.json").read_text())
    template["experiment_definition"].update(headline=SCHEDULER_HEADLINE, load_users=10)
    repetitions = [
        synthesized_scheduler_repetition(i, rng, never=never[i - 1] if i <= len(never) else 0)
        for i in range(1, reps + 1)
    ]
    if invalid_baseline is not None:
        repetitions.append(
            synthesized_scheduler_repetition(invalid_baseline, rng, baseline_failures=3)
        )
    template.update(schema_version=2, repetitions=repetitions)
    write_summary(dst / SYNTHESIZED_SCHEDULER, template)
    soak = json.loads((SMOKE_RUN / VARIANTS[1] / "summary.json").read_text())
    soak["experiment_definition"].update(name="soak", headline=SOAK_HEADLINE)
    soak.update(schema_version=2, repetitions=[synthesized_soak_repetition(1)])
    write_summary(dst / SYNTHESIZED_SOAK, soak)
    return dst
