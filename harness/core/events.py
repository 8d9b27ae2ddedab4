"""Fan-out of platform events (lifecycle, faults) to whoever records them.

Observers cannot break a run: a subscriber that raises is reported once and skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from harness.core.history import HistoryWriter, now

log = logging.getLogger(__name__)

Subscriber = Callable[[dict[str, Any]], None]


class EventBus:
    """Timestamps events once and hands the same record to every subscriber."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._failed: set[int] = set()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def record_to(self, writer: HistoryWriter) -> Callable[[], None]:
        """Write every event into ``writer`` (its source name is used)."""

        def write(event: dict[str, Any]) -> None:
            fields = {k: v for k, v in event.items() if k not in ("t_wall", "t_mono", "type")}
            writer.append(event["type"], t=(event["t_wall"], event["t_mono"]), **fields)

        return self.subscribe(write)

    def emit(
        self, type: str, *, t: tuple[float, float] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Stamp and deliver one event; ``t`` is the (wall, mono) time it happened when it is
        emitted later than that (e.g. a death seen before its clean-up), default now."""
        wall, mono = t if t is not None else now()
        event = {"t_wall": wall, "t_mono": mono, "type": type, **fields}
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # an observer must not break the run
                if id(subscriber) not in self._failed:
                    self._failed.add(id(subscriber))
                    log.exception("event subscriber %r failed; continuing", subscriber)
        return event
