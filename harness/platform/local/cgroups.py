"""Replicas as cgroups, like containers: membership, kill, freeze and limits from the kernel.

A container runtime puts each container in its own cgroup: every process the container
starts is a member, whatever it does with sessions and process groups, and the runtime
kills, freezes and limits the cgroup. The local platform does the same per replica, in
the hierarchy the host offers — :func:`detect` decides, it never assumes:

- **cgroup v2** when the harness's own cgroup delegates the ``cpu`` and ``memory``
  controllers to its children (``cgroup.subtree_control``): one directory per replica,
  ``cgroup.kill``, ``cgroup.freeze``, ``cpu.max``, ``memory.max``, ``memory.oom.group``;
- **cgroup v1** controllers otherwise (``cpu``, ``memory``, ``freezer``, and ``cpuacct``
  for CPU accounting): one directory per replica in each, ``freezer.state``,
  ``cpu.cfs_quota_us``, ``memory.limit_in_bytes``, ``memory.oom_control``;
- **cgroup v2 without controllers** (a writable v2 hierarchy that delegates none): still
  membership, kill and freeze, but no CPU or memory limits;
- **none** (not root, nothing writable, or ``HA_BENCH_CGROUPS=off``): the caller falls back
  to scanning ``/proc`` (sessions, process groups, an environment marker).

The layout, under the harness's own cgroup of each hierarchy (so limits set on the harness
by whoever started it keep applying): ``<own cgroup>/<cluster id>/<replica>``; the cluster
id starts with ``hab-``. A replica's leader joins its cgroup *before* it execs its
command (:meth:`ReplicaCgroup.join_command`), so nothing it forks is ever outside.
Everything here is kernel state that outlives a crashed harness: :func:`remove_tree`
removes a cluster's cgroups (thaw, kill every member, ``rmdir``), and the watchdog calls
it when the harness dies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.polling import poll
from harness.platform.local import preexec

DISABLE_VAR = "HA_BENCH_CGROUPS"
"""``off`` (or ``0``): use no cgroup at all, only the ``/proc`` scan."""
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "freezer")
V1_REQUIRED = ("cpu", "memory", "freezer")
V2_CONTROLLERS = ("cpu", "memory")
UNIFIED = "unified"  # the key of the one v2 directory in ``dirs``
PERIOD_US = 100_000  # the CFS period a quota is a fraction of (the kernel default)
MIN_QUOTA_US = 1_000  # the smallest quota the kernel accepts
REGISTRY_FILE = "cgroups"  # one cluster cgroup directory per line, for the watchdog


# -- detection -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Hierarchy:
    """Where a cluster's cgroups go: ``parents`` maps a v1 controller (or :data:`UNIFIED`
    for v2) to the harness's own cgroup directory there; ``limits``: CPU quota and memory
    limit available."""

    version: int
    parents: Mapping[str, Path]
    limits: bool
    note: str = ""

    def describe(self) -> dict[str, object]:
        return {"version": self.version, "limits": self.limits, "note": self.note,
                "parents": {k: str(v) for k, v in self.parents.items()}}  # fmt: skip


def _unescape(path: str) -> str:
    """A mountinfo path with its octal escapes (``\\040`` for a space) decoded."""
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount point, root within the hierarchy, super options) of cgroup mounts."""
    found = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((tail[0], _unescape(fields[4]), _unescape(fields[3]),
                      set(tail[2].split(","))))  # fmt: skip
    return found


