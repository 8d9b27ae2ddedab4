"""A run's report: ``report.md`` and a self-contained ``report.html`` with figures.

:func:`write_run_report` works on a run directory (several experiment variants) or on a
single experiment directory. It writes, next to the data:

- ``figures/*.png`` and ``figures/*.svg``: per repetition the recovery curve and, where
  the repetition kept its side-effect ledger, its execution timeline (task executions per
  task instance with the task-history checkers' findings); per variant whose headline has
  a scheduling figure, the scheduling scatter (trigger time vs trigger → first task start,
  per DAG run); per run the repetitions (each variant's headline figures with medians and
  confidence intervals) and the latency per phase;
- ``report.md`` (links the PNGs) and ``report.html`` (PNGs embedded as data URIs, so it
  opens from disk or as an e-mail attachment);
- for a run directory, ``summary.json``: an index of its experiments.

Each variant's section starts with its **headline**: the figures that matter for its fault
(``experiment_definition.headline``; downtime and recovery for runs written before it
existed), then its **baseline and load** as measured (LB probes between the steady state and
the fault, prober coverage, what the Locust users saw per phase), the scheduling scatter,
a soak's faults in order, and a table per repetition (the fault's own outage apart from the
rejoin blips after it). Keys a repetition lacks (older runs) are said to be missing.

This module computes the content (:class:`Report`: its text, tables as rows of cells,
figures with their paths and embedded data); the Jinja2 templates in ``templates/`` lay
it out as Markdown and as HTML. Text has inline `code` and **bold** only.

Everything in it is measured (the summaries and histories); nothing is estimated without
saying how. Medians come with the distribution-free order-statistic 95 % interval
(:func:`harness.analysis.stats.median_ci`), and with none below 6 repetitions. Invalid
repetitions (``"valid": false``) are listed as excluded and left out of every figure and
median; censored figures (never seen while watched) are +inf and print "never (>= X s)".
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from harness.analysis.stats import Estimate, median_ci, never_text
from harness.core.results import censored_for, figure
from harness.report.runs import (
    Repetition,
    Run,
    Variant,
    headline_of,
    is_experiment_dir,
    load_run,
    load_summaries,
)

__all__ = ["Report", "load_summaries", "render_markdown", "write_run_report"]

FIGURES_DIR = "figures"
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
VERDICTS_NOTE = (
    "A gate is an SLO: refuted fails the run. An expectation is a hypothesis under "
    "study, reported without failing anything. Verdict and measured: as the run recorded "
    "them, one value per repetition; median: over the valid repetitions (censored: +inf), "
    "with the order-statistic 95 % interval of the median (none below 6 repetitions)."
)
HEADLINE_DEFAULT_NOTE = (
    "This run was written before experiments named their headline figures: downtime and "
    "recovery are shown."
)
PHASES_NOTE = (
    "Probes through the load balancer: before the fault, during (fault until "
    "sustained recovery) and after; medians over the valid repetitions, latency of "
    "successful probes in ms."
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# --- what the templates lay out ----------------------------------------------------------


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Figure:
    png: str  # relative to the report's directory
    svg: str
    alt: str  # also the caption
    data_uri: str  # the PNG, for report.html


@dataclass
class Curve:
    """One repetition under "Recovery curves": a note (why its curve is not fresh), a
    figure, or both."""

    note: str | None = None
    figure: Figure | None = None


@dataclass
class Block:
    """A note, a table, or both (a table absent: the note says why)."""

    note: str
    table: Table | None = None


@dataclass
class ExperimentSection:
    name: str
    description: str | None
    headline: Block  # first: the figures that matter for this fault
    baseline: Block
    load: Block
    repetitions: Block  # a table with one row per repetition
    curves: list[Curve]
    timelines: list[Curve] = field(default_factory=list)  # repetitions with a ledger
    scheduling: Curve | None = None  # the scatter, when the headline is about scheduling
    soak: Block | None = None  # a soak's faults in order


@dataclass
class Report:
    """A report's content, as the templates lay it out (section by section)."""

    intro: str
    overview_note: str
    overview: Table
    repetitions_figure: Figure
    setup: Table
    exact_setups: list[tuple[str, str]]  # (experiment, its setup as JSON)
    verdicts: Table
    phases: Table
    phase_figure: Figure
    experiments: list[ExperimentSection]
    verdicts_note: str = VERDICTS_NOTE
    phases_note: str = PHASES_NOTE

    def figures(self) -> list[Figure]:
        curves = [c.figure for e in self.experiments
                  for c in [*([e.scheduling] if e.scheduling else []), *e.curves, *e.timelines]
                  if c.figure]  # fmt: skip
        return [self.repetitions_figure, self.phase_figure, *curves]


