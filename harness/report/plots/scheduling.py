"""The scheduling scatter: per DAG run of a variant, its trigger time relative to the fault
against its trigger → first task start latency (:func:`scheduling_points` gives the data,
:func:`scheduling_scatter_figure` draws it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matplotlib.lines import Line2D

from harness.report.plots.style import RC, REPLICA_COLOURS, legend_right, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.runs import Variant

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
        fig = new_figure(12.5, 4.4)
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
        legend_right(ax, handles)
        head = f"{title} — " if title else ""
        ax.set_title(f"{head}trigger → first task start per DAG run ({points.runs} runs in "
                     f"{len(points.repetitions)} repetition(s))", loc="left")  # fmt: skip
    return fig
