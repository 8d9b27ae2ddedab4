"""``ha-bench check DIR``: the checkers re-run offline on recorded repetitions.

``DIR`` is a repetition (``rep-N/``: ``history.parquet`` or ``history/*.jsonl``, and
``ledger.jsonl``), an experiment directory (each ``rep-*``) or a run directory (each
experiment's repetitions). The experiment's ``summary.json`` gives ``expect_lost`` /
``expect_duplicates`` and ``stuck_after_s`` (its ``experiment_definition``); without one
both are False and the stuck bound is 120 s.
:func:`check_path` runs :func:`~harness.check.checkers.check_repetition` on each;
:func:`render` gives the lines to print, :func:`exit_code` the exit status.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.check.checkers import check_repetition, finding_line
from harness.check.executions import CheckResult
from harness.core.errors import HarnessError
from harness.core.history import HISTORY_DIR, read_history
from harness.core.ledger import parse_ledger

__all__ = ["RepetitionCheck", "check_path", "exit_code", "find_repetitions", "render"]

REP = re.compile(r"rep-(\d+)$")
LEDGER = "ledger.jsonl"
PARQUET = "history.parquet"


@dataclass
class RepetitionCheck:
    """One repetition's verdict; ``missing`` lists absent evidence (then no ``result``)."""

    path: Path
    result: CheckResult | None = None
    missing: list[str] = field(default_factory=list)
    expectations: dict[str, bool] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "MISSING EVIDENCE"
        return {True: "valid", False: "INVALID", None: "unknown"}[self.result.valid]


def _is_repetition(path: Path) -> bool:
    return any((path / name).exists() for name in (PARQUET, HISTORY_DIR, LEDGER))


def _rep_dirs(experiment: Path) -> list[Path]:
    reps = [p for p in experiment.iterdir() if p.is_dir() and REP.match(p.name)]
    return sorted(reps, key=lambda p: int(REP.match(p.name).group(1)))  # type: ignore[union-attr]


def find_repetitions(path: Path | str) -> list[Path]:
    """The repetition directories ``path`` holds: itself, its ``rep-*``, or those of each
    experiment under it; HarnessError if it is none of these."""
    path = Path(path)
    if not path.is_dir():
        raise HarnessError(f"{path} is not a directory",
                           fix="pass a run, experiment or rep-N directory")  # fmt: skip
    if REP.match(path.name) or _is_repetition(path):
        return [path]
    reps = _rep_dirs(path)
    if reps:
        return reps
    nested = [r for child in sorted(path.iterdir()) if child.is_dir() for r in _rep_dirs(child)]
    if nested:
        return nested
    raise HarnessError(
        f"{path} holds no recorded repetition (no rep-N/ with a history or ledger)",
        fix="pass results/<run-id>, results/<run-id>/<experiment> or its rep-N directory",
    )


DEFAULT_STUCK_AFTER_S = 120.0


def _definition(rep: Path) -> dict[str, Any]:
    summary = rep.parent / "summary.json"
    try:
        return json.loads(summary.read_text()).get("experiment_definition") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def _expectations(definition: dict[str, Any]) -> dict[str, bool]:
    return {key: bool(definition.get(key, False))
            for key in ("expect_lost", "expect_duplicates")}  # fmt: skip


def _stuck_after(definition: dict[str, Any], given: float | None) -> float:
    """``given``, else the experiment's own ``stuck_after_s``, else 120 s."""
    if given is not None:
        return given
    value = definition.get("stuck_after_s")
    return float(value) if isinstance(value, int | float) else DEFAULT_STUCK_AFTER_S


def load_history(rep: Path) -> pd.DataFrame | None:
    """``history.parquet``, else the merged ``history/*.jsonl``; None if neither exists."""
    if (rep / PARQUET).exists():
        return pd.read_parquet(rep / PARQUET)
    if (rep / HISTORY_DIR).is_dir() and any((rep / HISTORY_DIR).glob("*.jsonl")):
        return read_history(rep)
    return None


def load_ledger(rep: Path) -> list[dict[str, Any]] | None:
    path = rep / LEDGER
    return parse_ledger(path.read_bytes(), source=str(path)) if path.exists() else None


def check_repetition_dir(rep: Path, *, stuck_after_s: float | None = None) -> RepetitionCheck:
    """The checkers on one recorded repetition (expectations and, unless given, the stuck
    bound from its experiment)."""
    definition = _definition(rep)  # the summary is read once: it holds every repetition
    expectations = _expectations(definition)
    history, ledger = load_history(rep), load_ledger(rep)
    missing = ([] if history is not None else [f"no {PARQUET} or {HISTORY_DIR}/*.jsonl"]) + (
        [] if ledger is not None else [f"no {LEDGER}"]
    )
    if missing:
        return RepetitionCheck(rep, None, missing, expectations)
    assert history is not None and ledger is not None
    bound = _stuck_after(definition, stuck_after_s)
    result = check_repetition(history, ledger, stuck_after_s=bound, **expectations)
    return RepetitionCheck(rep, result, [], expectations)


def check_path(path: Path | str, *, stuck_after_s: float | None = None) -> list[RepetitionCheck]:
    """:func:`check_repetition_dir` on every repetition under ``path``."""
    return [check_repetition_dir(rep, stuck_after_s=stuck_after_s)
            for rep in find_repetitions(path)]  # fmt: skip


def render(checks: list[RepetitionCheck]) -> list[str]:
    """Per repetition its verdict, then each finding (or why it is unknown) on one line."""
    lines = []
    for c in checks:
        expected = [k for k, v in c.expectations.items() if v]
        note = f" ({', '.join(expected)})" if expected else ""
        if c.result is None:
            lines.append(f"{c.path}: {c.verdict}: {'; '.join(c.missing)}")
            continue
        d = c.result.details
        findings = d.get("findings", [])
        lines.append(
            f"{c.path}: {c.verdict}{note}: {len(findings)} finding(s); "
            f"{d.get('ledger_executions', 0)} executions of {d.get('task_instances', 0)} task "
            f"instances, {d.get('acknowledged', 0)} acknowledged runs"
        )
        lines += [f"  {finding_line(f)}" for f in findings]
        if c.result.valid is None:
            lines += [f"  unknown: {p}" for p in c.result.problems]
    return lines


def exit_code(checks: list[RepetitionCheck]) -> int:
    """1 if any repetition is invalid; else 3 if any lacks evidence or is unknown; else 0."""
    if any(c.result is not None and c.result.valid is False for c in checks):
        return 1
    if any(c.result is None or c.result.valid is None for c in checks):
        return 3
    return 0
