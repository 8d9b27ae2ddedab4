"""Harness-side child processes (prober, Locust): started in their own session, stopped
with SIGTERM and, if they do not exit in time, SIGKILL of their whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

_REPO_ROOT = str(Path(__file__).resolve().parents[2])


def spawn_module(
    module: str, config_path: Path, *, stdout: int | IO[bytes], stderr: int | IO[bytes]
) -> subprocess.Popen[bytes]:
    """``python -m module --config config_path`` in a new session, importing this harness."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", module, "--config", str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        start_new_session=True,
    )


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # pgid == pid: start_new_session=True


def stop_child(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """SIGTERM the group, wait ``timeout_s``, then SIGKILL it; returns the exit code."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
        # stragglers of the session; only right after the leader was seen alive, so the
        # group id cannot have been reused
        _signal_group(proc, signal.SIGKILL)
    return proc.returncode
