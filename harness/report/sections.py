"""A report's blocks of one experiment: its headline figures, its baseline and load as
measured, a soak's faults in order, and a row per repetition (the fault's own outage apart
from the rejoin blips after it). Keys a repetition lacks (older runs) are said to be
missing."""

from __future__ import annotations

from typing import Any

from harness.analysis.stats import median_ci
from harness.core.results import figure
from harness.report.cells import (
    as_dict,
    estimate_text,
    figure_cell,
    fmt,
    int_or_zero,
    is_num,
    millis,
    pct,
    seconds_text,
)
from harness.report.content import Block, Table
from harness.report.runs import Repetition, Variant

HEADLINE_DEFAULT_NOTE = (
    "This run was written before experiments named their headline figures: downtime and "
    "recovery are shown."
)


def _hypotheses_on(v: Variant, metric: str) -> str:
    named = [
        f"`{name}`: **{verdict.get('verdict')}**"
        + ("" if verdict.get("gate", True) else " (expectation)")
        for name, verdict in v.verdicts.items()
        if name.split()[0] == metric
    ]
    return "; ".join(named) or "-"


def headline_block(v: Variant) -> Block:
    """The variant's headline figures: median and 95 % interval over the valid repetitions,
    each valid repetition's value, and the hypotheses on it."""
    rows = [
        [
            f"`{metric}`",
            estimate_text(v, metric),
            ", ".join(figure_cell(r, metric) for r in v.valid_repetitions) or "-",
            _hypotheses_on(v, metric),
        ]
        for metric in v.headline
    ]
    table = Table(["headline figure", "median [95 % interval]", "valid repetitions",
                   "hypotheses on it"], rows)  # fmt: skip
    note = (
        "The figures that matter for this fault (its definition's `headline`), over the "
        f"{len(v.valid_repetitions)} valid repetition(s)."
        if v.names_headline
        else HEADLINE_DEFAULT_NOTE
    )
    missing = [m for m in v.headline if all(x is None for x in v.values(m))]
    if missing:
        note += (
            " Not recorded in any valid repetition: "
            + ", ".join(f"`{m}`" for m in missing)
            + " (a run written before the harness measured it, or none valid)."
        )
    return Block(note, table)


BASELINE_HEADERS = [
    "repetition",
    "baseline window",
    "LB probes",
    "failed",
    "error rate",
    "p50 (ms)",
    "p99 (ms)",
    "LB down (s)",
    "prober sent (of planned)",
    "longest prober silence",
]


def _rep_label(r: Repetition) -> str:
    return f"{r.number}" + ("" if r.valid else " (invalid, excluded)")


def _baseline_row(r: Repetition) -> list[str]:
    b, pr = as_dict(r.figures.get("baseline")), as_dict(r.figures.get("prober"))
    window = b.get("window_s")
    sent = (
        f"{pct(pr.get('achieved_fraction'), 1)} ({fmt(pr.get('sent'))} of {fmt(pr.get('planned'))})"
        if pr
        else "-"
    )
    silence = pr.get("longest_silence_s")
    return [
        _rep_label(r),
        f"{window:.1f} s" if is_num(window) else "-",
        fmt(b.get("probes")),
        fmt(b.get("failures")),
        pct(b.get("error_rate")),
        millis(b.get("p50_s")),
        millis(b.get("p99_s")),
        fmt(r.figures.get("baseline_downtime_s"), 2),
        sent,
        seconds_text(silence),
    ]


MIN_ACHIEVED = 0.95  # as harness.analysis.validity: below it a repetition is invalid


