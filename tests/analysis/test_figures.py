"""A repetition's figures on synthesized histories: recovery anchored on the fault, rejoin
blips, the baseline window, censoring, validity and the load summary."""

import pytest
from histories import ev, marker, probe, probes, repetition

from harness.analysis.figures import _split_at, analyse_repetition
from harness.core.history import events_frame

FAULTS = [{"op": "kill", "target": "api-server-0", "t_wall": 1020.01}]


def test_recovery_is_the_faults_outage_and_a_late_blip_is_a_rejoin():
    df = repetition(fault=20.0, end=60.0, down=((20.05, 23.0), (45.0, 45.2)))
    f = analyse_repetition(df, [], FAULTS)
    assert f["time_to_detect_s"] == pytest.approx(0.05, abs=1e-6)
    assert f["recovery_s"] == pytest.approx(3.0, abs=1e-6)
    assert f["fault_outage_s"] == pytest.approx(2.95, abs=1e-6)
    assert f["rejoin_blips"] == [{"after_s": 25.0, "duration_s": 0.2}]
    assert f["downtime_s"] == pytest.approx(3.15, abs=1e-6)  # clients saw both
    assert f["valid"], f["invalid_reasons"]


def test_a_late_blip_alone_does_not_become_recovery():
    df = repetition(fault=20.0, end=60.0, down=((48.0, 48.1),))  # 28 s later: a rejoin
    f = analyse_repetition(df, [], FAULTS)
    assert f["recovery_s"] == 0.0 and f["time_to_detect_s"] is None
    assert f["rejoin_blips"] == [{"after_s": 28.0, "duration_s": 0.1}]


def test_never_recovered_is_censored_for_the_time_observed():
    df = repetition(fault=20.0, end=50.0, down=((20.05, 99.0),))
    f = analyse_repetition(df, [], FAULTS)
    assert f["recovery_s"] is None
    assert f["censored"]["recovery_s"] == pytest.approx(30.0)
    assert f["censored"]["replacement_ready_s"] == pytest.approx(30.0)


def test_the_baseline_is_the_window_from_the_steady_state_to_the_fault():
    df = repetition(fault=20.0, end=40.0, down=((2.0, 4.0),))  # warm-up failures only
    f = analyse_repetition(df, [], FAULTS)
    assert f["baseline_downtime_s"] == 0.0 and f["baseline"]["failures"] == 0
    assert f["baseline"]["window_s"] == pytest.approx(10.0)
    assert f["valid"], f["invalid_reasons"]
    dirty = analyse_repetition(repetition(fault=20.0, end=40.0, down=((15.0, 15.2),)), [],
                               FAULTS)  # fmt: skip
    assert dirty["baseline_downtime_s"] == pytest.approx(0.2)
    assert not dirty["valid"]
    assert any("baseline window" in r for r in dirty["invalid_reasons"])


def test_a_stalled_or_dead_prober_makes_the_repetition_invalid():
    df = repetition(fault=20.0, end=40.0)
    stalled = df[~((df["type"] == "probe") & (df["t_mono"] > 25.0) & (df["t_mono"] < 26.0))]
    f = analyse_repetition(stalled.reset_index(drop=True), [], FAULTS)
    assert not f["valid"]
    assert any("sent nothing for" in r for r in f["invalid_reasons"]), f["invalid_reasons"]
    dead = df[~((df["type"] == "probe") & (df["t_mono"] > 30.0))]
    g = analyse_repetition(dead.reset_index(drop=True), [], FAULTS)
    assert any("planned probes" in r for r in g["invalid_reasons"]), g["invalid_reasons"]


def test_a_fault_whose_target_never_went_down_is_not_confirmed():
    f = analyse_repetition(repetition(seen_down=False), [], FAULTS)
    assert "the fault's target api-server-0 was never seen down" in f["invalid_reasons"]


def test_missing_history_is_invalid():
    df = events_frame([marker(0.0, "prober_start", source="prober", interval_s=0.05)])
    f = analyse_repetition(df, [], [])
    assert not f["valid"]
    expected = {"the repetition did not finish (no run_end marker)", "no probe history",
                "no workload history", "no fault was injected"}  # fmt: skip
    assert expected <= set(f["invalid_reasons"])


def test_load_summary_per_phase():
    requests = [ev(12.0 + 0.5 * i, "request", source="locust", name="GET /x",
                   ok=not 20.0 <= 12.0 + 0.5 * i < 23.0, latency_s=0.01 * (1 + i % 3))
                for i in range(60)]  # fmt: skip
    df = repetition(fault=20.0, end=45.0, down=((20.05, 23.0),), extra=requests)
    load = analyse_repetition(df, [], FAULTS, load_users=10)["load"]
    assert load["users"] == 10 and load["requests"] == 60
    assert load["failures"] == 6 and load["error_rate"] == pytest.approx(0.1)
    assert load["phases"]["before"]["requests"] == 16 and load["phases"]["before"]["failures"] == 0
    assert load["phases"]["during"]["failures"] == 6
    assert load["phases"]["after"]["failures"] == 0
    assert load["p50_s"] == pytest.approx(0.02)


