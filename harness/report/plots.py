"""Figures of recorded runs (matplotlib, Agg; no pyplot state, safe in notebooks and CI).

- :func:`recovery_curve_figure`: one repetition over time — LB success and error rates,
  latency percentiles, per-replica success, lifecycle events — with fault markers;
- :func:`repetitions_figure`: each variant's headline figures (the ones that matter for its
  fault; downtime and recovery for older runs) over its valid repetitions, with medians and
  order-statistic 95 % intervals (censored "never" values are counted in the label, not
  drawn);
- :func:`scheduling_scatter_figure`: per DAG run of a variant, its trigger time relative to
  the fault against its trigger → first task start latency, a marker per repetition, runs
  that never started at the top edge (:func:`scheduling_points` gives the data);
- :func:`phase_latency_figure`: latency before / during / after the fault per variant;
- :func:`overlay_figure`: LB success rate of several curves on one axis;
- :func:`comparison_figure`: a base and a new run side by side (see :mod:`harness.report.compare`);
- :func:`execution_timeline_figure`: one repetition's task executions from the ledger —
  a row per task instance that matters (:func:`execution_timeline` chooses them), its
  executions as bars coloured by worker replica, the API-reported states beneath, fault
  windows shaded and the checkers' findings marked.

:func:`save_figure` writes PNG and SVG files.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from harness.analysis.curves import LB, RecoveryCurve
from harness.analysis.stats import median_ci, numbers
from harness.check.history import (
    Execution,
    FaultWindow,
    StateObservation,
    TaskKey,
    executions,
    executions_by_task,
    fault_windows,
    observed_until,
    run_observed_until,
    task_name,
    task_states,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from harness.check.executions import CheckResult
    from harness.report.compare import RunComparison
    from harness.report.runs import Run, Variant

__all__ = [
    "ExecutionTimeline",
    "SchedulingPoints",
    "comparison_figure",
    "execution_timeline",
    "execution_timeline_figure",
    "metric_label",
    "overlay_figure",
    "phase_latency_figure",
    "recovery_curve_figure",
    "repetitions_figure",
    "save_figure",
    "scheduling_points",
    "scheduling_scatter_figure",
]

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "svg.fonttype": "none",
    "svg.hashsalt": "airflow-ha-bench",
}
OUTCOME_COLOURS = {
    "http_error": "#d62728",
    "refused": "#ff7f0e",
    "reset": "#9467bd",
    "timeout": "#8c564b",
    "other": "#7f7f7f",
}
# state -> (marker, colour, vertical offset inside the replica's row, legend label)
STATE_STYLE = {
    "killed": ("X", "#d62728", 0.36, "killed / fault"),
    "exited": ("x", "#000000", 0.24, "exited"),
    "not_ready": ("v", "#ff7f0e", 0.12, "not ready"),
    "restarting": ("o", "#9467bd", 0.0, "restarting"),
    "starting": (">", "#7f7f7f", -0.12, "starting"),
    "ready": ("^", "#2ca02c", -0.36, "ready"),
    "out_of_lb": ("s", "#aec7e8", -0.24, "out of LB"),
    "in_lb": ("s", "#1f77b4", -0.24, "back in LB (in_lb)"),
    "endpoint_added": ("s", "#1f77b4", -0.24, "back in the Service (endpoint_added)"),
    "stopped": ("D", "#000000", 0.0, "stopped"),
}
MARKS = {  # key moment -> (colour, line style, legend label)
    "fault": ("#d62728", "-", "fault"),
    "replacement_ready": ("#2ca02c", "--", "replacement ready"),
    "back_in_lb": ("#1f77b4", "--", "back in LB"),
    "recovered": ("#000000", ":", "recovered (sustained)"),
}
METRIC_LABELS = {
    "downtime_s": "downtime through the LB (s)",
    "recovery_s": "recovery time (s since fault)",
    "scheduling_resumed_s": "scheduling resumed (s since fault)",
    "task_start_gap_after_s": "largest task-start gap after (s)",
    "start_latency_after_p50_s": "trigger → task start after the fault, p50 (s)",
    "start_latency_after_p95_s": "trigger → task start after the fault, p95 (s)",
    "start_latency_after_max_s": "trigger → task start after the fault, max (s)",
    "victim_failed_after_s": "victim failed (s since fault)",
    "victim_rerun_after_s": "victim rerun started (s since fault)",
    "victim_done_after_s": "victim done (s since fault)",
    "replacement_ready_s": "replacement ready (s since fault)",
    "failed_tasks": "failed tasks",
    "lost_runs": "lost runs",
    "duplicated_executions": "duplicated executions",
}
PHASE_COLOURS = {"before": "#1f77b4", "during": "#d62728", "after": "#2ca02c"}
SUCCESS_CMAP = LinearSegmentedColormap.from_list("success", ["#b2182b", "#fddbc7", "#1a9850"])


def _label_row(ax: Axes, row: int, text: str, color: str = "#000000") -> None:
    """Write ``text`` just right of the axes, level with category ``row``."""
    ax.annotate(
        text,
        (1.0, row),
        xycoords=("axes fraction", "data"),
        xytext=(4, 0),
        textcoords="offset points",
        va="center",
        fontsize=8,
        color=color,
    )


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _steps(t: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop points of a post-step series that repeat the previous values (same drawing)."""
    if len(t) < 3:
        return (t, *ys)
    same = np.ones(len(t), dtype=bool)
    for y in ys:
        prev, cur = y[:-1], y[1:]
        same[1:] &= (prev == cur) | (np.isnan(prev) & np.isnan(cur))
    same[0] = same[-1] = False
    keep = ~same
    return (t[keep], *(y[keep] for y in ys))


