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

:func:`save_figure` writes PNG and SVG files, :func:`png_bytes` gives PNG bytes.

The modules: ``recovery`` (recovery curves, overlay), ``repetitions`` (a run's headline
figures over its repetitions, latency per phase), ``scheduling`` (the scatter),
``comparison``, ``timeline`` (which task instances a timeline shows) and
``timeline_figure`` (drawing it), ``style`` (what every figure shares) and ``files``.
Everything is imported from here.
"""

from harness.report.plots.comparison import comparison_figure
from harness.report.plots.files import png_bytes, save_figure
from harness.report.plots.recovery import overlay_figure, recovery_curve_figure
from harness.report.plots.repetitions import (
    headline_panels,
    phase_latency_figure,
    repetitions_figure,
)
from harness.report.plots.scheduling import (
    RepetitionPoints,
    SchedulingPoints,
    scheduling_points,
    scheduling_scatter_figure,
)
from harness.report.plots.style import metric_label
from harness.report.plots.timeline import ExecutionTimeline, TimelineRow, execution_timeline
from harness.report.plots.timeline_figure import execution_timeline_figure

__all__ = [
    "ExecutionTimeline",
    "RepetitionPoints",
    "SchedulingPoints",
    "TimelineRow",
    "comparison_figure",
    "execution_timeline",
    "execution_timeline_figure",
    "headline_panels",
    "metric_label",
    "overlay_figure",
    "phase_latency_figure",
    "png_bytes",
    "recovery_curve_figure",
    "repetitions_figure",
    "save_figure",
    "scheduling_points",
    "scheduling_scatter_figure",
]
