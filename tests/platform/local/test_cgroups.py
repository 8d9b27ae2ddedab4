"""Replicas as cgroups on real, small processes: membership and kill from the kernel, a CPU
quota that holds, a real OOM kill recorded as one, the freezer, and nothing left behind.

These need root and a writable cgroup hierarchy (this project's machines have cgroup v1
controllers); elsewhere they are skipped, and the /proc scan (test_process.py) remains.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.core.topology import RestartPolicy
from harness.platform.local.cgroups import (
    UNIFIED,
    ClusterCgroups,
    Hierarchy,
    ReplicaCgroup,
    detect,
)
from harness.platform.local.nemesis import LocalNemesis
from harness.platform.local.process import find_processes, start_unit
from harness.platform.local.supervisor import Replica, ReplicaSpec

HIERARCHY, NOTE = detect()
needs_cgroups = pytest.mark.skipif(HIERARCHY is None, reason=NOTE)
needs_limits = pytest.mark.skipif(
    HIERARCHY is None or not HIERARCHY.limits, reason=f"no cpu/memory controllers: {NOTE}"
)

BUSY = [sys.executable, "-c", "while True: pass"]
SLEEP = [sys.executable, "-c", "import time; time.sleep(300)"]
HOG = [sys.executable, "-c", "b = []\nwhile True: b.append(bytearray(1 << 20))"]
# a child that leaves the session and drops the unit marker: only the cgroup still knows it
HIDING_TREE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                     env={}, start_new_session=True)
    print("started", flush=True)
    time.sleep(300)
    """
)


@pytest.fixture
def cgroups():
    """A cluster's cgroups with a unique id; removed at the end, pass or fail."""
    assert HIERARCHY is not None
    made = ClusterCgroups(HIERARCHY, f"hab-test-{uuid.uuid4().hex[:8]}").create()
    yield made
    made.remove()
    assert made.leftovers() == []


def _wait(condition, timeout_s=10.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout_s}s")


def _replica(tmp_path, cgroup, command, events, *, restart=False):
    bus = EventBus()
    bus.subscribe(events.append)
    spec = ReplicaSpec(
        name=cgroup.name, component="test", command=command, env={},
        log_path=tmp_path / f"{cgroup.name}.log", cluster_id="test",
        restart=RestartPolicy(enabled=restart, initial_backoff_s=0.1), grace_s=2.0,
        cgroup=cgroup,
    )  # fmt: skip
    return Replica(spec, bus)


def _lifecycle(events, state):
    return [e for e in events if e["type"] == "lifecycle" and e["state"] == state]


# -- detection -----------------------------------------------------------------------------
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CGROUP = "6:freezer:/\n4:memory:/jobs/a1\n2:cpuacct:/\n1:cpu:/\n0::/\n"


