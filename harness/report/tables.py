"""A report's run-wide tables: the overview (each experiment's headline figures), the
setup (and each experiment's exact setup as JSON), the SLO verdicts with the median of
what each measured, and the latency per phase through the load balancer."""

from __future__ import annotations

import json
import math
from typing import Any

from harness.analysis.stats import median_ci
from harness.core.results import censored_for, figure
from harness.report.cells import estimate_text, fmt
from harness.report.content import Table
from harness.report.runs import Repetition, Run, Variant

SETUP_HEADERS = [
    "experiment",
    "Airflow",
    "platform",
    "topology",
    "config overrides",
    "harness",
    "machine",
]


def _topology_text(topology: dict[str, Any]) -> str:
    keys = ("api_servers", "schedulers", "dag_processors", "triggerers", "workers")
    parts = [f"{k.replace('_', '-')}={topology[k]}" for k in keys if k in topology]
    name = topology.get("name")
    return (f"`{name}` " if name else "") + ", ".join(parts) if topology else "-"


def _overrides_text(overrides: dict[str, Any] | None) -> str:
    if not overrides:
        return "none"
    return ", ".join(f"`{k}={v}`" for k, v in sorted(overrides.items()))


def _machine_text(machine: dict[str, Any] | None) -> str:
    if not machine:
        return "-"
    return (
        f"{machine.get('hostname')}: {machine.get('cpus')} CPUs, "
        f"Python {machine.get('python')}, {machine.get('system')}"
    )


def setup_table(run: Run) -> Table:
    rows = []
    for v in run.variants:
        m = v.metadata
        rows.append(
            [
                v.name,
                fmt(m.get("airflow_version")),
                fmt(m.get("platform")),
                _topology_text(m.get("topology") or {}),
                _overrides_text(m.get("airflow_config_overrides")),
                fmt(m.get("harness_version")),
                _machine_text(m.get("machine")),
            ]
        )
    return Table(SETUP_HEADERS, rows)


def exact_setups(run: Run) -> list[tuple[str, str]]:
    """(experiment, JSON of its metadata and definition) for each variant."""
    out = []
    for v in run.variants:
        exact = {
            "metadata": {k: val for k, val in v.metadata.items() if k not in ("ports", "timings")},
            "experiment_definition": v.summary.get("experiment_definition"),
        }
        out.append((v.name, json.dumps(exact, indent=2, default=str)))
    return out


OVERVIEW_HEADERS = [
    "experiment",
    "n",
    "headline figure",
    "median [95 % interval]",
    "failed tasks",
    "verdicts",
]


def _verdict_text(counts: dict[str, int]) -> str:
    order = ("confirmed", "refuted", "unknown")
    keys = [k for k in order if counts.get(k)] + [k for k in counts if k not in order]
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "-"


def _n_text(v: Variant) -> str:
    excluded = f" ({len(v.excluded)} invalid, excluded)" if v.excluded else ""
    return f"{len(v.valid_repetitions)}{excluded}"


def overview_table(run: Run) -> Table:
    """A row per headline figure of each variant; n, failed tasks and verdicts on the
    variant's first row."""
    rows = []
    for v in run.variants:
        for i, metric in enumerate(v.headline):
            first = i == 0
            rows.append(
                [
                    v.name,
                    _n_text(v) if first else "",
                    f"`{metric}`",
                    estimate_text(v, metric),
                    ", ".join(fmt(r.figures.get("failed_tasks")) for r in v.valid_repetitions)
                    if first
                    else "",
                    _verdict_text(v.verdict_counts()) if first else "",
                ]
            )
    return Table(OVERVIEW_HEADERS, rows)