def _marks(ax, curve: RecoveryCurve) -> None:
    for key, (colour, style, _) in MARKS.items():
        t = curve.marks.get(key)
        if t is not None:
            ax.axvline(t, color=colour, linestyle=style, linewidth=1.3, zorder=5)


def _legend_right(ax, handles=None, **kwargs) -> None:
    if handles is None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kwargs)
    else:
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kwargs
        )


def recovery_curve_figure(curve: RecoveryCurve, *, title: str = "") -> Figure:
    """Four panels on one time axis (seconds since the fault), with fault markers on all.

    1. LB probes: success rate and error rate by outcome per bin (%), LB outages shaded;
    2. latency p50/p95/p99 through the LB and p95 per replica (ms, log scale);
    3. success rate per probed target (colour strip; grey: no probes in the bin);
    4. lifecycle events per replica (killed, exited, restarting, ready, in_lb ...).
    """
    import matplotlib

    replicas = list(dict.fromkeys(curve.events["replica"])) if len(curve.events) else []
    targets = list(curve.streams)
    heights = [2.2, 1.9, 0.32 * max(len(targets), 1) + 0.35, 0.6 * max(len(replicas), 1) + 0.3]
    with matplotlib.rc_context(RC):
        fig = _figure(12.5, sum(heights) + 0.9)
        axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": heights})
        ax_rate, ax_lat, ax_strip, ax_life = axes
        lo, hi = curve.span
        bin_s = curve.bin_s
        lb = curve.lb
        bin_ms = f"{bin_s * 1000:.0f} ms"

        # 1. success / error rate through the LB
        for start, end in curve.outages:
            ax_rate.axvspan(start, end, color="#d62728", alpha=0.12, linewidth=0, zorder=0)
        if len(lb):
            t = lb["t_s"].to_numpy(dtype=float)
            bottom = np.zeros(len(lb))
            for outcome, colour in OUTCOME_COLOURS.items():
                rate = lb[f"error_rate_{outcome}"].fillna(0).to_numpy(dtype=float) * 100
                if rate.any():
                    tt, b0, b1 = _steps(t, bottom, bottom + rate)
                    ax_rate.fill_between(
                        tt,
                        b0,
                        b1,
                        step="post",
                        color=colour,
                        alpha=0.75,
                        linewidth=0,
                        label=f"error rate: {outcome.replace('_', ' ')}",
                    )
                    bottom = bottom + rate
            ax_rate.step(
                *_steps(t, lb["success_rate"].to_numpy(dtype=float) * 100),
                where="post",
                color="#006d2c",
                linewidth=1.6,
                zorder=4,
                label="success rate",
            )
        ax_rate.set_ylim(-3, 103)
        ax_rate.set_ylabel(f"LB probes (% per {bin_ms})")
        _marks(ax_rate, curve)
        if curve.marks.get("fault") is not None and curve.fault_label:
            ax_rate.annotate(
                curve.fault_label,
                (0, 1),
                xycoords=("data", "axes fraction"),
                xytext=(0, 2),
                textcoords="offset points",
                va="bottom",
                ha="center",
                color="#d62728",
                fontsize=8,
                fontweight="bold",
            )
        handles, _ = ax_rate.get_legend_handles_labels()
        if curve.outages:
            handles.append(Patch(color="#d62728", alpha=0.12, label="LB outage"))
        handles += [
            Line2D([], [], color=c, linestyle=s, label=lab)
            for key, (c, s, lab) in MARKS.items()
            if curve.marks.get(key) is not None
        ]
        _legend_right(ax_rate, handles)

        # 2. latency
        if len(lb):
            t = lb["t_s"].to_numpy(dtype=float)
            for col, colour, lab in (
                ("latency_p50_s", "#08519c", "LB p50"),
                ("latency_p95_s", "#ff7f0e", "LB p95"),
                ("latency_p99_s", "#7b3294", "LB p99"),
            ):
                ax_lat.step(
                    *_steps(t, lb[col].to_numpy(dtype=float) * 1000),
                    where="post",
                    color=colour,
                    linewidth=1.1,
                    label=lab,
                )
        for name in targets:
            if name == LB:
                continue
            s = curve.streams[name]
            ax_lat.step(
                *_steps(
                    s["t_s"].to_numpy(dtype=float), s["latency_p95_s"].to_numpy(dtype=float) * 1000
                ),
                where="post",
                linestyle="--",
                linewidth=0.8,
                alpha=0.8,
                label=f"{name} p95",
            )
        ax_lat.set_yscale("log")
        ax_lat.set_ylabel("latency (ms, log)")
        _marks(ax_lat, curve)
        if ax_lat.get_legend_handles_labels()[0]:
            _legend_right(ax_lat)

        # 3. success rate per target as colour strips
        if targets:
            n_bins = round((hi - lo) / bin_s) + 1
            grid = np.full((len(targets), n_bins), np.nan)
            for row, name in enumerate(targets):
                s = curve.streams[name]
                col = np.round((s["t_s"].to_numpy(dtype=float) - lo) / bin_s).astype(int)
                keep = (col >= 0) & (col < n_bins)
                grid[row, col[keep]] = s["success_rate"].to_numpy(dtype=float)[keep]
            cmap = SUCCESS_CMAP.with_extremes(bad="#d9d9d9")
            image = ax_strip.imshow(
                np.ma.masked_invalid(grid),
                aspect="auto",
                cmap=cmap,
                vmin=0,
                vmax=1,
                interpolation="nearest",
                extent=(lo, lo + n_bins * bin_s, len(targets), 0),
            )
            ax_strip.set_yticks(
                np.arange(len(targets)) + 0.5, ["LB" if t == LB else t for t in targets]
            )
            cax = ax_strip.inset_axes((1.01, 0.0, 0.012, 1.0))
            bar = fig.colorbar(image, cax=cax, ticks=[0, 0.5, 1])
            bar.ax.set_yticklabels(["0%", "50%", "100%"])
        ax_strip.set_ylabel("success\nper target", rotation=0, ha="right", va="center")
        _marks(ax_strip, curve)

        # 4. lifecycle
        ev = curve.events[(curve.events["t_s"] >= lo) & (curve.events["t_s"] <= hi)]
        seen: dict[str, Line2D] = {}
        for row, replica in enumerate(replicas):
            ax_life.axhline(row, color="#eeeeee", linewidth=6, zorder=0)
            mine = ev[ev["replica"] == replica]
            for state, group in mine.groupby("state", sort=False):
                marker, colour, dy, lab = STATE_STYLE.get(str(state), ("*", "#17becf", 0, state))
                ax_life.scatter(
                    group["t_s"],
                    [row - dy] * len(group),
                    marker=marker,
                    color=colour,
                    s=36,
                    zorder=6,
                    linewidths=1.2,
                )
                seen.setdefault(
                    lab, Line2D([], [], marker=marker, color=colour, linestyle="", label=lab)
                )
        ax_life.set_yticks(range(len(replicas)), replicas)
        ax_life.set_ylim(len(replicas) - 0.5, -0.5)
        ax_life.set_ylabel("lifecycle")
        _marks(ax_life, curve)
        order = [v[3] for v in STATE_STYLE.values()]
        handles = sorted(
            seen.values(),
            key=lambda h: order.index(h.get_label()) if h.get_label() in order else len(order),
        )
        if handles:
            _legend_right(ax_life, handles, ncols=2 if len(handles) > 4 else 1)
        ax_life.set_xlabel("time since fault (s)")
        ax_life.set_xlim(lo, hi)
        for ax in axes:
            ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        if title:
            fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    return fig


