"""Compare two recorded runs: per experiment variant, did a figure change?

Compared, when both runs have them: downtime and recovery, the scheduler figures, failed
tasks, and the execution checker's lost runs and duplicated executions (:data:`METRICS`);
for all of them higher is worse. Each metric is tested over the valid repetitions with a
permutation test of the Mann-Whitney U statistic (:func:`harness.analysis.stats.compare_samples`,
exact when there are few arrangements), and all comparisons of one run comparison are
corrected together (Holm, :func:`harness.analysis.stats.holm_correct`): a regression is
significant only after correction. Invalid repetitions are excluded; censored figures
("never") count as +inf, as in the report.

Runs whose setups differ in what matters — Airflow version, platform, topology, Airflow
config overrides, the Airflow environment's packages, experiment definition — are not
compared unless forced: a difference there would be the cause, not a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis.stats import (
    TEST,
    TOO_FEW,
    Comparison,
    compare_samples,
    holm_correct,
    never_text,
    numbers,
)
from harness.core.errors import HarnessError
from harness.report.runs import Run, Variant, load_run

__all__ = [
    "EXECUTION_COUNTS",
    "METRICS",
    "RunComparison",
    "compare_runs",
    "metric_values",
    "render_comparison",
    "setup_differences",
]

# the execution checker's counts (summed from ``rep["executions"]``) compared as metrics
EXECUTION_COUNTS = {
    "lost_runs": ("lost_runs",),
    "duplicated_executions": ("duplicate_starts", "duplicate_ends"),
}
METRICS = (
    "downtime_s",
    "recovery_s",
    "scheduling_resumed_s",
    "task_start_gap_after_s",
    "start_latency_after_p95_s",
    "start_latency_after_max_s",
    "start_latency_caught_max_s",
    "failed_tasks",
    *EXECUTION_COUNTS,
)
SETUP_METADATA = ("airflow_version", "platform", "topology", "airflow_config_overrides")


def _diff(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [f"{path} {a!r} vs {b!r}"]


def setup_differences(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two experiment summaries' setups (empty: comparable)."""
    bm, nm = base.get("metadata") or {}, new.get("metadata") or {}
    out: list[str] = []
    for key in SETUP_METADATA:
        out += _diff(bm.get(key), nm.get(key), key)
    out += _packages_difference(bm, nm)
    out += _diff(
        base.get("experiment_definition"), new.get("experiment_definition"), "experiment_definition"
    )
    return out


def _packages_difference(bm: dict[str, Any], nm: dict[str, Any]) -> list[str]:
    """The Airflow environments' package digests, when both runs recorded one."""
    key = "packages_sha256"
    a, b = ((m.get("airflow_env") or {}).get(key) for m in (bm, nm))
    if a is None or b is None:
        return []  # an older run: not recorded, not compared
    return _diff(a, b, f"airflow_env.{key}")


