"""Faults on the local platform: real signals to a replica's whole process tree."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.platform.base import record_fault
from harness.platform.local.supervisor import Replica


class LocalNemesis:
    """Implements :class:`harness.platform.base.Nemesis` for a local cluster's replicas.

    ``replica`` looks a replica up by name (a :class:`HarnessError` for an unknown one);
    ``bus`` takes the fault events.
    """

    def __init__(self, replica: Callable[[str], Replica], bus: EventBus) -> None:
        self._replica = replica
        self._bus = bus

    def _op(self, op: str, target: str, action, **fields: Any) -> dict[str, Any]:
        replica = self._replica(target)  # unknown target: a HarnessError, no event
        return record_fault(self._bus, op, target, lambda: action(replica),
                            incarnation=replica.incarnation, **fields)  # fmt: skip

    def kill(self, target: str) -> dict[str, Any]:
        def act(replica):
            unit = replica.unit
            if unit is None or unit.popen.poll() is not None:
                raise HarnessError(f"{target} is not running", fix="wait until it is ready")
            signalled = unit.signal(signal.SIGKILL)
            gone = unit.wait_gone(10.0)
            if not gone:
                raise RuntimeError(f"{target}: processes survived SIGKILL: {unit.members()}")
            return {"signalled": signalled, "pid": unit.pid}

        return self._op("kill", target, act)

    def force_delete(self, target: str) -> dict[str, Any]:
        """Refused: a force delete removes a Kubernetes pod object; there is none here."""
        raise HarnessError(
            f"force_delete {target}: the local platform has no pod objects to delete",
            fix="use kill (SIGKILL) or terminate (SIGTERM) here, or run on --platform kubernetes",
        )

    def terminate(self, target: str, grace_s: float | None = None) -> dict[str, Any]:
        def act(replica):
            unit = replica.unit
            if unit is None or unit.popen.poll() is not None:
                raise HarnessError(f"{target} is not running", fix="wait until it is ready")
            grace = replica.spec.grace_s if grace_s is None else grace_s
            started = time.monotonic()
            unit.signal(signal.SIGCONT)  # a paused replica must see the SIGTERM
            signalled = unit.signal_stop(signal.SIGTERM, replica.spec.stop_scope)
            graceful = unit.wait_gone(grace)
            if not graceful:
                unit.kill_all()
            return {
                "signalled": signalled,
                "scope": replica.spec.stop_scope,
                "pid": unit.pid,
                "graceful": graceful,
                "shutdown_s": round(time.monotonic() - started, 3),
            }

        return self._op("terminate", target, act, grace_s=grace_s)

    def pause(self, target: str) -> dict[str, Any]:
        def act(replica):
            return {"signalled": replica.signal(signal.SIGSTOP)}

        return self._op("pause", target, act)

    def resume(self, target: str) -> dict[str, Any]:
        def act(replica):
            return {"signalled": replica.signal(signal.SIGCONT)}

        return self._op("resume", target, act)

    def stop_service(self, target: str) -> dict[str, Any]:
        return self._op("stop_service", target, lambda r: {"exit_code": r.hold()})

    def start_service(self, target: str) -> dict[str, Any]:
        def act(replica):
            replica.release()
            return {}

        return self._op("start_service", target, act)
