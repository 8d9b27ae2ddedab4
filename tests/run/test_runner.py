"""The runner's summary: the documented contract and the gates."""

from harness.check.hypothesis import failed_verdicts
from harness.run.catalogue import build
from harness.run.runner import summarize


def _rep(downtime, valid=True):
    return {"downtime_s": downtime, "executions": {"valid": valid, "problems": []}}


def test_summary_contract_and_gates():
    exp = build("api-server-kill", {"api_servers": 2})
    summary = summarize(exp, [_rep(0.0), _rep(2.5)], {"platform": "local"})
    for key in ("experiment", "params", "repetitions", "verdicts"):
        assert key in summary
    assert summary["experiment"] == "api-server-kill"
    assert summary["params"]["api_servers"] == 2
    assert summary["verdicts"]["downtime_s <= 1.0"]["verdict"] == "refuted"
    assert summary["verdicts"]["downtime_s <= 1.0"]["measured"] == [0.0, 2.5]
    misses = failed_verdicts(summary)
    assert any("downtime_s <= 1.0" in m and "2.5" in m for m in misses)


def test_non_gate_hypotheses_are_reported_but_do_not_fail():
    exp = build("api-server-kill", {"api_servers": 1, "schedulers": 1})
    reps = [{**_rep(10.0), "failed_tasks": 3}]
    summary = summarize(exp, reps, {})
    assert summary["verdicts"]["failed_tasks <= 0"]["verdict"] == "refuted"
    assert summary["verdicts"]["failed_tasks <= 0"]["gate"] is False
    assert failed_verdicts(summary) == []


def test_lost_executions_fail_the_run():
    exp = build("scheduler-kill", {})
    summary = summarize(exp, [_rep(0.0, valid=False)], {})
    assert summary["verdicts"]["executions"]["verdict"] == "refuted"
    assert failed_verdicts(summary)


def test_summary_counts_valid_repetitions_and_marks_an_invalid_run():
    exp = build("api-server-kill", {"api_servers": 2})
    bad = {**_rep(0.0), "valid": False, "invalid_reasons": ["no probe history"]}
    summary = summarize(exp, [_rep(0.0), bad], {}, repeat=2)
    assert (summary["valid"], summary["valid_repetitions"], summary["invalid_repetitions"]) == (
        False, 1, 1)  # fmt: skip
    assert summary["verdicts"]["downtime_s <= 1.0"]["measured"] == [0.0]  # valid ones only
    ok = summarize(exp, [_rep(0.0), bad, _rep(0.5)], {}, repeat=2)
    assert ok["valid"] and ok["schema_version"] == 2


def test_summary_metadata_says_where_the_numbers_came_from():
    summary = summarize(build("scheduler-kill"), [_rep(0.0)], {"platform": "local"})
    meta = summary["metadata"]
    assert meta["platform"] == "local" and "git_commit" in meta and "git_dirty" in meta
    assert {"kernel_release", "cpu_model", "cpus"} <= set(meta["machine"])


def test_execution_counts_become_figures_hypotheses_can_name():
    from harness.run.runner import execution_counts

    counts = execution_counts({"lost_runs": 0, "duplicate_starts": 1, "duplicate_ends": 2,
                               "overlapping_executions": 1, "state_regressions": 0})  # fmt: skip
    assert counts["duplicated_executions"] == 3 and counts["overlapping_executions"] == 1
    assert counts["stuck_task_instances"] is None  # not reported: not measured
    assert execution_counts({})["duplicated_executions"] is None


def test_every_reproducer_names_its_issue_and_the_hypothesis_it_refutes():
    from harness.run.catalogue import catalogue

    repros = [s for n, s in catalogue().items() if n.startswith("repro-")]
    assert len(repros) >= 4
    for spec in repros:
        exp = spec.build()
        assert exp.reproduces is not None and exp.reproduces.issue.startswith("apache/airflow#")
        labels = {h.label for h in exp.hypotheses}
        assert exp.reproduces.reproduced_when in labels, (spec.name, labels)
        assert not next(h for h in exp.hypotheses
                        if h.label == exp.reproduces.reproduced_when).gate  # fmt: skip
