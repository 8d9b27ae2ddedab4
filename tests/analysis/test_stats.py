"""harness.analysis.stats against hand-computed values: order-statistic intervals of the
median, exact permutation p-values of U with ties and "never" (+inf), and Holm."""

from __future__ import annotations

import math
from itertools import combinations

import pytest
from scipy.stats import mannwhitneyu

from harness.analysis.stats import (
    NOT_SIGNIFICANT,
    TOO_FEW,
    compare_samples,
    holm,
    holm_correct,
    median_ci,
    never_text,
    no_interval_text,
    order_statistic_rank,
    u_statistic,
    u_test,
)

INF = math.inf


@pytest.mark.parametrize(
    ("n", "k", "coverage"),
    [
        (6, 1, 1 - 2 / 64),  # P(1 <= B <= 5) for B ~ Bin(6, 1/2); k = 2: 1 - 2 * 7/64 < 0.95
        (10, 2, 1 - 2 * (1 + 10) / 1024),  # k = 3 covers 1 - 2 * 56/1024 = 0.89 only
        (20, 6, 1 - 2 * (1 + 20 + 190 + 1140 + 4845 + 15504) / 2**20),
    ],
)
def test_order_statistic_rank_by_hand(n, k, coverage):
    assert order_statistic_rank(n) == (k, pytest.approx(coverage))