def _own(proc_cgroup: str) -> dict[str, str]:
    """This process's cgroup per v1 controller, and ``""`` for v2, from /proc/self/cgroup."""
    own = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _inside(mountpoint: str, root: str, own: str) -> Path | None:
    """The directory of cgroup ``own`` in a hierarchy mounted at ``mountpoint`` from
    ``root``; None if the mount does not show it (a container seeing only its subtree)."""
    root = root.rstrip("/") or "/"
    if root != "/" and own != root and not own.startswith(root + "/"):
        return None
    rel = own[len(root) :] if root != "/" else own
    return Path(mountpoint) / rel.lstrip("/")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _writable(path: Path | None) -> bool:
    return path is not None and path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def detect(
    *,
    mountinfo: str | None = None,
    proc_cgroup: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Hierarchy | None, str]:
    """The hierarchy replicas' cgroups should use on this host (None: none is usable) and a
    one-line note saying what was chosen and why. Never raises."""
    environ = os.environ if environ is None else environ
    if environ.get(DISABLE_VAR, "").lower() in ("off", "0", "no", "false"):
        return None, f"cgroups off ({DISABLE_VAR}={environ[DISABLE_VAR]}): /proc scan only"
    if mountinfo is None:
        mountinfo = _read(Path("/proc/self/mountinfo"))
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup"))
    mounts, own = _mounts(mountinfo), _own(proc_cgroup)
    v2 = None
    for fstype, point, root, _opts in mounts:
        if fstype == "cgroup2" and "" in own:
            v2 = _inside(point, root, own[""])
            break
    v1: dict[str, Path] = {}
    for fstype, point, root, opts in mounts:
        if fstype != "cgroup":
            continue
        for name in V1_CONTROLLERS:
            if name in opts and name in own and name not in v1:
                where = _inside(point, root, own[name])
                if where is not None:
                    v1[name] = where
    if _writable(v2):
        assert v2 is not None
        delegated = set(_read(v2 / "cgroup.subtree_control").split())
        if set(V2_CONTROLLERS) <= delegated:
            return (Hierarchy(2, {UNIFIED: v2}, True, f"cgroup v2 at {v2}"),
                    f"cgroups: v2 under {v2} (cpu, memory delegated)")  # fmt: skip
    usable_v1 = {k: p for k, p in v1.items() if _writable(p)}
    if all(c in usable_v1 for c in V1_REQUIRED):
        names = ", ".join(sorted(usable_v1))
        return (Hierarchy(1, usable_v1, True, f"cgroup v1 ({names})"),
                f"cgroups: v1 controllers {names}"
                + (f" (cgroup v2 at {v2} delegates no cpu/memory)" if v2 else ""))  # fmt: skip
    if _writable(v2):
        assert v2 is not None
        note = (f"cgroup v2 at {v2} without cpu/memory controllers: membership, kill and "
                "freeze only")  # fmt: skip
        return Hierarchy(2, {UNIFIED: v2}, False, note), f"cgroups: {note}"
    why = "not root" if os.geteuid() != 0 else "no writable cgroup hierarchy"
    return None, f"cgroups: none usable ({why}); replica membership by /proc scan"