def _figure(out: Path, png: Path, svg: Path, alt: str) -> Figure:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return Figure(
        png.relative_to(out).as_posix(),
        svg.relative_to(out).as_posix(),
        alt,
        f"data:image/png;base64,{data}",
    )


# --- templates ---------------------------------------------------------------------------

VERDICT_CLASS = {
    "confirmed": "ok",
    "refuted": "bad",
    "unknown": "unk",
    "regression": "bad",
    "improvement": "ok",
}


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _inline(text: str) -> Markup:
    """HTML of text with inline `code` and **bold**; everything else escaped."""
    text = html.escape(str(text), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text))


def _wbr(markup: Markup) -> Markup:
    """A line-break opportunity after each underscore (long figure names in table headers);
    the HTML of :func:`_inline` has underscores in text only, never in a tag."""
    return Markup(str(markup).replace("_", "_<wbr>"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _verdict_class(cell: str) -> str:
    """The CSS class of a table cell that starts with a verdict ("" for any other)."""
    return VERDICT_CLASS.get(cell.split(" ")[0].strip("*").lower(), "")


@cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(md_row=_md_row, inline=_inline, slug=_slug, verdict_class=_verdict_class,
                       wbr=_wbr)  # fmt: skip
    return env


def _render(template: str, **context: Any) -> str:
    return _templates().get_template(template).render(**context).rstrip("\n") + "\n"


# --- content ---------------------------------------------------------------------------


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


SETUP_HEADERS = [
    "experiment",
    "Airflow",
    "platform",
    "topology",
    "config overrides",
    "harness",
    "machine",
]


def _setup_table(run: Run) -> Table:
    rows = []
    for v in run.variants:
        m = v.metadata
        rows.append(
            [
                v.name,
                _fmt(m.get("airflow_version")),
                _fmt(m.get("platform")),
                _topology_text(m.get("topology") or {}),
                _overrides_text(m.get("airflow_config_overrides")),
                _fmt(m.get("harness_version")),
                _machine_text(m.get("machine")),
            ]
        )
    return Table(SETUP_HEADERS, rows)


def _exact_setups(run: Run) -> list[tuple[str, str]]:
    """(experiment, JSON of its metadata and definition) for each variant."""
    out = []
    for v in run.variants:
        exact = {
            "metadata": {k: val for k, val in v.metadata.items() if k not in ("ports", "timings")},
            "experiment_definition": v.summary.get("experiment_definition"),
        }
        out.append((v.name, json.dumps(exact, indent=2, default=str)))
    return out


def _verdict_text(counts: dict[str, int]) -> str:
    order = ("confirmed", "refuted", "unknown")
    keys = [k for k in order if counts.get(k)] + [k for k in counts if k not in order]
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "-"


OVERVIEW_HEADERS = [
    "experiment",
    "n",
    "headline figure",
    "median [95 % interval]",
    "failed tasks",
    "verdicts",
]


def estimate(v: Variant, metric: str) -> Estimate:
    """Median and 95 % interval of ``metric`` over the variant's valid repetitions."""
    return median_ci(v.values(metric), censored_s=v.censored_s(metric))


def _unit(metric: str) -> str:
    return "s" if metric.endswith("_s") else ""


def estimate_text(v: Variant, metric: str) -> str:
    """``1.23 s [0.90, 1.80] (n=6)``, ``never (>= X s) ...``, ``... (n=5; no 95 % interval:
    n < 6)``, or ``not recorded`` when no valid repetition has the figure."""
    est = estimate(v, metric)
    if est.median is None:
        return "not recorded"
    return est.text(unit=_unit(metric), digits=2 if metric.endswith("_s") else 1)


def _n_text(v: Variant) -> str:
    excluded = f" ({len(v.excluded)} invalid, excluded)" if v.excluded else ""
    return f"{len(v.valid_repetitions)}{excluded}"


def _overview_table(run: Run) -> Table:
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
                    ", ".join(_fmt(r.figures.get("failed_tasks")) for r in v.valid_repetitions)
                    if first
                    else "",
                    _verdict_text(v.verdict_counts()) if first else "",
                ]
            )
    return Table(OVERVIEW_HEADERS, rows)