def _strip_note(raw: list[float | None], text: str) -> str:
    never = sum(1 for x in raw if x is not None and math.isinf(x))
    missing = sum(1 for x in raw if x is None)
    return (
        text
        + (f", {never} never" if never else "")
        + (f", {missing} not measured" if missing else "")
    )


def metric_label(metric: str) -> str:
    """An axis label of a figure: its words and unit (``(s)`` for ``*_s``)."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    words = metric.removesuffix("_s").replace("_", " ")
    return f"{words} (s)" if metric.endswith("_s") else words


def _strip_row(
    ax, row: int, variant: Variant, metric: str, rng: np.random.Generator
) -> tuple[str, list[float]]:
    """One variant's valid repetitions (dots; censored ones are only counted), median and
    order-statistic interval (an infinite bound is drawn to the largest measured value).
    Returns the row's label (median, interval, what is not drawn) and the values drawn."""
    raw = variant.values(metric)
    vals = [x for x in numbers(raw) if math.isfinite(x)]
    est = median_ci(raw, censored_s=variant.censored_s(metric))
    jitter = rng.uniform(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
    ax.scatter(vals, row + jitter, color="#1f77b4", s=22, alpha=0.8, zorder=3,
               label="repetition" if row == 0 else None, clip_on=False)  # fmt: skip
    if est.median is None:
        return "no data", vals
    if math.isfinite(est.median):
        ax.plot([est.median] * 2, [row - 0.3, row + 0.3], color="#000000", linewidth=2,
                zorder=4, label="median" if row == 0 else None)  # fmt: skip
    if est.low is not None and est.high is not None:
        high = est.high if math.isfinite(est.high) else max([*vals, est.low])
        if high > est.low and math.isfinite(est.low):
            ax.plot([est.low, high], [row, row], color="#ff7f0e", linewidth=5, alpha=0.55,
                    zorder=2, solid_capstyle="butt",
                    label="95 % interval of the median" if row == 0 else None)  # fmt: skip
            if not math.isfinite(est.high):  # open to the right: "never" is its upper bound
                ax.plot([high], [row], marker=">", color="#ff7f0e", markersize=8, zorder=2,
                        clip_on=False)  # fmt: skip
    seconds = metric.endswith("_s")
    return _strip_note(raw, est.text(unit="s" if seconds else "", digits=2 if seconds else 1)), vals


def _strip(ax, variants: list[Variant], metric: str) -> None:
    """A row per variant; the rows' medians and intervals as labels on the right (tick
    labels of a secondary axis, so the layout leaves room for them)."""
    names = [v.name for v in variants]
    rng = np.random.default_rng(0)
    notes, drawn = [], []
    for row, variant in enumerate(variants):
        note, vals = _strip_row(ax, row, variant, metric, rng)
        notes.append(note)
        drawn += vals
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(len(names)), notes)
    right.tick_params(length=0, labelsize=8)
    ax.set_xlabel(metric_label(metric))
    ax.set_xlim(0, max([*drawn, 0.0]) * 1.06 or 1.0)
    if not metric.endswith("_s"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)


