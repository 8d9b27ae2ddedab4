"""Seeded fault schedules for soaks."""

import pytest

from harness.core.errors import HarnessError
from harness.faults.schedule import eligible, random_schedule

REPLICAS = {"api-server": ["api-server-0", "api-server-1"], "scheduler": ["scheduler-0"],
            "worker": ["worker-0"], "service": ["postgres", "redis"]}  # fmt: skip


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another():
    a = random_schedule(["kill", "pause", "stop_service"], REPLICAS, duration_s=1200, seed=7)
    b = random_schedule(["kill", "pause", "stop_service"], REPLICAS, duration_s=1200, seed=7)
    c = random_schedule(["kill", "pause", "stop_service"], REPLICAS, duration_s=1200, seed=8)
    assert a == b and a != c
    assert 15 <= len(a) <= 60  # ~1200 / 45 s
    assert all(0 < f.at_s < 1200 for f in a)
    assert [f.at_s for f in a] == sorted(f.at_s for f in a)


def test_each_op_hits_only_what_it_applies_to():
    faults = random_schedule(["kill", "terminate", "pause", "stop_service"], REPLICAS,
                             duration_s=3000, seed=1)  # fmt: skip
    for f in faults:
        if f.op == "stop_service":
            assert f.target in ("postgres", "redis") and 3 <= f.hold_s <= 10
        else:
            assert f.target not in ("postgres", "redis")
            assert (f.hold_s > 0) == (f.op == "pause")
    assert {f.op for f in faults} == {"kill", "terminate", "pause", "stop_service"}
    assert eligible("stop_service", {"service": ["redis"]}) == ["redis"]


def test_bad_soak_input_names_the_fix():
    with pytest.raises(HarnessError, match="unknown fault op"):
        random_schedule(["explode"], REPLICAS, duration_s=600, seed=0)
    with pytest.raises(HarnessError, match="run longer"):
        random_schedule(["kill"], REPLICAS, duration_s=10, seed=0)


def test_a_soak_may_freeze_and_throttle_replicas_and_holds_them():
    faults = random_schedule(["freeze", "cpu_throttle"], REPLICAS, duration_s=3000, seed=3)
    assert {f.op for f in faults} == {"freeze", "cpu_throttle"}
    for f in faults:
        assert f.target not in ("postgres", "redis") and 3 <= f.hold_s <= 10
        assert f.cores == (0.05 if f.op == "cpu_throttle" else None)
