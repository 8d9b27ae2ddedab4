"""``ha-bench compare``: significance over repetitions (permutation test of U, Holm over
all comparisons of one compare), setup checks and exit codes."""

from __future__ import annotations

import math

import pytest
from reportdata import DATA, SMOKE_RUN, copy_run, perturb, synth_run

from harness.analysis.stats import TOO_FEW, compare_samples, median_ci, min_p_value
from harness.cli import main
from harness.core.errors import HarnessError
from harness.report.compare import compare_runs, setup_differences

REGRESSED = "api-server-kill-a2-s2-w1"
# two real runs of one setup (`ha-bench run api-server-kill --api-servers 1 --schedulers 1
# --workers 1 --repeat 5 --seed 1`, one after the other on the 2-core machine)
SAME_SETUP = DATA / "same-setup"
REAL = "api-server-kill-a1-s1-w1"
# what the recorded runs have in both: every compared metric but the start latencies
RECORDED_METRICS = [
    "downtime_s",
    "recovery_s",
    "scheduling_resumed_s",
    "task_start_gap_after_s",
    "failed_tasks",
    "lost_runs",
    "duplicated_executions",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):
    return synth_run(tmp_path_factory.mktemp("runs") / "base", reps=6, jitter_s=0.3, seed=0)


def test_planted_regression_is_found_and_fails_the_gate(base, tmp_path, capsys):
    new = perturb(base, tmp_path / "new", noise_s=0.005, add={REGRESSED: {"downtime_s": 2.0}})
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(f"{REGRESSED}  downtime_s"))
    assert "regression" in row
    assert "+2.0" in row
    assert "significant regression(s): api-server-kill-a2-s2-w1 downtime_s" in out
    # 6 vs 6 fully separated: p = 2/924, x7 (Holm's factor for the smallest of the 7
    # comparisons that could be significant) = 0.0152. Not counted: the figures the
    # synthesized runs copy unchanged (every value equal) and scheduler-kill-a1-s1-w1's
    # downtime, mostly 0.0 s: tied so heavily that no arrangement reaches 0.05
    assert "0.00216  0.0152" in row
    assert "correction: Holm over the 7 comparison(s)" in out
    rows = [line for line in out.splitlines() if line.startswith(("api-", "scheduler-"))]
    others = [line for line in rows if line != row]
    assert len(rows) == 4 * len(RECORDED_METRICS)
    assert all("regression" not in line for line in others), out


def test_same_setup_with_noise_is_not_significant(base, tmp_path, capsys):
    new = perturb(base, tmp_path / "new", noise_s=0.005)
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "not significant" in out
    assert "regression" not in out.replace("no significant regression", "")
    assert "result: no significant regression" in out


def test_two_real_runs_of_the_same_setup_are_not_significant(capsys):
    assert main(["compare", str(SAME_SETUP / "a"), str(SAME_SETUP / "b")]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(REAL)]
    assert [row.split()[1] for row in rows] == RECORDED_METRICS
    assert all(row.endswith("not significant") and "(5)" in row for row in rows), out
    # the largest task-start gap is higher in b in 23 of 25 pairs (exact p = 8/252): alone
    # that would be a "regression" of two runs of one setup; Holm over the 5 comparisons
    # that could be significant says it is not
    assert (
        f"significant before correction only: {REAL} task_start_gap_after_s "
        "(p 0.0317 < 0.05, Holm p 0.159): not significant"
    ) in out
    assert "result: no significant regression" in out


