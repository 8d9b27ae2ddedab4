"""A run's report: ``report.md`` and a self-contained ``report.html`` with figures.

:func:`write_run_report` works on a run directory (several experiment variants) or on a
single experiment directory. It writes, next to the data:

- ``figures/*.png`` and ``figures/*.svg``: per repetition the recovery curve, and per run
  the repetitions (downtime, recovery with medians and confidence intervals) and the
  latency per phase;
- ``report.md`` (links the PNGs) and ``report.html`` (PNGs embedded as data URIs, so it
  opens from disk or as an e-mail attachment);
- for a run directory, ``summary.json``: an index of its experiments.

Everything in it is measured (the summaries and histories); nothing is estimated without
saying how, and a single repetition gets no confidence interval.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.stats import median_ci
from harness.report.runs import Repetition, Run, Variant, load_run, load_summaries

__all__ = ["load_summaries", "render_markdown", "write_run_report"]

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


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# --- a tiny document model rendered to Markdown and to HTML -------------------------------


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str  # inline `code` and **bold** only


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    png: Path  # relative to the report's directory
    svg: Path
    alt: str


@dataclass
class Code:
    text: str
    summary: str  # shown collapsed in HTML


@dataclass
class Bullets:
    items: list[str]


Block = Heading | Para | Table | Image | Code | Bullets


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in b.headers) + " |")
            out.append("|" + "---|" * len(b.headers))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Image):
            out += [f"![{b.alt}]({b.png.as_posix()})", "", f"[SVG]({b.svg.as_posix()})", ""]
        elif isinstance(b, Code):
            out += [
                f"<details><summary>{b.summary}</summary>",
                "",
                "```json",
                b.text,
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(out)


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


VERDICT_CLASS = {
    "confirmed": "ok",
    "refuted": "bad",
    "unknown": "unk",
    "regression": "bad",
    "improvement": "ok",
}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1320px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
td.ok{background:#e5f5e0}td.bad{background:#fde0dd;font-weight:bold}td.unk{background:#fff3cd}
figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}pre{background:#f7f7f7;padding:.8em;overflow:auto;
font-size:.8em}details{margin:.4em 0 1em}nav a{margin-right:1em}
"""


def to_html(blocks: list[Block], base: Path, title: str) -> str:
    """HTML with every PNG embedded (``base``: the directory image paths are relative to)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f'<h{b.level} id="{_slug(b.text)}">{_inline(b.text)}</h{b.level}>')
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline(h)}</th>" for h in b.headers)
            rows = []
            for row in b.rows:
                cells = []
                for c in row:
                    cls = VERDICT_CLASS.get(c.split(" ")[0].strip("*").lower())
                    attr = f' class="{cls}"' if cls else ""
                    cells.append(f"<td{attr}>{_inline(c)}</td>")
                rows.append("<tr>" + "".join(cells) + "</tr>")
            out.append(
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            )
        elif isinstance(b, Image):
            data = base64.b64encode((base / b.png).read_bytes()).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">'
                f'<figcaption>{_inline(b.alt)} — <a href="{html.escape(b.svg.as_posix())}">'
                "SVG</a> (next to this report)</figcaption></figure>"
            )
        elif isinstance(b, Code):
            out.append(
                f"<details><summary>{html.escape(b.summary)}</summary>"
                f"<pre>{html.escape(b.text)}</pre></details>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


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


def _setup_blocks(run: Run) -> list[Block]:
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
    blocks: list[Block] = [
        Heading(2, "Setup"),
        Table(
            [
                "experiment",
                "Airflow",
                "platform",
                "topology",
                "config overrides",
                "harness",
                "machine",
            ],
            rows,
        ),
    ]
    for v in run.variants:
        exact = {
            "metadata": {k: val for k, val in v.metadata.items() if k not in ("ports", "timings")},
            "experiment_definition": v.summary.get("experiment_definition"),
        }
        blocks.append(Code(json.dumps(exact, indent=2, default=str), f"exact setup of {v.name}"))
    return blocks


def _verdict_text(counts: dict[str, int]) -> str:
    order = ("confirmed", "refuted", "unknown")
    keys = [k for k in order if counts.get(k)] + [k for k in counts if k not in order]
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "-"


def _overview_blocks(run: Run) -> list[Block]:
    rows = []
    for v in run.variants:
        rows.append(
            [
                v.name,
                str(len(v.repetitions)),
                median_ci(v.values("downtime_s")).text(),
                median_ci(v.values("recovery_s")).text(),
                median_ci(v.values("time_to_detect_s")).text(),
                median_ci(v.values("replacement_ready_s")).text(),
                ", ".join(_fmt(x) for x in v.values("failed_tasks")),
                _verdict_text(v.verdict_counts()),
            ]
        )
    n_max = max((len(v.repetitions) for v in run.variants), default=0)
    note = (
        "Medians over repetitions with a bootstrap 95% confidence interval of the median "
        "(5000 resamples, seeded) in brackets."
    )
    if n_max <= 1:
        note += (
            " **Every experiment here has 1 repetition, so there are no confidence "
            "intervals**: one measurement says nothing about the spread; repeat the run "
            "(`--repeat 5`, or `pytest experiments/ --profile full`) for intervals."
        )
    elif any(len(v.repetitions) < 5 for v in run.variants):
        note += " Intervals from fewer than 5 repetitions are rough."
    return [
        Heading(2, "Overview"),
        Para(
            note + " Downtime: total outage of the probe stream through the load balancer; "
            "the other times are seconds since the fault."
        ),
        Table(
            [
                "experiment",
                "n",
                "downtime",
                "recovery",
                "detected after",
                "replacement ready",
                "failed tasks",
                "verdicts",
            ],
            rows,
        ),
    ]


def _measured_median(hypothesis: str, measured: Any) -> str:
    """Median [95% CI] of a hypothesis's per-repetition numbers; "-" for anything else."""
    values = [m for m in measured if m is not None] if isinstance(measured, list) else []
    if not values or any(isinstance(m, bool) or not isinstance(m, int | float) for m in values):
        return "-"
    metric = hypothesis.split()[0]
    return median_ci(measured).text(unit="s" if metric.endswith("_s") else "")


