"""Fault operations every role names: which op a held fault is undone by.

One table for the injector (:mod:`harness.faults.ops`, which runs the undo in a ``finally``)
and the checkers (:mod:`harness.check.history`, which shade a held fault from its op to its
undo), so a new held op is added in one place.
"""

from __future__ import annotations

UNDO = {
    "pause": "resume",
    "stop_service": "start_service",
    "freeze": "thaw",
    "cpu_throttle": "cpu_clear",
    "memory_limit": "memory_clear",
    "clock_skew": "clock_reset",
    "disk_fill": "disk_free",
}
