"""Statistics over repetitions: medians with distribution-free intervals, and before/after tests.

Repetitions are few (1-10), so everything here is exact where it can be and says plainly
when the data cannot support a claim:

- the median's interval is the order-statistic (binomial) interval, which assumes nothing
  about the distribution; below 6 values no 95 % interval exists and none is given;
- two samples are compared by a permutation test of the Mann-Whitney U statistic, exact
  (every arrangement) when there are few arrangements, so ties (many 0.0 downtimes) are
  handled exactly; samples whose most extreme arrangement could not reach ``alpha`` are
  "not significant (n too small)", whatever they look like;
- several comparisons are corrected together (Holm, :func:`holm_correct`).

A censored figure (its event never happened while the harness watched; see
:func:`harness.core.results.figure`) is ``math.inf``: it ranks above every number, a median
or bound can be +inf, and it is printed "never (>= X s)" with X the shortest time watched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from itertools import combinations
from typing import Any

import numpy as np

__all__ = [
    "NEVER",
    "NOT_SIGNIFICANT",
    "NO_DATA",
    "TOO_FEW",
    "Comparison",
    "Estimate",
    "UTest",
    "compare_samples",
    "holm",
    "holm_correct",
    "median_ci",
    "min_p_value",
    "never_text",
    "no_interval_text",
    "numbers",
    "order_statistic_rank",
    "u_statistic",
    "u_test",
]

CONFIDENCE = 0.95
NOT_SIGNIFICANT = "not significant"
TOO_FEW = "not significant (n too small)"
NO_DATA = "no data"
NEVER = "never"
RESAMPLES = 20_000  # random arrangements when there are more than this many
SEED = 0
TEST = (
    "two-sided permutation test of the Mann-Whitney U statistic (ties count 1/2; "
    f'"never" ranks above every number): exact over every arrangement when there are at '
    f"most {RESAMPLES}, else {RESAMPLES} random arrangements (seed {SEED})"
)


def numbers(values: list[Any]) -> list[float]:
    """The numeric, finite-or-infinite values (None, NaN and bools dropped) as floats."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            continue
        if not math.isnan(float(v)):
            out.append(float(v))
    return out


def _floor(x: float, digits: int) -> float:
    return math.floor(x * 10**digits) / 10**digits


def never_text(censored_s: float | None = None, digits: int = 2) -> str:
    """``never (>= X s)``: a censored value, X the shortest time watched (rounded down, so
    it never claims more watching than there was); ``never`` if X is unknown."""
    if censored_s is None:
        return NEVER
    return f"{NEVER} (>= {_floor(censored_s, digits):.{digits}f} s)"


# --- medians -----------------------------------------------------------------------------


