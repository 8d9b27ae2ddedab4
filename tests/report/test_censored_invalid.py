"""Censored figures ("never") and invalid repetitions in the report, ``ha-bench runs`` and
``ha-bench compare``, and compare's wider set of figures and setup checks.

The runs here are synthesized: the recorded smoke run's summary as a template, with the
repetitions' figures written by the tests (nothing in them was measured)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from reportdata import SMOKE_RUN, write_summary

from harness.cli import main
from harness.core.errors import HarnessError
from harness.report.compare import compare_runs, metric_values, setup_differences
from harness.report.report import estimate, write_run_report
from harness.report.runs import load_run

NAME = "api-server-kill-a1-s1-w1"
TEMPLATE = json.loads((SMOKE_RUN / NAME / "summary.json").read_text())
WATCHED = (120.25, 118.5, 119.0)  # seconds watched in the censored repetitions
INVALID = {"valid": False, "invalid_reasons": ["prober died"], "downtime_s": 999.0}


def synthesized_repetition(number: int, **figures: Any) -> dict[str, Any]:
    rep = copy.deepcopy(TEMPLATE["repetitions"][0])
    rep.update({"repetition": number, "seed": number, "downtime_s": 16.0 + number / 10})
    rep.update(figures)
    return rep


def synthesized_executions(lost_runs: int = 0, duplicates: int = 0) -> dict[str, Any]:
    executions = copy.deepcopy(TEMPLATE["repetitions"][0]["executions"])
    executions.update(lost_runs=lost_runs, duplicate_starts=duplicates, duplicate_ends=0)
    return executions


def synthesized_censored_repetitions() -> list[dict[str, Any]]:
    """Reps 1-3 recover after 20-22 s, reps 4-6 never do while watched; rep 7 is invalid."""
    reps = [synthesized_repetition(i, recovery_s=19.0 + i) for i in (1, 2, 3)]
    reps += [
        synthesized_repetition(i, recovery_s=None, censored={"recovery_s": w})
        for i, w in zip((4, 5, 6), WATCHED, strict=True)
    ]
    return [*reps, synthesized_repetition(7, recovery_s=5.0, **INVALID)]


def synthesized_run(root: Path, reps: list[dict[str, Any]], **metadata: Any) -> Path:
    summary = copy.deepcopy(TEMPLATE)
    summary.update(schema_version=2, repetitions=reps)
    summary["metadata"].update(metadata)
    write_summary(root / NAME, summary)
    return root


@pytest.fixture
def synthesized_censored_run(tmp_path: Path) -> Path:
    return synthesized_run(tmp_path / "results" / "censored", synthesized_censored_repetitions())


def _rows(section: str, first: str) -> list[list[str]]:
    """The cells of the Markdown table rows in ``section`` whose first cell is ``first``."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith(f"| {first} |")
    ]


def test_report_prints_never_and_excludes_the_invalid_repetition(synthesized_censored_run):
    md = write_run_report(synthesized_censored_run).read_text()
    overview = md.split("## Overview")[1].split("## Setup")[0]
    downtime, recovery = _rows(overview, NAME)  # no headline named: downtime and recovery
    assert downtime[1] == "6 (1 invalid, excluded)"
    assert downtime[2:4] == ["`downtime_s`", "16.35 s [16.10, 16.60] (n=6)"]  # not rep 7's
    assert recovery[2:4] == [
        "`recovery_s`",
        "never (>= 118.50 s) [20.00, never (>= 118.50 s)] (n=6)",
    ]
    assert "999" not in overview and "1 invalid repetition(s) are excluded" in overview
    repetitions = md.split(f"#### Repetitions: {NAME}")[1]
    (fourth,) = _rows(repetitions, "4 (seed 4)")
    assert fourth[1] == "valid" and fourth[4] == "never (>= 120.25 s)"  # recovery_s
    (seventh,) = _rows(repetitions, "7 (seed 7)")
    assert seventh[1] == "**invalid, excluded from every figure and median** (prober died)"
    index = json.loads((synthesized_censored_run / "summary.json").read_text())["experiments"]
    assert index[NAME]["excluded_repetitions"] == 1 and len(index[NAME]["downtime_s"]) == 6


