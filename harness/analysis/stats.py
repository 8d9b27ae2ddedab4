"""Statistics over repetitions: medians with confidence intervals, and before/after tests.

Repetitions are few (1-10), so everything here says plainly when the data cannot support
a claim: one repetition has no interval, and two samples too small for the test to ever
reach significance are "not significant (n too small)", whatever they look like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Comparison", "Estimate", "compare_samples", "median_ci", "min_p_value", "numbers"]

NOT_SIGNIFICANT = "not significant"
TOO_FEW = "not significant (n too small)"


def numbers(values: list[Any]) -> list[float]:
    """The numeric, finite-or-infinite values (None and NaN dropped) as floats."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            continue
        if not math.isnan(float(v)):
            out.append(float(v))
    return out


@dataclass(frozen=True)
class Estimate:
    """The median of ``n`` values with a ``confidence`` interval (None when there is none)."""

    n: int
    median: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str

    def text(self, unit: str = "s", digits: int = 2) -> str:
        """``1.23 s [0.9, 1.8] (n=5)``, or plainly why there is no interval."""
        if self.median is None:
            return "-"
        med = f"{self.median:.{digits}f} {unit}".strip()
        if self.n == 1:
            return f"{med} (n=1, no interval)"
        if self.low is None or self.high is None:
            return f"{med} ({self.method})"
        return f"{med} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"


def median_ci(
    values: list[Any], *, confidence: float = 0.95, resamples: int = 5000, seed: int = 0
) -> Estimate:
    """Median and bootstrap percentile interval of the median (seeded, so reproducible).

    None/NaN values are dropped. With one value there is no interval; with all values equal
    the interval is that value.
    """
    x = np.asarray(numbers(values), dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(0, None, None, None, confidence, "no data")
    med = float(np.median(x))
    if n == 1:
        return Estimate(1, med, None, None, confidence, "1 repetition: no confidence interval")
    if np.all(x == x[0]):
        return Estimate(n, med, med, med, confidence, f"all {n} repetitions equal")
    rng = np.random.default_rng(seed)
    boots = np.median(x[rng.integers(0, n, size=(resamples, n))], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return Estimate(
        n,
        med,
        float(low),
        float(high),
        confidence,
        f"bootstrap {confidence:.0%} CI of the median, {resamples} resamples",
    )


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided exact Mann-Whitney U p-value samples of these sizes can give."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


@dataclass(frozen=True)
class Comparison:
    """A metric before (``base``) and after (``new``): medians, change, test and verdict.

    ``verdict`` is ``regression`` / ``improvement`` (significant and the median went up /
    down; for downtime and recovery up is worse), ``not significant`` or
    ``not significant (n too small)``, or ``no data``.
    """

    metric: str
    base: list[float]
    new: list[float]
    base_median: float | None
    new_median: float | None
    change: float | None
    p_value: float | None
    alpha: float
    verdict: str
    test: str

    @property
    def significant(self) -> bool:
        return self.verdict in ("regression", "improvement")


def compare_samples(
    metric: str, base: list[Any], new: list[Any], *, alpha: float = 0.05
) -> Comparison:
    """Two-sided Mann-Whitney U test of ``new`` vs ``base`` (scipy), at level ``alpha``.

    None means "never happened" (e.g. never recovered) and counts as +infinity, the worst
    value. The test ranks values, so medians and ties are all it relies on.
    """
    from scipy.stats import mannwhitneyu

    b = [math.inf if v is None else v for v in numbers(base) + [None] * _nones(base)]
    n = [math.inf if v is None else v for v in numbers(new) + [None] * _nones(new)]
    test = f"Mann-Whitney U, two-sided, alpha {alpha:g}"
    if not b or not n:
        return Comparison(metric, b, n, None, None, None, None, alpha, "no data", test)
    bm, nm = float(np.median(b)), float(np.median(n))
    change = nm - bm if math.isfinite(bm) and math.isfinite(nm) else None
    if len(set(b) | set(n)) == 1:
        p = 1.0
    else:
        finite = [v for v in b + n if math.isfinite(v)]
        worst = (max(finite) if finite else 0.0) * 10 + 1e6  # inf ranks last; keep scipy finite
        p = float(
            mannwhitneyu(
                [v if math.isfinite(v) else worst for v in n],
                [v if math.isfinite(v) else worst for v in b],
                alternative="two-sided",
            ).pvalue
        )
    if min_p_value(len(b), len(n)) > alpha:
        verdict = TOO_FEW
    elif p < alpha and nm != bm:
        verdict = "regression" if nm > bm else "improvement"
    elif p < alpha:  # equal medians, different distributions: say which way the ranks moved
        verdict = "regression" if np.mean(n) > np.mean(b) else "improvement"
    else:
        verdict = NOT_SIGNIFICANT
    return Comparison(metric, b, n, bm, nm, change, p, alpha, verdict, test)


def _nones(values: list[Any]) -> int:
    return sum(1 for v in values if v is None)
