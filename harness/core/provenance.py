"""Where a result came from: the machine that measured it and the harness source that ran.

Both are recorded with every result so two numbers can be told apart by more than their
date; neither function raises — what cannot be found is None.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # harness/


def machine() -> dict[str, Any]:
    """``hostname``, ``cpus`` (usable by this process), ``python`` (version), ``system``
    (``Linux``), ``kernel_release`` (``platform.release()``) and ``cpu_model`` (the first
    ``model name`` of /proc/cpuinfo; None where there is none, e.g. on ARM or macOS)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    return {
        "hostname": socket.gethostname(),
        "cpus": cpus,
        "python": platform.python_version(),
        "system": platform.system(),
        "kernel_release": platform.release(),
        "cpu_model": cpu_model(),
    }


def cpu_model(cpuinfo: Path = CPUINFO) -> str | None:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip() or None
    return None


def harness_source(package_dir: Path | None = None) -> dict[str, Any]:
    """``{"git_commit": sha, "git_dirty": bool}`` of the git checkout the harness package
    (or ``package_dir``) lives in; both None when it is not in one (an installed wheel) or
    git is missing. ``git_dirty``: uncommitted changes, untracked files included."""
    where = Path(package_dir or PACKAGE_DIR)
    commit = _git(where, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = _git(where, "status", "--porcelain")
    return {"git_commit": commit, "git_dirty": None if status is None else status != ""}


def _git(where: Path, *args: str) -> str | None:
    """git's stdout (stripped) or None on any failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        result = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip()
