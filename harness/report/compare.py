"""Compare two recorded runs: per experiment variant, did downtime or recovery change?

Each metric is tested over repetitions with a two-sided Mann-Whitney U test
(:func:`harness.analysis.stats.compare_samples`). Runs whose setups differ in what matters —
Airflow version, platform, topology, Airflow config overrides, experiment definition —
are not compared unless forced: a difference there would be the cause, not a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis.stats import Comparison, compare_samples
from harness.core.errors import HarnessError
from harness.report.runs import Run, Variant, load_run

__all__ = ["METRICS", "RunComparison", "compare_runs", "render_comparison", "setup_differences"]

METRICS = ("downtime_s", "recovery_s")
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
    out += _diff(
        base.get("experiment_definition"), new.get("experiment_definition"), "experiment_definition"
    )
    return out


@dataclass
class VariantComparison:
    name: str
    comparisons: list[Comparison]
    setup_differences: list[str]


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
    def regressions(self) -> list[tuple[str, Comparison]]:
        return [
            (v.name, c) for v in self.variants for c in v.comparisons if c.verdict == "regression"
        ]


def _pairs(base: Run, new: Run) -> tuple[list[tuple[Variant, Variant]], list[str], list[str]]:
    if len(base.variants) == 1 and len(new.variants) == 1:
        return [(base.variants[0], new.variants[0])], [], []  # two experiment dirs
    b = {v.name: v for v in base.variants}
    n = {v.name: v for v in new.variants}
    pairs = [(b[k], n[k]) for k in b if k in n]
    return pairs, [k for k in b if k not in n], [k for k in n if k not in b]


def compare_runs(
    base_dir: Path | str,
    new_dir: Path | str,
    *,
    force: bool = False,
    alpha: float = 0.05,
    metrics: tuple[str, ...] = METRICS,
) -> RunComparison:
    """Compare every variant present in both runs; HarnessError on differing setups
    (unless ``force``) or when the runs share no variant."""
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
    mismatched = []
    for b, n in pairs:
        diffs = setup_differences(b.summary, n.summary)
        if diffs:
            mismatched.append(
                f"{b.name}: "
                + "; ".join(diffs[:3])
                + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")
            )
        comps = [compare_samples(m, b.values(m), n.values(m), alpha=alpha) for m in metrics]
        result.variants.append(VariantComparison(b.name, comps, diffs))
    if mismatched and not force:
        raise HarnessError(
            "the runs' setups differ, so a change would not be a finding: "
            + " | ".join(mismatched),
            fix="compare runs of the same setup, or pass --force to compare anyway",
        )
    return result


def _s(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return "never" if x == float("inf") else f"{x:.{digits}f}"


def render_comparison(rc: RunComparison) -> str:
    """A plain-text table of the comparison and a one-line conclusion."""
    test = (
        rc.variants[0].comparisons[0].test
        if rc.variants and rc.variants[0].comparisons
        else f"Mann-Whitney U, two-sided, alpha {rc.alpha:g}"
    )
    lines = [f"base: {rc.base.dir}", f"new:  {rc.new.dir}", f"test: {test} (per variant)", ""]
    if rc.forced and any(v.setup_differences for v in rc.variants):
        lines.append("WARNING: --force: comparing runs whose setups differ:")
        lines += [f"  {v.name}: {d}" for v in rc.variants for d in v.setup_differences]
        lines.append("")
    header = ("variant", "metric", "base median (n)", "new median (n)", "change", "p", "verdict")
    rows = []
    for v in rc.variants:
        for c in v.comparisons:
            change = "-" if c.change is None else f"{c.change:+.3f} s"
            if c.change is not None and c.base_median:
                change += f" ({c.change / c.base_median:+.0%})"
            rows.append(
                (
                    v.name,
                    c.metric,
                    f"{_s(c.base_median)} ({len(c.base)})",
                    f"{_s(c.new_median)} ({len(c.new)})",
                    change,
                    "-" if c.p_value is None else f"{c.p_value:.3g}",
                    c.verdict,
                )
            )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        lines.append("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())
    if rc.only_base:
        lines.append(f"only in base (not compared): {', '.join(rc.only_base)}")
    if rc.only_new:
        lines.append(f"only in new (not compared): {', '.join(rc.only_new)}")
    lines.append("")
    regressions = rc.regressions
    if regressions:
        lines.append(
            f"result: {len(regressions)} significant regression(s): "
            + ", ".join(f"{n} {c.metric}" for n, c in regressions)
        )
    else:
        small = any(c.verdict.endswith("(n too small)") for v in rc.variants for c in v.comparisons)
        lines.append(
            "result: no significant regression"
            + (
                " (some comparisons had too few repetitions to ever be significant)"
                if small
                else ""
            )
        )
    return "\n".join(lines)