def headline_panels(run: Run) -> list[tuple[str, list[Variant]]]:
    """(metric, the variants whose headline it is) for every headline figure of the run,
    in the order the variants name them."""
    metrics = list(dict.fromkeys(m for v in run.variants for m in v.headline))
    return [(m, [v for v in run.variants if m in v.headline]) for m in metrics]


def repetitions_figure(run: Run) -> Figure:
    """A panel per headline figure (the figures that matter for each variant's fault;
    downtime and recovery for runs written before the headline existed): its valid
    repetitions (dots), median (bar) and order-statistic 95 % interval of the median, for
    each variant whose headline it is."""
    import matplotlib

    panels = headline_panels(run)
    heights = [0.42 * len(variants) + 0.95 for _, variants in panels]
    with matplotlib.rc_context(RC):
        fig = _figure(12.5, sum(heights) + 0.5)
        grid = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
        axes = np.atleast_1d(grid).ravel()
        legend: dict[str, object] = {}
        for ax, (metric, variants) in zip(axes, panels, strict=True):
            _strip(ax, variants, metric)
            ax.set_title(metric, loc="left", fontfamily="monospace")
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(label, handle)
        if legend:
            fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=3)
    return fig


# --- scheduling scatter ------------------------------------------------------------------

REPETITION_MARKERS = ("o", "s", "D", "v", "P", "X", "<", ">", "p", "h", "*", "d")
NEVER_MARKER = "^"  # a run that never started, at the top edge


@dataclass
class RepetitionPoints:
    """One repetition's DAG runs: (trigger - fault, latency) of those that started, and
    the trigger times of those that never did."""

    number: int
    started: list[tuple[float, float]]
    never: list[float]


@dataclass
class SchedulingPoints:
    repetitions: list[RepetitionPoints]

    @property
    def runs(self) -> int:
        return sum(len(r.started) + len(r.never) for r in self.repetitions)

    @property
    def never(self) -> int:
        return sum(len(r.never) for r in self.repetitions)


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def scheduling_points(variant: Variant) -> SchedulingPoints | None:
    """The ``start_latency_points`` of the variant's valid repetitions (None if none has
    them: runs written before the key existed); a malformed point is skipped."""
    reps = []
    for r in variant.valid_repetitions:
        points = r.figures.get("start_latency_points")
        if not isinstance(points, list):
            continue
        started, never = [], []
        for p in points:
            if not isinstance(p, list | tuple) or len(p) != 2 or not _finite(p[0]):
                continue
            if p[1] is None:
                never.append(float(p[0]))
            elif _finite(p[1]):
                started.append((float(p[0]), float(p[1])))
        reps.append(RepetitionPoints(r.number, started, never))
    return SchedulingPoints(reps) if reps else None


def scheduling_scatter_figure(points: SchedulingPoints, *, title: str = "") -> Figure:
    """Per DAG run, trigger time relative to the fault (x, s) against trigger → first task
    start (y, s): a marker style per repetition, the fault at x = 0, and runs that never
    started drawn at the top edge as triangles outlined red (counted in the legend)."""
    import matplotlib

    latencies = [y for r in points.repetitions for _, y in r.started]
    top = max(latencies, default=0.0) * 1.12 or 1.0
    with matplotlib.rc_context(RC):
        fig = _figure(12.5, 4.4)
        ax = fig.subplots()
        handles: list[Line2D] = []
        for i, r in enumerate(points.repetitions):
            colour = REPLICA_COLOURS[i % len(REPLICA_COLOURS)]
            marker = REPETITION_MARKERS[i % len(REPETITION_MARKERS)]
            if r.started:
                xs, ys = zip(*r.started, strict=True)
                ax.scatter(xs, ys, marker=marker, color=colour, s=24, alpha=0.8, zorder=3,
                           linewidths=0.4, edgecolors="#333333")  # fmt: skip
            if r.never:
                ax.scatter(r.never, [top] * len(r.never), marker=NEVER_MARKER, s=70,
                           facecolors=colour, edgecolors="#d62728", linewidths=1.6,
                           clip_on=False, zorder=6)  # fmt: skip
            never = f", {len(r.never)} never started" if r.never else ""
            handles.append(Line2D([], [], marker=marker, color=colour, linestyle="",
                                  label=f"repetition {r.number}: {len(r.started)} started"
                                  f"{never}"))  # fmt: skip
        ax.axvline(0, color="#d62728", linewidth=1.4, zorder=4)
        handles.append(Line2D([], [], color="#d62728", linewidth=1.4, label="fault (x = 0)"))
        handles.append(Line2D([], [], marker=NEVER_MARKER, markersize=8, linestyle="",
                              markerfacecolor="#ffffff", markeredgecolor="#d62728",
                              markeredgewidth=1.6,
                              label=f"never started: {points.never} run(s), drawn at the "
                              "top edge"))  # fmt: skip
        ax.set_ylim(0, top)
        ax.set_xlabel("DAG run triggered at (s relative to the fault)")
        ax.set_ylabel("trigger → first task start (s)")
        ax.grid(color="#e5e5e5", linewidth=0.6)
        _legend_right(ax, handles)
        head = f"{title} — " if title else ""
        ax.set_title(f"{head}trigger → first task start per DAG run ({points.runs} runs in "
                     f"{len(points.repetitions)} repetition(s))", loc="left")  # fmt: skip
    return fig


