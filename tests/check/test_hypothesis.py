"""Hypotheses and verdicts."""

import pytest
from pydantic import ValidationError

from harness.check.hypothesis import (
    Hypothesis,
    combine,
    evaluate,
    failed_verdicts,
    invalid_run,
    unknown_gates,
)


def test_hypothesis_verdicts():
    h = Hypothesis(metric="downtime_s", op="<=", value=1.0)
    assert h.check({"downtime_s": 0.5})["verdict"] == "confirmed"
    assert h.check({"downtime_s": 1.5})["verdict"] == "refuted"
    assert h.check({"downtime_s": None})["verdict"] == "unknown"


def test_verdicts_combine_over_repetitions():
    assert combine(["confirmed", "confirmed"]) == "confirmed"
    assert combine(["confirmed", "unknown"]) == "unknown"
    assert combine(["unknown", "refuted", "confirmed"]) == "refuted"


def test_labels_keep_the_written_value():
    assert Hypothesis(metric="failed_tasks", op="<=", value=0).label == "failed_tasks <= 0"
    assert Hypothesis(metric="recovered", op="==", value=True).label == "recovered == True"
    assert Hypothesis(metric="downtime_s", op="<=", value=1.0).label == "downtime_s <= 1.0"


def test_an_unknown_operator_or_field_is_refused():
    with pytest.raises(ValidationError, match="op"):
        Hypothesis(metric="downtime_s", op="=<", value=1.0)
    with pytest.raises(ValidationError, match="gaet"):
        Hypothesis(metric="downtime_s", op="<=", value=1.0, gaet=False)


def _never(metric, observed):
    return {metric: None, "censored": {metric: observed}}


def test_a_censored_figure_refutes_an_upper_bound_and_confirms_a_lower_one():
    at_most = Hypothesis(metric="recovery_s", op="<=", value=30.0)
    assert at_most.check(_never("recovery_s", 45.0))["verdict"] == "refuted"
    assert at_most.check(_never("recovery_s", 10.0))["verdict"] == "unknown"  # watched too short
    at_least = Hypothesis(metric="victim_done_after_s", op=">=", value=20.0)
    assert at_least.check(_never("victim_done_after_s", 25.0))["verdict"] == "confirmed"
    equal = Hypothesis(metric="victim_succeeded", op="==", value=1)
    assert equal.check(_never("victim_succeeded", 25.0))["verdict"] == "unknown"
    assert at_most.check(_never("recovery_s", 45.0))["censored"] == 45.0


def test_verdicts_use_valid_repetitions_only_and_say_never():
    h = Hypothesis(metric="scheduling_resumed_s", op="<=", value=60.0)
    reps = [
        {**_never("scheduling_resumed_s", 90.0), "valid": True,
         "executions": {"valid": True, "problems": []}},
        {"scheduling_resumed_s": 500.0, "valid": False, "invalid_reasons": ["x"],
         "executions": {"valid": False, "problems": ["lost"]}},
    ]  # fmt: skip
    verdicts = evaluate([h], reps)
    v = verdicts["scheduling_resumed_s <= 60.0"]
    assert v["verdict"] == "refuted" and v["measured"] == [None] and v["censored"] == [90.0]
    assert verdicts["executions"]["verdict"] == "confirmed"  # the invalid one is excluded
    lines = failed_verdicts({"verdicts": verdicts})
    assert lines and "never (>= 90.0 s)" in lines[0]


def test_no_valid_repetition_leaves_every_verdict_unknown():
    h = Hypothesis(metric="downtime_s", op="<=", value=1.0)
    bad = {"downtime_s": 0.0, "valid": False, "executions": {"valid": True, "problems": []}}
    verdicts = evaluate([h], [bad])
    assert {v["verdict"] for v in verdicts.values()} == {"unknown"}


def test_an_undecidable_gate_is_a_reason_to_call_the_repetition_invalid():
    gate = Hypothesis(metric="victim_done_after_s", op="<=", value=60.0)
    study = Hypothesis(metric="victim_done_after_s", op=">=", value=20.0, gate=False)
    assert unknown_gates([gate, study], {}) == [
        "gate victim_done_after_s <= 60.0 could not be measured"
    ]
    assert unknown_gates([gate], {"victim_done_after_s": 30.0}) == []


def test_an_invalid_run_says_why():
    summary = {"valid": False, "repeat": 2, "valid_repetitions": 1, "repetitions": [
        {"repetition": 1, "valid": True},
        {"repetition": 2, "valid": False, "invalid_reasons": ["no probe history"]}]}  # fmt: skip
    assert invalid_run(summary) == ["1 of 2 repetitions valid",
                                    "repetition 2: no probe history"]  # fmt: skip
    assert invalid_run({"valid": True}) == []


def test_a_reproducers_execution_findings_are_reported_not_gated():
    bad = {"valid": True, "executions": {"valid": False, "problems": ["zombie"]}}
    gated = evaluate([], [bad])["executions"]
    assert gated["verdict"] == "refuted" and gated["gate"]
    assert failed_verdicts({"verdicts": {"executions": gated}})
    study = evaluate([], [bad], executions_gate=False)["executions"]
    assert study["verdict"] == "refuted" and not study["gate"]
    assert failed_verdicts({"verdicts": {"executions": study}}) == []


def test_a_figure_that_is_not_a_number_is_unknown_not_a_crash():
    h = Hypothesis(metric="state_regressions", op="<=", value=0)
    assert h.check({"state_regressions": {"count": 0}})["verdict"] == "unknown"
    assert (
        Hypothesis(metric="recovered", op="==", value=True).check({"recovered": True})["verdict"]
        == "confirmed"
    )
