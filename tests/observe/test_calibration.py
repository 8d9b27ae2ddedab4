"""Calibration: the prober's measured outages vs the ground-truth server's true outages.

Bound: start and duration errors <= one probe interval + 20 ms. The measured start is the
send time of the first failed probe, i.e. up to one interval after the true start (plus
scheduling lag), or a hair before it when a probe sent just before the switch arrives after
it (it does fail: 503 / reset / hung); likewise for the end.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from groundtruth import GroundTruthServer, Outage, TrueOutage

from harness.analysis import outages as analysis
from harness.core import history
from harness.core.errors import HarnessError
from harness.core.netguard import is_loopback_host
from harness.observe.probe.command import probe_command
from harness.observe.probe.prober import ProbeTarget, run_probes

INTERVAL = 0.05
TIMEOUT = 0.3
BOUND = INTERVAL + 0.020
EXPECTED_OUTCOMES = {
    "http5xx": {"http_error"},
    "killed": {"refused", "reset"},  # reset: a connection the kill tore down
    "stalled": {"timeout"},
}


def _skip_if_starved(df: pd.DataFrame, true: TrueOutage, detail: str) -> None:
    """Skip (not pass) when the machine was too starved for the bound to mean anything.

    Evidence: outside the outage, round trips to the idle local server (normally ~2 ms)
    took longer than a probe interval at p95, or healthy probes timed out. The error is then
    dominated by CPU scheduling, not by the prober; the bound itself is not loosened.
    """
    probes = df[df["type"] == "probe"]
    t = probes["t_mono"]
    healthy = probes[(t < true.start_mono - TIMEOUT) | (t > true.end_mono + TIMEOUT)]
    ok = healthy.loc[healthy["ok"].astype(bool), "latency_s"]
    p95 = float(np.percentile(ok, 95)) if len(ok) else float("inf")
    spurious = int((~healthy["ok"].astype(bool)).sum())
    if p95 > INTERVAL or spurious:
        pytest.skip(
            f"machine too loaded to calibrate ({detail}): healthy-phase latency p95 "
            f"{p95 * 1000:.0f} ms, {spurious} failed probes outside the outage"
        )


@pytest.mark.parametrize("kind", ["http5xx", "killed", "stalled"])
def test_measured_outage_matches_ground_truth(kind: str, tmp_path: Path) -> None:
    with GroundTruthServer() as server:
        target = ProbeTarget("gt", server.url, ("/api/v2/version",))
        # offsets deliberately not multiples of the probe interval
        server.run_schedule([Outage(kind, start_s=1.013, duration_s=1.517)])
        with history.HistoryWriter(tmp_path, "prober") as writer:
            stats = asyncio.run(
                run_probes([target], writer, duration_s=4.0, interval_s=INTERVAL, timeout_s=TIMEOUT)
            )
        truth = server.wait_schedule(timeout=10)

    assert len(truth) == 1 and truth[0].end_mono is not None
    true = truth[0]
    df = history.read_history(tmp_path)
    windows = analysis.outage_windows(df)
    if len(windows) != 1:
        _skip_if_starved(df, true, f"{len(windows)} outage windows")
    assert len(windows) == 1, windows.to_string()
    w = windows.iloc[0]
    assert not w["open_start"] and not w["open_end"]
    assert set(w["outcomes"]) <= EXPECTED_OUTCOMES[kind]
    if kind == "killed":
        assert w["outcomes"].get("refused", 0) >= w["failures"] - 2
    start_err = w["start_mono"] - true.start_mono
    duration_err = w["duration_s"] - true.duration_s
    detail = f"{kind}: start err {start_err:+.4f}s, duration err {duration_err:+.4f}s"
    if abs(start_err) > BOUND or abs(duration_err) > BOUND:
        _skip_if_starved(df, true, detail)
    assert abs(start_err) <= BOUND, f"{detail}; {stats}"
    assert abs(duration_err) <= BOUND, f"{detail}; {stats}"
    # wall-clock fields agree with the monotonic ones
    assert abs((w["start_wall"] - true.start_wall) - start_err) < 0.01
    assert stats.achieved_fraction >= 0.95


def test_probe_command_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with GroundTruthServer() as server:
        server.run_schedule([Outage("http5xx", start_s=0.8, duration_s=0.9)])
        summary = probe_command(
            f"{server.url}/api/v2/version",
            duration_s=2.5,
            interval_s=INTERVAL,
            timeout_s=TIMEOUT,
            out_dir=out,
        )
        truth = server.wait_schedule(timeout=10)[0]

    on_disk = json.loads((out / "summary.json").read_text())
    outages = on_disk["outages"]
    if len(outages) != 1 or any(
        abs(err) > BOUND
        for err in (
            outages[0]["start"] - truth.start_wall,
            outages[0]["duration_s"] - truth.duration_s,
        )
    ):
        _skip_if_starved(history.read_history(out), truth, f"outages {outages}")
    assert on_disk["downtime_s"] == pytest.approx(summary["downtime_s"])
    assert {"downtime_s", "outages"} <= set(on_disk)
    assert len(on_disk["outages"]) == 1
    outage = on_disk["outages"][0]
    assert set(outage) == {"start", "end", "duration_s"}
    assert abs(outage["start"] - truth.start_wall) <= BOUND
    assert abs(outage["end"] - truth.end_wall) <= BOUND
    assert abs(outage["duration_s"] - truth.duration_s) <= BOUND
    assert on_disk["downtime_s"] == pytest.approx(outage["duration_s"])
    for key in (
        "url",
        "interval_s",
        "timeout_s",
        "planned_probes",
        "sent_probes",
        "achieved_rate_hz",
        "availability_pct",
        "latency_p50_s",
        "latency_p95_s",
        "latency_p99_s",
        "schema_version",
        "harness_version",
        "started",
        "ended",
    ):
        assert key in on_disk, key
    assert on_disk["planned_probes"] == 50
    assert 0 < on_disk["availability_pct"] < 100
    assert (out / "history" / "prober.jsonl").exists()
    assert (out / "history.parquet").exists()
    df = history.read_history(out)
    assert (df["type"] == "probe").sum() == on_disk["sent_probes"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any attempt to connect or resolve fails the test (and sends nothing)."""
    attempts: list[object] = []

    def forbid(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", forbid)
    monkeypatch.setattr(socket.socket, "connect_ex", forbid)
    monkeypatch.setattr(socket, "create_connection", forbid)
    monkeypatch.setattr(socket, "getaddrinfo", forbid)
    return attempts


@pytest.mark.parametrize(
    "url", ["http://192.0.2.10:8080/api/v2/version", "http://10.1.2.3/", "http://[2001:db8::1]/"]
)
def test_non_loopback_url_is_refused_without_sending(
    url: str, tmp_path: Path, no_network: list[object]
) -> None:
    started = time.monotonic()
    with pytest.raises(HarnessError) as info:
        probe_command(url, duration_s=5, interval_s=0.05, timeout_s=0.3, out_dir=tmp_path / "o")
    assert "--allow-remote" in str(info.value)
    assert time.monotonic() - started < 1.0
    assert no_network == []
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("url", "duration", "interval"),
    [
        ("ftp://127.0.0.1/x", 1, 0.05),
        ("127.0.0.1:8080", 1, 0.05),
        ("http://127.0.0.1:1/", 0, 0.05),
        ("http://127.0.0.1:1/", 1, -0.1),
    ],
)
def test_bad_input_is_a_harness_error(
    url: str, duration: float, interval: float, tmp_path: Path, no_network: list[object]
) -> None:
    with pytest.raises(HarnessError) as info:
        probe_command(
            url, duration_s=duration, interval_s=interval, timeout_s=0.3, out_dir=tmp_path
        )
    assert info.value.fix
    assert no_network == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.1", False),
        ("0.0.0.0", False),
        ("2001:db8::1", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool, no_network: list[object]) -> None:
    assert is_loopback_host(host, resolve=True) is loopback
