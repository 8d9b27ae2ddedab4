"""Faults fired by system state: wait until a condition holds, then inject at once.

A condition is armed just before it may hold and polled every ``POLL_S``:

- :class:`LedgerCondition`: a side-effect ledger row with the given fields appears (a task
  started, ended or heartbeated);
- :class:`LogCondition`: a new line of a replica's log matches a regular expression (a
  scheduler logging that it sent a task to Celery, say);
- :class:`TaskStateCondition`: a task instance is reported in a state by the REST API.

Each returns :class:`Met`: when the condition was seen to hold (wall clock) and the evidence
(the row, the line, the task instance), so the delay from condition to injection is recorded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from harness.core.errors import HarnessError
from harness.core.netguard import require_loopback
from harness.core.polling import poll

POLL_S = 0.1


@dataclass(frozen=True)
class Met:
    """The condition held at ``t_wall`` (seen by the poller); ``evidence`` says why."""

    t_wall: float
    evidence: dict[str, Any] = field(default_factory=dict)


class Condition(Protocol):
    def arm(self) -> None:
        """Start watching: only what happens from now on counts."""

    def check(self) -> Met | None:
        """The condition if it holds now, else None (cheap; called every ``POLL_S``)."""


def wait_for(condition: Condition, timeout_s: float) -> Met | None:
    """Poll an armed ``condition`` until it holds (``Met``) or ``timeout_s`` passes (None)."""
    return poll(condition.check, timeout_s=timeout_s, interval_s=POLL_S)


class LedgerCondition:
    """A ledger row whose fields include ``match`` (e.g. ``{"phase": "start",
    "dag_id": "ha_bench_long"}``), written after :meth:`arm`."""

    def __init__(self, mark: Callable[[], int], since: Callable[[int], list[dict[str, Any]]],
                 match: dict[str, Any]) -> None:  # fmt: skip
        self._mark, self._since, self.match = mark, since, dict(match)
        self._at = 0

    def arm(self) -> None:
        self._at = self._mark()

    def check(self) -> Met | None:
        for row in self._since(self._at):
            if all(row.get(k) == v for k, v in self.match.items()):
                return Met(time.time(), {"ledger_row": row})
        return None


class LogCondition:
    """A line of ``path`` written after :meth:`arm` that matches ``pattern``."""

    def __init__(self, path: Path, pattern: str, *, replica: str = "") -> None:
        try:
            self.pattern = re.compile(pattern)
        except re.error as exc:
            raise HarnessError(f"trigger pattern {pattern!r}: {exc}",
                               fix="write a Python regular expression") from None  # fmt: skip
        self.path, self.replica = Path(path), replica
        self._offset = 0
        self._partial = b""

    def arm(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0
        self._partial = b""

    def check(self) -> Met | None:
        if not self.path.exists():
            return None
        size = self.path.stat().st_size
        if size < self._offset:  # rotated or truncated: read it from the start
            self._offset = 0
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = self._partial + f.read()
            self._offset = f.tell()
        *lines, self._partial = data.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace")
            if self.pattern.search(line):
                return Met(time.time(), {"replica": self.replica, "log_line": line[:500]})
        return None


class TaskStateCondition:
    """A task instance of ``dag_id`` (and ``task_id``, if given) in ``state``, as the REST
    API lists it (``GET /api/v2/dags/{dag_id}/dagRuns/~/taskInstances?state=...``)."""

    def __init__(self, base_url: str, dag_id: str, state: str, task_id: str | None = None,
                 ) -> None:  # fmt: skip
        base_url = require_loopback(base_url)
        self.dag_id, self.state, self.task_id = dag_id, state, task_id
        self._client = httpx.Client(base_url=base_url, timeout=2.0)
        self._seen: set[tuple[str, str, int]] = set()

    def _current(self) -> list[dict[str, Any]]:
        try:
            r = self._client.get(f"/api/v2/dags/{self.dag_id}/dagRuns/~/taskInstances",
                                 params={"state": self.state, "limit": 100})  # fmt: skip
            rows = r.json().get("task_instances", []) if r.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return []
        return [t for t in rows if self.task_id in (None, t.get("task_id"))]

    def arm(self) -> None:
        self._seen = {(t.get("dag_run_id"), t.get("task_id"), t.get("try_number"))
                      for t in self._current()}  # fmt: skip

    def check(self) -> Met | None:
        for t in self._current():
            key = (t.get("dag_run_id"), t.get("task_id"), t.get("try_number"))
            if key not in self._seen:
                evidence = {
                    k: t.get(k)
                    for k in ("dag_id", "dag_run_id", "task_id", "try_number", "state", "hostname")
                }
                return Met(time.time(), {"task_instance": evidence})  # fmt: skip
        return None