def test_runs_prints_never_and_the_excluded_count(synthesized_censored_run, capsys):
    assert main(["runs", "--results", str(synthesized_censored_run.parent)]) == 0
    out = capsys.readouterr().out
    assert (
        f"{NAME}  n=6 (1 invalid, excluded)  downtime median 16.350s  "
        "recovery median never (>= 118.500 s) (3 never recovered)  verdicts:"
    ) in out


def test_report_and_compare_agree_on_censored_and_invalid(synthesized_censored_run):
    rc = compare_runs(synthesized_censored_run, synthesized_censored_run)
    by_metric = {c.metric: c for c in rc.variants[0].comparisons}
    variant = load_run(synthesized_censored_run).variants[0]
    recovery = estimate(variant, "recovery_s")
    assert by_metric["recovery_s"].base_median == recovery.median == math.inf
    assert by_metric["recovery_s"].base.count(math.inf) == 3
    assert len(by_metric["downtime_s"].new) == 6 and 999.0 not in by_metric["downtime_s"].new
    assert rc.variants[0].new_excluded == 1


def test_compare_finds_failed_tasks_and_lost_runs_and_excludes_invalid(tmp_path, capsys):
    base = synthesized_run(
        tmp_path / "base",
        [synthesized_repetition(i, failed_tasks=0, executions=synthesized_executions())
         for i in range(1, 7)],
    )  # fmt: skip
    new_reps = [
        synthesized_repetition(i, failed_tasks=2, executions=synthesized_executions(1))
        for i in range(1, 7)
    ]
    new = synthesized_run(tmp_path / "new", [*new_reps, synthesized_repetition(7, **INVALID)])
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert f"result: 2 significant regression(s): {NAME} failed_tasks, {NAME} lost_runs" in out
    assert f"excluded (invalid repetitions): {NAME}: base 0, new 1" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith(NAME)}
    assert rows["downtime_s"].endswith("not significant") and "(6)" in rows["downtime_s"]
    assert rows["failed_tasks"].endswith("regression") and "+2.000 " in rows["failed_tasks"]
    assert rows["duplicated_executions"].endswith("not significant")
    variant = load_run(new).variants[0]
    assert metric_values(variant, "lost_runs") == [1.0] * 6


def test_a_metric_only_one_run_has_is_not_compared(tmp_path, capsys):
    base = synthesized_run(tmp_path / "base", [synthesized_repetition(i) for i in range(1, 7)])
    new_reps = [synthesized_repetition(i, start_latency_after_p95_s=1.5) for i in range(1, 7)]
    new = synthesized_run(tmp_path / "new", new_reps)
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert f"not compared (only one run has it): {NAME}: start_latency_after_p95_s" in out
    assert not any(line.split()[1:2] == ["start_latency_after_p95_s"] for line in out.splitlines()
                   if line.startswith(NAME))  # fmt: skip


def test_a_different_airflow_environment_is_refused_unless_forced(tmp_path, capsys):
    reps = [synthesized_repetition(i) for i in range(1, 7)]
    base = synthesized_run(tmp_path / "base", reps, airflow_env={"packages_sha256": "aaa"})
    new = synthesized_run(tmp_path / "new", reps, airflow_env={"packages_sha256": "bbb"})
    with pytest.raises(HarnessError, match=r"airflow_env\.packages_sha256 'aaa' vs 'bbb'"):
        compare_runs(base, new)
    assert main(["compare", str(base), str(new)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["compare", str(base), str(new), "--force"]) == 0
    assert "WARNING: --force" in capsys.readouterr().out
    older = synthesized_run(tmp_path / "older", reps)  # written before the key existed
    assert compare_runs(older, new).variants[0].setup_differences == []
    same = json.loads((base / NAME / "summary.json").read_text())
    assert setup_differences(same, same) == []
