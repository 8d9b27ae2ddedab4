"""One watch stream kept up: LIST, then WATCH from its resourceVersion, LIST again when it
expires or fails, until told to stop.

The cluster runs one per stream in a thread (pods of its namespace; the api-server
Service's EndpointSlices) and feeds what it reads to its
:class:`~.events.WatchedState`; how each event is read is :func:`~.events.watch_action`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.events import watch_action
from harness.platform.kubernetes.safety import GuardedApi

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 5
STREAMS = {"Pod": "pods", "EndpointSlice": "endpointslices"}  # kind -> the taps' stream name

Tap = Callable[[str, str, Any, str | None], None]  # (stream, type, object or items, rv)


def watch_loop(
    api: GuardedApi,
    kind: str,
    labels: dict[str, str] | None,
    scoped: bool,
    on_event: Callable[[str, dict[str, Any]], Any],
    on_list: Callable[[list[dict[str, Any]]], Any],
    *,
    stopping: threading.Event,
    taps: list[Tap],
) -> None:
    """LIST, then WATCH from its resourceVersion; on expiry (an ERROR event, or HTTP
    410 Gone) or an error, LIST again (see :func:`watch_action`); until ``stopping`` is set.
    Every event and list also goes to ``taps`` as received (the recorder's view; the list
    is read afresh each time, so taps can be added and removed meanwhile)."""
    version: str | None = None
    failures = 0
    stream_name = STREAMS.get(kind, kind)

    def tap(event_type: str, obj: Any, rv: str | None = None) -> None:
        for sink in list(taps):
            try:
                sink(stream_name, event_type, obj, rv)
            except Exception:  # a recorder must not break the watch
                log.exception("a stream tap failed")

    while not stopping.is_set():
        try:
            if version is None:
                items, version = api.list(kind, labels, scoped=scoped)
                tap("LIST", items, version)
                on_list(items)
            stream = api.watch(
                kind, version, timeout_s=WATCH_TIMEOUT_S, labels=labels, scoped=scoped
            )
            for event_type, obj in stream:
                if stopping.is_set():
                    return
                tap(event_type, obj)
                action, rv = watch_action(event_type, obj)
                if action == "relist":
                    version = None  # 410 Expired/Gone or worse: list again
                    break
                version = rv or version
                if action == "event":
                    on_event(event_type, obj)
            failures = 0
        except KubeApiError as exc:
            version = None
            if exc.status == 410:  # the version expired before the watch began
                continue
            failures += 1
            _back_off(kind, failures, exc, stopping)
        except (OSError, ValueError) as exc:
            failures += 1
            version = None
            _back_off(kind, failures, exc, stopping)


def _back_off(kind: str, failures: int, exc: Exception, stopping: threading.Event) -> None:
    """Log the 1st, 10th and 100th failure in a row; wait longer after each (5 s at most)."""
    if failures in (1, 10, 100):
        log.warning("watch of %s failed (%d times): %s", kind, failures, exc)
    stopping.wait(min(5.0, 0.5 * failures))
