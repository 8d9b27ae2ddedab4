"""A run's overview figures: each variant's headline figures over its repetitions
(:func:`repetitions_figure`) and LB latency per phase (:func:`phase_latency_figure`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from harness.analysis.stats import median_ci, numbers
from harness.report.plots.style import RC, legend_right, metric_label, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.runs import Run, Variant

PHASE_COLOURS = {"before": "#1f77b4", "during": "#d62728", "after": "#2ca02c"}


def _strip_note(raw: list[float | None], text: str) -> str:
    never = sum(1 for x in raw if x is not None and math.isinf(x))
    missing = sum(1 for x in raw if x is None)
    return (
        text
        + (f", {never} never" if never else "")
        + (f", {missing} not measured" if missing else "")
    )


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
        fig = new_figure(12.5, sum(heights) + 0.5)
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
        fig = new_figure(12.5, 3.4)
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
        legend_right(ax, handles)
    return fig
