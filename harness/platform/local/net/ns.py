"""Named network namespaces: run a command inside one, find and kill its processes.

A named namespace is a file ``/run/netns/<name>`` (what ``ip netns`` and pyroute2 use);
a process is inside it when its ``/proc/<pid>/ns/net`` is the same nsfs inode.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def exec_prefix(netns: str) -> list[str]:
    """argv prefix running a command in ``netns`` (``ip netns exec`` execs it: no wrapper)."""
    return ["ip", "netns", "exec", netns]


def names() -> list[str]:
    """Every named network namespace."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except OSError:
        return []


def run(netns: str, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``netns`` and wait; output captured as text."""
    return subprocess.run([*exec_prefix(netns), *argv], input=stdin, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def _inode(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def pids_in(netns: str) -> list[int]:
    """Processes whose network namespace is ``netns`` (by nsfs inode)."""
    target = _inode(NETNS_DIR / netns)
    if target is None:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _inode(entry / "ns" / "net") == target:
            found.append(int(entry.name))
    return found


def pids_with_args(*needles: str) -> list[int]:
    """Processes whose command line contains every one of ``needles`` as an argument."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(n.encode() in args for n in needles):
            found.append(int(entry.name))
    return found


def kill_all(pids: list[int], timeout_s: float = 5.0) -> list[int]:
    """SIGKILL ``pids`` (and SIGCONT, for stopped ones) until gone; those still alive."""
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive:
        for pid in alive:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        time.sleep(0.05)
        alive = [p for p in alive if running(p)]
        if time.monotonic() > deadline:
            break
    return alive


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has no namespace left and dies with its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")