@cache
def order_statistic_rank(n: int, confidence: float = CONFIDENCE) -> tuple[int, float] | None:
    """``(k, coverage)``: the largest k with ``P(k <= B <= n - k) >= confidence`` for
    B ~ Binomial(n, 1/2), so that ``[x_(k), x_(n-k+1)]`` covers the median with probability
    ``coverage`` whatever the distribution; None when even ``[x_(1), x_(n)]`` falls short."""
    from scipy.stats import binom

    best = None
    for k in range(1, n // 2 + 1):
        coverage = float(binom.cdf(n - k, n, 0.5) - binom.cdf(k - 1, n, 0.5))
        if coverage < confidence:
            break
        best = (k, coverage)
    return best


@cache
def _min_n(confidence: float) -> int:
    n = 1
    while order_statistic_rank(n, confidence) is None:
        n += 1
    return n


def no_interval_text(confidence: float = CONFIDENCE) -> str:
    """``no 95 % interval: n < 6``: why a median has no interval."""
    return f"no {confidence * 100:g} % interval: n < {_min_n(confidence)}"


@dataclass(frozen=True)
class Estimate:
    """The median of ``n`` values with a ``confidence`` interval (None when there is none).

    ``censored_s``: the shortest time watched among the censored (+inf) values, for the
    "never (>= X s)" of an infinite median or bound; ``coverage``: the interval's exact
    coverage (at least ``confidence``)."""

    n: int
    median: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    coverage: float | None = None
    censored_s: float | None = None

    def _value(self, x: float, unit: str, digits: int) -> str:
        if math.isinf(x):
            return never_text(self.censored_s, digits)
        return f"{x:.{digits}f} {unit}".strip()

    def text(self, unit: str = "s", digits: int = 2) -> str:
        """``1.23 s [0.90, 1.80] (n=6)``, ``1.23 s (n=5; no 95 % interval: n < 6)``, or
        ``-`` without data; a censored median or bound reads ``never (>= X s)``."""
        if self.median is None:
            return "-"
        med = self._value(self.median, unit, digits)
        if self.low is None or self.high is None:
            return f"{med} (n={self.n}; {no_interval_text(self.confidence)})"
        low, high = (self._value(x, "", digits) for x in (self.low, self.high))
        return f"{med} [{low}, {high}] (n={self.n})"


def median_ci(
    values: list[Any], *, confidence: float = CONFIDENCE, censored_s: float | None = None
) -> Estimate:
    """Median and order-statistic ``confidence`` interval of the median.

    None/NaN values are dropped; +inf (censored) values take part as +inf. Below the
    smallest n with such an interval (6 for 95 %) there is none."""
    x = np.sort(np.asarray(numbers(values), dtype=float))
    n = len(x)
    if n == 0:
        return Estimate(0, None, None, None, confidence, NO_DATA)
    med = float(np.median(x))
    rank = order_statistic_rank(n, confidence)
    if rank is None:
        return Estimate(
            n, med, None, None, confidence, no_interval_text(confidence), censored_s=censored_s
        )
    k, coverage = rank
    method = (
        f"order-statistic {confidence * 100:g} % interval [x_({k}), x_({n - k + 1})], "
        f"coverage {coverage * 100:.1f} %"
    )
    low, high = float(x[k - 1]), float(x[n - k])
    return Estimate(n, med, low, high, confidence, method, coverage, censored_s)


# --- two samples -------------------------------------------------------------------------


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p-value samples of these sizes can give (without ties; ties
    only make it larger)."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def u_statistic(new: Any, base: Any, axis: int = -1) -> Any:
    """Mann-Whitney U of ``new`` over ``base``: pairs with new > base, ties 1/2 (+inf ties
    +inf); vectorized along ``axis``."""
    x = np.moveaxis(np.asarray(new, dtype=float), axis, -1)[..., :, None]
    y = np.moveaxis(np.asarray(base, dtype=float), axis, -1)[..., None, :]
    return (x > y).sum(axis=(-2, -1)) + 0.5 * (x == y).sum(axis=(-2, -1))


@dataclass(frozen=True)
class UTest:
    """A permutation test of U: its p-value, the smallest p-value any arrangement of the
    same pooled values could give (``min_p``), and how it was computed."""

    u: float
    p_value: float
    min_p: float
    exact: bool
    arrangements: int

    @property
    def method(self) -> str:
        if self.exact:
            return f"exact, {self.arrangements} arrangements"
        return f"random, {self.arrangements} arrangements"


def _two_sided(null: np.ndarray, u: float, exact: bool) -> float:
    """scipy.stats.permutation_test's two-sided p-value of ``u`` against ``null``."""
    adjust = 0 if exact else 1
    gamma = abs(np.finfo(float).eps * 100 * u)
    less = (np.count_nonzero(null <= u + gamma) + adjust) / (len(null) + adjust)
    greater = (np.count_nonzero(null >= u - gamma) + adjust) / (len(null) + adjust)
    return float(min(1.0, 2 * min(less, greater)))


def _null(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> tuple[float, np.ndarray]:
    """(two-sided p-value, null distribution of U) from ``scipy.stats.permutation_test``;
    a one-value sample (which scipy refuses) is enumerated here: it has n + 1 arrangements."""
    if min(len(x), len(y)) >= 2:
        from scipy.stats import permutation_test

        result = permutation_test(
            (x, y), u_statistic, permutation_type="independent", vectorized=True,
            n_resamples=resamples, alternative="two-sided", rng=seed, batch=2000,
        )  # fmt: skip
        return float(result.pvalue), np.asarray(result.null_distribution)
    pooled = np.concatenate([x, y])
    null = []
    for idx in combinations(range(len(pooled)), len(x)):
        mask = np.zeros(len(pooled), dtype=bool)
        mask[list(idx)] = True
        null.append(float(u_statistic(pooled[mask], pooled[~mask])))
    null_array = np.asarray(null)
    return _two_sided(null_array, float(u_statistic(x, y)), True), null_array


def u_test(
    base: Sequence[float], new: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED
) -> UTest:
    """Two-sided permutation test of U (``scipy.stats.permutation_test``): exact when the
    samples have at most ``resamples`` arrangements, else ``resamples`` seeded random ones."""
    x, y = np.asarray(new, dtype=float), np.asarray(base, dtype=float)
    total = math.comb(len(x) + len(y), len(x))
    exact = total <= resamples or min(len(x), len(y)) < 2
    p, null = _null(x, y, resamples, seed)
    pooled = np.sort(np.concatenate([x, y]))
    highest = float(u_statistic(pooled[len(y) :], pooled[: len(y)]))  # new: the largest
    lowest = float(u_statistic(pooled[: len(x)], pooled[len(x) :]))
    min_p = min(_two_sided(null, highest, exact), _two_sided(null, lowest, exact))
    u = float(u_statistic(x, y))
    return UTest(u, p, min_p, exact, total if exact else resamples)


@dataclass(frozen=True)
class Comparison:
    """A metric before (``base``) and after (``new``): medians, change, test and verdict.

    ``verdict`` is ``regression`` / ``improvement`` (significant, and new tends to be higher
    / lower: higher is worse), ``not significant``, ``not significant (n too small)`` (even
    the most extreme arrangement of these values could not reach ``alpha``) or ``no data``.
    ``p_value`` is the raw p-value; after :func:`holm_correct`, ``p_adjusted`` is Holm's and
    the verdict is the corrected one. ``direction`` is where the ranks moved, significant
    or not."""

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
    min_p: float | None = None
    p_adjusted: float | None = None
    direction: str | None = None
    base_censored_s: float | None = None
    new_censored_s: float | None = None

    @property
    def significant(self) -> bool:
        return self.verdict in ("regression", "improvement")

    @property
    def testable(self) -> bool:
        """Whether any arrangement of these values could be significant at ``alpha``."""
        return self.min_p is not None and self.min_p < self.alpha


def _direction(u: float, n_base: int, n_new: int) -> str | None:
    middle = n_base * n_new / 2
    return "regression" if u > middle else "improvement" if u < middle else None


def _verdict(t: UTest, sizes: tuple[int, int], alpha: float, all_equal: bool) -> str:
    if min_p_value(*sizes) >= alpha:
        return TOO_FEW  # whatever the values
    if all_equal:
        return NOT_SIGNIFICANT
    if t.min_p >= alpha:
        return TOO_FEW  # these values, ties and all, could not reach alpha
    way = _direction(t.u, *sizes)
    return way if way is not None and t.p_value < alpha else NOT_SIGNIFICANT


def compare_samples(
    metric: str,
    base: list[Any],
    new: list[Any],
    *,
    alpha: float = 0.05,
    base_censored_s: float | None = None,
    new_censored_s: float | None = None,
) -> Comparison:
    """Test ``new`` against ``base`` (:func:`u_test`) at level ``alpha``, uncorrected.

    None/NaN values are missing and dropped; +inf (censored: "never") is the worst value.
    Every value equal: p = 1, not significant (no arrangement differs)."""
    b, n = numbers(base), numbers(new)
    if not b or not n:
        return Comparison(metric, b, n, None, None, None, None, alpha, NO_DATA, "-")
    bm, nm = float(np.median(b)), float(np.median(n))
    change = nm - bm if math.isfinite(bm) and math.isfinite(nm) else None
    all_equal = len(set(b) | set(n)) == 1
    if all_equal:
        t = UTest(len(b) * len(n) / 2, 1.0, 1.0, True, math.comb(len(b) + len(n), len(b)))
    else:
        t = u_test(b, n)
    verdict = _verdict(t, (len(b), len(n)), alpha, all_equal)
    test = "every value equal" if all_equal else t.method
    return Comparison(
        metric, b, n, bm, nm, change, t.p_value, alpha, verdict, test, t.min_p, None,
        _direction(t.u, len(b), len(n)), base_censored_s, new_censored_s,
    )  # fmt: skip


# --- several comparisons -----------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the i-th smallest of m is
    multiplied by m - i + 1, kept non-decreasing and capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def holm_correct(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons with Holm-adjusted p-values and the verdicts after correction.

    The family is the comparisons that could reach ``alpha`` at all (Tarone's refinement
    for discrete tests): one that no arrangement of its values could make significant —
    every value equal, or n too small — can never be rejected, so it is not counted and
    keeps its verdict (``p_adjusted`` None)."""
    family = [i for i, c in enumerate(comparisons) if c.testable and c.p_value is not None]
    adjusted = holm([comparisons[i].p_value or 0.0 for i in family])
    out = list(comparisons)
    for i, p in zip(family, adjusted, strict=True):
        c = out[i]
        verdict = c.direction if c.direction is not None and p < c.alpha else NOT_SIGNIFICANT
        out[i] = replace(c, p_adjusted=p, verdict=verdict)
    return out
