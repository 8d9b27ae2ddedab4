"""Recorded runs on disk: a run directory of experiment variants, each with repetitions.

A *run directory* (``results/<run-id>/``) holds one sub-directory per experiment variant,
each with a ``summary.json`` (``repetitions``, ``verdicts``, ``metadata`` ...; read and
validated by :mod:`harness.core.results`) and ``rep-N/`` directories with the event
history. A single variant's directory is accepted wherever a run directory is: it is a
run of one variant.

A repetition with ``"valid": false`` (and ``invalid_reasons``) is excluded from every
figure, median and comparison (:attr:`Variant.valid_repetitions`; :attr:`Variant.excluded`
lists it). Figures are read through :func:`harness.core.results.figure`: a censored one
(never seen while watched) is +inf. Older summaries have neither key: all valid, nothing
censored.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.stats import median_ci, never_text
from harness.core.errors import HarnessError
from harness.core.history import HISTORY_DIR, read_history
from harness.core.results import censored_for, figure, read_summary

__all__ = [
    "DEFAULT_HEADLINE",
    "SCHEDULING_PREFIXES",
    "Repetition",
    "Run",
    "Variant",
    "find_runs",
    "headline_of",
    "is_experiment_dir",
    "load_run",
    "load_summaries",
    "median_text",
    "named_headline",
    "variant_headline",
]


DEFAULT_HEADLINE = ("downtime_s", "recovery_s")  # runs written before ``headline`` existed
SCHEDULING_PREFIXES = ("start_latency_", "scheduling_", "task_start_gap_")


def named_headline(summary: dict[str, Any]) -> tuple[str, ...] | None:
    """The definition's ``headline`` (None in runs written before it existed)."""
    names = (summary.get("experiment_definition") or {}).get("headline")
    if isinstance(names, list | tuple) and names and all(isinstance(n, str) for n in names):
        return tuple(dict.fromkeys(names))
    return None


def headline_of(summary: dict[str, Any]) -> tuple[str, ...]:
    """The figures that matter for a summary's fault, first in its report: its definition's
    ``headline``, or :data:`DEFAULT_HEADLINE` in runs written before it existed."""
    return named_headline(summary) or DEFAULT_HEADLINE


def is_experiment_dir(path: Path | str) -> bool:
    """Whether ``path`` is one experiment's directory: its own ``summary.json`` has
    repetitions (a run directory's own ``summary.json`` is the index its report writes)."""
    own = Path(path) / "summary.json"
    return own.exists() and "repetitions" in _read_json(own)


def load_summaries(run_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(name, summary) of each experiment in a run dir, or of the one experiment dir given;
    every summary is validated (:func:`harness.core.results.read_summary`)."""
    run_dir = Path(run_dir)
    if is_experiment_dir(run_dir):
        return [(run_dir.name, read_summary(run_dir / "summary.json").model_dump())]
    return [
        (path.parent.name, read_summary(path).model_dump())
        for path in sorted(run_dir.glob("*/summary.json"))
        if "repetitions" in _read_json(path)  # not, e.g., a probe calibration's summary
    ]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HarnessError(
            f"cannot read {path}: {exc}", fix="restore the file or delete the broken run"
        ) from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path} is not a JSON object", fix="restore the file")
    return data


@dataclass
class Repetition:
    """One repetition: its figures (from ``summary.json``) and its directory."""

    variant: str
    number: int
    figures: dict[str, Any]
    dir: Path

    @property
    def valid(self) -> bool:
        """False only when the summary says so (``"valid": false``)."""
        return self.figures.get("valid") is not False

    @property
    def invalid_reasons(self) -> list[str]:
        reasons = self.figures.get("invalid_reasons")
        return [str(r) for r in reasons] if isinstance(reasons, list) else []

    @property
    def has_history(self) -> bool:
        return (self.dir / "history.parquet").exists() or (self.dir / HISTORY_DIR).is_dir()

    def history(self) -> pd.DataFrame:
        """The event history: ``history.parquet``, else the merged ``history/*.jsonl``."""
        parquet = self.dir / "history.parquet"
        if parquet.exists():
            return pd.read_parquet(parquet)
        if (self.dir / HISTORY_DIR).is_dir():
            return read_history(self.dir)
        raise HarnessError(
            f"{self.dir} has no history.parquet or history/",
            fix="the repetition's raw history was not kept; report from summary.json only",
        )


@dataclass
class Variant:
    """One experiment variant (one ``summary.json``) of a run."""

    name: str
    summary: dict[str, Any]
    dir: Path
    repetitions: list[Repetition] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.summary.get("metadata") or {}

    @property
    def verdicts(self) -> dict[str, dict[str, Any]]:
        return self.summary.get("verdicts") or {}

    @property
    def headline(self) -> tuple[str, ...]:
        """The figures that matter for this experiment's fault (:func:`headline_of`)."""
        return headline_of(self.summary)

    @property
    def names_headline(self) -> bool:
        """Whether the summary names its headline (runs written before it do not)."""
        return named_headline(self.summary) is not None

    @property
    def schedules(self) -> bool:
        """Whether a headline figure is a scheduling one (trigger → task start)."""
        return any(m.startswith(SCHEDULING_PREFIXES) for m in self.headline)

    @property
    def valid_repetitions(self) -> list[Repetition]:
        return [r for r in self.repetitions if r.valid]

    @property
    def excluded(self) -> list[Repetition]:
        """The invalid repetitions, excluded from every figure and comparison."""
        return [r for r in self.repetitions if not r.valid]

    def values(self, metric: str) -> list[float | None]:
        """``metric`` of every valid repetition: +inf where censored (never seen), None
        where not measured (:func:`harness.core.results.figure`)."""
        return [figure(r.figures, metric) for r in self.valid_repetitions]

    def censored_s(self, metric: str) -> float | None:
        """The shortest time watched among the valid repetitions where ``metric`` is
        censored (None if none is, or none recorded how long)."""
        watched = [
            censored_for(r.figures, metric)
            for r in self.valid_repetitions
            if figure(r.figures, metric) == math.inf
        ]
        known = [w for w in watched if w is not None]
        return min(known) if known else None

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in self.verdicts.values():
            counts[v.get("verdict", "unknown")] = counts.get(v.get("verdict", "unknown"), 0) + 1
        return counts


@dataclass
class Run:
    """A run directory (or a single experiment directory) and its variants."""

    dir: Path
    variants: list[Variant]

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def is_single_experiment(self) -> bool:
        return len(self.variants) == 1 and self.variants[0].dir == self.dir

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def started(self) -> dt.datetime | None:
        """When the run measured (first fault), else when its summaries were last written."""
        walls = [
            f["t_wall"]
            for v in self.variants
            for r in v.repetitions
            for f in r.figures.get("fault") or []
            if isinstance(f, dict) and isinstance(f.get("t_wall"), int | float)
        ]
        if walls:
            return dt.datetime.fromtimestamp(min(walls), dt.UTC)
        mtimes = [(v.dir / "summary.json").stat().st_mtime for v in self.variants]
        return dt.datetime.fromtimestamp(min(mtimes), dt.UTC) if mtimes else None


def load_run(path: Path | str) -> Run:
    """Load a run directory or a single experiment directory; HarnessError if it is neither."""
    path = Path(path)
    if not path.is_dir():
        raise HarnessError(
            f"{path} is not a directory",
            fix="pass a run directory such as results/<run-id> (see `ha-bench runs`)",
        )
    summaries = load_summaries(path)
    if not summaries:
        raise HarnessError(
            f"{path} holds no experiment results (no */summary.json with repetitions)",
            fix="pass results/<run-id> or results/<run-id>/<experiment> (see `ha-bench runs`)",
        )
    single = is_experiment_dir(path)
    variants = []
    for name, summary in summaries:
        vdir = path if single else path / name
        variant = Variant(name=name, summary=summary, dir=vdir)
        for i, figures in enumerate(summary.get("repetitions") or [], 1):
            number = figures.get("repetition") if isinstance(figures, dict) else None
            number = number if isinstance(number, int) else i
            variant.repetitions.append(Repetition(name, number, figures, vdir / f"rep-{number}"))
        variants.append(variant)
    return Run(dir=path, variants=variants)