def _overview_note(run: Run) -> str:
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


def _measured_median(hypothesis: str, measured: Any, reps: list[Repetition] | None = None) -> str:
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
    median = _measured_median(name, measured, v.repetitions)
    if isinstance(measured, list):
        measured = ", ".join(
            _fmt(m) if not isinstance(m, list) else "; ".join(map(str, m)) or "none"
            for m in measured
        )
    return [
        v.name,
        f"`{name}`",
        "SLO (gate)" if verdict.get("gate", True) else "expectation (not a gate)",
        f"**{verdict.get('verdict')}**",
        _fmt(measured)[:300],
        median,
        str(verdict.get("why") or ""),
    ]


def _verdicts_table(run: Run) -> Table:
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
        _fmt(med("count"), 0),
        "-" if err is None else f"{err * 100:.2f}%",
        ms("latency_p50_s"),
        ms("latency_p95_s"),
        ms("latency_p99_s"),
    ]


def _phases_table(run: Run) -> Table:
    return Table(
        ["experiment", "phase", "probes", "error rate", "p50 (ms)", "p95 (ms)", "p99 (ms)"],
        [_phase_row(v, phase) for v in run.variants for phase in ("before", "during", "after")],
    )


def _figure_text(r: Repetition, metric: str, digits: int = 3) -> str:
    """A repetition's figure: the value, or ``never (>= X s)`` when censored."""
    if figure(r.figures, metric) == math.inf:
        return never_text(censored_for(r.figures, metric), digits)
    return _fmt(r.figures.get(metric), digits)


def _seconds(r: Repetition, metric: str) -> str:
    text = _figure_text(r, metric, 2)
    return text if text == "-" or text.startswith("never") else f"{text} s"


def _figure_cell(r: Repetition, metric: str) -> str:
    """A repetition's figure in a table: ``1.23 s``, ``never (>= X s)``, ``2`` or ``-``."""
    if metric.endswith("_s"):
        return _seconds(r, metric)
    return _figure_text(r, metric, 2)


def _hypotheses_on(v: Variant, metric: str) -> str:
    named = [
        f"`{name}`: **{verdict.get('verdict')}**"
        + ("" if verdict.get("gate", True) else " (expectation)")
        for name, verdict in v.verdicts.items()
        if name.split()[0] == metric
    ]
    return "; ".join(named) or "-"


