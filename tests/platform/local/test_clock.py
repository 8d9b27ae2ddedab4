"""Clock skew through libfaketime on real processes: the wall clock moves by the offset in
the timestamp file (also while the process runs), the monotonic clock does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness.core.errors import HarnessError
from harness.platform.local.clock import (
    SkewableClock,
    find_libfaketime,
    offset_text,
    parse_offset,
    sleep_is_broken,
)

try:
    LIB = find_libfaketime()
except HarnessError as exc:
    LIB = None
    WHY = str(exc)
needs_faketime = pytest.mark.skipif(LIB is None, reason="libfaketime missing")

REPORT = "import json, time; print(json.dumps([time.time(), time.monotonic()]), flush=True)"
# prints its clocks every 0.1 s — through time.sleep, which libfaketime#426 breaks
LOOP = (
    "import json, sys, time\n"
    "while True:\n"
    "    print(json.dumps([time.time(), time.monotonic()]), flush=True)\n"
    "    time.sleep(0.1)\n"
)


def test_offsets_are_written_as_libfaketime_reads_them():
    assert offset_text(60) == "+60s"
    assert offset_text(-600) == "-600s"
    assert offset_text(0.25) == "+0.25s"
    assert offset_text(0) == "+0"
    for seconds in (60, -60, 600, -0.5, 0):
        assert parse_offset(offset_text(seconds)) == seconds
    assert parse_offset("+10m") == 600 and parse_offset("-1h") == -3600
    assert parse_offset("") == 0


@pytest.fixture
def clock(tmp_path):
    assert LIB is not None
    fix = sleep_is_broken(str(LIB), sys.executable)
    return SkewableClock(tmp_path / "faketime" / "replica", LIB,
                         sleep_fix_dir=tmp_path / "site" if fix else None)  # fmt: skip


@needs_faketime
@pytest.mark.parametrize("skew_s", [60, -60, 600])
def test_a_skewed_process_reports_the_shifted_wall_clock_and_a_true_monotonic(clock, skew_s):
    clock.set(skew_s)
    env = clock.env(os.environ)
    assert env["DONT_FAKE_MONOTONIC"] == "1" and env["FAKETIME_NO_CACHE"] == "1"
    before_wall, before_mono = time.time(), time.monotonic()
    out = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True,
                         text=True, timeout=30, check=True).stdout  # fmt: skip
    after_wall, after_mono = time.time(), time.monotonic()
    wall, mono = json.loads(out)
    assert before_wall + skew_s - 0.5 <= wall <= after_wall + skew_s + 0.5
    assert before_mono - 0.5 <= mono <= after_mono + 0.5, "the monotonic clock is untouched"


@needs_faketime
def test_the_skew_changes_while_the_process_runs_and_its_sleeps_still_work(clock, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", LOOP], env=clock.env(os.environ),
                            stdout=subprocess.PIPE, text=True)  # fmt: skip

    def offsets(n: int) -> list[tuple[float, float]]:
        """(wall - real wall, monotonic - real monotonic) of the next ``n`` lines."""
        out = []
        for _ in range(n):
            line = proc.stdout.readline()
            assert line, "the skewed process died (did time.sleep fail?)"
            wall, mono = json.loads(line)
            out.append((wall - time.time(), mono - time.monotonic()))
        return out

    try:
        assert all(abs(w) < 1 for w, _ in offsets(3))
        for skew_s in (60, -600, 0):
            clock.set(skew_s)
            offsets(3)  # lines printed before the change may still be in the pipe
            seen = offsets(3)
            assert all(abs(w - skew_s) < 1 for w, _ in seen), (skew_s, seen)
            assert all(abs(m) < 1 for _, m in seen), "monotonic: real throughout"
        assert clock.offset() == 0
    finally:
        proc.kill()
        proc.wait()


@needs_faketime
def test_the_sleep_bug_is_detected_and_worked_around(clock):
    """libfaketime 0.9.10 + DONT_FAKE_MONOTONIC: time.sleep fails (wolfcw/libfaketime#426);
    the replica's sitecustomize makes it sleep in select(), for the right time."""
    if clock.sleep_fix_dir is None:
        pytest.skip(f"{LIB} sleeps correctly (libfaketime >= 0.9.11)")
    bare = {k: v for k, v in clock.env(os.environ).items() if k != "PYTHONPATH"}
    broken = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.01)"], env=bare,
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert broken.returncode != 0 and "Invalid argument" in broken.stderr
    timed = "import time; t = time.monotonic(); time.sleep(0.3); print(time.monotonic() - t)"
    out = subprocess.run([sys.executable, "-c", timed], env=clock.env(os.environ),
                         capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    assert 0.29 <= float(out.stdout) < 1.5
