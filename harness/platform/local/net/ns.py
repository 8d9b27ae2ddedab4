"""Named network namespaces: make and remove one, talk netlink or run a command inside
it, find and kill its processes.

A named namespace is a file ``/run/netns/<name>`` (what ``ip netns`` and pyroute2 use);
a process is inside it when its ``/proc/<pid>/ns/net`` is the same nsfs inode.

Nothing here forks the harness: pyroute2's own ``netns.create`` and ``IPRoute(netns=...)``
fork a child of this (threaded) process to enter the namespace, and a fork of a process
whose other threads hold locks can hang in the child (seen after the Airflow cluster tests).
Namespaces are made by ``ip netns add`` (a subprocess: fork-and-exec, nothing of ours runs
in the child) and netlink sockets are opened by a short-lived thread that entered the
namespace (:func:`in_netns`; ``setns(2)`` moves only the calling thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
T = TypeVar("T")


def in_netns(netns: str, action: Callable[[], T]) -> T:
    """``action()`` run in a new thread that entered ``netns`` first: ``setns(2)`` changes
    only the calling thread's namespace and the thread ends with it (a socket keeps the
    namespace it was made in), so the rest of the process never sees the switch.
    ``FileNotFoundError`` when the namespace does not exist."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"cannot enter network namespace {netns}")
            finally:
                os.close(fd)
            result.append(action())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def route(netns: str | None = None) -> IPRoute:
    """An rtnetlink handle in ``netns`` (None: this namespace), without a fork."""
    if netns is None:
        return IPRoute()

    def open_socket() -> socket.socket:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)

    return IPRoute(use_socket=in_netns(netns, open_socket))


def create(netns: str) -> None:
    """Make the named namespace ``netns`` (``ip netns add``), or OSError with ip's words."""
    done = subprocess.run(["ip", "netns", "add", netns], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    if done.returncode != 0:
        raise OSError(f"ip netns add {netns}: {done.stderr.strip()}")


def remove(netns: str) -> None:
    """Remove the named namespace ``netns`` (``ip netns del``), or OSError with ip's words."""
    done = subprocess.run(["ip", "netns", "del", netns], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    if done.returncode != 0:
        raise OSError(f"ip netns del {netns}: {done.stderr.strip()}")


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