def overview_note(run: Run) -> str:
    note = (
        "Medians over the valid repetitions, with a distribution-free 95 % confidence "
        "interval of the median in brackets: the order statistics [x_(k), x_(n-k+1)] with "
        "the largest k whose binomial coverage is at least 95 % (n = 6: the smallest and "
        "largest value, coverage 96.9 %). Below 6 repetitions no 95 % interval exists, and "
        "none is given. **never (>= X s)**: the event was not seen in X seconds of watching "
        "(censored; it counts as later than any measured value)."
    )
    if all(len(v.valid_repetitions) < 6 for v in run.variants):
        note += (
            " **Every experiment here has fewer than 6 valid repetitions, so there are no "
            "confidence intervals**: so few measurements say little about the spread; "
            "repeat the run (`--repeat 6` or more) for intervals."
        )
    excluded = sum(len(v.excluded) for v in run.variants)
    if excluded:
        note += (
            f" {excluded} invalid repetition(s) are excluded from every figure and median "
            "(see each experiment's repetitions under Experiments for why)."
        )
    return (
        note + " Each experiment's **headline figures** are the ones that matter for its "
        "fault (its definition's `headline`; downtime and recovery for runs written before "
        "it existed). `downtime_s`: total outage of the probe stream through the load "
        "balancer; `recovery_s`, `scheduling_resumed_s`, `*_after_s` of a victim or a "
        "replacement: seconds since the fault; start latencies and task-start gaps: "
        "durations in seconds."
    )


def _measured_values(
    metric: str, measured: list[Any], reps: list[Repetition] | None
) -> tuple[list[Any], float | None]:
    """(values over the valid repetitions, censored +inf; shortest censored watch)."""
    if reps is None or len(reps) != len(measured):
        return measured, None
    pairs = [(m, r) for m, r in zip(measured, reps, strict=True) if r.valid]
    values = [math.inf if figure(r.figures, metric) == math.inf else m for m, r in pairs]
    watched = [censored_for(r.figures, metric) for _, r in pairs]
    known = [w for w in watched if w is not None]
    return values, min(known) if known else None


def measured_median(hypothesis: str, measured: Any, reps: list[Repetition] | None = None) -> str:
    """Median [95% CI] of a hypothesis's per-repetition numbers over the valid repetitions
    (``reps``, when they match ``measured`` one to one); "-" for anything else."""
    values = [m for m in measured if m is not None] if isinstance(measured, list) else []
    if not values or any(isinstance(m, bool) or not isinstance(m, int | float) for m in values):
        return "-"
    metric = hypothesis.split()[0]
    values, censored_s = _measured_values(metric, measured, reps)
    unit = "s" if metric.endswith("_s") else ""
    return median_ci(values, censored_s=censored_s).text(unit=unit)


def _verdict_row(v: Variant, name: str, verdict: dict[str, Any]) -> list[str]:
    measured = verdict.get("measured")
    median = measured_median(name, measured, v.repetitions)
    if isinstance(measured, list):
        measured = ", ".join(
            fmt(m) if not isinstance(m, list) else "; ".join(map(str, m)) or "none"
            for m in measured
        )
    return [
        v.name,
        f"`{name}`",
        "SLO (gate)" if verdict.get("gate", True) else "expectation (not a gate)",
        f"**{verdict.get('verdict')}**",
        fmt(measured)[:300],
        median,
        str(verdict.get("why") or ""),
    ]


def verdicts_table(run: Run) -> Table:
    return Table(
        ["experiment", "hypothesis", "kind", "verdict", "measured", "median", "why"],
        [
            _verdict_row(v, name, verdict)
            for v in run.variants
            for name, verdict in v.verdicts.items()
        ],
    )


def _phase_row(v: Variant, phase: str) -> list[str]:
    def med(key: str) -> float | None:
        vals = [
            (r.figures.get("phases") or {}).get(phase, {}).get(key) for r in v.valid_repetitions
        ]
        return median_ci(vals).median

    def ms(key: str) -> str:
        x = med(key)
        return "-" if x is None else f"{x * 1000:.1f}"

    err = med("error_rate")
    return [
        v.name,
        phase,
        fmt(med("count"), 0),
        "-" if err is None else f"{err * 100:.2f}%",
        ms("latency_p50_s"),
        ms("latency_p95_s"),
        ms("latency_p99_s"),
    ]


def phases_table(run: Run) -> Table:
    return Table(
        ["experiment", "phase", "probes", "error rate", "p50 (ms)", "p95 (ms)", "p99 (ms)"],
        [_phase_row(v, phase) for v in run.variants for phase in ("before", "during", "after")],
    )
