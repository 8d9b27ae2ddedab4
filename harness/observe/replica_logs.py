"""What the replicas said during a repetition: their log lines that matter for faults, as
history ``log`` events.

After a repetition the runner reads each replica's log from where it stood when the
repetition began (:meth:`Cluster.replica_log_mark`, then :meth:`Cluster.replica_log_lines`)
and keeps the lines at warning level or above — plus PostgreSQL's ``LOG`` lines about
client connections, which is how a cut or lossy link shows on the server side — sorted
into :data:`harness.core.history.LOG_KINDS`:

- ``heartbeat``: the Task SDK supervisor's failed heartbeats and what follows them
  (``Failed to send heartbeat``, ``Too many failed heartbeats``, the server telling it to
  stop), and the scheduler's heartbeat time-outs;
- ``execution_api``: a failed Execution API call the Task SDK retries (tenacity's
  ``Starting call to 'airflow.sdk.api.client...', this is the Nth time calling it``) and
  httpx transport errors;
- ``db``: database errors on either side (SQLAlchemy/psycopg2 errors, PostgreSQL's
  ``ERROR``/``FATAL`` lines and its lost client connections);
- ``broker``: Redis/Celery broker connection problems;
- ``error``: any other line at error level or above.

Timestamps come from the line itself: structlog (``2026-12-01T11:22:14.422806Z [warning ]``),
PostgreSQL (``2026-12-01 11:22:06.416 UTC [pid] ERROR:``), Celery (``[2026-12-01
11:22:18,399: WARNING/MainProcess]``), Redis (``pid:M 01 Dec 2026 11:22:06.123 #``) and
Kubernetes' ``timestamps=true`` prefix (RFC 3339). A line without one (a traceback) belongs
to the line above: its last exception line becomes that event's ``cause``; lines before the
first timestamp (HAProxy writes none) are not placed in time and are left out.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_EVENTS_PER_KIND = 2000  # per replica and repetition; the counts in the marker are whole
LINE_CHARS = 400

_STRUCTLOG = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z \[(\w+)\s*\]")
_POSTGRES = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC \[\d+\] ([A-Z]+):")
_CELERY = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d+): ([A-Z]+)/")
_REDIS = re.compile(r"^\d+:[A-Z] (\d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d+) ([.\-*#]) ")
_K8S = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z (.*)$")
_REDIS_LEVELS = {".": "debug", "-": "info", "*": "info", "#": "warning"}
_LEVELS = {"debug": 10, "info": 20, "log": 20, "notice": 20, "warning": 30, "warn": 30,
           "error": 40, "exception": 40, "critical": 50, "fatal": 50, "panic": 50}  # fmt: skip
_CAUSE = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Timeout|"
                    r"Refused|Full|Closed))(?::\s.*)?$")  # fmt: skip

_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("heartbeat", re.compile(r"heartbeat|shouldn't be running anymore", re.I)),
    (
        "execution_api",
        re.compile(
            r"airflow\.sdk\.api\.client|execution api|API server error|API call|"
            r"ServerResponseError|httpx\.|"
            r"ConnectError|ConnectTimeout|ReadTimeout|RemoteProtocolError",
            re.I,
        ),
    ),
    (
        "db",
        re.compile(
            r"OperationalError|DBAPIError|psycopg|sqlalchemy|could not connect to server|"
            r"connection to server|server closed the connection|terminating connection|"
            r"could not receive data from client|unexpected EOF on client connection|"
            r"QueuePool|No space left on device",
            re.I,
        ),
    ),
    (
        "broker",
        re.compile(
            r"Cannot connect to redis|Connection to broker lost|consumer: |"
            r"redis\.exceptions|kombu\.exceptions|Error \d+ connecting to",
            re.I,
        ),
    ),
)
# PostgreSQL's LOG lines worth keeping: what a client's cut or lossy link looks like there
_POSTGRES_CONNECTION_LOG = re.compile(
    r"could not receive data from client|could not send data to client|"
    r"unexpected EOF on client connection|connection reset by peer", re.I)  # fmt: skip


@dataclass(frozen=True)
class LogLine:
    """One timestamped line: ``t_wall`` (Unix seconds), ``level`` (lower case), ``text``."""

    t_wall: float
    level: str
    text: str
    postgres: bool = False


def _utc(text: str, fmt: str) -> float:
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()


def _iso_utc(text: str) -> float:
    """A UTC ISO 8601 stamp, fraction optional (``T`` or a space between date and time)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def parse(text: str) -> LogLine | None:
    """The timestamp and level of one raw line, or None for a line without a timestamp."""
    k8s = _K8S.match(text)
    if k8s and not _STRUCTLOG.match(text):  # the kubelet's prefix, the container's line after
        inner = parse(k8s.group(3))
        if inner is not None:
            return inner
        t = _utc(k8s.group(1), "%Y-%m-%dT%H:%M:%S") + float(k8s.group(2) or 0)
        return LogLine(t, "info", k8s.group(3))
    if m := _STRUCTLOG.match(text):
        return LogLine(_iso_utc(m.group(1)), m.group(2).lower(), text)
    if m := _POSTGRES.match(text):
        return LogLine(_iso_utc(m.group(1)), m.group(2).lower(), text, postgres=True)
    if m := _CELERY.match(text):
        t = _utc(m.group(1), "%Y-%m-%d %H:%M:%S") + int(m.group(2)) / 1000
        return LogLine(t, m.group(3).lower(), text)
    if m := _REDIS.match(text):
        return LogLine(_utc(m.group(1), "%d %b %Y %H:%M:%S.%f"),
                       _REDIS_LEVELS[m.group(2)], text)  # fmt: skip
    return None


