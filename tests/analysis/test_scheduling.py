"""Scheduling figures on synthesized histories: per-run latency, censoring, open gaps."""

import math

import pytest
from histories import OFFSET, marker, start, trigger

from harness.analysis.scheduling import scheduling_latency, task_start_gaps
from harness.analysis.timeline import Censor, Timeline
from harness.core.history import events_frame


def _timeline(fault=20.0, end=40.0, drain_end=None):
    return Timeline(fault_mono=fault, fault_wall=fault + OFFSET, run_end_mono=end,
                    baseline_start_mono=5.0, drain_end_mono=drain_end)  # fmt: skip


def test_latency_per_run_before_and_after_the_fault():
    history = events_frame([trigger(10.0, "r1"), trigger(12.0, "r2"), trigger(21.0, "r3"),
                            trigger(23.0, "r4")])  # fmt: skip
    ledger = [start(12.0, "r1"), start(13.5, "r2"), start(14.0, "r2", "b"), start(30.0, "r3"),
              start(24.0, "r4")]  # fmt: skip
    censor = Censor()
    f = scheduling_latency(history, ledger, _timeline(), censor)
    assert f["start_latency_before_max_s"] == pytest.approx(2.0)
    assert f["start_latency_before_p50_s"] == pytest.approx(1.5)
    assert f["start_latency_after_max_s"] == pytest.approx(9.0)
    assert f["scheduling_resumed_s"] == pytest.approx(4.0)  # r4 started first, at 24
    assert f["scheduling_runs_after"] == 2 and f["scheduling_runs_never_started"] == 0
    assert [0.0 - 10.0, 2.0] in f["start_latency_points"]
    assert censor.observed == {}


def test_a_stall_to_the_end_is_censored_not_missing():
    history = events_frame([trigger(10.0, "r1"), trigger(22.0, "r2"), trigger(30.0, "r3")])
    ledger = [start(11.0, "r1")]
    censor = Censor()
    f = scheduling_latency(history, ledger, _timeline(end=40.0, drain_end=50.0), censor)
    assert f["scheduling_resumed_s"] is None and f["start_latency_after_max_s"] is None
    assert censor.observed["scheduling_resumed_s"] == pytest.approx(30.0)  # watched to 50
    assert censor.observed["start_latency_after_max_s"] == pytest.approx(28.0)  # r2: 22 -> 50
    assert f["scheduling_runs_never_started"] == 2


def test_one_unstarted_run_censors_the_max_but_not_the_median():
    triggers = [trigger(21.0 + i, f"r{i}") for i in range(5)]
    ledger = [start(21.5 + i, f"r{i}") for i in range(4)]  # r4 never starts
    censor = Censor()
    f = scheduling_latency(events_frame(triggers), ledger, _timeline(end=40.0), censor)
    assert f["start_latency_after_p50_s"] == pytest.approx(0.5)
    assert f["start_latency_after_max_s"] is None
    assert censor.observed["start_latency_after_max_s"] == pytest.approx(15.0)  # 25 -> 40


def test_no_runs_after_the_fault_is_unknown_not_never():
    censor = Censor()
    f = scheduling_latency(events_frame([trigger(10.0, "r1")]), [start(11.0, "r1")],
                           _timeline(), censor)  # fmt: skip
    assert f["scheduling_resumed_s"] is None and "scheduling_resumed_s" not in censor.observed


def test_task_start_gaps_include_the_open_gap_to_the_end():
    ledger = [start(t, "r") for t in (1.0, 2.0, 3.0, 10.0, 11.0)]
    gaps = task_start_gaps(ledger, fault_wall=4.0 + OFFSET, end_wall=None)
    assert gaps == {"task_start_gap_before_s": 1.0, "task_start_gap_after_s": 7.0}
    open_gap = task_start_gaps(ledger, fault_wall=4.0 + OFFSET, end_wall=30.0 + OFFSET)
    assert open_gap["task_start_gap_after_s"] == pytest.approx(19.0)
    stalled = task_start_gaps(ledger[:3], fault_wall=4.0 + OFFSET, end_wall=30.0 + OFFSET)
    assert stalled["task_start_gap_after_s"] == pytest.approx(27.0)
    assert not math.isnan(stalled["task_start_gap_before_s"])


def test_timeline_reads_its_markers():
    df = events_frame([marker(5.0, "baseline_start"), marker(40.0, "run_end"),
                       marker(45.0, "drain_end")])  # fmt: skip
    t = Timeline.of(df)
    assert (t.baseline_start_mono, t.run_end_mono, t.drain_end_mono) == (5.0, 40.0, 45.0)
    assert not t.has_fault and t.observed_s is None


def test_runs_caught_waiting_by_the_fault_are_measured_apart():
    history = events_frame([trigger(18.0, "r1"), trigger(19.0, "r2"), trigger(19.5, "r3")])
    ledger = [start(18.5, "r1"), start(26.0, "r2")]  # r3 never starts
    censor = Censor()
    f = scheduling_latency(history, ledger, _timeline(end=40.0), censor)
    assert f["scheduling_runs_caught"] == 2
    assert f["start_latency_caught_p50_s"] == pytest.approx(7.0)
    assert f["start_latency_caught_max_s"] is None
    assert censor.observed["start_latency_caught_max_s"] == pytest.approx(20.5)  # 19.5 -> 40
    assert f["start_latency_before_max_s"] == pytest.approx(0.5)
