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
    """Call ``condition`` until it returns a truthy value, and return that value.

    ``condition`` is called at once, then again ``interval_s`` seconds after each falsy
    result, until ``timeout_s`` from now — or the absolute ``time.monotonic()``
    ``deadline``, whichever is sooner — has passed; then its last (falsy) result is
    returned (``None``, ``False``, an empty list, ...). The last sleep is cut short at
    the end, so ``condition`` also gets a final call at the end; time spent inside
    ``condition`` counts against the timeout. It is always called at least once, even
    with ``timeout_s=0`` or a deadline already past. An exception from ``condition``
    propagates at once: raise to abort a wait."""
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