def baseline_block(v: Variant) -> Block:
    """Per repetition (invalid ones too: a failing baseline is one reason to be invalid) the
    LB liveness probes between the steady state and the fault, and the prober's coverage;
    the note says plainly when the baseline had failures."""
    reps = [r for r in v.repetitions if "baseline" in r.figures or "prober" in r.figures]
    if not reps:
        return Block(
            "No baseline recorded: this run was written before the harness recorded the "
            "window between the steady state and the fault (the `before` phase under "
            "Latency per phase is the nearest thing)."
        )
    failing = [r for r in reps if int_or_zero(as_dict(r.figures.get("baseline")).get("failures"))]
    probes = sum(int_or_zero(as_dict(r.figures.get("baseline")).get("probes")) for r in reps)
    if failing:
        parts = []
        for r in failing:
            b = as_dict(r.figures["baseline"])
            parts.append(
                f"repetition {r.number}: {b.get('failures')} of {b.get('probes')} LB probes "
                f"failed ({pct(b.get('error_rate'))})"
                + ("" if r.valid else ", invalid and excluded")
            )
        note = (
            "**The baseline had failures** — the cluster was not healthy before the fault, "
            "so what followed it is not the fault's doing alone: " + "; ".join(parts) + "."
        )
        still = [r.number for r in failing if r.valid]
        if still:
            note += f" Repetition(s) {', '.join(map(str, still))} still count as valid here."
    else:
        note = (
            f"No LB probe failed in any baseline ({probes} probes over {len(reps)} "
            "repetition(s), between the steady state and the fault)."
        )
    achieved = [(r.number, as_dict(r.figures.get("prober")).get("achieved_fraction")) for r in reps]
    short = [(n, f) for n, f in achieved if is_num(f) and f < MIN_ACHIEVED]
    if short:
        sent = ", ".join(f"repetition {n} ({pct(f, 1)} sent)" for n, f in short)
        note += f" **The prober fell short of its planned rate** in {sent}."
    return Block(note, Table(BASELINE_HEADERS, [_baseline_row(r) for r in reps]))


LOAD_HEADERS = ["phase", "requests", "failed", "error rate", "p50 (ms)", "p95 (ms)", "p99 (ms)"]


LOAD_PHASES = (("whole run", None), ("before the fault", "before"),
               ("during (fault → recovery)", "during"), ("after recovery", "after"))  # fmt: skip


def _load_row(loads: list[dict[str, Any]], label: str, phase: str | None) -> list[str]:
    stats = [as_dict(as_dict(x.get("phases")).get(phase)) if phase else x for x in loads]
    requests = sum(int_or_zero(st.get("requests")) for st in stats)
    failures = sum(int_or_zero(st.get("failures")) for st in stats)

    def median(key: str) -> str:
        return millis(median_ci([st.get(key) for st in stats]).median)

    return [
        label,
        str(requests),
        str(failures),
        pct(failures / requests) if requests else "-",
        median("p50_s"),
        median("p95_s"),
        median("p99_s"),
    ]


def load_block(v: Variant) -> Block:
    """What the Locust users saw over the valid repetitions, per phase."""
    loads = [as_dict(r.figures.get("load")) for r in v.valid_repetitions if "load" in r.figures]
    users = sorted({x["users"] for x in loads if int_or_zero(x.get("users"))})
    if not users and not any(int_or_zero(x.get("requests")) for x in loads):
        configured = (v.summary.get("experiment_definition") or {}).get("load_users")
        if configured == 0 or any(x.get("users") == 0 for x in loads):
            return Block("No Locust load in this experiment (`load_users` = 0): no Locust "
                         "users loaded the API servers.")  # fmt: skip
        return Block("No load figures recorded (a run written before the harness recorded "
                     "what the Locust users saw).")  # fmt: skip
    rows = [_load_row(loads, label, phase) for label, phase in LOAD_PHASES]
    before = rows[1]
    note = (
        f"What {', '.join(map(str, users)) or 'the'} Locust user(s) saw, over {len(loads)} valid "
        "repetition(s): requests and failures summed over the repetitions, the error rate "
        "of those sums, latency percentiles of successful requests the median of the "
        "repetitions' (ms). Before: the baseline window; during: fault → recovery (to the "
        "end if it never recovered); after: recovery → the end."
    )
    if before[2] != "0":
        note += f" **Locust requests failed before the fault** ({before[2]} of {before[1]})."
    return Block(note, Table(LOAD_HEADERS, rows))


