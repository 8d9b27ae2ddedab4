"""The resource, clock and disk experiments build as their cases say: the fault's fields,
the topology they need (skewable replicas, a size-limited disk), and the hypotheses that
follow from the skew or the mechanism."""

from __future__ import annotations

import pytest

from harness.run.catalogue import build, catalogue

NEW = ("scheduler-cpu-starve", "worker-oom", "api-server-freeze", "scheduler-clock-skew",
       "api-server-clock-skew", "postgres-disk-full")  # fmt: skip


@pytest.mark.parametrize("name", NEW)
def test_every_case_runs_in_the_full_profile_only(name):
    cases = catalogue()[name].cases
    assert cases and all(c.profiles == ("full",) for c in cases)
    for case in cases:
        for platform in ("local", "kubernetes"):
            assert build(name, case.params, platform=platform).fault is not None


def test_cpu_starve_throttles_one_of_two_schedulers_to_5_percent():
    exp = build("scheduler-cpu-starve")
    assert (exp.fault.op, exp.fault.target, exp.fault.cores) == ("cpu_throttle", "scheduler-0",
                                                                 0.05)  # fmt: skip
    assert exp.topology["schedulers"] == 2 and exp.fault.hold_s == 60


def test_worker_oom_limits_the_victims_worker_and_the_group_case_takes_it_all():
    one, group = build("worker-oom"), build("worker-oom", {"group": True})
    assert one.fault.op == "memory_limit" and one.fault.target == "worker/victim"
    assert one.fault.bytes == 2048 * 2**20 and not one.fault.oom_group and group.fault.oom_group
    assert one.victim_conf["alloc_mb"] > 2048, "the victim allocates past the limit"
    bounds = {h.label for h in group.hypotheses}
    assert "victim_failed_after_s >= 34.0" in bounds  # alloc_after 10 + timeout 30 - 6


def test_freeze_and_its_sigstop_twin():
    assert build("api-server-freeze").fault.op == "freeze"
    assert build("api-server-freeze", {"mechanism": "pause"}).fault.op == "pause"


@pytest.mark.parametrize(
    ("skew_s", "expected"),
    [(-60.0, {"duplicated_executions <= 0"}),
     (60.0, {"failed_tasks <= 0"}),
     (600.0, {"failed_tasks <= 0", "zombie_false_positives <= 0"})],
)  # fmt: skip
def test_scheduler_skew_hypotheses_follow_the_thresholds_it_crosses(skew_s, expected):
    exp = build("scheduler-clock-skew", {"skew_s": skew_s})
    assert exp.fault.skew_s == skew_s and exp.topology["clock_skew_replicas"] == ["scheduler-0"]
    studied = {h.label for h in exp.hypotheses if not h.gate}
    assert studied == expected
    assert exp.expect_duplicates == (skew_s in (-60.0, 600.0))


def test_api_server_skew_ahead_reports_unhealthy_schedulers_behind_rejects_tokens():
    ahead, behind = build("api-server-clock-skew"), build("api-server-clock-skew",
                                                          {"skew_s": -60.0})  # fmt: skip
    assert "health_scheduler_unhealthy_s > 0" in {h.label for h in ahead.hypotheses}
    gate = {h.label: h.gate for h in behind.hypotheses}
    assert gate["failed_tasks <= 0"] is False
    assert ahead.topology["clock_skew_replicas"] == ["api-server-0"]


def test_disk_full_puts_postgres_on_a_small_disk():
    exp = build("postgres-disk-full", {"disk_mb": 128})
    assert exp.fault.op == "disk_fill" and exp.fault.target == "postgres"
    assert exp.topology["postgres_disk_mb"] == 128