def test_split_at_cuts_windows_spanning_the_fault():
    import pandas as pd

    windows = pd.DataFrame(
        {"start_mono": [1.0, 9.0, 12.0], "end_mono": [2.0, 11.0, 13.0],
         "start_wall": [101.0, 109.0, 112.0], "end_wall": [102.0, 111.0, 113.0]}
    )  # fmt: skip
    windows["duration_s"] = windows["end_mono"] - windows["start_mono"]
    after, before = _split_at(windows, 10.0)
    assert list(after["duration_s"]) == [1.0, 1.0] and after["start_wall"].iloc[0] == 110.0
    assert list(before["duration_s"]) == [1.0, 1.0] and before["end_wall"].iloc[1] == 110.0


def test_probe_helper_shapes():
    assert probe(1.0, False)["outcome"] == "refused"


def test_trigger_delay_and_an_unmet_trigger():
    met = marker(19.5, "trigger_met", t_wall=1019.9)
    f = analyse_repetition(repetition(fault=20.0, extra=[met]), [], FAULTS)
    assert f["trigger_delay_s"] == pytest.approx(0.1)
    timeout = marker(19.5, "trigger_timeout", timeout_s=60)
    g = analyse_repetition(repetition(fault=20.0, extra=[timeout]), [], FAULTS)
    assert "the trigger condition never held within 60 s" in g["invalid_reasons"]


def test_a_soak_needs_one_confirmed_fault_and_reports_each():
    second = [ev(40.0, "fault", op="pause", target="scheduler-0", phase="invoke"),
              ev(40.1, "fault", op="pause", target="scheduler-0", phase="fail"),
              ev(45.0, "fault", op="resume", target="scheduler-0", phase="invoke"),
              ev(45.1, "fault", op="resume", target="scheduler-0", phase="ok")]  # fmt: skip
    df = repetition(fault=20.0, end=60.0, down=((20.05, 22.0),), extra=second)
    f = analyse_repetition(df, [], FAULTS, soak=True)
    assert f["valid"], f["invalid_reasons"]
    assert (f["faults_injected"], f["faults_failed"]) == (1, 1)
    assert [o["target"] for o in f["fault_outcomes"]] == ["api-server-0", "scheduler-0"]
    assert f["fault_outcomes"][0]["outage_s"] == pytest.approx(1.95, abs=1e-6)
    assert not analyse_repetition(df, [], FAULTS)["valid"]  # one experiment fault must land


def test_a_gray_fault_is_confirmed_by_its_ok_event_not_by_an_outage():
    def throttled(phase: str):
        rows = [
            marker(0.0, "prober_start", source="prober", interval_s=0.05),
            marker(10.0, "baseline_start"),
            ev(20.0, "fault", op="cpu_throttle", target="scheduler-0", phase="invoke"),
            ev(20.01, "fault", op="cpu_throttle", target="scheduler-0", phase=phase),
            ev(50.0, "fault", op="cpu_clear", target="scheduler-0", phase="invoke"),
            ev(50.01, "fault", op="cpu_clear", target="scheduler-0", phase="ok"),
            marker(60.0, "run_end"),
            ev(1.0, "workload", event="unpause", dag_id="d"),
        ]
        return events_frame(rows + probes(0.0, 60.0))  # fmt: skip

    gray = [{"op": "cpu_throttle", "target": "scheduler-0", "t_wall": 1020.01}]
    f = analyse_repetition(throttled("ok"), [], gray)
    assert f["valid"], f["invalid_reasons"]
    g = analyse_repetition(throttled("fail"), [], [])
    assert any("cpu_throttle scheduler-0 failed" in r for r in g["invalid_reasons"])
    # a crash fault still needs its target seen down
    assert not analyse_repetition(repetition(seen_down=False), [], FAULTS)["valid"]


def test_a_snapshot_before_the_fault_is_not_the_fault_time():
    snap = [ev(12.0, "fault", op="snapshot", target="redis", phase="invoke"),
            ev(12.1, "fault", op="snapshot", target="redis", phase="ok")]  # fmt: skip
    df = repetition(fault=20.0, end=60.0, down=((20.05, 23.0),), extra=snap, target="redis")
    faults = [{"op": "snapshot", "target": "redis", "t_wall": 1012.1},
              {"op": "kill", "target": "redis", "t_wall": 1020.01}]  # fmt: skip
    f = analyse_repetition(df, [], faults, soak=True)
    assert f["valid"], f["invalid_reasons"]
    assert f["baseline"]["window_s"] == pytest.approx(10.0)  # baseline_start -> the kill
    assert f["observed_s"] == pytest.approx(40.0)
