"""Process units behave like containers: the whole tree is signalled and reaped."""

import signal
import socket
import sys
import textwrap
import time
import uuid

import pytest

from harness.platform.local.process import (
    find_processes,
    free_port,
    port_is_free,
    start_unit,
)

# a parent whose child escapes the process group (as Airflow's task runner does)
ESCAPING_TREE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import os,time; os.setsid(); time.sleep(300)"])
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("started", flush=True)
    time.sleep(300)
    """
)


@pytest.fixture
def units():
    """Start units with unique ids; every one is killed at the end, pass or fail."""
    started = []

    def start(command, log_path):
        unit = start_unit(f"test/{uuid.uuid4().hex}", command, env={}, log_path=log_path)
        started.append(unit)
        return unit

    yield start
    for unit in started:
        unit.kill_all(5.0)


def _wait_for_line(path, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}")


def test_kill_reaches_children_that_left_the_group(tmp_path, units):
    log = tmp_path / "unit.log"
    unit = units([sys.executable, "-c", ESCAPING_TREE], log)
    _wait_for_line(log, "started")
    deadline = time.monotonic() + 10
    while True:  # the child calls setsid right after it starts
        members = unit.members()
        escaped = [p for p in members if p not in find_processes(pgid=unit.pid)]
        if len(escaped) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(members) == 3, members  # leader, in-group child, escaped child
    assert len(escaped) == 1, "the setsid child is found by its marker, not its group"
    unit.signal(signal.SIGKILL)
    assert unit.wait_gone(5.0)
    assert unit.popen.returncode == -signal.SIGKILL
    assert find_processes(marker=("HA_BENCH_UNIT", unit.unit_id)) == []


def test_parent_only_kill_would_leave_the_port_served(tmp_path, units):
    """The trap from the platform notes: killing only the parent PID kills nothing useful."""
    port = free_port()
    server = (
        "import os, socket, time\n"
        f"s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {port})); s.listen()\n"
        "if os.fork() == 0:\n    time.sleep(300)\n"
        "print('listening', flush=True); time.sleep(300)\n"
    )
    log = tmp_path / "srv.log"
    unit = units([sys.executable, "-c", server], log)
    _wait_for_line(log, "listening")
    unit.popen.kill()  # parent PID only
    unit.popen.wait()
    assert not port_is_free(port), "the forked child still holds the listening socket"
    unit.signal(signal.SIGKILL)  # the whole unit, as a container runtime does
    assert unit.wait_gone(5.0)
    assert port_is_free(port)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_kill_all_handles_stopped_processes(tmp_path, units):
    unit = units([sys.executable, "-c", "import time; time.sleep(300)"], tmp_path / "x.log")
    unit.signal(signal.SIGSTOP)
    assert unit.kill_all(5.0)
    assert unit.members() == []


def _alive(pid: int) -> bool:
    """Running (a zombie, whose parent died and nobody reaps, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _escaping_unit(tmp_path, units):
    unit = units([sys.executable, "-c", ESCAPING_TREE], tmp_path / "unit.log")
    _wait_for_line(tmp_path / "unit.log", "started")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        group = find_processes(pgid=unit.pid)  # one scan decides both sides
        in_group = [p for p in group if p != unit.pid]
        escaped = [p for p in unit.members() if p not in group]
        if len(in_group) == 1 and escaped:  # the setsid child has left the group
            return unit, in_group[0], escaped[0]
        time.sleep(0.05)
    raise AssertionError("the test tree did not start")


@pytest.mark.parametrize(
    ("scope", "leader_dies", "group_child_dies"),
    [("group", True, True), ("leader", True, False)],
)
def test_stop_signal_scope_is_dumb_init_like(tmp_path, units, scope, leader_dies,
                                             group_child_dies):  # fmt: skip
    """``group`` signals the leader's group (not children that left it); ``leader`` only it."""
    unit, group_child, escaped = _escaping_unit(tmp_path, units)
    unit.signal_stop(signal.SIGTERM, scope)
    unit.popen.wait(5)
    deadline = time.monotonic() + 5  # a loaded machine may take a while to deliver it
    while _alive(group_child) == group_child_dies and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert (unit.popen.returncode == -signal.SIGTERM) == leader_dies
    assert _alive(group_child) != group_child_dies
    assert _alive(escaped), "a child in its own process group never gets the stop signal"
    assert unit.kill_all(5.0), "after the grace period everything is killed"
