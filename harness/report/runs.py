"""Recorded runs on disk: a run directory of experiment variants, each with repetitions.

A *run directory* (``results/<run-id>/``) holds one sub-directory per experiment variant,
each with a ``summary.json`` (``repetitions``, ``verdicts``, ``metadata`` ...; read and
validated by :mod:`harness.core.results`) and ``rep-N/`` directories with the event
history. A single variant's directory is accepted wherever a run directory is: it is a
run of one variant.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.core.errors import HarnessError
from harness.core.history import HISTORY_DIR, read_history
from harness.core.results import read_summary

__all__ = [
    "Repetition",
    "Run",
    "Variant",
    "find_runs",
    "is_experiment_dir",
    "load_run",
    "load_summaries",
]


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

    def values(self, metric: str) -> list[Any]:
        """``metric`` of every repetition (None where it was not measured)."""
        return [r.figures.get(metric) for r in self.repetitions]

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


def median(values: list[Any]) -> float | None:
    """Median of the numeric values (None if there are none)."""
    nums = [float(v) for v in values if isinstance(v, int | float)]
    return statistics.median(nums) if nums else None