def _verdict_blocks(run: Run) -> list[Block]:
    rows = []
    for v in run.variants:
        for name, verdict in v.verdicts.items():
            measured = verdict.get("measured")
            median = _measured_median(name, measured)
            if isinstance(measured, list):
                measured = ", ".join(
                    _fmt(m) if not isinstance(m, list) else "; ".join(map(str, m)) or "none"
                    for m in measured
                )
            rows.append(
                [
                    v.name,
                    f"`{name}`",
                    "SLO (gate)" if verdict.get("gate", True) else "expectation (not a gate)",
                    f"**{verdict.get('verdict')}**",
                    _fmt(measured)[:300],
                    median,
                    str(verdict.get("why") or ""),
                ]
            )
    return [
        Heading(2, "SLO verdicts"),
        Para(
            "A gate is an SLO: refuted fails the run. An expectation is a hypothesis under "
            "study, reported without failing anything. Measured: one value per repetition; "
            "median: over repetitions, with a bootstrap 95% confidence interval of the median."
        ),
        Table(["experiment", "hypothesis", "kind", "verdict", "measured", "median", "why"], rows),
    ]


def _phase_blocks(run: Run) -> list[Block]:
    rows = []
    for v in run.variants:
        for phase in ("before", "during", "after"):

            def med(key: str, phase: str = phase, v: Variant = v) -> float | None:
                vals = [
                    (r.figures.get("phases") or {}).get(phase, {}).get(key) for r in v.repetitions
                ]
                return median_ci(vals).median

            def ms(key: str) -> str:
                x = med(key)
                return "-" if x is None else f"{x * 1000:.1f}"

            err = med("error_rate")
            rows.append(
                [
                    v.name,
                    phase,
                    _fmt(med("count"), 0),
                    "-" if err is None else f"{err * 100:.2f}%",
                    ms("latency_p50_s"),
                    ms("latency_p95_s"),
                    ms("latency_p99_s"),
                ]
            )
    return [
        Heading(2, "Latency per phase"),
        Para(
            "Probes through the load balancer: before the fault, during (fault until "
            "sustained recovery) and after; medians over repetitions, latency of successful "
            "probes in ms."
        ),
        Table(
            ["experiment", "phase", "probes", "error rate", "p50 (ms)", "p95 (ms)", "p99 (ms)"],
            rows,
        ),
    ]


def _repetition_line(r: Repetition) -> str:
    figs = ", ".join(
        f"{label} {_fmt(r.figures.get(k))}" for k, label in FIGURE_KEYS if k in r.figures
    )
    faults = ", ".join(f"{f.get('op')} {f.get('target')}" for f in r.figures.get("fault") or [])
    outages = r.figures.get("outages") or []
    return (
        f"repetition {r.number} (seed {r.figures.get('seed')}; fault: {faults or '-'}; "
        f"{len(outages)} LB outage(s)): {figs}"
    )


def _experiment_blocks(run: Run, out: Path, figures: Path) -> Iterator[Block]:
    from harness.analysis.curves import recovery_curve
    from harness.report.plots import recovery_curve_figure, save_figure

    for v in run.variants:
        definition = v.summary.get("experiment_definition") or {}
        yield Heading(3, v.name)
        if definition.get("description"):
            yield Para(str(definition["description"]))
        yield Bullets([_repetition_line(r) for r in v.repetitions])
        for r in v.repetitions:
            stem = f"{v.name}-rep-{r.number}-recovery"
            caption = (
                f"Recovery curve of {v.name}, repetition {r.number}: LB success and error "
                "rate, latency, per-replica success, lifecycle; red line: the fault"
            )
            if not r.has_history:
                earlier = (figures / f"{stem}.png", figures / f"{stem}.svg")
                kept = all(path.exists() for path in earlier)
                yield Para(
                    f"Repetition {r.number}: no event history in `{r.dir.name}/` "
                    "(figures above are from summary.json"
                    + ("; the curve is kept from an earlier report)." if kept else ").")
                )
                if kept:
                    yield Image(earlier[0].relative_to(out), earlier[1].relative_to(out), caption)
                continue
            try:
                df = r.history()
            except (OSError, ValueError) as exc:
                yield Para(f"Repetition {r.number}: history unreadable ({exc}).")
                continue
            curve = recovery_curve(df, figures=r.figures)
            title = (
                f"{v.name} — repetition {r.number}: {curve.fault_label or 'no fault'}; "
                f"downtime {_fmt(r.figures.get('downtime_s'), 2)} s, "
                f"recovery {_fmt(r.figures.get('recovery_s'), 2)} s"
            )
            fig = recovery_curve_figure(curve, title=title)
            png, svg = save_figure(fig, figures, stem)
            yield Image(png.relative_to(out), svg.relative_to(out), caption)


