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

This module builds the content (:func:`build_report`, a :class:`Report`) and writes the
pages. The content comes from :mod:`~harness.report.tables` (run-wide tables),
:mod:`~harness.report.sections` (each experiment's blocks) and
:mod:`~harness.report.figures` (the figures, drawn by :mod:`harness.report.plots`), its
cells' text from :mod:`~harness.report.cells`, its shape from
:mod:`~harness.report.content`; :mod:`~harness.report.render` lays it out through the
Jinja2 templates in ``templates/`` as Markdown and as HTML.

Everything in it is measured (the summaries and histories); nothing is estimated without
saying how. Medians come with the distribution-free order-statistic 95 % interval
(:func:`harness.analysis.stats.median_ci`), and with none below 6 repetitions. Invalid
repetitions (``"valid": false``) are listed as excluded and left out of every figure and
median; censored figures (never seen while watched) are +inf and print "never (>= X s)".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.report.cells import estimate
from harness.report.content import ExperimentSection, Report
from harness.report.figures import (
    remove_stale_figures,
    repetition_curve,
    repetition_timeline,
    run_figures,
    scheduling_curve,
)
from harness.report.links import link_samples_block, links_block
from harness.report.render import render
from harness.report.runs import Run, headline_of, is_experiment_dir, load_run, load_summaries
from harness.report.sections import (
    baseline_block,
    headline_block,
    load_block,
    repetitions_block,
    soak_block,
)
from harness.report.tables import (
    exact_setups,
    overview_note,
    overview_table,
    phases_table,
    setup_table,
    verdicts_table,
)

__all__ = [
    "Report",
    "build_report",
    "estimate",
    "load_summaries",
    "render_markdown",
    "write_run_report",
]


def _experiment_sections(run: Run, out: Path) -> Iterator[ExperimentSection]:
    for v in run.variants:
        description = (v.summary.get("experiment_definition") or {}).get("description")
        timelines = [repetition_timeline(v, r, out) for r in v.repetitions]
        yield ExperimentSection(
            name=v.name,
            description=str(description) if description else None,
            headline=headline_block(v),
            baseline=baseline_block(v),
            load=load_block(v),
            repetitions=repetitions_block(v),
            curves=[repetition_curve(v, r, out) for r in v.repetitions],
            timelines=[t for t in timelines if t is not None],
            scheduling=scheduling_curve(v, out),
            soak=soak_block(v),
            links=links_block(v),
            link_samples=link_samples_block(v),
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
        "soak's faults, the links its network faults cut or slowed and what crossed them, "
        "its repetitions, recovery curves and execution timelines (where a "
        "repetition kept its ledger)."
    )


def build_report(run: Run, out: Path) -> Report:
    """The report's content; writes its figures under ``out/figures``."""
    repetitions, phases = run_figures(run, out)
    report = Report(
        intro=_intro(run),
        overview_note=overview_note(run),
        overview=overview_table(run),
        repetitions_figure=repetitions,
        setup=setup_table(run),
        exact_setups=exact_setups(run),
        verdicts=verdicts_table(run),
        phases=phases_table(run),
        phase_figure=phases,
        experiments=list(_experiment_sections(run, out)),
    )
    remove_stale_figures(report, out)
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
    return render("report.md.j2", **context), render("report.html.j2", **context)


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
