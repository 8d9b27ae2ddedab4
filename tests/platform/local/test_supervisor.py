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


def _wait(predicate, timeout_s=15.0, what=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what()
        time.sleep(0.02)


def test_exited_and_not_ready_carry_the_time_the_death_was_seen(tmp_path):
    """The clean-up after a death waits for a check in flight (here 2 s): the events are
    emitted that late, but stamped with the time the exit was seen."""
    received: list[tuple[dict, float]] = []
    calls = []

    def slow_after_first(unit, timeout_s):
        calls.append(1)
        if len(calls) > 1:
            time.sleep(timeout_s)  # a check that hangs up to its timeout
        return True

    spec = ReplicaSpec(
        name="web-0", component="web", command=[sys.executable, "-c", "import time; "
        "time.sleep(60)"], env={}, log_path=tmp_path / "web-0.log", cluster_id="test",
        readiness=slow_after_first, readiness_probe=Probe(period_s=0.05, timeout_s=2.0),
        restart=RestartPolicy(enabled=False), grace_s=2.0,
    )  # fmt: skip
    bus = EventBus()
    bus.subscribe(lambda e: received.append((e, time.monotonic())))
    replica = Replica(spec, bus)
    replica.start()
    try:
        assert replica.wait_ready(10)
        _wait(lambda: len(calls) >= 2, what=lambda: "the second (hanging) check never started")
        killed_at = time.monotonic()
        replica.signal(signal.SIGKILL)
        _wait(lambda: any(e.get("state") == "exited" for e, _ in received), timeout_s=10)
    finally:
        replica.stop()
    exited, exited_recv = next((e, r) for e, r in received if e.get("state") == "exited")
    not_ready = next(e for e, _ in received if e.get("state") == "not_ready")
    assert exited_recv - killed_at > 1.0, "the clean-up did not delay the event: no test"
    assert 0 <= exited["t_mono"] - killed_at < 0.5
    assert not_ready["t_mono"] == exited["t_mono"] and not_ready["t_wall"] == exited["t_wall"]
    assert abs((exited["t_wall"] - time.time()) - (exited["t_mono"] - time.monotonic())) < 0.1


def test_reset_backoff_makes_the_next_restart_immediate_and_starts_the_backoff_over(tmp_path):
    events: list[dict] = []
    policy = RestartPolicy(initial_backoff_s=0.5, max_backoff_s=5, stable_after_s=30)
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    replica = _replica(tmp_path, command, restart=policy, events=events)

    def started() -> int:  # "starting" is emitted once the incarnation's unit exists
        return _states(events).count("starting")

    def kill_and_wait_replacement() -> None:
        n = started()
        assert replica.signal(signal.SIGKILL) >= 1
        _wait(lambda: started() == n + 1, what=lambda: str(_states(events)))

    replica.start()
    try:
        _wait(lambda: started() == 1)
        kill_and_wait_replacement()
        kill_and_wait_replacement()  # a crash loop: 0.5 s, then 1.0 s
        assert replica.reset_backoff() == 2 == replica.restarts
        kill_and_wait_replacement()  # at once, however short the uptime
        kill_and_wait_replacement()  # and the back-off starts over
    finally:
        replica.stop()
    delays = [e["delay_s"] for e in events if e.get("state") == "restarting"]
    assert delays == [0.5, 1.0, 0.0, 0.5]


def test_reset_backoff_ends_a_backoff_wait_in_progress(tmp_path):
    events: list[dict] = []
    policy = RestartPolicy(initial_backoff_s=10, max_backoff_s=60, stable_after_s=30)
    replica = _replica(
        tmp_path, [sys.executable, "-c", "raise SystemExit(3)"], restart=policy, events=events
    )
    replica.start()
    try:
        _wait(lambda: "restarting" in _states(events))
        reset_at = time.monotonic()
        assert replica.reset_backoff() == 1
        _wait(lambda: replica.incarnation == 2, timeout_s=5, what=lambda: "still backing off")
        assert time.monotonic() - reset_at < 2
        _wait(lambda: _states(events).count("restarting") == 2)
    finally:
        replica.stop()
    delays = [e["delay_s"] for e in events if e.get("state") == "restarting"]
    assert delays == [10, 10]  # the next crash backs off from the start again, not 20 s
