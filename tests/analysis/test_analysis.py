"""harness.analysis.outages on hand-built histories (t_wall = 1000 + t_mono)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from harness.analysis import outages as analysis
from harness.core.history import events_frame

WALL0 = 1000.0


def probe(
    t: float,
    ok: bool,
    target: str = "a",
    endpoint: str = "/v",
    outcome: str | None = None,
    latency: float = 0.01,
) -> dict[str, Any]:
    return {
        "t_wall": WALL0 + t,
        "t_mono": t,
        "source": "prober",
        "type": "probe",
        "target": target,
        "endpoint": endpoint,
        "ok": ok,
        "outcome": outcome or ("ok" if ok else "refused"),
        "status": 200 if ok else None,
        "latency_s": latency,
    }


def series(t0: float, t1: float, ok: bool, step: float = 0.1, **kw: Any) -> list[dict[str, Any]]:
    """Probes at t0, t0 + step, ... < t1 (times rounded to avoid float drift)."""
    n = round((t1 - t0) / step)
    return [probe(round(t0 + i * step, 6), ok, **kw) for i in range(n)]


def test_no_outage() -> None:
    df = events_frame(series(0, 5, True))
    windows = analysis.outage_windows(df)
    assert windows.empty and list(windows.columns) == analysis.WINDOW_COLUMNS
    assert analysis.downtime_s(windows) == 0.0
    summary = analysis.summarize_probes(df)
    assert summary["downtime_s"] == 0.0 and summary["outages"] == []
    assert summary["availability_pct"] == 100.0
    assert summary["probes"] == 50
    assert summary["latency_p50_s"] == pytest.approx(0.01)


def test_overlapping_outages_on_different_targets() -> None:
    rows = (
        series(0, 1, True, target="a")
        + series(1, 2, False, target="a")
        + series(2, 4, True, target="a")
        + series(0, 1.5, True, target="b")
        + series(1.5, 3, False, target="b", outcome="timeout")
        + series(3, 4, True, target="b")
    )
    df = events_frame(rows)
    windows = analysis.outage_windows(df)
    assert windows[["target", "start_mono", "end_mono"]].values.tolist() == [
        ["a", 1.0, 2.0],
        ["b", 1.5, 3.0],
    ]
    assert windows["failures"].tolist() == [10, 15]
    assert windows["outcomes"].tolist() == [{"refused": 10}, {"timeout": 15}]
    assert windows["start_wall"].tolist() == [1001.0, 1001.5]
    assert not windows["open_start"].any() and not windows["open_end"].any()
    assert analysis.downtime_s(windows) == pytest.approx(2.5)  # per-stream sum
    only_b = analysis.outage_windows(df, target="b")
    assert only_b["target"].tolist() == ["b"]
    summary = analysis.summarize_probes(df)
    # the top-level outages are the union: something was down from 1.0 to 3.0
    assert summary["outages"] == [{"start": 1001.0, "end": 1003.0, "duration_s": 2.0}]
    assert summary["downtime_s"] == pytest.approx(2.0)
    streams = {s["target"]: s for s in summary["streams"]}
    assert streams["a"]["downtime_s"] == pytest.approx(1.0)
    assert streams["b"]["downtime_s"] == pytest.approx(1.5)
    assert streams["b"]["outages"][0]["outcomes"] == {"timeout": 15}


def test_outage_open_at_start_and_end() -> None:
    rows = series(0, 0.3, False) + series(0.3, 0.8, True) + series(0.8, 1.0, False)
    df = events_frame(rows)
    windows = analysis.outage_windows(df)
    assert windows[["start_mono", "end_mono", "open_start", "open_end"]].values.tolist() == [
        [0.0, 0.3, True, False],
        [0.8, 0.9, False, True],  # still failing: ends at the last probe's send time
    ]
    ended = analysis.outage_windows(df, run_end_mono=1.5)
    last = ended.iloc[-1]
    assert (last["end_mono"], last["end_wall"]) == pytest.approx((1.5, 1001.5))
    assert last["duration_s"] == pytest.approx(0.7)
    summary = analysis.summarize_probes(df, run_end_mono=1.5)
    assert summary["open_start"] and summary["open_end"]
    assert summary["downtime_s"] == pytest.approx(0.3 + 0.7)


def test_clock_order_ties_keep_file_order() -> None:
    # same t_mono: the frame's order decides (fail then ok -> zero-length outage)
    rows = [probe(0.0, True), probe(1.0, False), probe(1.0, True), probe(2.0, True)]
    windows = analysis.outage_windows(events_frame(rows))
    assert windows[["start_mono", "end_mono", "duration_s"]].values.tolist() == [[1.0, 1.0, 0.0]]
    # ok then fail at the same instant -> the outage runs to the next success
    rows = [probe(0.0, True), probe(1.0, True), probe(1.0, False), probe(2.0, True)]
    windows = analysis.outage_windows(events_frame(rows))
    assert windows[["start_mono", "end_mono"]].values.tolist() == [[1.0, 2.0]]
    # an unsorted frame is sorted stably by t_mono, and the result is repeatable
    unsorted = pd.DataFrame([probe(2.0, True), probe(1.0, True), probe(1.0, False)])
    first = analysis.outage_windows(unsorted)
    assert first[["start_mono", "end_mono"]].values.tolist() == [[1.0, 2.0]]
    pd.testing.assert_frame_equal(first, analysis.outage_windows(unsorted))


def test_overload_rows_are_not_observations() -> None:
    rows = series(0, 1, True)
    rows.insert(5, {**probe(0.45, False, outcome="other"), "error": "overload"})
    assert analysis.outage_windows(events_frame(rows)).empty


def test_request_rows_grouped_by_name() -> None:
    def request(t: float, name: str, ok: bool) -> dict[str, Any]:
        return {
            "t_wall": WALL0 + t,
            "t_mono": t,
            "source": "locust",
            "type": "request",
            "name": name,
            "method": "GET",
            "ok": ok,
            "status": 200 if ok else 503,
            "latency_s": 0.02,
        }

    rows = [request(0, "dags", True), request(1, "dags", False), request(1.5, "runs", False)]
    rows += [request(2, "dags", True), request(3, "runs", True), probe(1.2, False)]
    windows = analysis.outage_windows(events_frame(rows), kind="request")
    assert windows[["endpoint", "start_mono", "end_mono"]].values.tolist() == [
        ["dags", 1.0, 2.0],
        ["runs", 1.5, 3.0],
    ]
    assert windows["outcomes"].tolist() == [{"http_error": 1}, {"http_error": 1}]


def test_phase_stats() -> None:
    rows = (
        series(0, 5, True, latency=0.01)
        + series(5, 5.5, False, outcome="timeout", latency=1.0)
        + series(5.5, 6, True, latency=0.1)
        + series(6, 10, True, latency=0.02)
    )
    df = events_frame(rows)
    stats = analysis.phase_stats(df, 5.0, 6.0)
    assert list(stats.index) == ["before", "during", "after"]
    assert stats["count"].tolist() == [50, 10, 40]
    assert stats["failures"].tolist() == [0, 5, 0]
    assert stats.loc["during", "error_rate"] == pytest.approx(0.5)
    assert stats.loc["during", "availability_pct"] == pytest.approx(50.0)
    assert stats.loc["before", "availability_pct"] == 100.0
    # latency percentiles cover successful probes only
    assert stats.loc["before", "latency_p99_s"] == pytest.approx(0.01)
    assert stats.loc["during", "latency_p50_s"] == pytest.approx(0.1)
    assert stats.loc["after", "latency_p95_s"] == pytest.approx(0.02)
    # instantaneous fault: "during" lasts until the outage that followed it ended
    point = analysis.phase_stats(df, 4.95)
    assert point.loc["during", "end_mono"] == pytest.approx(5.5)
    assert point["count"].tolist() == [50, 5, 45]


def test_recovery_needs_sustained_success() -> None:
    rows = (
        series(0, 5.2, True)
        + series(5.2, 6.0, False)
        + series(6.0, 6.1, True)  # one lucky success is not recovery
        + series(6.1, 6.5, False)
        + series(6.5, 10, True)
    )
    rows.append(
        {"t_wall": WALL0 + 7, "t_mono": 7.0, "source": "supervisor", "type": "lifecycle",
         "replica": "api-server-1", "component": "api-server", "state": "ready"}
    )  # fmt: skip
    df = events_frame(rows)
    r = analysis.recovery(df, 5.0, sustain_s=2.0)
    assert r["baseline_success_rate"] == 1.0
    assert r["time_to_detect_s"] == pytest.approx(0.2)
    assert r["time_to_first_success_s"] == pytest.approx(1.0)
    assert r["time_to_recover_s"] == pytest.approx(1.5)
    assert r["replacement_ready_s"] == pytest.approx(2.0)
    assert analysis.recovery(df, 5.0, replica="api-server-0")["replacement_ready_s"] is None
    # a short sustain window accepts the lone success
    assert analysis.recovery(df, 5.0, sustain_s=0.1)["time_to_recover_s"] == pytest.approx(1.0)
    # tolerance: one failure among 20 probes still counts as recovered at 5% tolerance
    flaky = series(0, 5, True) + series(5, 5.5, False) + series(5.5, 10, True)
    flaky[70] = probe(flaky[70]["t_mono"], False)  # t = 7.0
    r = analysis.recovery(events_frame(flaky), 5.0, sustain_s=2.0, tolerance=0.05)
    assert r["time_to_recover_s"] == pytest.approx(0.5)
    r = analysis.recovery(events_frame(flaky), 5.0, sustain_s=2.0, tolerance=0.0)
    assert r["time_to_recover_s"] == pytest.approx(2.1)


def test_recovery_without_outage_and_without_recovery() -> None:
    healthy = events_frame(series(0, 10, True))
    r = analysis.recovery(healthy, 5.0)
    assert r["time_to_detect_s"] is None
    assert r["time_to_first_success_s"] is None
    assert r["time_to_recover_s"] == 0.0
    assert r["replacement_ready_s"] is None
    dead = events_frame(series(0, 5, True) + series(5, 10, False))
    r = analysis.recovery(dead, 5.0)
    assert r["time_to_detect_s"] == pytest.approx(0.0)
    assert r["time_to_first_success_s"] is None and r["time_to_recover_s"] is None
    # recovered right before the run ended: the sustain window is not fully observed
    late = events_frame(series(0, 5, True) + series(5, 9, False) + series(9, 10, True))
    assert analysis.recovery(late, 5.0, sustain_s=2.0)["time_to_recover_s"] is None
    # nothing observed after the fault: unknown, not "recovered"
    assert analysis.recovery(healthy, 20.0)["time_to_recover_s"] is None


def test_degraded_window() -> None:
    rows = (
        series(0, 6, True, latency=0.01)
        + series(6, 7.1, True, latency=0.1)
        + series(7.1, 10, True, latency=0.01)
    )
    df = events_frame(rows)
    w = analysis.degraded_window(df, 5.0, k=3.0, window_s=0.5)
    assert w is not None
    assert w["baseline_p95_s"] == pytest.approx(0.01)
    assert w["threshold_s"] == pytest.approx(0.03)
    assert w["start_mono"] == pytest.approx(6.0)
    assert w["end_mono"] == pytest.approx(7.5)  # trailing window (7.0, 7.5] is clean again
    assert w["duration_s"] == pytest.approx(1.5)
    assert w["peak_p95_s"] == pytest.approx(0.1)
    assert not w["open_end"]
    assert analysis.degraded_window(events_frame(series(0, 10, True)), 5.0) is None
    with pytest.raises(ValueError):
        analysis.degraded_window(df, -1.0)
