"""A base and a new run side by side (:func:`comparison_figure`; the comparison itself is
:mod:`harness.report.compare`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from harness.report.plots.style import METRIC_LABELS, RC, label_row, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.compare import RunComparison


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
        label_row(ax, row, c.verdict, color=color)
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
        fig = new_figure(12.5, nrows * (0.55 * max(len(names), 1) + 1.1) + 0.6)
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