def test_detect_reads_the_hierarchies_from_mountinfo(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.platform.local.cgroups._writable", lambda p: p is not None)
    monkeypatch.setattr("harness.platform.local.cgroups._read", lambda p: "")
    hierarchy, note = detect(mountinfo=V1_MOUNTINFO, proc_cgroup=V1_CGROUP, environ={})
    assert hierarchy is not None and hierarchy.version == 1 and hierarchy.limits
    assert hierarchy.parents["memory"] == Path("/sys/fs/cgroup/memory/jobs/a1")
    assert hierarchy.parents["cpu"] == Path("/sys/fs/cgroup/cpu")
    assert "v1" in note and "delegates no cpu/memory" in note


def test_detect_prefers_a_v2_hierarchy_that_delegates_cpu_and_memory(monkeypatch):
    mountinfo = "30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    monkeypatch.setattr("harness.platform.local.cgroups._writable", lambda p: p is not None)
    monkeypatch.setattr("harness.platform.local.cgroups._read",
                        lambda p: "cpuset cpu io memory pids\n")  # fmt: skip
    hierarchy, note = detect(mountinfo=mountinfo, proc_cgroup="0::/user.slice/x.scope\n",
                             environ={})  # fmt: skip
    assert hierarchy is not None and hierarchy.version == 2 and hierarchy.limits
    assert hierarchy.parents[UNIFIED] == Path("/sys/fs/cgroup/user.slice/x.scope")
    # the same hierarchy delegating nothing: membership, kill and freeze, but no limits
    monkeypatch.setattr("harness.platform.local.cgroups._read", lambda p: "")
    hierarchy, note = detect(mountinfo=mountinfo, proc_cgroup="0::/user.slice/x.scope\n",
                             environ={})  # fmt: skip
    assert hierarchy is not None and hierarchy.version == 2 and not hierarchy.limits
    assert "without cpu/memory controllers" in note


def test_detect_maps_a_containers_mount_root_and_can_be_turned_off(monkeypatch):
    mountinfo = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    monkeypatch.setattr("harness.platform.local.cgroups._writable", lambda p: False)
    hierarchy, note = detect(mountinfo=mountinfo, proc_cgroup="4:memory:/docker/abc/x\n",
                             environ={})  # fmt: skip
    assert hierarchy is None and "none usable" in note  # nothing writable: the /proc scan
    hierarchy, note = detect(mountinfo=V1_MOUNTINFO, proc_cgroup=V1_CGROUP,
                             environ={"HA_BENCH_CGROUPS": "off"})  # fmt: skip
    assert hierarchy is None and "off" in note


# -- membership and kill ---------------------------------------------------------------------
@needs_cgroups
def test_the_cgroup_finds_and_kills_a_child_that_left_session_and_marker(tmp_path, cgroups):
    cgroup = cgroups.replica("tree")
    log = tmp_path / "tree.log"
    unit = start_unit(f"test/{uuid.uuid4().hex}", [sys.executable, "-c", HIDING_TREE],
                      env={}, log_path=log, cgroup=cgroup)  # fmt: skip
    try:
        _wait(lambda: "started" in log.read_text(), what="the tree started")
        hidden = _wait(lambda: [p for p in cgroup.members() if p != unit.pid], what="child")
        scan = find_processes(pgid=unit.pid, sessions=(unit.pid,),
                              marker=("HA_BENCH_UNIT", unit.unit_id))  # fmt: skip
        assert hidden[0] not in scan, "the /proc scan cannot see the hidden child"
        assert hidden[0] in unit.members(), "the cgroup can"
        assert unit.pid in cgroup.members(), "the leader joined before it exec'd"
        unit.signal(signal.SIGKILL)
        assert unit.wait_gone(5.0)
        assert cgroup.members() == []
    finally:
        unit.kill_all(5.0)


@needs_cgroups
def test_a_join_failure_exits_125_with_one_line(tmp_path):
    missing = ReplicaCgroup("gone", HIERARCHY.version,
                            {k: p / "hab-no-such-cluster" / "x" for k, p in
                             HIERARCHY.parents.items()})  # fmt: skip
    log = tmp_path / "x.log"
    unit = start_unit("test/gone", SLEEP, env={}, log_path=log, cgroup=missing)
    assert unit.popen.wait(10) == 125
    assert "ha-bench: cannot join cgroup" in log.read_text()


@needs_cgroups
def test_a_cgroup_v2_without_controllers_still_gives_membership_kill_and_freeze(tmp_path):
    """This machine's /sys/fs/cgroup/unified: a v2 hierarchy delegating no controller."""
    unified = Path("/sys/fs/cgroup/unified")
    if not (unified / "cgroup.freeze").exists() and not (unified / "cgroup.procs").exists():
        pytest.skip("no cgroup v2 hierarchy at /sys/fs/cgroup/unified")
    own = Path("/proc/self/cgroup").read_text().splitlines()
    v2_path = next((line.split(":", 2)[2] for line in own if line.startswith("0::")), None)
    if v2_path is None:
        pytest.skip("this process is in no v2 cgroup")
    hierarchy = Hierarchy(2, {UNIFIED: unified / v2_path.lstrip("/")}, limits=False)
    made = ClusterCgroups(hierarchy, f"hab-test-{uuid.uuid4().hex[:8]}").create()
    try:
        cgroup = made.replica("v2")
        unit = start_unit("test/v2", BUSY, env={}, log_path=tmp_path / "v2.log", cgroup=cgroup)
        _wait(lambda: cgroup.members() == [unit.pid], what="the leader in the v2 cgroup")
        cgroup.freeze()
        assert cgroup.frozen()
        used = cgroup.cpu_usage_s()
        time.sleep(0.5)
        assert cgroup.cpu_usage_s() == pytest.approx(used, abs=0.01), "frozen: no CPU time"
        with pytest.raises(HarnessError, match="delegate"):
            cgroup.set_cpu_quota(0.5)
        cgroup.signal(signal.SIGKILL)  # cgroup.kill, thawed so it takes effect
        assert unit.popen.wait(5) == -signal.SIGKILL
    finally:
        made.remove()
    assert made.leftovers() == []


# -- CPU -------------------------------------------------------------------------------------
def _share(cgroup: ReplicaCgroup, seconds: float) -> float:
    used, start = cgroup.cpu_usage_s(), time.monotonic()
    time.sleep(seconds)
    return (cgroup.cpu_usage_s() - used) / (time.monotonic() - start)


@needs_limits
def test_a_throttled_replica_gets_its_quota_within_20_percent(tmp_path, cgroups):
    events: list[dict] = []
    cgroup = cgroups.replica("busy")
    replica = _replica(tmp_path, cgroup, BUSY, events)
    nemesis = LocalNemesis(lambda name: replica, replica.bus)
    replica.start()
    try:
        _wait(lambda: cgroup.members(), what="the busy loop")
        quota = 0.25
        nemesis.cpu_throttle(cgroup.name, quota)
        # the machine is shared and noisy: a quota is a ceiling other load can push the share
        # under, so take the best of a few 3 s windows (cpuacct) — it must not go over
        shares = []
        for _ in range(3):
            shares.append(_share(cgroup, 3.0))
            if abs(shares[-1] - quota) <= 0.2 * quota:
                break
        assert any(abs(s - quota) <= 0.2 * quota for s in shares), shares
        assert max(shares) <= quota * 1.2, shares
        done = nemesis.cpu_clear(cgroup.name)
        assert done["detail"]["nr_throttled"] > 0
        assert cgroup.cpu_quota() is None
        assert _share(cgroup, 2.0) > quota * 1.5, "unthrottled, the loop takes more"
    finally:
        replica.stop()
    phases = [(e["op"], e["phase"]) for e in events if e["type"] == "fault"]
    assert phases == [("cpu_throttle", "invoke"), ("cpu_throttle", "ok"),
                      ("cpu_clear", "invoke"), ("cpu_clear", "ok")]  # fmt: skip


# -- memory ----------------------------------------------------------------------------------
LIMIT = 64 * 2**20


@needs_limits
def test_allocating_past_the_limit_is_an_oom_kill_recorded_as_such(tmp_path, cgroups):
    events: list[dict] = []
    cgroup = cgroups.replica("hog")
    cgroup.set_memory_limit(LIMIT)
    replica = _replica(tmp_path, cgroup, HOG, events)
    replica.start()
    try:
        exited = _wait(lambda: _lifecycle(events, "exited"), what="the OOM kill")[0]
    finally:
        replica.stop()
    assert exited["exit_code"] == -signal.SIGKILL
    assert exited["oom_killed"] is True and exited["oom_kills"] >= 1
    assert cgroup.oom_kills() >= 1


@needs_limits
def test_a_sigkill_from_the_harness_is_not_called_an_oom_kill(tmp_path, cgroups):
    events: list[dict] = []
    cgroup = cgroups.replica("sleeper")
    replica = _replica(tmp_path, cgroup, SLEEP, events)
    nemesis = LocalNemesis(lambda name: replica, replica.bus)
    replica.start()
    try:
        assert replica.wait_ready(10)
        nemesis.kill("sleeper")
        exited = _wait(lambda: _lifecycle(events, "exited"), what="the exit")[0]
    finally:
        replica.stop()
    assert exited["exit_code"] == -signal.SIGKILL and exited["oom_killed"] is False


# a main process that lives on while its child allocates past the limit
PARENT_OF_HOG = textwrap.dedent(
    f"""
    import subprocess, sys, time
    child = subprocess.Popen({HOG!r})
    print("child", child.wait(), flush=True)
    time.sleep(300)
    """
)


@needs_limits
@pytest.mark.parametrize("group", [False, True])
def test_an_oom_kill_of_a_child_takes_the_replica_only_with_an_oom_group(tmp_path, cgroups,
                                                                         group):  # fmt: skip
    """The kernel kills the largest process (the child); with an OOM group (Kubernetes on
    cgroup v2; emulated by the supervisor on v1) the whole replica goes with it."""
    events: list[dict] = []
    cgroup = cgroups.replica(f"parent-{int(group)}")
    replica = _replica(tmp_path, cgroup, [sys.executable, "-c", PARENT_OF_HOG], events)
    nemesis = LocalNemesis(lambda name: replica, replica.bus)
    replica.start()
    try:
        assert replica.wait_ready(10)
        done = nemesis.memory_limit(cgroup.name, LIMIT, oom_group=group)
        assert done["detail"]["oom_group"] == (("kernel" if HIERARCHY.version == 2
                                                else "harness") if group else None)  # fmt: skip
        oom = _wait(lambda: _lifecycle(events, "oom_kill"), what="an oom_kill event")[0]
        assert oom["oom_kills"] >= 1
        if group:
            exited = _wait(lambda: _lifecycle(events, "exited"), what="the group kill")[0]
            assert exited["oom_killed"] is True and exited["exit_code"] == -signal.SIGKILL
        else:
            _wait(lambda: "child -9" in replica.log_tail(), what="the child's death")
            time.sleep(0.5)
            assert _lifecycle(events, "exited") == [], "the main process lives on"
            assert replica.unit.popen.poll() is None
        nemesis.memory_clear(cgroup.name)
        assert cgroup.memory_limit() is None
    finally:
        replica.stop()


@needs_limits
def test_v1_refuses_a_limit_below_usage_with_one_line(tmp_path, cgroups):
    cgroup = cgroups.replica("big")
    unit = start_unit("test/big", [sys.executable, "-c",
                      "b = bytearray(64 << 20)\nimport time; time.sleep(300)"],
                      env={}, log_path=tmp_path / "big.log", cgroup=cgroup)  # fmt: skip
    try:
        _wait(lambda: (cgroup.memory_usage() or 0) > 60 * 2**20, what="64 MiB in use")
        if HIERARCHY.version == 2:
            pytest.skip("cgroup v2 reclaims and OOM-kills instead")
        with pytest.raises(HarnessError, match="below the current usage"):
            cgroup.set_memory_limit(16 * 2**20)
    finally:
        unit.kill_all(5.0)


# -- freezer ---------------------------------------------------------------------------------
TICKER = textwrap.dedent(
    """
    import sys, time
    n = 0
    while True:
        n += 1
        with open(sys.argv[1], "w") as f:
            f.write(str(n))
        time.sleep(0.02)
    """
)


@needs_cgroups
def test_a_frozen_replica_stops_and_resumes_on_thaw(tmp_path, cgroups):
    events: list[dict] = []
    cgroup = cgroups.replica("ticker")
    counter = tmp_path / "n"
    replica = _replica(tmp_path, cgroup, [sys.executable, "-c", TICKER, str(counter)], events)
    nemesis = LocalNemesis(lambda name: replica, replica.bus)
    replica.start()

    def count() -> int:
        try:
            return int(counter.read_text() or 0)
        except (OSError, ValueError):
            return 0

    try:
        _wait(lambda: count() > 3, what="ticking")
        done = nemesis.freeze("ticker")
        assert done["detail"]["members"] == 1
        frozen_at = count()
        time.sleep(1.0)
        assert count() == frozen_at, "frozen: not one more tick"
        assert cgroup.frozen()
        assert replica.unit.popen.poll() is None
        nemesis.thaw("ticker")
        _wait(lambda: count() > frozen_at + 3, what="ticking again after the thaw")
        # a kill while frozen still kills (the cgroup is thawed for the SIGKILL)
        nemesis.freeze("ticker")
        nemesis.kill("ticker")
        exited = _wait(lambda: _lifecycle(events, "exited"), what="the kill")[0]
        assert exited["exit_code"] == -signal.SIGKILL
    finally:
        replica.stop()
    assert not cgroup.frozen()


@needs_cgroups
def test_freeze_of_a_replica_that_is_not_running_fails_and_is_recorded(tmp_path, cgroups):
    events: list[dict] = []
    cgroup = cgroups.replica("idle")
    replica = _replica(tmp_path, cgroup, SLEEP, events)
    nemesis = LocalNemesis(lambda name: replica, replica.bus)
    with pytest.raises(HarnessError, match="not running"):
        nemesis.freeze("idle")
    assert [e["phase"] for e in events if e["type"] == "fault"] == ["invoke", "fail"]


# -- clean-up --------------------------------------------------------------------------------
@needs_cgroups
def test_remove_kills_members_even_frozen_ones_and_leaves_no_cgroup(tmp_path):
    made = ClusterCgroups(HIERARCHY, f"hab-test-{uuid.uuid4().hex[:8]}").create()
    cgroup = made.replica("frozen")
    unit = start_unit("test/frozen", SLEEP, env={}, log_path=tmp_path / "f.log", cgroup=cgroup)
    _wait(lambda: cgroup.members(), what="the member")
    cgroup.freeze()
    made.remove(timeout_s=10)
    assert unit.popen.wait(5) == -signal.SIGKILL
    assert made.leftovers() == []
    assert not any(d.exists() for d in cgroup.dirs.values())


@needs_cgroups
def test_no_cgroup_is_left_after_an_exception(tmp_path):
    made = ClusterCgroups(HIERARCHY, f"hab-test-{uuid.uuid4().hex[:8]}").create()
    with pytest.raises(RuntimeError):
        try:
            cgroup = made.replica("x")
            start_unit("test/x", SLEEP, env={}, log_path=tmp_path / "x.log", cgroup=cgroup)
            raise RuntimeError("the run failed")
        finally:
            made.remove()
    assert made.leftovers() == []


def _own_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
