"""The pre-exec step of a unit: join its cgroups, enter its network namespace, drop to its
user, then exec the command — same PID, nothing left between.

``python -I -S -c SCRIPT UID NETNS CGROUP_PROCS... -- COMMAND...`` (``UID`` and ``NETNS``
may be empty). It runs as the unit's leader, started by ``subprocess.Popen`` in a new
session, so the session, process group and PID the supervisor and the kill tests rely on
are the command's own. The order matters: the cgroup first (so nothing it forks is ever
outside), then ``setns(2)`` into ``/run/netns/NETNS`` (needs CAP_SYS_ADMIN: before the
privileges are dropped), then ``setreuid`` (as ``Popen(user=...)`` does).

``setns`` here rather than an ``ip netns exec NETNS`` prefix: that also execs (same PID), but
gives the command a private mount namespace with ``/sys`` remounted for the network
namespace, which hides the cgroup v1 hierarchies mounted under ``/sys/fs/cgroup`` from the
replica and from the cgroup join after it; ``setns`` keeps the mount namespace (the size-
limited PostgreSQL disk and the cgroups stay as they are) and changes only the network.
Exit 125 (and one line on stderr) if a step fails.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

SCRIPT = (
    "import os, sys\n"
    "args = sys.argv[1:]; uid = args.pop(0); netns = args.pop(0); cut = args.index('--')\n"
    "pid = str(os.getpid()).encode()\n"
    "for path in args[:cut]:\n"
    "    try:\n"
    "        fd = os.open(path, os.O_WRONLY); os.write(fd, pid); os.close(fd)\n"
    "    except OSError as exc:\n"
    "        sys.stderr.write(f'ha-bench: cannot join cgroup {path}: {exc}\\n')\n"
    "        os._exit(125)\n"
    "if netns:\n"
    "    import ctypes\n"
    "    try:\n"
    "        fd = os.open('/run/netns/' + netns, os.O_RDONLY)\n"
    "    except OSError as exc:\n"
    "        sys.stderr.write(f'ha-bench: no network namespace {netns}: {exc}\\n')\n"
    "        os._exit(125)\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n"
    "    if libc.setns(fd, 0x40000000) != 0:\n"  # CLONE_NEWNET
    "        err = ctypes.get_errno()\n"
    "        sys.stderr.write(f'ha-bench: cannot enter {netns}: {os.strerror(err)}\\n')\n"
    "        os._exit(125)\n"
    "    os.close(fd)\n"
    "if uid:\n"
    "    os.setreuid(int(uid), int(uid))\n"
    "os.execvp(args[cut + 1], args[cut + 1:])\n"
)


def command(
    argv: list[str], *, uid: int | None = None, netns: str | None = None,
    procs_files: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """``argv`` behind the pre-exec step."""
    return [sys.executable, "-I", "-S", "-c", SCRIPT, "" if uid is None else str(uid),
            netns or "", *procs_files, "--", *argv]  # fmt: skip