def _phase_median(run: Run, variant_index: int, phase: str, key: str) -> float | None:
    vals = [
        (r.figures.get("phases") or {}).get(phase, {}).get(key)
        for r in run.variants[variant_index].valid_repetitions
    ]
    return median_ci(vals).median


def phase_latency_figure(run: Run) -> Figure:
    """LB latency before / during / after the fault per variant: p95 bars, p50 and p99 marks
    (medians over repetitions, ms, log scale)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _figure(12.5, 3.4)
        ax = fig.subplots()
        width = 0.26
        for i in range(len(run.variants)):
            for j, phase in enumerate(PHASE_COLOURS):
                x = i + (j - 1) * width
                p50, p95, p99 = (
                    _phase_median(run, i, phase, f"latency_p{q}_s") for q in (50, 95, 99)
                )
                if p95 is not None:
                    ax.bar(x, p95 * 1000, width * 0.92, color=PHASE_COLOURS[phase], alpha=0.8)
                if p50 is not None:
                    ax.scatter(x, p50 * 1000, marker="o", color="#000000", s=14, zorder=3)
                if p99 is not None:
                    ax.scatter(x, p99 * 1000, marker="^", color="#000000", s=18, zorder=3)
                if p95 is None and p50 is None:
                    count = _phase_median(run, i, phase, "count")
                    why = "no successful probes" if count else "empty (no outage)"
                    ax.text(
                        x,
                        0.03,
                        f"{phase}: {why}",
                        rotation=90,
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        transform=ax.get_xaxis_transform(),
                    )
        handles = [
            Patch(color=c, alpha=0.8, label=f"{p} fault (p95)") for p, c in PHASE_COLOURS.items()
        ]
        handles += [
            Line2D([], [], marker="o", color="#000000", linestyle="", label="p50"),
            Line2D([], [], marker="^", color="#000000", linestyle="", label="p99"),
        ]
        ax.set_xticks(range(len(run.variants)), [v.name for v in run.variants])
        ax.set_yscale("log")
        ax.set_ylabel("LB latency (ms, log)")
        ax.set_title("latency through the LB per phase (median over repetitions)")
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        _legend_right(ax, handles)
    return fig


def overlay_figure(curves: dict[str, RecoveryCurve], *, column: str = "success_rate") -> Figure:
    """One binned LB column (default success rate, %) of several curves on one time axis."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _figure(12.5, 3.6)
        ax = fig.subplots()
        for label, curve in curves.items():
            lb = curve.lb
            scale = 100 if column.endswith("rate") else 1000
            ax.step(
                lb["t_s"].to_numpy(dtype=float),
                lb[column].to_numpy(dtype=float) * scale,
                where="post",
                linewidth=1.2,
                label=label,
            )
        ax.axvline(0, color="#d62728", linewidth=1.3, label="fault")
        unit = "%" if column.endswith("rate") else "ms"
        ax.set_ylabel(f"LB {column.replace('_', ' ')} ({unit})")
        ax.set_xlabel("time since fault (s)")
        ax.grid(color="#dddddd", linewidth=0.6)
        _legend_right(ax)
    return fig


def _comparison_axes(ax, comparison: RunComparison, metric: str) -> None:
    """One metric: per variant base and new repetitions (dots; "never" is not drawn),
    medians (bars) and the verdict after the Holm correction."""
    for row, v in enumerate(comparison.variants):
        c = next((c for c in v.comparisons if c.metric == metric), None)
        if c is None:
            continue
        for dy, vals, med, colour, lab in (
            (-0.15, c.base, c.base_median, "#7f7f7f", "base"),
            (0.15, c.new, c.new_median, "#1f77b4", "new"),
        ):
            finite = [x for x in vals if np.isfinite(x)]
            ax.scatter(finite, [row + dy] * len(finite), color=colour, s=18,
                       label=lab if row == 0 else None)  # fmt: skip
            if med is not None and np.isfinite(med):
                ax.plot([med, med], [row + dy - 0.12, row + dy + 0.12], color=colour,
                        linewidth=2.5)  # fmt: skip
        color = "#d62728" if c.verdict == "regression" else "#000000"
        _label_row(ax, row, c.verdict, color=color)
    ax.set_xlabel(METRIC_LABELS.get(metric, metric))
    ax.set_xlim(left=0, right=max(ax.get_xlim()[1], 0 if metric.endswith("_s") else 1))
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)


