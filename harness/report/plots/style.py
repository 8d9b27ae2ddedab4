"""What every figure shares: matplotlib settings, replica colours, axis labels of the
figures, a fresh Agg figure, and the labels and legends right of an axes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "svg.fonttype": "none",
    "svg.hashsalt": "airflow-ha-bench",
}
REPLICA_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22", "#7f7f7f")  # fmt: skip
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


def metric_label(metric: str) -> str:
    """An axis label of a figure: its words and unit (``(s)`` for ``*_s``)."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    words = metric.removesuffix("_s").replace("_", " ")
    return f"{words} (s)" if metric.endswith("_s") else words


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure on its own Agg canvas (no pyplot state)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def label_row(ax: Axes, row: int, text: str, color: str = "#000000") -> None:
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


def legend_right(ax, handles=None, **kwargs) -> None:
    """The axes' legend outside it, to the right, top-aligned."""
    if handles is None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kwargs)
    else:
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kwargs
        )