# -- one replica ---------------------------------------------------------------------------
def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()[0].decode()


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _keyed(text: str) -> dict[str, int]:
    """``key value`` lines (``cpu.stat``, ``memory.events``, ``memory.oom_control``)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass
class ReplicaCgroup:
    """One replica's cgroup (in every hierarchy used), shared by all its incarnations.

    ``dirs`` maps each v1 controller (or :data:`UNIFIED`) to the replica's directory.
    """

    name: str
    version: int
    dirs: dict[str, Path]
    limits: bool = True

    # -- lifecycle -------------------------------------------------------------------------
    def create(self) -> ReplicaCgroup:
        for d in self._unique_dirs():
            d.mkdir(exist_ok=True)
        return self

    def _unique_dirs(self) -> list[Path]:
        seen, out = set(), []
        for d in self.dirs.values():  # cpu and cpuacct may be one co-mounted hierarchy
            key = os.path.realpath(d)
            if key not in seen:
                seen.add(key)
                out.append(d)
        return out

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self._unique_dirs()]

    def exists(self) -> bool:
        return any(d.is_dir() for d in self._unique_dirs())

    def join_command(self, command: list[str], user: str | None = None,
                     netns: str | None = None) -> list[str]:  # fmt: skip
        """``command`` prefixed by a tiny pre-exec step (:mod:`.preexec`) that writes its own
        PID into every ``cgroup.procs`` of this cgroup, enters network namespace ``netns``
        (if given), drops to ``user`` (``setreuid``, as ``subprocess.Popen(user=...)`` does)
        and then execs ``command`` — same PID, nothing left between. Exit 125 (and a line on
        stderr) if it cannot join."""
        uid = pwd.getpwnam(user).pw_uid if user else None
        files = [str(p) for p in self.procs_files]
        return preexec.command(command, uid=uid, netns=netns, procs_files=files)

    def add(self, pid: int) -> None:
        """Move ``pid`` (one process; not its existing children) into the cgroup."""
        for path in self.procs_files:
            _write(path, str(pid))

    def pids(self) -> set[int]:
        """Every PID listed in the cgroup (all hierarchies), zombies included."""
        found: set[int] = set()
        for path in self.procs_files:
            found.update(int(x) for x in _read(path).split() if x.isdigit())
        return found

    def members(self) -> list[int]:
        """Live (non-zombie) members, excluding the calling process."""
        me = os.getpid()
        return sorted(p for p in self.pids() if p != me and _state(p) not in (None, "Z", "X"))

    # -- signals ---------------------------------------------------------------------------
    def signal(self, sig: int) -> int:
        """``sig`` to every member; returns how many were signalled. A SIGKILL also thaws a
        frozen cgroup, since a frozen process dies only once it runs again."""
        members = self.members()
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            if self.version == 2 and (self.dirs[UNIFIED] / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    _write(self.dirs[UNIFIED] / "cgroup.kill", "1")
            if self.frozen():
                self.thaw()
        return len(members)

    def kill_all(self, timeout_s: float = 10.0) -> bool:
        """SIGKILL every member until none is left (new ones forked meanwhile included)."""

        def gone() -> bool:
            self.signal(signal.SIGKILL)
            return not self.members()

        return bool(poll(gone, timeout_s=timeout_s, interval_s=0.05))

    # -- freezer ---------------------------------------------------------------------------
    def _freezer(self) -> Path:
        if self.version == 2:
            return self.dirs[UNIFIED] / "cgroup.freeze"
        if "freezer" not in self.dirs:
            raise HarnessError(f"{self.name}: no freezer cgroup",
                               fix="mount the cgroup v1 freezer controller")  # fmt: skip
        return self.dirs["freezer"] / "freezer.state"

    def frozen(self) -> bool:
        """Frozen, or being frozen."""
        try:
            text = _read(self._freezer()).strip()
        except HarnessError:
            return False
        return text in ("1", "FROZEN", "FREEZING")

    def _settled_frozen(self) -> bool:
        if self.version == 2:
            return _keyed(_read(self.dirs[UNIFIED] / "cgroup.events")).get("frozen") == 1
        return _read(self._freezer()).strip() == "FROZEN"

    def freeze(self, timeout_s: float = 10.0) -> float:
        """Freeze every member and wait until the kernel says they all are; returns the
        seconds that took. A :class:`HarnessError` (and thawed again) if it never settles
        (a member stuck in uninterruptible sleep, say)."""
        start = time.monotonic()
        _write(self._freezer(), "1" if self.version == 2 else "FROZEN")
        if not poll(self._settled_frozen, timeout_s=timeout_s, interval_s=0.01):
            self.thaw()
            raise HarnessError(
                f"{self.name}: the cgroup did not freeze within {timeout_s:g} s",
                fix="a member may be in uninterruptible sleep (D); retry",
            )
        return time.monotonic() - start

    def thaw(self) -> None:
        _write(self._freezer(), "0" if self.version == 2 else "THAWED")

    # -- CPU -------------------------------------------------------------------------------
    def _need_limits(self, what: str) -> None:
        if not self.limits:
            raise HarnessError(
                f"{self.name}: {what} needs a cgroup with the cpu and memory controllers, "
                "and this host's cgroup v2 hierarchy delegates none to the harness",
                fix="run the harness as root in a cgroup that delegates cpu and memory "
                "(e.g. `systemd-run --scope -p Delegate=yes ...`), or on a cgroup v1 host",
            )

    def set_cpu_quota(self, cores: float) -> dict[str, int]:
        """At most ``cores`` CPUs' worth of time per period (0.05: 5 % of one core)."""
        self._need_limits("a CPU quota")
        if cores <= 0:
            raise HarnessError(f"cpu quota {cores} is not positive", fix="give cores > 0")
        quota = max(MIN_QUOTA_US, round(cores * PERIOD_US))
        if self.version == 2:
            _write(self.dirs[UNIFIED] / "cpu.max", f"{quota} {PERIOD_US}")
        else:
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(quota))
        return {"quota_us": quota, "period_us": PERIOD_US}

    def clear_cpu_quota(self) -> None:
        if not self.limits:
            return
        if self.version == 2:
            _write(self.dirs[UNIFIED] / "cpu.max", f"max {PERIOD_US}")
        else:
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", "-1")

    def cpu_quota(self) -> float | None:
        """The quota in cores, None if unlimited (or no CPU controller)."""
        if not self.limits:
            return None
        if self.version == 2:
            parts = _read(self.dirs[UNIFIED] / "cpu.max").split()
            return None if not parts or parts[0] == "max" else int(parts[0]) / int(parts[1])
        quota = _read(self.dirs["cpu"] / "cpu.cfs_quota_us").strip()
        period = _read(self.dirs["cpu"] / "cpu.cfs_period_us").strip()
        return None if not quota or int(quota) < 0 else int(quota) / int(period)

    def cpu_usage_s(self) -> float | None:
        """CPU time the members used since the cgroup was made (seconds); None if unknown."""
        if self.version == 2:
            usec = _keyed(_read(self.dirs[UNIFIED] / "cpu.stat")).get("usage_usec")
            return None if usec is None else usec / 1e6
        if "cpuacct" in self.dirs:
            text = _read(self.dirs["cpuacct"] / "cpuacct.usage").strip()
            return int(text) / 1e9 if text.isdigit() else None
        return None

    def cpu_throttling(self) -> dict[str, float]:
        """``nr_periods``, ``nr_throttled`` and ``throttled_s`` from ``cpu.stat``."""
        if self.version == 2:
            stat = _keyed(_read(self.dirs[UNIFIED] / "cpu.stat"))
            throttled = stat.get("throttled_usec", 0) / 1e6
        elif "cpu" in self.dirs:
            stat = _keyed(_read(self.dirs["cpu"] / "cpu.stat"))
            throttled = stat.get("throttled_time", 0) / 1e9
        else:
            return {}
        return {"nr_periods": stat.get("nr_periods", 0),
                "nr_throttled": stat.get("nr_throttled", 0), "throttled_s": throttled}  # fmt: skip

    # -- memory ----------------------------------------------------------------------------
    def set_memory_limit(self, limit: int) -> dict[str, int | None]:
        """Limit the members' memory to ``limit`` bytes (no swap beyond it); going past it
        OOM-kills a member. cgroup v1 refuses a limit below the current usage (EBUSY)."""
        self._need_limits("a memory limit")
        if limit <= 0:
            raise HarnessError(f"memory limit {limit} is not positive", fix="give bytes > 0")
        usage = self.memory_usage()
        try:
            if self.version == 2:
                d = self.dirs[UNIFIED]
                if (d / "memory.swap.max").exists():
                    _write(d / "memory.swap.max", "0")
                _write(d / "memory.max", str(limit))
            else:
                d = self.dirs["memory"]
                memsw = d / "memory.memsw.limit_in_bytes"
                current = int(_read(d / "memory.limit_in_bytes").strip() or -1)
                if memsw.exists() and 0 < limit < current:  # memsw must stay >= the limit
                    _write(d / "memory.limit_in_bytes", str(limit))
                    _write(memsw, str(limit))
                elif memsw.exists():
                    _write(memsw, str(limit))
                    _write(d / "memory.limit_in_bytes", str(limit))
                else:
                    _write(d / "memory.limit_in_bytes", str(limit))
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                mib = f"{usage / 2**20:.0f} MiB" if usage is not None else "more"
                raise HarnessError(
                    f"{self.name}: cgroup v1 cannot set a memory limit of "
                    f"{limit / 2**20:.0f} MiB below the current usage ({mib}): it answers "
                    "EBUSY instead of OOM-killing",
                    fix="give a limit above the replica's usage and let it allocate past it",
                ) from None
            raise
        return {"limit": limit, "usage_before": usage}

    def clear_memory_limit(self) -> None:
        if not self.limits:
            return
        if self.version == 2:
            d = self.dirs[UNIFIED]
            _write(d / "memory.max", "max")
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "max")
            if (d / "memory.oom.group").exists():
                _write(d / "memory.oom.group", "0")
            return
        d = self.dirs["memory"]
        memsw = d / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            _write(memsw, "-1")
        _write(d / "memory.limit_in_bytes", "-1")

    def memory_limit(self) -> int | None:
        if not self.limits:
            return None
        if self.version == 2:
            text = _read(self.dirs[UNIFIED] / "memory.max").strip()
            return None if not text or text == "max" else int(text)
        text = _read(self.dirs["memory"] / "memory.limit_in_bytes").strip()
        return None if not text or int(text) >= 2**62 else int(text)

    def memory_usage(self) -> int | None:
        if not self.limits:
            return None
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        text = _read(self.dirs[UNIFIED if self.version == 2 else "memory"] / name).strip()
        return int(text) if text.isdigit() else None

    def oom_kills(self) -> int | None:
        """Processes the kernel's OOM killer killed in this cgroup so far; None if unknown."""
        if not self.limits:
            return None
        if self.version == 2:
            return _keyed(_read(self.dirs[UNIFIED] / "memory.events")).get("oom_kill")
        return _keyed(_read(self.dirs["memory"] / "memory.oom_control")).get("oom_kill")

    def set_oom_group(self, on: bool) -> bool:
        """An OOM kill takes every member (cgroup v2 ``memory.oom.group``, what Kubernetes
        sets for a container on cgroup v2); False when the kernel cannot (cgroup v1), so
        the caller must do it."""
        path = self.dirs.get(UNIFIED, Path("/nonexistent")) / "memory.oom.group"
        if self.version != 2 or not path.exists():
            return False
        _write(path, "1" if on else "0")
        return True

    # -- removal ---------------------------------------------------------------------------
    def remove(self, timeout_s: float = 10.0) -> None:
        """Thaw, kill every member, and remove the directories; a :class:`HarnessError` if
        a directory is still busy after ``timeout_s``."""
        remove_cgroup(self._unique_dirs(), timeout_s=timeout_s)