def _headline_block(v: Variant) -> Block:
    """The variant's headline figures: median and 95 % interval over the valid repetitions,
    each valid repetition's value, and the hypotheses on it."""
    rows = [
        [
            f"`{metric}`",
            estimate_text(v, metric),
            ", ".join(_figure_cell(r, metric) for r in v.valid_repetitions) or "-",
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


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _pct(x: Any, digits: int = 2) -> str:
    return f"{x * 100:.{digits}f} %" if _is_num(x) else "-"


def _ms(x: Any) -> str:
    return f"{x * 1000:.1f}" if _is_num(x) else "-"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


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
    b, pr = _dict(r.figures.get("baseline")), _dict(r.figures.get("prober"))
    window = b.get("window_s")
    sent = (
        f"{_pct(pr.get('achieved_fraction'), 1)} ({_fmt(pr.get('sent'))} of "
        f"{_fmt(pr.get('planned'))})"
        if pr
        else "-"
    )
    silence = pr.get("longest_silence_s")
    return [
        _rep_label(r),
        f"{window:.1f} s" if _is_num(window) else "-",
        _fmt(b.get("probes")),
        _fmt(b.get("failures")),
        _pct(b.get("error_rate")),
        _ms(b.get("p50_s")),
        _ms(b.get("p99_s")),
        _fmt(r.figures.get("baseline_downtime_s"), 2),
        sent,
        _seconds_text(silence),
    ]


MIN_ACHIEVED = 0.95  # as harness.analysis.validity: below it a repetition is invalid


def _baseline_block(v: Variant) -> Block:
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
    failing = [r for r in reps if _count(_dict(r.figures.get("baseline")).get("failures"))]
    probes = sum(_count(_dict(r.figures.get("baseline")).get("probes")) for r in reps)
    if failing:
        parts = []
        for r in failing:
            b = _dict(r.figures["baseline"])
            parts.append(
                f"repetition {r.number}: {b.get('failures')} of {b.get('probes')} LB probes "
                f"failed ({_pct(b.get('error_rate'))})"
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
    achieved = [(r.number, _dict(r.figures.get("prober")).get("achieved_fraction")) for r in reps]
    short = [(n, f) for n, f in achieved if _is_num(f) and f < MIN_ACHIEVED]
    if short:
        sent = ", ".join(f"repetition {n} ({_pct(f, 1)} sent)" for n, f in short)
        note += f" **The prober fell short of its planned rate** in {sent}."
    return Block(note, Table(BASELINE_HEADERS, [_baseline_row(r) for r in reps]))


LOAD_HEADERS = ["phase", "requests", "failed", "error rate", "p50 (ms)", "p95 (ms)", "p99 (ms)"]
LOAD_PHASES = (("whole run", None), ("before the fault", "before"),
               ("during (fault → recovery)", "during"), ("after recovery", "after"))  # fmt: skip


def _load_row(loads: list[dict[str, Any]], label: str, phase: str | None) -> list[str]:
    stats = [_dict(_dict(x.get("phases")).get(phase)) if phase else x for x in loads]
    requests = sum(_count(st.get("requests")) for st in stats)
    failures = sum(_count(st.get("failures")) for st in stats)

    def median(key: str) -> str:
        return _ms(median_ci([st.get(key) for st in stats]).median)

    return [
        label,
        str(requests),
        str(failures),
        _pct(failures / requests) if requests else "-",
        median("p50_s"),
        median("p95_s"),
        median("p99_s"),
    ]


def _load_block(v: Variant) -> Block:
    """What the Locust users saw over the valid repetitions, per phase."""
    loads = [_dict(r.figures.get("load")) for r in v.valid_repetitions if "load" in r.figures]
    users = sorted({x["users"] for x in loads if _count(x.get("users"))})
    if not users and not any(_count(x.get("requests")) for x in loads):
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


def _soak_block(v: Variant) -> Block | None:
    """A soak's faults in the order they were injected, per repetition."""
    reps = [r for r in v.repetitions if isinstance(r.figures.get("fault_outcomes"), list)]
    if not reps:
        return None
    rows = []
    for r in reps:
        for i, f in enumerate(r.figures["fault_outcomes"], 1):
            f = _dict(f)
            ready = f.get("ready_after_s")
            rows.append([
                _rep_label(r), str(i), _fmt(f.get("op")), f"`{_fmt(f.get('target'))}`",
                _seconds_text(f.get("at_s")), _seconds_text(f.get("outage_s")),
                "not seen ready" if ready is None else _seconds_text(ready),
            ])  # fmt: skip
    note = (
        "The soak's faults in the order injected: when (seconds after the first fault), the "
        "LB outage each caused (starting within the detection window after it; 0: none) "
        "and when its target was ready again (seconds after that fault)."
    )
    headers = ["repetition", "#", "op", "target", "at", "LB outage", "ready after"]
    return Block(note, Table(headers, rows))


def _seconds_text(x: Any) -> str:
    return f"{x:.2f} s" if _is_num(x) else "-"


def _blips_text(r: Repetition) -> str:
    blips = r.figures.get("rejoin_blips")
    if not isinstance(blips, list):
        return "-"
    if not blips:
        return "none"
    return "; ".join(
        f"{_seconds_text(_dict(b).get('duration_s'))} at +{_fmt(_dict(b).get('after_s'), 1)} s"
        for b in blips
    )


def _fault_text(r: Repetition) -> str:
    faults = ", ".join(
        f"{_dict(f).get('op')} `{_dict(f).get('target')}`" for f in r.figures.get("fault") or []
    )
    delay = r.figures.get("trigger_delay_s")
    if _is_num(delay):
        faults += f" ({delay:.2f} s after its trigger held)"
    return faults or "-"


def _other_figures(v: Variant, r: Repetition) -> str:
    figs = [
        f"{label.removesuffix(' (s)')} {_figure_cell(r, k)}"
        for k, label in FIGURE_KEYS
        if k not in v.headline and figure(r.figures, k) is not None
    ]
    outages = r.figures.get("outages")
    if isinstance(outages, list):
        figs.append(f"{len(outages)} LB outage(s) in all")
    restarts = {k: n for k, n in _dict(r.figures.get("restarts_before")).items() if n}
    if restarts:
        figs.append("restarts before the fault: "
                    + ", ".join(f"`{k}` {n}" for k, n in sorted(restarts.items())))  # fmt: skip
    return ", ".join(figs) or "-"


REPETITIONS_NOTE = (
    "A row per repetition, invalid ones too (excluded from every figure and median). "
    "**Fault's outage**: the LB outage the fault itself caused (the first one starting "
    "within the detection window after it; 0: none). **Rejoin blips**: later LB outages, "
    "such as a replacement rejoining, as duration at seconds since the fault; they are not "
    "the fault's outage and not in its recovery. `-`: not recorded (an older run)."
)


def _repetitions_block(v: Variant) -> Block:
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
                *(_figure_cell(r, m) for m in v.headline),
                _seconds_text(outage) if "fault_outage_s" in r.figures else "-",
                _blips_text(r),
                _other_figures(v, r),
            ]
        )
    return Block(REPETITIONS_NOTE, Table(headers, rows))


def _kept_curve(r: Repetition, out: Path, stem: str, caption: str) -> Curve:
    """A repetition without history: its curve from an earlier report, if there is one."""
    png, svg = out / FIGURES_DIR / f"{stem}.png", out / FIGURES_DIR / f"{stem}.svg"
    kept = png.exists() and svg.exists()
    note = (
        f"Repetition {r.number}: no event history in `{r.dir.name}/` "
        "(figures above are from summary.json"
        + ("; the curve is kept from an earlier report)." if kept else ").")
    )
    return Curve(note, _figure(out, png, svg, caption) if kept else None)


def _curve(v: Variant, r: Repetition, out: Path) -> Curve:
    """The recovery curve of one repetition, drawn from its history."""
    from harness.analysis.curves import recovery_curve
    from harness.report.plots import recovery_curve_figure, save_figure

    stem = f"{v.name}-rep-{r.number}-recovery"
    caption = (
        f"Recovery curve of {v.name}, repetition {r.number}: LB success and error "
        "rate, latency, per-replica success, lifecycle; red line: the fault"
    )
    if not r.has_history:
        return _kept_curve(r, out, stem, caption)
    try:
        df = r.history()
    except (OSError, ValueError) as exc:
        return Curve(f"Repetition {r.number}: history unreadable ({exc}).")
    curve = recovery_curve(df, figures=r.figures)
    title = (
        f"{v.name} — repetition {r.number}: {curve.fault_label or 'no fault'}; "
        f"downtime {_seconds(r, 'downtime_s')}, recovery {_seconds(r, 'recovery_s')}"
        + ("" if r.valid else " (invalid: excluded from the figures)")
    )
    png, svg = save_figure(recovery_curve_figure(curve, title=title), out / FIGURES_DIR, stem)
    return Curve(figure=_figure(out, png, svg, caption))


TIMELINE_FINDINGS = 3  # findings named in a timeline's note


def _timeline(v: Variant, r: Repetition, out: Path) -> Curve | None:
    """The execution timeline of one repetition, if it kept a ledger and a history; the
    note gives the task-history checkers' verdict and first findings."""
    from harness.check.checkers import check_repetition, finding_line
    from harness.check.history import victim
    from harness.core.ledger import parse_ledger
    from harness.report.plots import execution_timeline, execution_timeline_figure, save_figure

    ledger_path = r.dir / "ledger.jsonl"
    if not ledger_path.exists() or not r.has_history:
        return None
    try:
        df = r.history()
        rows = parse_ledger(ledger_path.read_bytes(), source=str(ledger_path))
    except (OSError, ValueError):
        return None  # the recovery curve above already says the history is unreadable
    definition = v.summary.get("experiment_definition") or {}
    expect = {k: bool(definition.get(k)) for k in ("expect_lost", "expect_duplicates")}
    check = check_repetition(df, rows, **expect)
    timeline = execution_timeline(df, rows, check, victim=victim(df) or r.figures.get("victim"))
    if timeline is None:
        return None
    verdict = {True: "valid", False: "invalid", None: "unknown"}[check.valid]
    findings = check.details.get("findings", [])
    named = "; ".join(f"`{finding_line(f)}`" for f in findings[:TIMELINE_FINDINGS])
    extra = len(findings) - TIMELINE_FINDINGS
    more = f" (+{extra} more)" if extra > 0 else ""
    note = (
        f"Repetition {r.number}, task history (ledger and API states, `ha-bench check`): "
        f"**{verdict}**, {len(findings)} finding(s)" + (f": {named}{more}" if named else ".")
    )
    stem = f"{v.name}-rep-{r.number}-executions"
    caption = (
        f"Execution timeline of {v.name}, repetition {r.number}: per task instance its "
        "executions (bars coloured by worker replica, dotted where no heartbeat was written, "
        "the end marker says how each ended), the API-reported states beneath, fault windows "
        "shaded, findings marked (red outline: duplicated or overlapping executions)"
    )
    title = f"{v.name} — repetition {r.number}: {verdict}"
    png, svg = save_figure(execution_timeline_figure(timeline, title=title),
                           out / FIGURES_DIR, stem)  # fmt: skip
    return Curve(note, _figure(out, png, svg, caption))


def _scheduling(v: Variant, out: Path) -> Curve | None:
    """The scheduling scatter of a variant whose headline has a scheduling figure."""
    from harness.report.plots import save_figure, scheduling_points, scheduling_scatter_figure

    if not v.schedules:
        return None
    points = scheduling_points(v)
    if points is None:
        return Curve(
            "No per-run scheduling points (`start_latency_points`) recorded: a run written "
            "before the harness kept them, or no valid repetition; no scheduling scatter."
        )
    stem = f"{v.name}-scheduling"
    caption = (
        f"Scheduling of {v.name}: per DAG run of the valid repetitions, when it was "
        "triggered relative to the fault (x, s) and how long until its first task started "
        "(y, s); a marker per repetition, red line: the fault; triangles outlined red at "
        "the top edge: runs that never started while watched"
    )
    png, svg = save_figure(scheduling_scatter_figure(points, title=v.name), out / FIGURES_DIR,
                           stem)  # fmt: skip
    after = sum(1 for r in points.repetitions for x, _ in r.started if x >= 0)
    note = (
        f"{points.runs} DAG run(s) in {len(points.repetitions)} valid repetition(s), "
        f"{after + points.never} triggered at or after the fault; "
        + (
            f"**{points.never} never started** while watched (drawn at the top edge)."
            if points.never
            else "every one of them started."
        )
    )
    return Curve(note, _figure(out, png, svg, caption))


def _experiment_sections(run: Run, out: Path) -> Iterator[ExperimentSection]:
    for v in run.variants:
        description = (v.summary.get("experiment_definition") or {}).get("description")
        timelines = [_timeline(v, r, out) for r in v.repetitions]
        yield ExperimentSection(
            name=v.name,
            description=str(description) if description else None,
            headline=_headline_block(v),
            baseline=_baseline_block(v),
            load=_load_block(v),
            repetitions=_repetitions_block(v),
            curves=[_curve(v, r, out) for r in v.repetitions],
            timelines=[t for t in timelines if t is not None],
            scheduling=_scheduling(v, out),
            soak=_soak_block(v),
        )


def _title(run_name: str, single: bool = False) -> str:
    return f"airflow-ha-bench {'experiment' if single else 'run'} `{run_name}`"


def _intro(run: Run) -> str:
    started = run.started()
    versions = sorted({str(v.metadata.get("airflow_version")) for v in run.variants})
    return (
        f"{len(run.variants)} experiment(s)"
        + (f", measured from {started:%Y-%m-%d %H:%M} UTC" if started else "")
        + f"; Airflow {', '.join(versions)}. Sections: overview (each experiment's headline "
        "figures), setup, SLO verdicts, latency per phase, and per experiment its headline, "
        "baseline and load, scheduling scatter (when its headline is about scheduling), a "
        "soak's faults, its repetitions, recovery curves and execution timelines (where a "
        "repetition kept its ledger)."
    )


def _run_figures(run: Run, out: Path) -> tuple[Figure, Figure]:
    """The run's repetitions figure and latency-per-phase figure."""
    from harness.report.plots import phase_latency_figure, repetitions_figure, save_figure

    figures = out / FIGURES_DIR
    png, svg = save_figure(repetitions_figure(run), figures, "repetitions")
    reps = _figure(
        out,
        png,
        svg,
        "Each experiment's headline figures (a panel per figure, a row per experiment it "
        "matters for) per valid repetition (dots), median (black) and order-statistic 95 % "
        "interval of the median (orange; none below 6 repetitions)",
    )
    png, svg = save_figure(phase_latency_figure(run), figures, "phase-latency")
    phases = _figure(out, png, svg, "LB latency per phase: p95 bars, p50 dots, p99 triangles")
    return reps, phases


def _remove_stale_figures(report: Report, out: Path) -> None:
    """Remove figures an earlier report drew of data that is gone."""
    used = {out / path for f in report.figures() for path in (f.png, f.svg)}
    figures = out / FIGURES_DIR
    for stale in [*figures.glob("*.png"), *figures.glob("*.svg")]:
        if stale not in used:
            stale.unlink()


def build_report(run: Run, out: Path) -> Report:
    """The report's content; writes its figures under ``out/figures``."""
    repetitions, phases = _run_figures(run, out)
    report = Report(
        intro=_intro(run),
        overview_note=_overview_note(run),
        overview=_overview_table(run),
        repetitions_figure=repetitions,
        setup=_setup_table(run),
        exact_setups=_exact_setups(run),
        verdicts=_verdicts_table(run),
        phases=_phases_table(run),
        phase_figure=phases,
        experiments=list(_experiment_sections(run, out)),
    )
    _remove_stale_figures(report, out)
    return report


def _pages(run_dir: Path, finished: bool) -> tuple[str, str]:
    """(report.md, report.html) of ``run_dir``, which has ``finished`` experiments or none;
    writes the figures they show."""
    context = {"title": _title(run_dir.name), "page_title": run_dir.name, "report": None}
    if finished:
        run = load_run(run_dir)
        context = {
            "title": _title(run.name, run.is_single_experiment),
            "page_title": f"airflow-ha-bench {run.name}",
            "report": build_report(run, run_dir),
        }
    return _render("report.md.j2", **context), _render("report.html.j2", **context)


def render_markdown(run_dir: Path) -> str:
    """The Markdown report of ``run_dir`` (writes its figures, as the report links them)."""
    run_dir = Path(run_dir)
    return _pages(run_dir, bool(load_summaries(run_dir)))[0]


def _valid(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in s["repetitions"] if r.get("valid") is not False]


def _index(run_dir: Path, summaries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A run directory's ``summary.json``: its experiments' headline figures (valid
    repetitions; null where not measured or censored) and verdicts."""
    return {
        "run_id": run_dir.name,
        "experiments": {
            name: {
                "experiment": s["experiment"],
                "params": s["params"],
                "downtime_s": [r.get("downtime_s") for r in _valid(s)],
                "recovery_s": [r.get("recovery_s") for r in _valid(s)],
                "headline": {m: [r.get(m) for r in _valid(s)] for m in headline_of(s)},
                "excluded_repetitions": len(s["repetitions"]) - len(_valid(s)),
                "verdicts": {k: v["verdict"] for k, v in s["verdicts"].items()},
            }
            for name, s in summaries
        },
    }


def write_run_report(run_dir: Path) -> Path:
    """Write ``report.md``, ``report.html`` and ``figures/`` into ``run_dir``, and for a run
    directory its ``summary.json`` index; returns the path of ``report.md``."""
    run_dir = Path(run_dir)
    summaries = load_summaries(run_dir)
    markdown, page = _pages(run_dir, bool(summaries))
    (run_dir / "report.md").write_text(markdown)
    (run_dir / "report.html").write_text(page)
    if not is_experiment_dir(run_dir):  # an experiment's own summary is its contract
        index = _index(run_dir, summaries)
        (run_dir / "summary.json").write_text(json.dumps(index, indent=2) + "\n")
    return run_dir / "report.md"
