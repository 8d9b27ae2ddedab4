"""summary.json through the pydantic models: written atomically, read back, and refused
with a one-line fix when it is of a newer schema version or malformed; a repetition's
figures read through figure() and censored_for()."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from reportdata import SMOKE_RUN, VARIANTS

from harness.core.errors import HarnessError
from harness.core.results import (
    CENSORED_KEY,
    SUMMARY_SCHEMA_VERSION,
    Summary,
    Verdict,
    censored_for,
    figure,
    read_summary,
    write_summary,
)


def recorded(variant: str = VARIANTS[1]) -> dict[str, Any]:
    return json.loads((SMOKE_RUN / variant / "summary.json").read_text())


def one_line(exc: pytest.ExceptionInfo[HarnessError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and exc.value.fix and f"— fix: {exc.value.fix}" in text
    return text


def test_round_trip_keeps_everything_including_extra_keys(tmp_path: Path):
    summary = Summary(
        experiment="api-server-kill",
        params={"api_servers": 2},
        repetitions=[{"repetition": 1, "downtime_s": 0.5, "phases": {"before": {"count": 3}}}],
        verdicts={
            "downtime_s <= 1.0": Verdict(
                verdict="confirmed", why="masked", gate=True, measured=[0.5], note="extra"
            )
        },
        experiment_definition={"name": "api-server-kill"},
        metadata={"airflow_version": "3.3.2", "path": Path("/x")},
        run_note="a key a newer writer added",
    )
    path = tmp_path / "exp" / "summary.json"
    write_summary(path, summary)
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]  # no temporary file
    data = json.loads(path.read_text())
    assert data["schema_version"] == SUMMARY_SCHEMA_VERSION == 2
    assert data["metadata"]["path"] == "/x"  # default=str
    back = read_summary(path)
    assert back.model_dump() == json.loads(json.dumps(summary.model_dump(), default=str))
    assert back.run_note == "a key a newer writer added"
    assert back.verdicts["downtime_s <= 1.0"].model_dump()["note"] == "extra"


def test_a_dict_is_validated_and_gets_the_current_version(tmp_path: Path):
    data = recorded()
    del data["schema_version"]
    write_summary(tmp_path / "summary.json", data)
    assert read_summary(tmp_path / "summary.json").schema_version == SUMMARY_SCHEMA_VERSION
    data["verdicts"]["executions"]["verdict"] = "maybe"
    with pytest.raises(HarnessError) as exc:
        write_summary(tmp_path / "other.json", data)
    assert "verdicts.executions.verdict" in one_line(exc)
    assert not (tmp_path / "other.json").exists()


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_recorded_run_reads(variant: str):
    summary = read_summary(SMOKE_RUN / variant / "summary.json")
    assert summary.schema_version == 1
    assert summary.experiment in variant
    assert summary.repetitions[0]["repetition"] == 1
    assert {v.verdict for v in summary.verdicts.values()} <= {"confirmed", "refuted", "unknown"}
    assert summary.metadata["airflow_version"] == "3.3.2"


def test_version_1_is_accepted_and_kept(tmp_path: Path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(recorded()))
    summary = read_summary(path)
    assert summary.schema_version == 1
    assert summary.verdicts["downtime_s <= 1.0"].measured == [pytest.approx(0.8626378509989081)]


def test_a_newer_version_is_refused_naming_the_fix(tmp_path: Path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(dict(recorded(), schema_version=99)))
    with pytest.raises(HarnessError) as exc:
        read_summary(path)
    text = one_line(exc)
    assert str(path) in text and "schema_version 99 is newer than this harness reads" in text
    assert "(1..2)" in text and "airflow-ha-bench 0.1.0" in text  # who wrote it
    assert "upgrade" in exc.value.fix


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "cannot read"),
        ("[1, 2]", "is not a JSON object"),
        (json.dumps({"experiment": "x"}), "schema_version None is not a summary schema"),
        (json.dumps({"schema_version": "2"}), "schema_version '2' is not"),
        (json.dumps({"schema_version": 0}), "schema_version 0 is not"),
        (json.dumps({"schema_version": 2, "experiment": "x"}), "not a valid summary: params"),
    ],
)
def test_a_malformed_file_is_refused(tmp_path: Path, content: str, expected: str):
    path = tmp_path / "summary.json"
    path.write_text(content)
    with pytest.raises(HarnessError) as exc:
        read_summary(path)
    assert expected in one_line(exc)


def test_a_malformed_verdict_names_where(tmp_path: Path):
    data = recorded()
    data["verdicts"]["executions"] = {"verdict": "confirmed", "gate": "sometimes"}
    data["repetitions"] = "all of them"
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HarnessError) as exc:
        read_summary(path)
    assert "not a valid summary: repetitions: Input should be a valid list (+1 more)" in (
        one_line(exc)
    )


def test_a_missing_file_is_refused(tmp_path: Path):
    with pytest.raises(HarnessError) as exc:
        read_summary(tmp_path / "nope" / "summary.json")
    assert "cannot read" in one_line(exc)


def test_figures_censored_missing_and_numbers():
    rep = {
        "downtime_s": 1.5,
        "failed_tasks": 2,
        "recovered": True,
        "recovery_s": None,
        "scheduling_resumed_s": None,
        "degraded_s": float("nan"),
        "fault": [{"op": "kill"}],
        CENSORED_KEY: {"recovery_s": 120.25, "time_to_detect_s": None},
    }
    assert CENSORED_KEY == "censored"
    assert figure(rep, "downtime_s") == 1.5 and figure(rep, "failed_tasks") == 2.0
    assert figure(rep, "recovered") == 1.0  # a bool as 0/1
    assert figure(rep, "recovery_s") == math.inf and censored_for(rep, "recovery_s") == 120.25
    assert figure(rep, "time_to_detect_s") == math.inf  # censored, watch time not recorded
    assert censored_for(rep, "time_to_detect_s") is None
    for missing in ("scheduling_resumed_s", "degraded_s", "fault", "nope"):
        assert figure(rep, missing) is None and censored_for(rep, missing) is None


def test_an_older_summary_has_nothing_censored():
    rep = recorded(VARIANTS[0])["repetitions"][0]
    assert CENSORED_KEY not in rep
    assert figure(rep, "downtime_s") == pytest.approx(16.699925364000137)
    assert figure(rep, "start_latency_after_p95_s") is None
    assert censored_for(rep, "downtime_s") is None