def test_no_95_interval_below_six_values():
    assert order_statistic_rank(5) is None  # [x_(1), x_(5)] covers 1 - 2/32 = 0.9375 only
    assert no_interval_text() == "no 95 % interval: n < 6"
    five = median_ci([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (five.median, five.low, five.high) == (3.0, None, None)
    assert five.text() == "3.00 s (n=5; no 95 % interval: n < 6)"


def test_order_statistic_intervals_are_those_order_statistics():
    six = median_ci([6.0, 1.0, 5.0, 2.0, 4.0, 3.0])  # [x_(1), x_(6)]
    assert (six.median, six.low, six.high) == (3.5, 1.0, 6.0)
    assert six.coverage == pytest.approx(62 / 64)
    assert six.text() == "3.50 s [1.00, 6.00] (n=6)"
    ten = median_ci([10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, None])  # [x_(2), x_(9)]
    assert (ten.n, ten.median, ten.low, ten.high) == (10, 5.5, 2.0, 9.0)
    assert "[x_(2), x_(9)]" in ten.method and "97.9 %" in ten.method
    assert median_ci([0.0] * 6).text() == "0.00 s [0.00, 0.00] (n=6)"


def test_a_censored_median_or_bound_prints_never():
    watched = 118.509
    assert never_text(watched) == "never (>= 118.50 s)"  # rounded down: never overstated
    assert never_text() == "never"
    mostly = median_ci([20.0, 21.0, 22.0, INF, INF, INF], censored_s=watched)
    assert mostly.median == INF and mostly.low == 20.0 and mostly.high == INF
    assert mostly.text() == "never (>= 118.50 s) [20.00, never (>= 118.50 s)] (n=6)"
    upper = median_ci([1.0, 2.0, 3.0, 4.0, 5.0, INF], censored_s=60.0)
    assert upper.text() == "3.50 s [1.00, never (>= 60.00 s)] (n=6)"
    few = median_ci([1.0, INF, INF])
    assert few.text() == "never (n=3; no 95 % interval: n < 6)"


def _enumerated_p(base: list[float], new: list[float]) -> float:
    """The two-sided permutation p-value by enumerating every split of the pooled values."""
    pooled = base + new
    observed = u_statistic(new, base)
    us = []
    for idx in combinations(range(len(pooled)), len(new)):
        chosen = [pooled[i] for i in idx]
        rest = [pooled[i] for i in range(len(pooled)) if i not in idx]
        us.append(u_statistic(chosen, rest))
    greater = sum(u >= observed for u in us) / len(us)
    less = sum(u <= observed for u in us) / len(us)
    return min(1.0, 2 * min(greater, less))


def test_ties_heavy_samples_get_the_exact_p_value():
    base, new = [0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0, 1.0]  # e.g. failed tasks
    # by hand: with k ones among new's 5, U = k^2 + (k(5-k) + (5-k)k)/2 = 5k; k has the
    # hypergeometric weights C(5,k)^2 / 252, and k = 4 is as far out as k in {0, 1, 5}:
    # p = (1 + 25 + 25 + 1) / 252
    t = u_test(base, new)
    assert t.exact and t.arrangements == 252 and t.method == "exact, 252 arrangements"
    assert t.u == 20.0
    assert t.p_value == pytest.approx(52 / 252)
    assert t.p_value == pytest.approx(_enumerated_p(base, new))
    assert t.min_p == pytest.approx(2 / 252)  # new = all five ones
    # what mannwhitneyu's tie-corrected normal approximation says instead
    assert mannwhitneyu(new, base).pvalue == pytest.approx(0.093, abs=0.001)


def test_all_zero_against_all_one_is_the_single_most_extreme_split():
    c = compare_samples("failed_tasks", [0] * 6, [1] * 6)
    assert c.p_value == pytest.approx(2 / 924) and c.verdict == "regression"
    assert c.p_value == pytest.approx(_enumerated_p([0.0] * 6, [1.0] * 6))


def test_never_ranks_above_every_number_and_ties_with_never():
    c = compare_samples("recovery_s", [1, 2, 3, 4, 5], [INF] * 5, new_censored_s=60.0)
    assert c.p_value == pytest.approx(2 / 252) and c.verdict == "regression"
    assert c.new_median == INF and c.change is None
    mixed_base, mixed_new = [1.0, 2.0, INF, 3.0], [INF, INF, 2.0, 4.0]
    t = u_test(mixed_base, mixed_new)
    assert t.u == 2 * (3 + 0.5) + (1 + 0.5) + 3  # an inf ties the base's inf: 1/2
    assert t.p_value == pytest.approx(_enumerated_p(mixed_base, mixed_new))


def test_many_arrangements_are_sampled_with_a_seed():
    base = [float(i) for i in range(10)]
    new = [i + 3.5 for i in range(10)]
    t = u_test(base, new)  # C(20, 10) = 184756 arrangements > 20000
    assert not t.exact and t.arrangements == 20_000
    assert t.method == "random, 20000 arrangements"
    assert t == u_test(base, new)  # seeded: reproducible
    assert t.p_value == pytest.approx(mannwhitneyu(new, base).pvalue, abs=0.01)


def test_n_too_small_when_no_arrangement_could_reach_alpha():
    assert compare_samples("downtime_s", [1.0, 1.1, 0.9], [3.0, 3.1, 2.9]).verdict == TOO_FEW
    # 5 vs 5 could reach 2/252, but with nine 0.0 downtimes and one 0.4 s no split can
    ties = compare_samples("downtime_s", [0.0] * 5, [0.0, 0.0, 0.0, 0.0, 0.4])
    assert ties.verdict == TOO_FEW and ties.min_p == 1.0 and not ties.testable
    equal = compare_samples("downtime_s", [0.0] * 5, [0.0] * 5)
    assert equal.verdict == NOT_SIGNIFICANT and equal.p_value == 1.0
    assert equal.test == "every value equal" and not equal.testable


def test_holm_on_known_p_values():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 -> max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([]) == []


def test_holm_correct_counts_only_comparisons_that_could_be_significant():
    far = compare_samples("a", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10])  # p = 2/252
    near = compare_samples("b", [1, 2, 3, 4, 7], [5, 6, 8, 9, 10])  # p = 8/252
    also = compare_samples("c", [1, 2, 3, 4, 7], [5, 6, 8, 9, 10])
    small = compare_samples("d", [1], [2])  # n too small
    equal = compare_samples("e", [0] * 5, [0] * 5)
    assert [c.verdict for c in (far, near, also)] == ["regression"] * 3  # uncorrected
    out = holm_correct([far, near, small, also, equal])
    assert [c.p_adjusted for c in out] == pytest.approx(
        [3 * 2 / 252, 2 * 8 / 252, None, 2 * 8 / 252, None]
    )
    assert [c.verdict for c in out] == [
        "regression",
        NOT_SIGNIFICANT,
        TOO_FEW,
        NOT_SIGNIFICANT,
        NOT_SIGNIFICANT,
    ]
    assert out[1].p_value == near.p_value  # the raw p-value is kept