def test_plus_two_seconds_on_a_real_run_is_significant_only_before_correction(tmp_path, capsys):
    # +2 s leaves 2 of 25 pairs the other way round: exact p = 8/252 = 0.0317 on its own
    # (the verdict before Holm), 0.159 after Holm over the 5 comparisons: not significant
    new = perturb(SAME_SETUP / "b", tmp_path / "new", add={REAL: {"downtime_s": 2.0}})
    assert main(["compare", str(SAME_SETUP / "a"), str(new)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(f"{REAL}  downtime_s"))
    assert row.endswith("not significant") and "(5)" in row
    assert "0.0317  0.159" in row
    assert f"significant before correction only: {REAL} downtime_s" in out


def test_plus_three_seconds_on_a_real_run_is_a_significant_regression(tmp_path, capsys):
    # +3 s puts every new downtime above every old one: p = 2/252 = 0.00794, x5 (Holm's
    # factor for the smallest of 5) = 0.0397 < 0.05
    new = perturb(SAME_SETUP / "b", tmp_path / "new", add={REAL: {"downtime_s": 3.0}})
    assert main(["compare", str(SAME_SETUP / "a"), str(new)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(f"{REAL}  downtime_s"))
    assert row.endswith("regression") and "(5)" in row
    assert "0.00794  0.0397" in row
    assert f"significant regression(s): {REAL} downtime_s" in out


def test_an_improvement_is_not_a_regression(base, tmp_path, capsys):
    new = perturb(base, tmp_path / "new", add={REGRESSED: {"downtime_s": -0.5}})
    # the recorded downtime is 0.86 s: -0.5 s on every repetition is a clear improvement
    assert main(["compare", str(base), str(new)]) == 0
    assert "improvement" in capsys.readouterr().out


def test_different_setups_are_refused_unless_forced(base, tmp_path, capsys):
    new = perturb(base, tmp_path / "new", metadata={REGRESSED: {"airflow_version": "3.2.0"}})
    assert main(["compare", str(base), str(new)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "setups differ" in err and "airflow_version '3.3.2' vs '3.2.0'" in err
    assert "--force" in err
    assert main(["compare", str(base), str(new), "--force"]) == 0
    out = capsys.readouterr().out
    assert "WARNING" in out and "airflow_version" in out


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("platform", "kubernetes"),
        ("airflow_config_overrides", {"scheduler": {"parsing_processes": "4"}}),
        ("topology", {"api_servers": 3}),
    ],
)
def test_every_setup_key_that_matters_is_checked(base, tmp_path, key, value):
    new = perturb(base, tmp_path / "new", metadata={REGRESSED: {key: value}})
    with pytest.raises(HarnessError, match=key):
        compare_runs(base, new)


def test_experiment_definition_differences_are_refused():
    import json

    summary = json.loads((SMOKE_RUN / REGRESSED / "summary.json").read_text())
    other = json.loads(json.dumps(summary))
    other["experiment_definition"]["settle_s"] = 10.0
    assert setup_differences(summary, summary) == []
    assert setup_differences(summary, other) == ["experiment_definition.settle_s 5.0 vs 10.0"]


def test_one_repetition_each_says_n_too_small(tmp_path, capsys):
    a, b = copy_run(tmp_path / "a"), copy_run(tmp_path / "b")
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert out.count(TOO_FEW) == 4 * len(RECORDED_METRICS)  # 4 variants x 7 metrics
    assert "correction: Holm over the 0 comparison(s)" in out
    assert "too few repetitions to ever be significant" in out


def test_single_experiment_directories_compare(base, tmp_path, capsys):
    new = perturb(base, tmp_path / "new", add={REGRESSED: {"recovery_s": 5.0}})
    assert main(["compare", str(base / REGRESSED), str(new / REGRESSED)]) == 1
    assert "recovery_s" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "/nonexistent/a", "/nonexistent/b"],
        ["compare", str(SMOKE_RUN), str(SMOKE_RUN), "--alpha", "2"],
    ],
)
def test_bad_input_is_a_one_line_error(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "fix:" in err and len(err.splitlines()) == 1


def test_no_common_variant_is_refused(base, tmp_path):
    other = perturb(base, tmp_path / "renamed")
    (other / REGRESSED).rename(other / "something-else")
    for d in list(other.iterdir()):
        if d.name != "something-else":
            for f in d.iterdir():
                f.unlink()
            d.rmdir()
    with pytest.raises(HarnessError, match="no experiment variant in common"):
        compare_runs(base, other)


def test_mann_whitney_verdicts_and_minimum_p():
    assert min_p_value(1, 1) == 1.0
    assert min_p_value(3, 3) == pytest.approx(0.1)  # can never be < 0.05
    assert min_p_value(4, 4) == pytest.approx(2 / 70)
    c = compare_samples("downtime_s", [1.0, 1.1, 0.9], [3.0, 3.1, 2.9])
    assert c.verdict == TOO_FEW and not c.significant
    c = compare_samples("downtime_s", [1, 1.1, 0.9, 1.05, 0.95], [3, 3.1, 2.9, 3.05, 2.95])
    assert c.verdict == "regression" and c.p_value < 0.05 and c.change == pytest.approx(2.0)
    c = compare_samples("downtime_s", [0.0] * 6, [0.0] * 6)
    assert c.verdict == "not significant" and c.p_value == 1.0
    never = compare_samples("recovery_s", [5.0] * 5, [math.inf] * 5)  # censored: worst
    assert never.verdict == "regression" and math.isinf(never.new_median)
    assert compare_samples("recovery_s", [5.0] * 5, [None] * 5).verdict == "no data"


def test_median_ci_says_plainly_when_there_is_no_interval():
    one = median_ci([1.5])
    assert (one.low, one.high) == (None, None)
    assert one.text() == "1.50 s (n=1; no 95 % interval: n < 6)"
    five = median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert five.median == 3.0 and (five.low, five.high) == (None, None)
    assert five.text() == "3.00 s (n=5; no 95 % interval: n < 6)"
    six = median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert six.text() == "3.50 s [1.00, 6.00] (n=6)"
    assert median_ci([None, float("nan")]).text() == "-"
