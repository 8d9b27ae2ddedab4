"""The execution timeline figure of one repetition (:func:`execution_timeline_figure`): a
row per task instance that :func:`harness.report.plots.timeline.execution_timeline` chose,
its executions as bars coloured by worker replica, the API-reported states beneath, fault
windows shaded and the checkers' findings marked."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.report.plots.style import RC, REPLICA_COLOURS, label_row, new_figure
from harness.report.plots.timeline import (
    CONTEXT_REASONS,
    FINDING_MARKS,
    ExecutionTimeline,
    TimelineRow,
    execution_id,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from harness.check.history import Execution, TaskKey

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


@dataclass
class _Drawn:
    """What the rows drew: the time span, and the outcomes and states seen (for the legend)."""

    lo: float = math.inf
    hi: float = -math.inf
    outcomes: set[str | None] = field(default_factory=set)
    states: set[str] = field(default_factory=set)

    def span(self, lo: float, hi: float) -> None:
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)


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

    colours = {r: REPLICA_COLOURS[i % len(REPLICA_COLOURS)]
               for i, r in enumerate(timeline.replicas)}  # fmt: skip
    n = max(len(timeline.rows), 1)
    with matplotlib.rc_context(RC):
        fig = new_figure(12.5, 0.42 * n + 2.0)
        ax = fig.subplots()
        drawn = _Drawn()
        _fault_windows(ax, timeline, drawn)
        index = {r.key: i for i, r in enumerate(timeline.rows)}
        for row, r in enumerate(timeline.rows):
            ax.axhline(row, color="#f2f2f2", linewidth=14, zorder=0)
            _executions(ax, row, r, timeline, colours, drawn)
            _api_states(ax, row, r, timeline.t0, drawn)
            found = [w for w in r.why if w not in CONTEXT_REASONS]
            context = [w for w in r.why if w in CONTEXT_REASONS]
            label_row(ax, row, "; ".join(filter(None, [", ".join(found), ", ".join(context)])),
                      color="#d62728" if found else "#555555")  # fmt: skip
        marks = _findings(ax, timeline, index)
        ax.set_yticks(range(len(timeline.rows)), [r.label for r in timeline.rows])
        ax.set_ylim(n - 0.5, -0.5)
        if math.isfinite(drawn.lo) and math.isfinite(drawn.hi):
            pad = max(0.03 * (drawn.hi - drawn.lo), 0.5)
            ax.set_xlim(drawn.lo - pad, drawn.hi + pad)
        ax.set_xlabel("time since the fault (s)" if timeline.faults
                      else "time since the first execution (s)")  # fmt: skip
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        handles = _legend_handles(timeline, colours, drawn, marks)
        fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=7)
        more = f" ({timeline.omitted} more not shown)" if timeline.omitted else ""
        shown = f"{len(timeline.rows)} of {timeline.task_instances} task instances{more}"
        head = f"{title} — " if title else ""
        ax.set_title(f"{head}executions per task instance: {shown}", loc="left")
    return fig


MAX_FAULT_LABELS = 6  # more fault windows (a soak) are shaded, not each named


def _fault_windows(ax: Axes, timeline: ExecutionTimeline, drawn: _Drawn) -> None:
    t0 = timeline.t0
    named = len(timeline.faults) <= MAX_FAULT_LABELS
    for w in timeline.faults:
        ax.axvspan(w.start - t0, w.end - t0, color="#d62728", alpha=0.10, linewidth=0,
                   zorder=0)  # fmt: skip
        drawn.span(w.start - t0, w.end - t0)
        if not named:
            continue
        ax.annotate(w.label + (" (held to the undo)" if w.held else ""), (w.start - t0, 0.0),
                    xycoords=("data", "axes fraction"), xytext=(2, 2),
                    textcoords="offset points", fontsize=8, color="#d62728",
                    va="bottom", zorder=8)  # fmt: skip


def _executions(
    ax: Axes,
    row: int,
    r: TimelineRow,
    timeline: ExecutionTimeline,
    colours: dict[str, str],
    drawn: _Drawn,
) -> None:
    """One row's executions: bars (dotted where silent) in lanes, a red outline when
    flagged, a faded tail for one heartbeat interval, the end marker and the try number."""
    t0 = timeline.t0
    lanes = _lanes(r.executions)
    n_lanes = max(lanes, default=0) + 1
    height = 0.5 / n_lanes
    for e, lane in zip(r.executions, lanes, strict=True):
        y = row - 0.33 + lane * height
        start, alive = e.start - t0, e.last_alive - t0
        flagged = execution_id(e) in timeline.flagged
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
        drawn.outcomes.add(e.outcome if e.outcome in OUTCOME_MARKS else None)
        ax.scatter([alive], [y + height * 0.45], marker=marker, color="#000000",
                   s=40 if marker != "|" else 70, zorder=5, linewidths=1.4)  # fmt: skip
        label = f"#{e.try_number}" + (f" pid {e.pid}" if n_lanes > 1 or flagged else "")
        ax.text(start, y + height * 0.45, f" {label}", fontsize=7, va="center",
                color="#ffffff", zorder=6, clip_on=True)  # fmt: skip
        drawn.span(start, alive + (e.heartbeat_s or 0))


def _api_states(ax: Axes, row: int, r: TimelineRow, t0: float, drawn: _Drawn) -> None:
    """One row's API-reported states as a thin strip beneath its executions."""
    for i, o in enumerate(r.states):
        end = r.states[i + 1].t_wall if i + 1 < len(r.states) else r.states_until
        if o.state is None or end is None:
            continue
        drawn.states.add(o.state)
        ax.broken_barh([(o.t_wall - t0, max(end - o.t_wall, 0.05))], (row + 0.22, 0.12),
                       facecolors=API_STATE_COLOURS.get(o.state, "#969696"),
                       zorder=2)  # fmt: skip
        drawn.span(o.t_wall - t0, end - t0)


def _findings(
    ax: Axes, timeline: ExecutionTimeline, index: dict[TaskKey, int]
) -> dict[str, Line2D]:
    """Overlaps hatched red and the findings' marks; returns the marks' legend handles."""
    t0 = timeline.t0
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
    return seen_marks


def _legend_handles(
    timeline: ExecutionTimeline,
    colours: dict[str, str],
    drawn: _Drawn,
    marks: dict[str, Line2D],
) -> list[Patch | Line2D]:
    handles: list[Patch | Line2D] = [Patch(color=colours[r], label=r)
                                     for r in timeline.replicas]  # fmt: skip
    handles.append(Line2D([], [], color="#555555", linestyle=":",
                          label="silent (no heartbeat for > 1.5 intervals)"))  # fmt: skip
    handles += [Line2D([], [], marker=OUTCOME_MARKS[o][0], color="#000000", linestyle="",
                       label=OUTCOME_MARKS[o][1])
                for o in OUTCOME_MARKS if o in drawn.outcomes]  # fmt: skip
    handles += [Patch(color=API_STATE_COLOURS.get(s, "#969696"), label=f"API: {s}")
                for s in API_STATE_COLOURS if s in drawn.states]  # fmt: skip
    if timeline.faults:
        many = len(timeline.faults) > MAX_FAULT_LABELS
        label = f"fault in effect ({len(timeline.faults)} windows)" if many else "fault in effect"
        handles.append(Patch(color="#d62728", alpha=0.10, label=label))
    if timeline.flagged:
        handles.append(Patch(facecolor="none", edgecolor="#d62728", linewidth=2,
                             label="duplicated / overlapping"))  # fmt: skip
    handles += list(marks.values())
    return handles