def find_runs(results: Path | str) -> list[Run]:
    """Runs directly under ``results``, newest first; unreadable directories are skipped."""
    results = Path(results)
    if not results.is_dir():
        raise HarnessError(
            f"results directory {results} does not exist",
            fix="pass --results DIR where runs were written (default ./results)",
        )
    runs = []
    for child in sorted(results.iterdir()):
        if not child.is_dir():
            continue
        try:
            runs.append(load_run(child))
        except HarnessError:
            continue
    epoch = dt.datetime.fromtimestamp(0, dt.UTC)
    runs.sort(key=lambda r: (r.started() or epoch, r.name), reverse=True)
    return runs


def median_text(variant: Variant, metric: str, digits: int = 3) -> str:
    """The median of ``metric`` over the valid repetitions: ``0.863s``, ``never (>= X s)``
    when censored, or ``-``."""
    med = median_ci(variant.values(metric)).median
    if med is None:
        return "-"
    return (
        never_text(variant.censored_s(metric), digits) if math.isinf(med) else f"{med:.{digits}f}s"
    )


def _headline_text(variant: Variant, metric: str) -> str:
    """``downtime median 0.863s``, ``failed_tasks median 0``: one headline figure's median
    over the valid repetitions (seconds for ``*_s``, else a count), then how many of them
    never saw it (``never recovered`` for recovery) or did not measure it."""
    values = variant.values(metric)
    med = median_ci(values).median
    if metric.endswith("_s"):
        median = median_text(variant, metric)
    elif med is None:
        median = "-"
    else:
        median = never_text(variant.censored_s(metric)) if math.isinf(med) else f"{med:g}"
    never = "never recovered" if metric == "recovery_s" else "never seen"
    notes = [
        f"{k} {what}"
        for k, what in (
            (sum(x == math.inf for x in values), never),
            (sum(x is None for x in values), "not measured"),
        )
        if k
    ]
    return f"{metric.removesuffix('_s')} median {median}" + (
        f" ({', '.join(notes)})" if notes else ""
    )


def variant_headline(variant: Variant, width: int = 0) -> str:
    """``ha-bench runs``' line of a variant: valid repetitions (and how many were excluded
    as invalid), the median of each of its headline figures (:attr:`Variant.headline`:
    downtime and recovery for runs written before experiments named theirs), verdicts."""
    excluded = f" ({len(variant.excluded)} invalid, excluded)" if variant.excluded else ""
    counts = variant.verdict_counts()
    figures = "  ".join(_headline_text(variant, m) for m in variant.headline)
    return (
        f"{variant.name.ljust(width)}  n={len(variant.valid_repetitions)}{excluded}  {figures}"
        f"  verdicts: {counts.get('confirmed', 0)} confirmed, "
        f"{counts.get('refuted', 0)} refuted, {counts.get('unknown', 0)} unknown"
    )
