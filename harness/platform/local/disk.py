"""A replica's data on a size-limited filesystem, which a fault fills and frees.

A tmpfs with ``size=`` behaves like a small disk: a write past its size fails with ENOSPC.
It is mounted by the cluster, named in ``/proc/mounts`` by its source
``<cluster id>-<name>`` (cluster ids start with ``hab-``), and unmounted on every exit
path — by the cluster's ``stop()``, and by the watchdog (:func:`unmount_cluster`) if the
harness dies. :meth:`SizedDisk.fill` writes a filler file (owned by root, outside the
replica's data directory) until the filesystem is full; :meth:`SizedDisk.free` deletes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError

FILLER = "ha-bench-filler"
_CHUNKS = (1 << 20, 1 << 12)  # 1 MiB writes until full, then a page at a time


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")


def mounts() -> list[tuple[str, Path, str]]:
    """(source, mount point, fstype) of every mount this process sees."""
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((_unescape(parts[0]), Path(_unescape(parts[1])), parts[2]))
    return out


def _umount(point: Path) -> str | None:
    """Unmount ``point`` (lazily if it stays busy); the problem, or None."""
    for attempt in range(20):
        done = subprocess.run(["umount", str(point)], capture_output=True, text=True)
        if done.returncode == 0 or not any(p == point for _, p, _ in mounts()):
            return None
        if attempt < 19:
            time.sleep(0.1)  # a process of it may still be on its way out
    lazy = subprocess.run(["umount", "-l", str(point)], capture_output=True, text=True)
    if lazy.returncode == 0:
        return f"{point} was busy: unmounted lazily"
    return f"cannot unmount {point}: {(lazy.stderr or done.stderr).strip()}"


@dataclass
class SizedDisk:
    """A tmpfs of ``size_mb`` MiB at ``mountpoint``, named ``source`` in /proc/mounts."""

    mountpoint: Path
    source: str
    size_mb: int

    @property
    def filler(self) -> Path:
        return self.mountpoint / FILLER

    def mounted(self) -> bool:
        return any(s == self.source and p == self.mountpoint for s, p, _ in mounts())

    def mount(self) -> SizedDisk:
        if os.geteuid() != 0:
            raise HarnessError(f"mounting a {self.size_mb} MiB tmpfs needs root",
                               fix="run as root, or leave postgres_disk_mb unset")  # fmt: skip
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0755", self.source,
             str(self.mountpoint)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise HarnessError(
                f"cannot mount a tmpfs at {self.mountpoint}: {done.stderr.strip()}",
                fix="run as root with mount(8)",
            )
        return self

    def unmount(self) -> str | None:
        """Unmount (nothing if not mounted); the problem, or None."""
        if not self.mounted():
            return None
        return _umount(self.mountpoint)

    def usage(self) -> dict[str, int]:
        st = os.statvfs(self.mountpoint)
        return {"size_bytes": st.f_blocks * st.f_frsize, "free_bytes": st.f_bavail * st.f_frsize}

    def fill(self) -> dict[str, int]:
        """Write the filler until the filesystem is full (ENOSPC); how much it took."""
        free_before = self.usage()["free_bytes"]
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in _CHUNKS:
                block = b"\0" * chunk
                while True:
                    try:
                        n = os.write(fd, block)
                    except OSError as exc:
                        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                            break
                        raise
                    written += n
                    if n < chunk:
                        break
        finally:
            os.close(fd)
        return {"written_bytes": written, "free_before": free_before,
                "free_after": self.usage()["free_bytes"]}  # fmt: skip

    def free(self) -> dict[str, int]:
        """Delete the filler; the bytes that freed."""
        size = 0
        with contextlib.suppress(FileNotFoundError):
            size = self.filler.stat().st_size
            self.filler.unlink()
        return {"freed_bytes": size, "free_after": self.usage()["free_bytes"]}


def cluster_mounts(cluster_id: str) -> list[Path]:
    """Mount points whose source names the cluster (``<cluster id>-...``)."""
    return [p for s, p, _ in mounts() if s.startswith(f"{cluster_id}-")]


def unmount_cluster(cluster_id: str) -> list[str]:
    """Unmount everything the cluster mounted (deepest first); the problems, one line each."""
    problems = []
    for point in sorted(cluster_mounts(cluster_id), key=lambda p: len(p.parts), reverse=True):
        problem = _umount(point)
        if problem:
            problems.append(problem)
    return problems
