"""poll: the truthy value, the last falsy one on time-out, the sooner of timeout and deadline,
at least one call. Real-clock tests use only generous bounds (the machine is noisy); the
exact schedule is checked on a fake clock."""

import time

import pytest

from harness.core import polling
from harness.core.polling import poll


class FakeClock:
    """Stands in for the ``time`` module inside ``harness.core.polling``: sleeping advances."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(polling, "time", fake)
    return fake


def test_returns_the_truthy_value():
    calls = []

    def third_time() -> str | None:
        calls.append(1)
        return "done" if len(calls) == 3 else None

    assert poll(third_time, timeout_s=30, interval_s=0.01) == "done"
    assert len(calls) == 3


def test_returns_at_once_when_the_condition_already_holds():
    start = time.monotonic()
    assert poll(lambda: [1], timeout_s=30, interval_s=10) == [1]
    assert time.monotonic() - start < 5  # no sleep before or after a first truthy result


@pytest.mark.parametrize("falsy", [None, False, 0, []])
def test_times_out_returning_the_falsy_value(falsy):
    start = time.monotonic()
    assert poll(lambda: falsy, timeout_s=0.2, interval_s=0.05) == falsy
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 10


def test_an_absolute_deadline_sooner_than_the_timeout_wins():
    start = time.monotonic()
    assert poll(lambda: None, timeout_s=60, interval_s=0.05, deadline=start + 0.2) is None
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 10


def test_a_timeout_sooner_than_the_deadline_wins():
    start = time.monotonic()
    assert poll(lambda: None, timeout_s=0.2, interval_s=0.05, deadline=start + 60) is None
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(
    ("timeout_s", "deadline_in"), [(0, None), (-1, None), (30, -1.0), (30, 0.0)]
)
def test_called_once_even_without_time_left(timeout_s, deadline_in):
    calls = []
    deadline = None if deadline_in is None else time.monotonic() + deadline_in

    def never() -> bool:
        calls.append(1)
        return False

    start = time.monotonic()
    assert poll(never, timeout_s=timeout_s, interval_s=5, deadline=deadline) is False
    assert calls == [1]
    assert time.monotonic() - start < 3  # no sleep once no time is left


def test_an_exception_from_the_condition_propagates():
    def broken() -> bool:
        raise RuntimeError("stop waiting")

    with pytest.raises(RuntimeError, match="stop waiting"):
        poll(broken, timeout_s=30)


def test_schedule_on_a_fake_clock(clock):
    """Called every interval_s; the last sleep is cut short at the end, then a last call."""
    seen: list[float] = []

    def record() -> None:
        seen.append(clock.now - 1000.0)

    assert poll(record, timeout_s=1.0, interval_s=0.3) is None
    assert [round(t, 6) for t in seen] == [0.0, 0.3, 0.6, 0.9, 1.0]
    assert [round(s, 6) for s in clock.sleeps] == [0.3, 0.3, 0.3, 0.1]


def test_default_interval_on_a_fake_clock(clock):
    calls = []
    poll(lambda: calls.append(1), timeout_s=1.0)
    assert len(calls) == 11  # 0.0, 0.1, ..., 1.0


def test_deadline_on_a_fake_clock(clock):
    seen: list[float] = []
    poll(lambda: seen.append(clock.now - 1000.0), timeout_s=60, interval_s=1.0, deadline=1002.5)
    assert [round(t, 6) for t in seen] == [0.0, 1.0, 2.0, 2.5]


def test_interval_zero_spins_without_sleeping_past_the_end(clock):
    """interval_s=0 (a condition that paces itself, e.g. Unit.kill_all): sleep(0) between calls."""
    calls = []

    def paced() -> bool:
        calls.append(1)
        clock.now += 0.5  # the condition itself takes time
        return len(calls) == 3

    assert poll(paced, timeout_s=10, interval_s=0.0) is True
    assert len(calls) == 3
    assert clock.sleeps == [0.0, 0.0]