def comparison_figure(comparison: RunComparison) -> Figure:
    """Per variant and metric (two metrics a row), base vs new repetitions (dots), medians
    (bars) and verdicts."""
    import matplotlib

    metrics = list(dict.fromkeys(c.metric for v in comparison.variants for c in v.comparisons))
    names = [v.name for v in comparison.variants]
    ncols = min(2, max(len(metrics), 1))
    nrows = max(math.ceil(len(metrics) / ncols), 1)
    with matplotlib.rc_context(RC):
        fig = _figure(12.5, nrows * (0.55 * max(len(names), 1) + 1.1) + 0.6)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            _comparison_axes(ax, comparison, metric)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        axes[0].set_yticks(range(len(names)), names)
        axes[0].set_ylim(len(names) - 0.5, -0.5)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


# --- execution timeline --------------------------------------------------------------------

REPLICA_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22", "#7f7f7f")  # fmt: skip
API_STATE_COLOURS = {
    "scheduled": "#d9d9d9",
    "queued": "#fdd0a2",
    "running": "#74c476",
    "deferred": "#bcbddc",
    "up_for_retry": "#fc9272",
    "failed": "#d62728",
    "success": "#c7e9c0",
    "restarting": "#fdae6b",
}
OUTCOME_MARKS = {  # an execution's last word -> (marker, label)
    "end": ("|", "ended (end)"),
    "defer": (">", "deferred (defer)"),
    "error": ("$!$", "raised (error)"),
    None: ("x", "no last word (killed, or still running)"),
}
CONTEXT_REASONS = ("victim", "at fault", "during fault")  # why a row is shown, besides findings
EXECUTION_FINDINGS = frozenset({"same_try_twice", "ended_twice", "overlap"})
FINDING_MARKS = {  # kind -> (marker, colour, label) drawn on the API strip
    "zombie_false_positive": ("X", "#d62728", "API reported the try failed (false positive)"),
    "stuck": ("s", "#ff7f0e", "stuck queued/running"),
    "running_to_queued": ("<", "#e7298a", "state regression"),
    "try_decreased": ("<", "#e7298a", "state regression"),
    "try_jump": ("<", "#e7298a", "state regression"),
    "lost_run": ("D", "#000000", "lost run"),
}


def _exec_id(e: Execution) -> tuple[object, ...]:
    return (task_name(e.task), e.try_number, e.pid, e.hostname, e.start)


def _cited_id(c: dict[str, object]) -> tuple[object, ...]:
    return (c.get("task"), c.get("try_number"), c.get("pid"), c.get("hostname"), c.get("start"))


@dataclass
class TimelineRow:
    """One task instance: its executions, API states, and why it is shown."""

    key: TaskKey
    label: str
    why: list[str]
    executions: list[Execution]
    states: list[StateObservation]
    states_until: float | None


@dataclass
class ExecutionTimeline:
    """What :func:`execution_timeline_figure` draws; times are t_wall, ``t0`` the origin."""

    rows: list[TimelineRow]
    faults: list[FaultWindow]
    t0: float
    flagged: set[tuple[object, ...]] = field(default_factory=set)
    marks: list[tuple[TaskKey, float, str, str]] = field(default_factory=list)
    overlaps: list[tuple[TaskKey, float, float]] = field(default_factory=list)
    omitted: int = 0
    task_instances: int = 0
    replicas: list[str] = field(default_factory=list)


def _row_label(key: TaskKey) -> str:
    dag, run, task, map_index = key
    tail = run.rsplit("_", 1)[-1] if "_" in run else run
    tail = tail if len(tail) <= 18 else "…" + tail[-17:]
    name = f"{dag.removeprefix('ha_bench_')} {tail} {task}"
    return name + (f"[{map_index}]" if map_index != -1 else "")


def execution_timeline(
    history_df: pd.DataFrame,
    ledger_rows: list[dict[str, object]],
    check: CheckResult | None = None,
    *,
    victim: dict[str, object] | None = None,
    max_rows: int = 30,
) -> ExecutionTimeline | None:
    """The rows worth drawing: the victim's task instance, those with findings, those
    running when a fault hit, then those running during a fault window — at most
    ``max_rows`` (``omitted`` counts the rest). None without ledger executions."""
    execs = executions(ledger_rows)
    if not execs:
        return None
    by_task = executions_by_task(execs)
    states = task_states(history_df)
    faults = fault_windows(history_df)
    keys = set(by_task) | set(states)
    names = {task_name(k): k for k in keys}
    why: dict[TaskKey, list[str]] = {}

    def add(key: TaskKey | None, reason: str) -> None:
        if key is not None and key in keys and reason not in why.setdefault(key, []):
            why[key].append(reason)

    if victim and victim.get("run_id") and victim.get("task_id"):
        run_id, task_id = str(victim["run_id"]), str(victim["task_id"])
        for k in keys:
            if k[1] == run_id and k[2] == task_id:
                add(k, "victim")
    timeline = ExecutionTimeline([], faults, faults[0].start if faults else
                                 min(e.start for e in execs))  # fmt: skip
    findings = check.details.get("findings", []) if check is not None else []
    for f in findings:
        kind = str(f.get("kind"))
        rows = [names.get(str(f.get("task")))] if f.get("task") else []
        if kind == "lost_run":
            rows = [k for k in keys if (k[0], k[1]) == (f.get("dag_id"), f.get("run_id"))]
        for k in rows:
            add(k, kind)
        for c in f.get("executions", []) or []:
            if kind in EXECUTION_FINDINGS:
                timeline.flagged.add(_cited_id(c))
        if kind == "overlap" and rows and rows[0] is not None:
            timeline.overlaps.append((rows[0], float(f["from"]), float(f["until"])))
        mark = FINDING_MARKS.get(kind)
        at = {"zombie_false_positive": f.get("reported_at"), "stuck": f.get("since"),
              "lost_run": f.get("run_state_at")}.get(kind)  # fmt: skip
        if kind in ("running_to_queued", "try_decreased", "try_jump"):
            at = (f.get("after") or {}).get("t_wall")
        if mark is not None and at is not None:
            for k in rows:
                if k is not None:
                    timeline.marks.append((k, float(at), kind, mark[2]))
    for w in faults:
        for k, group in by_task.items():
            if any(e.start <= w.start <= e.last_alive for e in group):
                add(k, "at fault")
    for w in faults:
        for k, group in by_task.items():
            if "at fault" not in why.get(k, []) and any(
                e.start <= w.end and e.last_alive >= w.start for e in group
            ):
                add(k, "during fault")
    chosen = list(why)[:max_rows]
    timeline.omitted = len(why) - len(chosen)
    timeline.task_instances = len(keys)
    run_end = run_observed_until(history_df)
    end_all = observed_until(history_df)
    first = {k: min([e.start for e in by_task.get(k, [])] +
                    [o.t_wall for o in states.get(k, [])]) for k in chosen}  # fmt: skip
    for k in sorted(chosen, key=lambda k: (first[k], k)):
        row = TimelineRow(k, _row_label(k), why[k], by_task.get(k, []), states.get(k, []),
                          run_end.get(k[:2], end_all))  # fmt: skip
        timeline.rows.append(row)
    timeline.replicas = sorted({str(e.replica) for r in timeline.rows for e in r.executions})
    return timeline