def _execution_count(figures: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    details = figures.get("executions")
    if not isinstance(details, dict):
        return None
    counts = [details.get(k) for k in keys]
    counts = [len(c) if isinstance(c, list) else c for c in counts]
    if any(isinstance(c, bool) or not isinstance(c, int) for c in counts):
        return None
    return float(sum(counts))


def metric_values(variant: Variant, metric: str) -> list[float | None]:
    """``metric`` over the variant's valid repetitions (+inf censored, None missing); an
    execution count (:data:`EXECUTION_COUNTS`) from each repetition's ``executions``."""
    keys = EXECUTION_COUNTS.get(metric)
    if keys is None:
        return variant.values(metric)
    return [_execution_count(r.figures, keys) for r in variant.valid_repetitions]


@dataclass
class VariantComparison:
    """One variant's comparisons; ``one_sided``: metrics only one of the runs has (not
    compared); ``*_excluded``: invalid repetitions left out."""

    name: str
    comparisons: list[Comparison]
    setup_differences: list[str]
    base_excluded: int = 0
    new_excluded: int = 0
    one_sided: list[str] = field(default_factory=list)


@dataclass
class RunComparison:
    base: Run
    new: Run
    alpha: float
    forced: bool
    variants: list[VariantComparison] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)

    @property
    def comparisons(self) -> list[tuple[str, Comparison]]:
        return [(v.name, c) for v in self.variants for c in v.comparisons]

    @property
    def regressions(self) -> list[tuple[str, Comparison]]:
        """Regressions significant after the Holm correction."""
        return [(n, c) for n, c in self.comparisons if c.verdict == "regression"]

    @property
    def family(self) -> int:
        """How many comparisons the Holm correction counted."""
        return sum(1 for _, c in self.comparisons if c.p_adjusted is not None)

    @property
    def significant_before_correction(self) -> list[tuple[str, Comparison]]:
        """Raw p < alpha, but not significant after the correction."""
        return [
            (n, c)
            for n, c in self.comparisons
            if c.p_value is not None and c.p_value < c.alpha and not c.significant
        ]


def _pairs(base: Run, new: Run) -> tuple[list[tuple[Variant, Variant]], list[str], list[str]]:
    if len(base.variants) == 1 and len(new.variants) == 1:
        return [(base.variants[0], new.variants[0])], [], []  # two experiment dirs
    b = {v.name: v for v in base.variants}
    n = {v.name: v for v in new.variants}
    pairs = [(b[k], n[k]) for k in b if k in n]
    return pairs, [k for k in b if k not in n], [k for k in n if k not in b]


def _compare_variant(
    b: Variant, n: Variant, metrics: tuple[str, ...], alpha: float
) -> VariantComparison:
    """The metrics both variants have, compared (uncorrected)."""
    comparisons, one_sided = [], []
    for m in metrics:
        bv, nv = metric_values(b, m), metric_values(n, m)
        if numbers(bv) and numbers(nv):
            censored = {"base_censored_s": b.censored_s(m), "new_censored_s": n.censored_s(m)}
            comparisons.append(compare_samples(m, bv, nv, alpha=alpha, **censored))
        elif numbers(bv) or numbers(nv):
            one_sided.append(m)
    diffs = setup_differences(b.summary, n.summary)
    return VariantComparison(
        b.name, comparisons, diffs, len(b.excluded), len(n.excluded), one_sided
    )


def _correct(result: RunComparison) -> None:
    """Holm over every comparison of the run comparison, back into its variants."""
    corrected = iter(holm_correct([c for _, c in result.comparisons]))
    for v in result.variants:
        v.comparisons = [next(corrected) for _ in v.comparisons]


def _mismatch(v: VariantComparison) -> str:
    diffs = v.setup_differences
    more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
    return f"{v.name}: " + "; ".join(diffs[:3]) + more


def compare_runs(
    base_dir: Path | str,
    new_dir: Path | str,
    *,
    force: bool = False,
    alpha: float = 0.05,
    metrics: tuple[str, ...] = METRICS,
) -> RunComparison:
    """Compare every variant present in both runs, Holm-corrected over all comparisons;
    HarnessError on differing setups (unless ``force``) or when the runs share no
    variant."""
    if not 0 < alpha < 1:
        raise HarnessError(f"alpha {alpha} is not between 0 and 1", fix="e.g. --alpha 0.05")
    base, new = load_run(base_dir), load_run(new_dir)
    pairs, only_base, only_new = _pairs(base, new)
    if not pairs:
        raise HarnessError(
            f"{base.dir} and {new.dir} have no experiment variant in common",
            fix="compare runs of the same experiments (see `ha-bench runs`)",
        )
    result = RunComparison(base, new, alpha, force, only_base=only_base, only_new=only_new)
    result.variants = [_compare_variant(b, n, metrics, alpha) for b, n in pairs]
    mismatched = [_mismatch(v) for v in result.variants if v.setup_differences]
    if mismatched and not force:
        raise HarnessError(
            "the runs' setups differ, so a change would not be a finding: "
            + " | ".join(mismatched),
            fix="compare runs of the same setup, or pass --force to compare anyway",
        )
    _correct(result)
    return result


