"""Replica supervision on real, small processes: restart policy, readiness, events."""

import signal
import sys
import time

from harness.core.events import EventBus
from harness.core.topology import Probe, RestartPolicy
from harness.platform.local import checks
from harness.platform.local.process import free_port, port_is_free
from harness.platform.local.supervisor import Replica, ReplicaSpec

FAST = Probe(period_s=0.1, timeout_s=0.5, failure_threshold=2)


def _replica(tmp_path, command, *, port=None, restart=None, events=None):
    bus = EventBus()
    if events is not None:
        bus.subscribe(events.append)
    spec = ReplicaSpec(
        name="web-0",
        component="web",
        command=command,
        env={},
        log_path=tmp_path / "web-0.log",
        cluster_id="test",
        ports=(port,) if port else (),
        readiness=checks.http_check(port, "/") if port else None,
        readiness_probe=FAST,
        restart=restart or RestartPolicy(),
        grace_s=2.0,
    )
    return Replica(spec, bus)


def _states(events, replica="web-0"):
    return [e["state"] for e in events if e["type"] == "lifecycle" and e["replica"] == replica]


def test_killed_replica_is_replaced_and_becomes_ready_again(tmp_path):
    port = free_port()
    events: list[dict] = []
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    replica = _replica(tmp_path, command, port=port, events=events)
    replica.start()
    try:
        assert replica.wait_ready(15)
        replica.signal(signal.SIGKILL)
        deadline = time.monotonic() + 15
        while replica.incarnation < 2 or not replica.ready:
            assert time.monotonic() < deadline, _states(events)
            time.sleep(0.05)
    finally:
        replica.stop()
    states = _states(events)
    assert states[:2] == ["starting", "ready"]
    exited = next(e for e in events if e.get("state") == "exited")
    assert exited["exit_code"] == -signal.SIGKILL
    assert states.index("restarting") < states.index("starting", 1)
    assert states[-2:] == ["exited", "stopped"]
    assert port_is_free(port)


def test_crash_loop_backs_off(tmp_path):
    events: list[dict] = []
    policy = RestartPolicy(initial_backoff_s=0.2, max_backoff_s=1.0, stable_after_s=5)
    replica = _replica(
        tmp_path, [sys.executable, "-c", "raise SystemExit(3)"], restart=policy, events=events
    )
    replica.start()
    try:
        deadline = time.monotonic() + 10
        while replica.restarts < 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        replica.stop()
    delays = [e["delay_s"] for e in events if e.get("state") == "restarting"][:4]
    assert delays == [0.2, 0.4, 0.8, 1.0]
    assert all(e["exit_code"] == 3 for e in events if e.get("state") == "exited")


def test_paused_replica_turns_not_ready_and_back(tmp_path):
    port = free_port()
    events: list[dict] = []
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    replica = _replica(tmp_path, command, port=port, events=events)
    replica.start()
    try:
        assert replica.wait_ready(15)
        replica.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while replica.ready:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        replica.signal(signal.SIGCONT)
        assert replica.wait_ready(10)
    finally:
        replica.stop()
    assert _states(events)[:4] == ["starting", "ready", "not_ready", "ready"]
    assert replica.incarnation == 1  # readiness does not restart; liveness would


def test_hold_keeps_a_service_down_until_released(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    replica = _replica(tmp_path, command, port=port)
    replica.start()
    try:
        assert replica.wait_ready(15)
        replica.hold(grace_s=2)
        time.sleep(1.0)
        assert replica.incarnation == 1 and not replica.ready
        assert port_is_free(port)
        replica.release()
        assert replica.wait_ready(15)
        assert replica.incarnation == 2
    finally:
        replica.stop()