def soak_block(v: Variant) -> Block | None:
    """A soak's faults in the order they were injected, per repetition."""
    reps = [r for r in v.repetitions if isinstance(r.figures.get("fault_outcomes"), list)]
    if not reps:
        return None
    rows = []
    for r in reps:
        for i, f in enumerate(r.figures["fault_outcomes"], 1):
            f = as_dict(f)
            ready = f.get("ready_after_s")
            rows.append([
                _rep_label(r), str(i), fmt(f.get("op")), f"`{fmt(f.get('target'))}`",
                seconds_text(f.get("at_s")), seconds_text(f.get("outage_s")),
                "not seen ready" if ready is None else seconds_text(ready),
            ])  # fmt: skip
    note = (
        "The soak's faults in the order injected: when (seconds after the first fault), the "
        "LB outage each caused (starting within the detection window after it; 0: none) "
        "and when its target was ready again (seconds after that fault)."
    )
    headers = ["repetition", "#", "op", "target", "at", "LB outage", "ready after"]
    return Block(note, Table(headers, rows))


FIGURE_KEYS = (
    ("downtime_s", "downtime (s)"),
    ("recovery_s", "recovery (s)"),
    ("time_to_detect_s", "detected after (s)"),
    ("replacement_ready_s", "replacement ready (s)"),
    ("degraded_s", "degraded latency (s)"),
    ("failed_tasks", "failed tasks"),
    ("scheduling_resumed_s", "scheduling resumed (s)"),
    ("task_start_gap_after_s", "largest task-start gap after (s)"),
)


REPETITIONS_NOTE = (
    "A row per repetition, invalid ones too (excluded from every figure and median). "
    "**Fault's outage**: the LB outage the fault itself caused (the first one starting "
    "within the detection window after it; 0: none). **Rejoin blips**: later LB outages, "
    "such as a replacement rejoining, as duration at seconds since the fault; they are not "
    "the fault's outage and not in its recovery. `-`: not recorded (an older run)."
)


def _blips_text(r: Repetition) -> str:
    blips = r.figures.get("rejoin_blips")
    if not isinstance(blips, list):
        return "-"
    if not blips:
        return "none"
    return "; ".join(
        f"{seconds_text(as_dict(b).get('duration_s'))} at +{fmt(as_dict(b).get('after_s'), 1)} s"
        for b in blips
    )


def _fault_text(r: Repetition) -> str:
    faults = ", ".join(
        f"{as_dict(f).get('op')} `{as_dict(f).get('target')}`" for f in r.figures.get("fault") or []
    )
    delay = r.figures.get("trigger_delay_s")
    if is_num(delay):
        faults += f" ({delay:.2f} s after its trigger held)"
    return faults or "-"


def _other_figures(v: Variant, r: Repetition) -> str:
    figs = [
        f"{label.removesuffix(' (s)')} {figure_cell(r, k)}"
        for k, label in FIGURE_KEYS
        if k not in v.headline and figure(r.figures, k) is not None
    ]
    outages = r.figures.get("outages")
    if isinstance(outages, list):
        figs.append(f"{len(outages)} LB outage(s) in all")
    restarts = {k: n for k, n in as_dict(r.figures.get("restarts_before")).items() if n}
    if restarts:
        figs.append("restarts before the fault: "
                    + ", ".join(f"`{k}` {n}" for k, n in sorted(restarts.items())))  # fmt: skip
    return ", ".join(figs) or "-"


def repetitions_block(v: Variant) -> Block:
    """One row per repetition: status, fault, the headline figures, the fault's own LB
    outage apart from the rejoin blips after it, and the other figures."""
    headers = ["repetition", "status", "fault", *(f"`{m}`" for m in v.headline),
               "fault's outage", "rejoin blips", "other figures"]  # fmt: skip
    rows = []
    for r in v.repetitions:
        status = "valid"
        if not r.valid:
            why = "; ".join(r.invalid_reasons) or "no reason recorded"
            status = f"**invalid, excluded from every figure and median** ({why})"
        outage = r.figures.get("fault_outage_s")
        rows.append(
            [
                f"{r.number} (seed {r.figures.get('seed')})",
                status,
                _fault_text(r),
                *(figure_cell(r, m) for m in v.headline),
                seconds_text(outage) if "fault_outage_s" in r.figures else "-",
                _blips_text(r),
                _other_figures(v, r),
            ]
        )
    return Block(REPETITIONS_NOTE, Table(headers, rows))
