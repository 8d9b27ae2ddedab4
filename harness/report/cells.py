"""The text of a report's table cells: values, percentages, milliseconds, a repetition's
figure (``never (>= X s)`` when censored), and a variant's median with its 95 % interval
(:func:`estimate`, the one the report and ``ha-bench compare`` agree on)."""

from __future__ import annotations

import math
from typing import Any

from harness.analysis.stats import Estimate, median_ci, never_text
from harness.core.results import censored_for, figure
from harness.report.runs import Repetition, Variant


def fmt(value: Any, digits: int = 3) -> str:
    """A value in a cell: ``-`` for None, ``true``/``false``, floats to ``digits``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any, digits: int = 2) -> str:
    return f"{x * 100:.{digits}f} %" if is_num(x) else "-"


def millis(x: Any) -> str:
    return f"{x * 1000:.1f}" if is_num(x) else "-"


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def seconds_text(x: Any) -> str:
    return f"{x:.2f} s" if is_num(x) else "-"


def estimate(v: Variant, metric: str) -> Estimate:
    """Median and 95 % interval of ``metric`` over the variant's valid repetitions."""
    return median_ci(v.values(metric), censored_s=v.censored_s(metric))


def _unit(metric: str) -> str:
    return "s" if metric.endswith("_s") else ""


def estimate_text(v: Variant, metric: str) -> str:
    """``1.23 s [0.90, 1.80] (n=6)``, ``never (>= X s) ...``, ``... (n=5; no 95 % interval:
    n < 6)``, or ``not recorded`` when no valid repetition has the figure."""
    est = estimate(v, metric)
    if est.median is None:
        return "not recorded"
    return est.text(unit=_unit(metric), digits=2 if metric.endswith("_s") else 1)


def figure_text(r: Repetition, metric: str, digits: int = 3) -> str:
    """A repetition's figure: the value, or ``never (>= X s)`` when censored."""
    if figure(r.figures, metric) == math.inf:
        return never_text(censored_for(r.figures, metric), digits)
    return fmt(r.figures.get(metric), digits)


def figure_seconds(r: Repetition, metric: str) -> str:
    """A repetition's figure in seconds: ``1.23 s``, ``never (>= X s)`` or ``-``."""
    text = figure_text(r, metric, 2)
    return text if text == "-" or text.startswith("never") else f"{text} s"


def figure_cell(r: Repetition, metric: str) -> str:
    """A repetition's figure in a table: ``1.23 s``, ``never (>= X s)``, ``2`` or ``-``."""
    if metric.endswith("_s"):
        return figure_seconds(r, metric)
    return figure_text(r, metric, 2)