def remove_cgroup(dirs: Iterable[Path], *, timeout_s: float = 10.0) -> None:
    """Remove one cgroup (given by its directory in each hierarchy): thaw it, SIGKILL every
    member until none is left, then ``rmdir`` (retried while the kernel still says busy —
    a dead member not yet reaped)."""
    dirs = [d for d in dirs if d.is_dir()]
    if not dirs:
        return
    deadline = time.monotonic() + timeout_s
    names = sorted({p.name for d in dirs for p in d.iterdir() if p.is_dir()})
    for name in names:  # a child cgroup is one directory per hierarchy, removed as one
        remove_cgroup([d / name for d in dirs], timeout_s=max(0.1, deadline - time.monotonic()))
    for d in dirs:
        with contextlib.suppress(OSError):
            if (d / "freezer.state").exists():
                _write(d / "freezer.state", "THAWED")
            if (d / "cgroup.freeze").exists():
                _write(d / "cgroup.freeze", "0")

    def pids() -> set[int]:
        me = os.getpid()
        found = set()
        for d in dirs:
            found.update(int(x) for x in _read(d / "cgroup.procs").split() if x.isdigit())
        return {p for p in found if p != me and _state(p) not in (None, "Z", "X")}

    def emptied() -> bool:
        for pid in pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return not pids()

    poll(emptied, timeout_s=max(0.0, deadline - time.monotonic()), interval_s=0.05)

    def removed() -> bool:
        for d in dirs:
            if d.is_dir():
                try:
                    d.rmdir()
                except OSError as exc:
                    if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        raise
        return not any(d.is_dir() for d in dirs)

    if not poll(removed, timeout_s=max(0.5, deadline - time.monotonic()), interval_s=0.05):
        left = sorted(pids())
        raise HarnessError(f"cgroup {dirs[0]} could not be removed (members: {left})",
                           fix=f"kill them and `rmdir {' '.join(map(str, dirs))}`")  # fmt: skip


