"""Fault operations every role names: which op a held fault is undone by.

One table for the injector (:mod:`harness.faults.ops`, which runs the undo in a ``finally``)
and the checkers (:mod:`harness.check.history`, which shade a held fault from its op to its
undo), so a new held op is added in one place.
"""

from __future__ import annotations

NETWORK_OPS = ("partition", "latency", "loss", "bandwidth")  # between target and peers

UNDO = {
    "pause": "resume",
    "stop_service": "start_service",
    "freeze": "thaw",
    "cpu_throttle": "cpu_clear",
    "memory_limit": "memory_clear",
    "clock_skew": "clock_reset",
    "disk_fill": "disk_free",
    **dict.fromkeys(NETWORK_OPS, "heal"),  # heal undoes every network fault of its target
}

# Ops that leave their target up by design (a gray failure, a state action): their `ok`
# event, recorded once the nemesis verified the effect, confirms them — not an outage.
TARGET_STAYS_UP = frozenset(
    {"none", "cpu_throttle", "memory_limit", "clock_skew", "disk_fill", "snapshot", *NETWORK_OPS}
)

# Ops that prepare a later fault and change nothing a client sees (a broker snapshot that a
# later restart loads): recorded like any op, but the fault time — where the baseline ends
# and recovery is measured from — is the first op that is not one of these.
PREPARATION = frozenset({"snapshot"})
