"""A report's figures, drawn into ``figures/`` (PNG and SVG) and embedded for the HTML:
per repetition its recovery curve and, where it kept a ledger, its execution timeline;
per variant whose headline is about scheduling, the scheduling scatter; per run the
repetitions and the latency per phase. Figures an earlier report drew of data that is gone
are removed."""

from __future__ import annotations

import base64
from pathlib import Path

from harness.report.cells import figure_seconds
from harness.report.content import Curve, Figure, Report
from harness.report.runs import Repetition, Run, Variant

FIGURES_DIR = "figures"


def embed_figure(out: Path, png: Path, svg: Path, alt: str) -> Figure:
    """A figure written under ``out``: its paths relative to ``out`` and its PNG as a data URI."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return Figure(
        png.relative_to(out).as_posix(),
        svg.relative_to(out).as_posix(),
        alt,
        f"data:image/png;base64,{data}",
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
    return Curve(note, embed_figure(out, png, svg, caption) if kept else None)


def repetition_curve(v: Variant, r: Repetition, out: Path) -> Curve:
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
        f"downtime {figure_seconds(r, 'downtime_s')}, recovery {figure_seconds(r, 'recovery_s')}"
        + ("" if r.valid else " (invalid: excluded from the figures)")
    )
    png, svg = save_figure(recovery_curve_figure(curve, title=title), out / FIGURES_DIR, stem)
    return Curve(figure=embed_figure(out, png, svg, caption))


TIMELINE_FINDINGS = 3  # findings named in a timeline's note


def repetition_timeline(v: Variant, r: Repetition, out: Path) -> Curve | None:
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
    return Curve(note, embed_figure(out, png, svg, caption))


def scheduling_curve(v: Variant, out: Path) -> Curve | None:
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
    return Curve(note, embed_figure(out, png, svg, caption))


def run_figures(run: Run, out: Path) -> tuple[Figure, Figure]:
    """The run's repetitions figure and latency-per-phase figure."""
    from harness.report.plots import phase_latency_figure, repetitions_figure, save_figure

    figures = out / FIGURES_DIR
    png, svg = save_figure(repetitions_figure(run), figures, "repetitions")
    reps = embed_figure(
        out,
        png,
        svg,
        "Each experiment's headline figures (a panel per figure, a row per experiment it "
        "matters for) per valid repetition (dots), median (black) and order-statistic 95 % "
        "interval of the median (orange; none below 6 repetitions)",
    )
    png, svg = save_figure(phase_latency_figure(run), figures, "phase-latency")
    phases = embed_figure(out, png, svg, "LB latency per phase: p95 bars, p50 dots, p99 triangles")
    return reps, phases


def remove_stale_figures(report: Report, out: Path) -> None:
    """Remove figures an earlier report drew of data that is gone."""
    used = {out / path for f in report.figures() for path in (f.png, f.svg)}
    figures = out / FIGURES_DIR
    for stale in [*figures.glob("*.png"), *figures.glob("*.svg")]:
        if stale not in used:
            stale.unlink()
