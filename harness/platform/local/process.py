"""Container-like process units: start, signal and reap a whole process tree.

A container runtime signals every process of a container (its cgroup), not one PID.
Locally, a *unit* is one replica incarnation. Where the host has a usable cgroup
hierarchy, the unit's leader joins its replica's cgroup before it execs
(:mod:`.cgroups`), so every process it ever forks is a member, as in a container. Either
way it is started in its own session (and process group), and every process it spawns
inherits the environment variable ``HA_BENCH_UNIT=<unit id>``. Members of a unit are the
processes of its cgroup, in its session, its process group, *or* carrying its marker — the
/proc scan stays as a cross-check, so a process that left the cgroup is still found:

- the session catches children that left the process group — Airflow's Task SDK
  supervisor calls ``setpgid`` for each task process, so ``killpg`` alone would leave
  running tasks behind when a worker is killed;
- the marker catches children that called ``setsid`` — but not those that rewrote their
  process title (Redis, Airflow's setproctitle), which overwrites ``/proc/PID/environ``;
  those are caught by the session.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.polling import poll
from harness.platform.local import preexec
from harness.platform.local.cgroups import ReplicaCgroup
from harness.platform.local.net import ns

UNIT_VAR = "HA_BENCH_UNIT"
CLUSTER_VAR = "HA_BENCH_CLUSTER"


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgid, session id) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    return rest[0].decode(), int(rest[2]), int(rest[3])


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return needle in f.read().split(b"\0")
    except OSError:
        return False


def find_processes(
    *,
    pgid: int | None = None,
    sessions: Iterable[int] = (),
    marker: tuple[str, str] | None = None,
) -> list[int]:
    """Live (non-zombie) PIDs in group ``pgid``, in one of ``sessions``, or with ``marker``."""
    sids = set(sessions)
    needle = f"{marker[0]}={marker[1]}".encode() if marker else None
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        if (
            (pgid is not None and stat[1] == pgid)
            or stat[2] in sids
            or (needle and _environ_has(pid, needle))
        ):
            found.append(pid)
    return found


def signal_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def port_is_free(port: int, host: str = "127.0.0.1", netns: str | None = None) -> bool:
    """True if a server could bind ``host:port`` now (SO_REUSEADDR, as servers bind); with
    ``netns``, inside that named network namespace (``host``: any address there)."""
    if netns is not None:
        try:
            return ns.in_netns(netns, lambda: port_is_free(port, "0.0.0.0"))
        except FileNotFoundError:  # the namespace is gone (a network torn down): nothing binds
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_port(host: str = "127.0.0.1", exclude: set[int] | None = None) -> int:
    """A TCP port that is free on ``host`` now, not in ``exclude``."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if not exclude or port not in exclude:
            return port
    raise RuntimeError("no free port found")


