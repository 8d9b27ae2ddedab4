"""A run's report: ``report.md`` and a self-contained ``report.html`` with figures.

:func:`write_run_report` works on a run directory (several experiment variants) or on a
single experiment directory. It writes, next to the data:

- ``figures/*.png`` and ``figures/*.svg``: per repetition the recovery curve and, where
  the repetition kept its side-effect ledger, its execution timeline (task executions per
  task instance with the task-history checkers' findings); per run the repetitions
  (downtime, recovery with medians and confidence intervals) and the latency per phase;
- ``report.md`` (links the PNGs) and ``report.html`` (PNGs embedded as data URIs, so it
  opens from disk or as an e-mail attachment);
- for a run directory, ``summary.json``: an index of its experiments.

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
class ExperimentSection:
    name: str
    description: str | None
    repetitions: list[str]  # one line per repetition
    curves: list[Curve]
    timelines: list[Curve] = field(default_factory=list)  # repetitions with a ledger


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
        curves = [c.figure for e in self.experiments for c in [*e.curves, *e.timelines]
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
    env.filters.update(md_row=_md_row, inline=_inline, slug=_slug, verdict_class=_verdict_class)
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
    "downtime",
    "recovery",
    "detected after",
    "replacement ready",
    "failed tasks",
    "verdicts",
]


def estimate(v: Variant, metric: str) -> Estimate:
    """Median and 95 % interval of ``metric`` over the variant's valid repetitions."""
    return median_ci(v.values(metric), censored_s=v.censored_s(metric))


def _n_text(v: Variant) -> str:
    excluded = f" ({len(v.excluded)} invalid, excluded)" if v.excluded else ""
    return f"{len(v.valid_repetitions)}{excluded}"


def _overview_table(run: Run) -> Table:
    rows = []
    for v in run.variants:
        rows.append(
            [
                v.name,
                _n_text(v),
                estimate(v, "downtime_s").text(),
                estimate(v, "recovery_s").text(),
                estimate(v, "time_to_detect_s").text(),
                estimate(v, "replacement_ready_s").text(),
                ", ".join(_fmt(r.figures.get("failed_tasks")) for r in v.valid_repetitions),
                _verdict_text(v.verdict_counts()),
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
            "(see the repetitions under Recovery curves for why)."
        )
    return (
        note + " Downtime: total outage of the probe stream through the load balancer; "
        "the other times are seconds since the fault."
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


def _repetition_line(r: Repetition) -> str:
    figs = ", ".join(
        f"{label} {_figure_text(r, k)}"
        for k, label in FIGURE_KEYS
        if k in r.figures or figure(r.figures, k) is not None
    )
    faults = ", ".join(f"{f.get('op')} {f.get('target')}" for f in r.figures.get("fault") or [])
    outages = r.figures.get("outages") or []
    excluded = ""
    if not r.valid:
        why = "; ".join(r.invalid_reasons) or "no reason recorded"
        excluded = f"**invalid, excluded from every figure and median** ({why}): "
    return (
        f"repetition {r.number} (seed {r.figures.get('seed')}; fault: {faults or '-'}; "
        f"{len(outages)} LB outage(s)): {excluded}{figs}"
    )


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


def _experiment_sections(run: Run, out: Path) -> Iterator[ExperimentSection]:
    for v in run.variants:
        description = (v.summary.get("experiment_definition") or {}).get("description")
        timelines = [_timeline(v, r, out) for r in v.repetitions]
        yield ExperimentSection(
            v.name,
            str(description) if description else None,
            [_repetition_line(r) for r in v.repetitions],
            [_curve(v, r, out) for r in v.repetitions],
            [t for t in timelines if t is not None],
        )


def _title(run_name: str, single: bool = False) -> str:
    return f"airflow-ha-bench {'experiment' if single else 'run'} `{run_name}`"


def _intro(run: Run) -> str:
    started = run.started()
    versions = sorted({str(v.metadata.get("airflow_version")) for v in run.variants})
    return (
        f"{len(run.variants)} experiment(s)"
        + (f", measured from {started:%Y-%m-%d %H:%M} UTC" if started else "")
        + f"; Airflow {', '.join(versions)}. Sections: overview, setup, SLO verdicts, "
        "latency per phase, recovery curves per experiment and repetition (with execution "
        "timelines where a repetition kept its ledger)."
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
        "Downtime and recovery per valid repetition (dots), median (black) and "
        "order-statistic 95 % interval of the median (orange; none below 6 repetitions)",
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