def _lanes(group: list[Execution]) -> list[int]:
    """A lane per execution so that executions alive at the same time do not overdraw."""
    ends: list[float] = []
    out = []
    for e in group:
        lane = next((i for i, end in enumerate(ends) if end < e.start), None)
        if lane is None:
            ends.append(e.last_alive)
            lane = len(ends) - 1
        else:
            ends[lane] = e.last_alive
        out.append(lane)
    return out


def execution_timeline_figure(timeline: ExecutionTimeline, *, title: str = "") -> Figure:
    """Per task instance (rows) its executions as bars coloured by worker replica (try
    number inside; the end marker says how each ended; a faded tail: it may have lived up
    to one heartbeat interval past its last row), the API-reported states as a thin strip
    beneath, fault windows shaded, and findings marked: a red outline for duplicated or
    overlapping executions (their common time hatched red), symbols for the others."""
    import matplotlib

    t0 = timeline.t0
    colours = {r: REPLICA_COLOURS[i % len(REPLICA_COLOURS)]
               for i, r in enumerate(timeline.replicas)}  # fmt: skip
    n = max(len(timeline.rows), 1)
    with matplotlib.rc_context(RC):
        fig = _figure(12.5, 0.42 * n + 2.0)
        ax = fig.subplots()
        lo, hi = math.inf, -math.inf
        for w in timeline.faults:
            ax.axvspan(w.start - t0, w.end - t0, color="#d62728", alpha=0.10, linewidth=0,
                       zorder=0)  # fmt: skip
            ax.annotate(w.label + (" (held to the undo)" if w.held else ""), (w.start - t0, 0.0),
                        xycoords=("data", "axes fraction"), xytext=(2, 2),
                        textcoords="offset points", fontsize=8, color="#d62728",
                        va="bottom", zorder=8)  # fmt: skip
            lo, hi = min(lo, w.start - t0), max(hi, w.end - t0)
        seen_states: set[str] = set()
        seen_outcomes: set[str | None] = set()
        index = {r.key: i for i, r in enumerate(timeline.rows)}
        for row, r in enumerate(timeline.rows):
            ax.axhline(row, color="#f2f2f2", linewidth=14, zorder=0)
            lanes = _lanes(r.executions)
            n_lanes = max(lanes, default=0) + 1
            height = 0.5 / n_lanes
            for e, lane in zip(r.executions, lanes, strict=True):
                y = row - 0.33 + lane * height
                start, alive = e.start - t0, e.last_alive - t0
                flagged = _exec_id(e) in timeline.flagged
                colour = colours.get(str(e.replica), "#7f7f7f")
                edge = {"edgecolors": "#d62728", "linewidth": 2.2} if flagged else {}
                quiet = [(a - t0, b - t0) for a, b in e.silences()]
                cuts = [start, *[x for gap in quiet for x in gap], alive]
                pieces = [(a, max(b - a, 0.05)) for a, b in zip(cuts[::2], cuts[1::2], strict=True)]
                ax.broken_barh(pieces, (y, height * 0.9), facecolors=colour, alpha=0.85,
                               zorder=3)  # fmt: skip
                for a, b in quiet:
                    ax.plot([a, b], [y + height * 0.45] * 2, color=colour, linewidth=1.2,
                            linestyle=":", zorder=3)  # fmt: skip
                if flagged:
                    ax.broken_barh([(start, max(alive - start, 0.05))], (y, height * 0.9),
                                   facecolors="none", zorder=4, **edge)  # fmt: skip
                if e.outcome is None and e.heartbeat_s:
                    ax.broken_barh([(alive, e.heartbeat_s)], (y, height * 0.9),
                                   facecolors=colour, alpha=0.25, zorder=2,
                                   linestyle="--", edgecolors=colour)  # fmt: skip
                marker, _ = OUTCOME_MARKS.get(e.outcome, OUTCOME_MARKS[None])
                seen_outcomes.add(e.outcome if e.outcome in OUTCOME_MARKS else None)
                ax.scatter([alive], [y + height * 0.45], marker=marker, color="#000000",
                           s=40 if marker != "|" else 70, zorder=5, linewidths=1.4)  # fmt: skip
                label = f"#{e.try_number}" + (f" pid {e.pid}" if n_lanes > 1 or flagged else "")
                ax.text(start, y + height * 0.45, f" {label}", fontsize=7, va="center",
                        color="#ffffff", zorder=6, clip_on=True)  # fmt: skip
                lo, hi = min(lo, start), max(hi, alive + (e.heartbeat_s or 0))
            for i, o in enumerate(r.states):
                end = r.states[i + 1].t_wall if i + 1 < len(r.states) else r.states_until
                if o.state is None or end is None:
                    continue
                seen_states.add(o.state)
                ax.broken_barh([(o.t_wall - t0, max(end - o.t_wall, 0.05))], (row + 0.22, 0.12),
                               facecolors=API_STATE_COLOURS.get(o.state, "#969696"),
                               zorder=2)  # fmt: skip
                lo, hi = min(lo, o.t_wall - t0), max(hi, end - t0)
            found = [w for w in r.why if w not in CONTEXT_REASONS]
            context = [w for w in r.why if w in CONTEXT_REASONS]
            _label_row(ax, row, "; ".join(filter(None, [", ".join(found), ", ".join(context)])),
                       color="#d62728" if found else "#555555")  # fmt: skip
        for key, start, until in timeline.overlaps:
            if key in index:
                ax.broken_barh([(start - t0, max(until - start, 0.05))], (index[key] - 0.36, 0.56),
                               facecolors="none", edgecolors="#d62728", hatch="///",
                               linewidth=0, zorder=4)  # fmt: skip
        seen_marks: dict[str, Line2D] = {}
        for key, t, kind, label in timeline.marks:
            if key not in index:
                continue
            marker, colour, _ = FINDING_MARKS[kind]
            ax.scatter([t - t0], [index[key] + 0.28], marker=marker, color=colour, s=46,
                       zorder=7, edgecolors="#000000", linewidths=0.5)  # fmt: skip
            seen_marks.setdefault(label, Line2D([], [], marker=marker, color=colour,
                                                linestyle="", label=label))  # fmt: skip
        ax.set_yticks(range(len(timeline.rows)), [r.label for r in timeline.rows])
        ax.set_ylim(n - 0.5, -0.5)
        if math.isfinite(lo) and math.isfinite(hi):
            pad = max(0.03 * (hi - lo), 0.5)
            ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel("time since the fault (s)" if timeline.faults
                      else "time since the first execution (s)")  # fmt: skip
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        handles: list[Patch | Line2D] = [Patch(color=colours[r], label=r)
                                         for r in timeline.replicas]  # fmt: skip
        handles.append(Line2D([], [], color="#555555", linestyle=":",
                              label="silent (no heartbeat for > 1.5 intervals)"))  # fmt: skip
        handles += [Line2D([], [], marker=OUTCOME_MARKS[o][0], color="#000000", linestyle="",
                           label=OUTCOME_MARKS[o][1])
                    for o in OUTCOME_MARKS if o in seen_outcomes]  # fmt: skip
        handles += [Patch(color=API_STATE_COLOURS.get(s, "#969696"), label=f"API: {s}")
                    for s in API_STATE_COLOURS if s in seen_states]  # fmt: skip
        if timeline.faults:
            handles.append(Patch(color="#d62728", alpha=0.10, label="fault in effect"))
        if timeline.flagged:
            handles.append(Patch(facecolor="none", edgecolor="#d62728", linewidth=2,
                                 label="duplicated / overlapping"))  # fmt: skip
        handles += list(seen_marks.values())
        fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=7)
        more = f" ({timeline.omitted} more not shown)" if timeline.omitted else ""
        shown = f"{len(timeline.rows)} of {timeline.task_instances} task instances{more}"
        head = f"{title} — " if title else ""
        ax.set_title(f"{head}executions per task instance: {shown}", loc="left")
    return fig


def save_figure(fig: Figure, out_dir: Path, stem: str, *, dpi: int = 100) -> tuple[Path, Path]:
    """Write ``out_dir/stem.png`` (palette-compressed) and ``stem.svg``; returns both paths."""
    import matplotlib
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    buf = io.BytesIO()
    text = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
        fig.savefig(text, format="svg", facecolor="white", metadata={"Date": None})
    # 1/100 pt is finer than any screen or printer: rounding coordinates halves the file
    svg.write_text(re.sub(r"(\d\.\d\d)\d+", r"\1", text.getvalue()))
    buf.seek(0)
    with Image.open(buf) as image:
        image.convert("RGB").quantize(colors=128, dither=Image.Dither.NONE).save(png, optimize=True)
    return png, svg


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (for notebooks and embedding)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()