def build_report(run: Run, out: Path) -> list[Block]:
    """The report's blocks; writes its figures under ``out/figures``."""
    from harness.report.plots import phase_latency_figure, repetitions_figure, save_figure

    figures = out / FIGURES_DIR
    kind = "experiment" if run.is_single_experiment else "run"
    blocks: list[Block] = [Heading(1, f"airflow-ha-bench {kind} `{run.name}`")]
    started = run.started()
    versions = sorted({str(v.metadata.get("airflow_version")) for v in run.variants})
    blocks.append(
        Para(
            f"{len(run.variants)} experiment(s)"
            + (f", measured from {started:%Y-%m-%d %H:%M} UTC" if started else "")
            + f"; Airflow {', '.join(versions)}. Sections: overview, setup, SLO verdicts, "
            "latency per phase, recovery curves per experiment and repetition."
        )
    )
    blocks += _overview_blocks(run)
    png, svg = save_figure(repetitions_figure(run), figures, "repetitions")
    blocks.append(
        Image(
            png.relative_to(out),
            svg.relative_to(out),
            "Downtime and recovery per repetition (dots), median (black) and 95% "
            "CI of the median (orange; none with 1 repetition)",
        )
    )
    blocks += _setup_blocks(run)
    blocks += _verdict_blocks(run)
    blocks += _phase_blocks(run)
    png, svg = save_figure(phase_latency_figure(run), figures, "phase-latency")
    blocks.append(
        Image(
            png.relative_to(out),
            svg.relative_to(out),
            "LB latency per phase: p95 bars, p50 dots, p99 triangles",
        )
    )
    blocks += [Heading(2, "Recovery curves")]
    blocks += list(_experiment_blocks(run, out, figures))
    used = {out / path for b in blocks if isinstance(b, Image) for path in (b.png, b.svg)}
    for stale in [*figures.glob("*.png"), *figures.glob("*.svg")]:
        if stale not in used:
            stale.unlink()  # from an earlier report of data that is gone
    return blocks


def render_markdown(run_dir: Path) -> str:
    """The Markdown report of ``run_dir`` (writes its figures, as the report links them)."""
    run_dir = Path(run_dir)
    if not load_summaries(run_dir):
        return f"# airflow-ha-bench run `{run_dir.name}`\n\nNo experiment finished a repetition.\n"
    return to_markdown(build_report(load_run(run_dir), run_dir))


def write_run_report(run_dir: Path) -> Path:
    """Write ``report.md``, ``report.html`` and ``figures/`` into ``run_dir``, and for a run
    directory its ``summary.json`` index; returns the path of ``report.md``."""
    run_dir = Path(run_dir)
    report = run_dir / "report.md"
    page = run_dir / "report.html"
    summaries = load_summaries(run_dir)
    if not summaries:
        text = f"# airflow-ha-bench run `{run_dir.name}`\n\nNo experiment finished a repetition.\n"
        report.write_text(text)
        page.write_text(
            to_html(
                [
                    Heading(1, f"airflow-ha-bench run `{run_dir.name}`"),
                    Para("No experiment finished a repetition."),
                ],
                run_dir,
                run_dir.name,
            )
        )
    else:
        run = load_run(run_dir)
        blocks = build_report(run, run_dir)
        report.write_text(to_markdown(blocks))
        page.write_text(to_html(blocks, run_dir, f"airflow-ha-bench {run.name}"))
    if (run_dir / "summary.json").exists() and "repetitions" in json.loads(
        (run_dir / "summary.json").read_text()
    ):
        return report  # a single experiment's directory: its summary is the contract
    index = {
        "run_id": run_dir.name,
        "experiments": {
            name: {
                "experiment": s["experiment"],
                "params": s["params"],
                "downtime_s": [r["downtime_s"] for r in s["repetitions"]],
                "recovery_s": [r["recovery_s"] for r in s["repetitions"]],
                "verdicts": {k: v["verdict"] for k, v in s["verdicts"].items()},
            }
            for name, s in summaries
        },
    }
    (run_dir / "summary.json").write_text(json.dumps(index, indent=2) + "\n")
    return report