def classify(line: LogLine) -> str | None:
    """The line's kind (:data:`~harness.core.history.LOG_KINDS`), or None if it is noise."""
    severity = _LEVELS.get(line.level, 20)
    if line.postgres and (severity >= 40 or _POSTGRES_CONNECTION_LOG.search(line.text)):
        return "db"  # the server's side of every client's database trouble
    if severity < 30:
        return None
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(line.text):
            return kind
    return "error" if severity >= 40 else None


def log_events(
    replica: str, lines: Iterable[str], since_wall: float, until_wall: float | None = None
) -> tuple[list[dict[str, Any]], Counter]:
    """The ``log`` events of ``replica``'s ``lines`` stamped in ``[since_wall, until_wall]``,
    at most :data:`MAX_EVENTS_PER_KIND` per kind (in order), and the whole count per kind."""
    events: list[dict[str, Any]] = []
    counts: Counter = Counter()
    current: dict[str, Any] | None = None
    for raw in lines:
        text = raw.rstrip("\n")
        line = parse(text)
        if line is None:
            if current is not None and _CAUSE.match(text):
                current["cause"] = text.strip()[:LINE_CHARS]
            continue
        current = None
        if line.t_wall < since_wall or (until_wall is not None and line.t_wall > until_wall):
            continue
        kind = classify(line)
        if kind is None:
            continue
        counts[kind] += 1
        if counts[kind] > MAX_EVENTS_PER_KIND:
            continue
        current = {"t_wall": line.t_wall, "replica": replica, "kind": kind,
                   "level": line.level, "line": text[:LINE_CHARS]}  # fmt: skip
        events.append(current)
    return events, counts


def record(
    writer: Any, replica_lines: Iterable[tuple[str, Iterable[str]]], since_wall: float
) -> dict[str, dict[str, int]]:
    """Append each replica's ``log`` events to ``writer`` (a HistoryWriter), their monotonic
    time derived from the wall clock now; the count per replica and kind (whole, also past
    the cap) is returned and recorded as a ``replica_logs`` marker."""
    wall, mono = time.time(), time.monotonic()
    offset = wall - mono
    totals: dict[str, dict[str, int]] = {}
    for replica, lines in replica_lines:
        events, counts = log_events(replica, lines, since_wall, wall)
        for event in events:
            t_wall = event.pop("t_wall")
            writer.append("log", t=(t_wall, t_wall - offset), **event)
        if counts:
            totals[replica] = dict(sorted(counts.items()))
    writer.append("marker", name="replica_logs", detail={"since_wall": since_wall,
                                                          "counts": totals})  # fmt: skip
    return totals