# -- one cluster ---------------------------------------------------------------------------
class ClusterCgroups:
    """The cgroups of one cluster: ``<own cgroup>/<cluster id>/`` in each hierarchy of
    ``hierarchy``, one :class:`ReplicaCgroup` per replica beneath."""

    def __init__(self, hierarchy: Hierarchy, cluster_id: str) -> None:
        self.hierarchy = hierarchy
        self.cluster_id = cluster_id
        self.dirs = {k: p / cluster_id for k, p in hierarchy.parents.items()}
        self._replicas: dict[str, ReplicaCgroup] = {}

    def create(self, registry: Path | None = None) -> ClusterCgroups:
        """Make the cluster's directories; their paths are appended to ``registry`` (first,
        so a watchdog finds even a half-made tree)."""
        if registry is not None:
            with open(registry, "a") as f:
                f.writelines(f"{d}\n" for d in self.dirs.values())
        for d in self.dirs.values():
            d.mkdir(exist_ok=True)
        if self.hierarchy.version == 2 and self.hierarchy.limits:
            _write(self.dirs[UNIFIED] / "cgroup.subtree_control",
                   " ".join(f"+{c}" for c in V2_CONTROLLERS))  # fmt: skip
        return self

    def replica(self, name: str) -> ReplicaCgroup:
        """The cgroup of replica ``name`` (made on first use)."""
        if name not in self._replicas:
            cgroup = ReplicaCgroup(name, self.hierarchy.version,
                                   {k: d / name for k, d in self.dirs.items()},
                                   limits=self.hierarchy.limits)  # fmt: skip
            self._replicas[name] = cgroup.create()
        return self._replicas[name]

    def remove(self, timeout_s: float = 10.0) -> None:
        """Remove every replica's cgroup, then the cluster's directories."""
        remove_cgroup(self.dirs.values(), timeout_s=timeout_s)

    def leftovers(self) -> list[Path]:
        """Directories of this cluster still present (none after :meth:`remove`)."""
        return [d for d in self.dirs.values() if d.exists()]


def remove_tree(registry: Path, cluster_id: str, timeout_s: float = 10.0) -> list[str]:
    """Remove the cgroups a cluster registered in ``registry`` (or, if that is gone, those
    named ``cluster_id`` under this process's own cgroups); the problems, one line each."""
    dirs = [Path(line) for line in _read(registry).split() if line]
    if not dirs:
        hierarchy, _ = detect()
        dirs = [p / cluster_id for p in hierarchy.parents.values()] if hierarchy else []
    problems = [f"{d}: not named {cluster_id}; left alone" for d in dirs if d.name != cluster_id]
    try:  # one cgroup in every hierarchy at once: a freezer thaw must come before the kills
        remove_cgroup([d for d in dirs if d.name == cluster_id], timeout_s=timeout_s)
    except (HarnessError, OSError) as exc:
        problems.append(str(exc))
    return problems
