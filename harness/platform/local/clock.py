"""A replica's wall clock, skewed at run time through libfaketime.

A replica that may be skewed (the topology's ``clock_skew_replicas``) starts with
libfaketime preloaded and reading its offset from a file on every call to the clock
(``FAKETIME_TIMESTAMP_FILE`` + ``FAKETIME_NO_CACHE=1``); the fault only rewrites that file
(``+60s``, ``-600s``; ``+0`` undoes it), so the skew starts and ends without a restart.
``DONT_FAKE_MONOTONIC=1`` keeps the monotonic clock real: only the wall clock is wrong, as
on a host whose clock drifted or was set wrong.

libfaketime before 0.9.11 (Debian 12 ships 0.9.10) breaks ``clock_nanosleep`` on the
monotonic clock with an absolute deadline when ``DONT_FAKE_MONOTONIC`` is set
(wolfcw/libfaketime#426): every ``time.sleep`` of Python >= 3.11 fails with EINVAL.
:func:`sleep_is_broken` finds out with a real probe; where it is, the replica also gets a
``sitecustomize`` (:data:`SITECUSTOMIZE`) that makes ``time.sleep`` wait in ``select()``
— same contract, a relative timeout libfaketime passes through untouched.
"""

from __future__ import annotations

import functools
import glob
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from harness.core.errors import HarnessError

LIB_VAR = "HA_BENCH_LIBFAKETIME"  # the library to preload, if not the system's
FIX_VAR = "HA_BENCH_FAKETIME_SLEEP_FIX"
_LIB_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)

SITECUSTOMIZE = '''"""Written by airflow-ha-bench for a replica under libfaketime:
time.sleep() through select(), since libfaketime < 0.9.11 with DONT_FAKE_MONOTONIC=1
fails every absolute monotonic clock_nanosleep() with EINVAL (wolfcw/libfaketime#426).
Then the next sitecustomize on sys.path, if any, runs as it would have."""
import os
import sys

if os.environ.get("HA_BENCH_FAKETIME_SLEEP_FIX") == "1":
    import select
    import time

    def _sleep(secs, _select=select.select, _monotonic=time.monotonic):
        if secs < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = _monotonic() + secs
        remaining = float(secs)
        while remaining > 0:
            _select([], [], [], remaining)  # retried after a signal (PEP 475)
            remaining = deadline - _monotonic()

    _sleep.__doc__ = time.sleep.__doc__
    time.sleep = _sleep


def _chain():
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_chain()
del _chain
'''


def find_libfaketime() -> Path:
    """The libfaketime to preload (``$HA_BENCH_LIBFAKETIME``, else the system's)."""
    given = os.environ.get(LIB_VAR)
    candidates = [given] if given else [p for g in _LIB_GLOBS for p in sorted(glob.glob(g))]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise HarnessError(
        "libfaketime not found" + (f" at {given} ({LIB_VAR})" if given else ""),
        fix="install it: `apt-get install faketime` (Debian/Ubuntu), or run scripts/setup.sh",
    )


def offset_text(seconds: float) -> str:
    """The timestamp-file text for an offset: ``+60s``, ``-0.25s``; ``+0`` for none."""
    if seconds == 0:
        return "+0"
    text = f"{seconds:+.6f}".rstrip("0").rstrip(".")
    return f"{text}s"


def parse_offset(text: str) -> float:
    """The offset in seconds of a timestamp file's text (:func:`offset_text`'s forms and
    libfaketime's ``m``/``h``/``d`` suffixes); 0 for an empty file."""
    text = text.strip()
    if not text:
        return 0.0
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(text[-1])
    try:
        return float(text[:-1]) * scale if scale else float(text)
    except ValueError:
        raise HarnessError(f"not a relative faketime offset: {text!r}",
                           fix="write e.g. +60s or -10m") from None  # fmt: skip


@functools.cache
def sleep_is_broken(lib: str, python: str) -> bool:
    """True if ``time.sleep`` fails under ``lib`` with ``DONT_FAKE_MONOTONIC=1`` in
    ``python`` (wolfcw/libfaketime#426) — a real probe, once per pair."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_PRELOAD": lib,
           "FAKETIME": "+0", "DONT_FAKE_MONOTONIC": "1"}  # fmt: skip
    try:
        done = subprocess.run([python, "-I", "-S", "-c", "import time; time.sleep(0.001)"],
                              env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode != 0 and "Invalid argument" in done.stderr


class SkewableClock:
    """The clock of one replica that may be skewed: its timestamp file, and the
    environment that makes the replica read it."""

    def __init__(self, file: Path, lib: Path, *, sleep_fix_dir: Path | None = None) -> None:
        self.file = file
        self.lib = lib
        self.sleep_fix_dir = sleep_fix_dir
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("+0\n")
        file.chmod(0o644)  # the replica may run as another user
        if sleep_fix_dir is not None:
            sleep_fix_dir.mkdir(parents=True, exist_ok=True)
            (sleep_fix_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` plus the preload (before any preload ``base`` has) and its settings."""
        env = dict(base)
        preload = env.get("LD_PRELOAD")
        env["LD_PRELOAD"] = f"{self.lib}:{preload}" if preload else str(self.lib)
        env.update({"FAKETIME_TIMESTAMP_FILE": str(self.file), "FAKETIME_NO_CACHE": "1",
                    "DONT_FAKE_MONOTONIC": "1"})  # fmt: skip
        env.pop("FAKETIME", None)  # would override the file
        if self.sleep_fix_dir is not None:
            path = env.get("PYTHONPATH")
            env["PYTHONPATH"] = f"{self.sleep_fix_dir}:{path}" if path else str(self.sleep_fix_dir)
            env[FIX_VAR] = "1"
        return env

    def set(self, seconds: float) -> str:
        """Skew the replica's wall clock by ``seconds`` from now on; returns the file text."""
        text = offset_text(seconds)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.chmod(0o644)
        os.replace(tmp, self.file)  # a reader never sees a half-written file
        return text

    def reset(self) -> str:
        return self.set(0)

    def offset(self) -> float:
        try:
            return parse_offset(self.file.read_text())
        except OSError:
            return 0.0
