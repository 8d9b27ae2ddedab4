"""Recovery times of replaced pods, from a recorded stream of lifecycle (and fault) events.

A disruption is a pod going away — ``terminating`` or ``deleted``, whichever is seen
first. It starts at the fault that caused it (the latest unused ``fault`` ``invoke`` on
the same replica at or before that moment) or, without one, when the watch saw it. Its
replacement is any later incarnation of the same replica slot. Times are seconds from
the start::

    delete → old pod deleted / out of the endpoints
           → replacement created → scheduled → started → ready → endpoint added
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

GONE_STATES = ("terminating", "deleted")
FAULT_OPS = ("kill", "terminate", "evict")


def _first(rows: list[Mapping[str, Any]], t0: float, time_key: str, **match: Any) -> Any:
    for row in rows:
        if row[time_key] >= t0 and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def recovery_times(
    events: Iterable[Mapping[str, Any]], *, time_key: str = "t"
) -> list[dict[str, Any]]:
    """One row per disruption, in order of start.

    ``events``: lifecycle events (``type`` ``lifecycle`` or no ``type``) and optionally
    ``fault`` events, each with a time under ``time_key`` (``t`` for recorded watch
    streams, ``t_mono`` for a run's history). Unobserved steps are None.
    """
    ordered = sorted(events, key=lambda e: float(e[time_key]))
    life = [e for e in ordered if e.get("type", "lifecycle") == "lifecycle"]
    faults = [
        e
        for e in ordered
        if e.get("type") == "fault" and e.get("phase") == "invoke" and e.get("op") in FAULT_OPS
    ]
    used_faults: set[int] = set()
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for event in life:
        if event.get("state") not in GONE_STATES or event.get("uid") in seen:
            continue
        uid, replica = event["uid"], event["replica"]
        seen.add(uid)
        t_seen = float(event[time_key])
        cause = None
        for i in range(len(faults) - 1, -1, -1):
            f = faults[i]
            if i not in used_faults and f.get("target") == replica and f[time_key] <= t_seen:
                used_faults.add(i)
                cause = f
                break
        t0 = float(cause[time_key]) if cause else t_seen
        newer = [
            e
            for e in life
            if e.get("replica") == replica
            and int(e.get("incarnation") or 0) > int(event.get("incarnation") or 0)
        ]
        old = [e for e in life if e.get("uid") == uid]

        def after(found: Mapping[str, Any] | None, t0: float = t0) -> float | None:
            return None if found is None else round(float(found[time_key]) - t0, 6)

        ready = _first(newer, t0, time_key, state="ready")
        created = _first(newer, t0, time_key, state="created")
        replacement = ready or created
        rows.append(
            {
                "replica": replica,
                "pod": event.get("pod"),
                "incarnation": event.get("incarnation"),
                "cause": cause.get("op") if cause else event["state"],
                "op_id": cause.get("op_id") if cause else None,
                "t_start": t0,
                "seen_gone_s": round(t_seen - t0, 6),
                "deleted_s": after(_first(old, t0, time_key, state="deleted")),
                "endpoint_removed_s": after(_first(old, t0, time_key, state="endpoint_removed")),
                "replacement": replacement.get("pod") if replacement else None,
                "created_s": after(created),
                "scheduled_s": after(_first(newer, t0, time_key, state="scheduled")),
                "started_s": after(_first(newer, t0, time_key, state="started")),
                "ready_s": after(ready),
                "endpoint_added_s": after(_first(newer, t0, time_key, state="endpoint_added")),
            }
        )
    return rows
