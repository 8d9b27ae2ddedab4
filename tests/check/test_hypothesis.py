"""Hypotheses and verdicts."""

import pytest
from pydantic import ValidationError

from harness.check.hypothesis import Hypothesis, combine


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