# --- text --------------------------------------------------------------------------------

HEADER = (
    "variant",
    "metric",
    "base median (n)",
    "new median (n)",
    "change",
    "p",
    "p (Holm)",
    "test",
    "verdict",
)


def _s(x: float | None, censored_s: float | None = None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return never_text(censored_s, digits) if math.isinf(x) else f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def _change(c: Comparison) -> str:
    if c.change is None:
        return "-"
    unit = " s" if c.metric.endswith("_s") else ""
    text = f"{c.change:+.3f}{unit}"
    return text + (f" ({c.change / c.base_median:+.0%})" if c.base_median else "")


def _row(name: str, c: Comparison) -> tuple[str, ...]:
    return (
        name,
        c.metric,
        f"{_s(c.base_median, c.base_censored_s)} ({len(c.base)})",
        f"{_s(c.new_median, c.new_censored_s)} ({len(c.new)})",
        _change(c),
        _p(c.p_value),
        _p(c.p_adjusted),
        c.test,
        c.verdict,
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    return [
        "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()
        for r in [HEADER, *rows]
    ]


def _preamble(rc: RunComparison) -> list[str]:
    uncounted = len(rc.comparisons) - rc.family
    lines = [
        f"base: {rc.base.dir}",
        f"new:  {rc.new.dir}",
        f"test: {TEST}; per variant and metric, alpha {rc.alpha:g}",
        f"correction: Holm over the {rc.family} comparison(s) that could reach alpha at all; "
        f"{uncounted} that could not (every value equal, or n too small) are not counted. "
        "A change is significant only after correction.",
    ]
    excluded = [
        f"{v.name}: base {v.base_excluded}, new {v.new_excluded}"
        for v in rc.variants
        if v.base_excluded or v.new_excluded
    ]
    if excluded:
        lines.append("excluded (invalid repetitions): " + "; ".join(excluded))
    if rc.forced and any(v.setup_differences for v in rc.variants):
        lines += ["", "WARNING: --force: comparing runs whose setups differ:"]
        lines += [f"  {v.name}: {d}" for v in rc.variants for d in v.setup_differences]
    return [*lines, ""]


def _not_compared(rc: RunComparison) -> list[str]:
    lines = [
        f"not compared (only one run has it): {v.name}: {', '.join(v.one_sided)}"
        for v in rc.variants
        if v.one_sided
    ]
    if rc.only_base:
        lines.append(f"only in base (not compared): {', '.join(rc.only_base)}")
    if rc.only_new:
        lines.append(f"only in new (not compared): {', '.join(rc.only_new)}")
    return lines


def _conclusion(rc: RunComparison) -> list[str]:
    lines = [
        f"significant before correction only: {n} {c.metric} "
        f"(p {_p(c.p_value)} < {c.alpha:g}, Holm p {_p(c.p_adjusted)}): not significant"
        for n, c in rc.significant_before_correction
    ]
    if rc.regressions:
        return [
            *lines,
            f"result: {len(rc.regressions)} significant regression(s): "
            + ", ".join(f"{n} {c.metric}" for n, c in rc.regressions),
        ]
    small = any(c.verdict == TOO_FEW for _, c in rc.comparisons)
    note = " (some comparisons had too few repetitions to ever be significant)" if small else ""
    return [*lines, f"result: no significant regression{note}"]


def render_comparison(rc: RunComparison) -> str:
    """A plain-text table of the comparison and a one-line conclusion."""
    rows = [_row(name, c) for name, c in rc.comparisons]
    return "\n".join([*_preamble(rc), *_table(rows), *_not_compared(rc), "", *_conclusion(rc)])
