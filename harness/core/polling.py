"""One polling helper for every wait loop: poll a condition until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    condition: Callable[[], T],
    *,
    timeout_s: float,
    interval_s: float = 0.1,
    deadline: float | None = None,
) -> T | None:
    """Call ``condition`` every ``interval_s`` until it returns a truthy value, which is
    returned; ``None`` (or the last falsy value) once ``timeout_s`` — or the absolute
    monotonic ``deadline``, whichever is sooner — has passed. It is called at least once."""
    end = time.monotonic() + timeout_s
    if deadline is not None:
        end = min(end, deadline)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= end:
            return value if value is not None else None
        time.sleep(max(0.0, min(interval_s, end - time.monotonic())))