@dataclass
class Unit:
    """One started process tree (one replica incarnation)."""

    unit_id: str
    popen: subprocess.Popen
    started_mono: float
    started_wall: float
    log_offset: int = 0
    log_path: Path | None = None
    signals: list[tuple[float, int]] = field(default_factory=list)
    cgroup: ReplicaCgroup | None = None
    oom_base: int | None = None  # the cgroup's OOM kill count when this incarnation started

    @property
    def pid(self) -> int:
        return self.popen.pid

    def members(self) -> list[int]:
        """Live processes of this unit: its cgroup's (if any) and those the /proc scan finds."""
        pid = self.popen.pid
        found = find_processes(pgid=pid, sessions=(pid,), marker=(UNIT_VAR, self.unit_id))
        if self.cgroup is not None:
            return sorted(set(found).union(self.cgroup.members()))
        return found

    def signal(self, sig: int, *, record: bool = True) -> int:
        """Send ``sig`` to every member, as a container runtime does; returns how many. A
        SIGKILL also thaws a frozen cgroup (a frozen process dies only once thawed);
        ``record=False`` leaves it out of :attr:`signals` (a kill the kernel would do)."""
        if record:
            self.signals.append((time.monotonic(), sig))
        members = self.members()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)
        signal_pids(members, sig)
        if sig == signal.SIGKILL and self.cgroup is not None and self.cgroup.frozen():
            self.cgroup.thaw()
        return len(members)

    def resume_all(self) -> None:
        """SIGCONT every member and thaw the cgroup: a stopped or frozen process must run
        to see a stop signal."""
        self.signal(signal.SIGCONT)
        if self.cgroup is not None and self.cgroup.frozen():
            self.cgroup.thaw()

    def oom_kills(self) -> int | None:
        """OOM kills in this unit's cgroup since this incarnation started (None: unknown)."""
        if self.cgroup is None or self.oom_base is None:
            return None
        now = self.cgroup.oom_kills()
        return None if now is None else now - self.oom_base

    def signal_stop(self, sig: int, scope: str = "group") -> int:
        """Deliver a stop signal as the official image's dumb-init does.

        ``group`` (dumb-init's default setsid mode): the leader's process group — children
        that moved to their own group (task processes) are not signalled. ``leader``
        (``DUMB_INIT_SETSID=0``, what Airflow prescribes for Celery workers): only the main
        process, so it can shut down warm. What is left after the grace period gets SIGKILL
        from :meth:`kill_all`, as a runtime kills the container's cgroup.
        """
        self.signals.append((time.monotonic(), sig))
        try:
            if scope == "leader":
                os.kill(self.popen.pid, sig)
            else:
                os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            return 0
        return 1 if scope == "leader" else len(find_processes(pgid=self.popen.pid))

    def wait_gone(self, timeout_s: float) -> bool:
        """Reap the leader and wait until no member is left; True if all are gone."""
        deadline = time.monotonic() + timeout_s

        def no_member_left() -> bool:
            self.popen.poll()
            return not self.members()

        if not poll(no_member_left, timeout_s=timeout_s, interval_s=0.02, deadline=deadline):
            return False
        # the leader may have died between poll() and members(): reap it now
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(max(0.0, min(1.0, deadline - time.monotonic())))
        return True

    def kill_all(self, timeout_s: float = 10.0, *, record: bool = True) -> bool:
        """SIGKILL (and a thaw, for frozen members) until every member is gone."""

        def killed() -> bool:
            self.signal(signal.SIGKILL, record=record)
            return self.wait_gone(0.5)  # paces the loop: no extra sleep

        poll(killed, timeout_s=timeout_s, interval_s=0.0)
        return not self.members()


def start_unit(
    unit_id: str,
    command: list[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path | None = None,
    user: str | None = None,
    registry: Path | None = None,
    cgroup: ReplicaCgroup | None = None,
    netns: str | None = None,
) -> Unit:
    """Start ``command`` in a new session with the unit marker, output appended to ``log_path``.

    The session id is appended to ``registry``, so a watchdog can find the unit's
    processes even if the harness dies. With a ``cgroup``, the leader joins it before it
    execs ``command`` (and drops to ``user`` after joining): nothing escapes by forking early.
    With ``netns`` (a named network namespace: the replica's pod-network host), the leader
    enters it before it execs, after the cgroup and before dropping to ``user``
    (:mod:`.preexec`; same PID and session: the command is the session leader).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**env, UNIT_VAR: unit_id}
    oom_base = None
    if cgroup is not None:
        command = cgroup.join_command(command, user, netns)
        user = None  # the join step drops privileges itself, after writing cgroup.procs
        oom_base = cgroup.oom_kills()
    elif netns is not None:
        uid = pwd.getpwnam(user).pw_uid if user else None
        command = preexec.command(command, uid=uid, netns=netns)
        user = None
    with open(log_path, "ab") as log:
        offset = log.tell()
        wall, mono = time.time(), time.monotonic()
        popen = subprocess.Popen(
            command,
            env=full_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            close_fds=True,
        )
    if registry is not None:
        with open(registry, "a") as f:
            f.write(f"{popen.pid}\n")
    return Unit(unit_id, popen, mono, wall, log_offset=offset, log_path=log_path,
                cgroup=cgroup, oom_base=oom_base)  # fmt: skip


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty if absent)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
