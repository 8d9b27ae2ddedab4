"""Readiness and liveness checks for local replicas, modelled on the official Helm chart.

- api-server: chart ``GET /api/v2/monitor/health``; here the same on the replica's port,
  *and* ``GET /execution/health``: Airflow builds the Execution API app lazily on its first
  request, which blocks the server for seconds (5.4 s measured on 2 cores). The chart's
  probe does not see that, so a "ready" replacement stalls its first task calls; ours
  counts a replica ready only once that is done.
- scheduler: chart ``airflow jobs check --job-type SchedulerJob --local``; here the
  scheduler's health server ``/health`` (``[scheduler] enable_health_check``), which
  reports the same heartbeat without starting a Python interpreter every period.
- triggerer, dag-processor: chart ``airflow jobs check``; here the query that CLI runs:
  a running job of that type, started by this incarnation, heartbeating recently.
- worker: chart ``celery inspect ping``; here Celery's "ready." line for this
  incarnation, and its log server port answering.
- PostgreSQL, Redis, HAProxy: a query, ``PING``, the stats page.

Every check connects to the replica's address (``host``): 127.0.0.1, or its pod-network
host's address, which the harness reaches as the network's client host.
"""

from __future__ import annotations

import http.client
import re
import socket
from datetime import UTC, datetime

from harness.platform.local.process import Unit
from harness.platform.local.supervisor import Check


def http_check(port: int, path: str, *, expect: range = range(200, 400),
               host: str = "127.0.0.1") -> Check:  # fmt: skip
    def check(unit: Unit, timeout_s: float) -> bool:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            return conn.getresponse().status in expect
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    return check


def all_of(*checks_: Check) -> Check:
    """Healthy only if every check passes (checked in order, stopping at the first miss)."""

    def check(unit: Unit, timeout_s: float) -> bool:
        return all(c(unit, timeout_s) for c in checks_)

    return check


def redis_check(port: int, host: str = "127.0.0.1") -> Check:
    def check(unit: Unit, timeout_s: float) -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout_s) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    return check


def postgres_check(dsn: str) -> Check:
    def check(unit: Unit, timeout_s: float) -> bool:
        import psycopg

        try:
            with psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    return check


def job_check(dsn: str, job_type: str, threshold_s: float = 30.0) -> Check:
    """A running ``job_type`` job that started with this incarnation and heartbeats."""

    def check(unit: Unit, timeout_s: float) -> bool:
        import psycopg

        started = datetime.fromtimestamp(unit.started_wall - 1.0, tz=UTC)
        try:
            with psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM job WHERE job_type = %s AND state = 'running'"
                    " AND start_date >= %s"
                    " AND latest_heartbeat > now() - make_interval(secs => %s)",
                    (job_type, started, threshold_s),
                ).fetchone()
            return bool(row and row[0] > 0)
        except psycopg.Error:
            return False

    return check


def log_line_check(pattern: str, then: Check | None = None) -> Check:
    """``pattern`` appeared in this incarnation's part of the log, and ``then`` passes."""
    regex = re.compile(pattern.encode())

    def check(unit: Unit, timeout_s: float) -> bool:
        if unit.log_path is None:
            return False
        try:
            with open(unit.log_path, "rb") as f:
                f.seek(unit.log_offset)
                seen = regex.search(f.read()) is not None
        except OSError:
            return False
        return seen and (then is None or then(unit, timeout_s))

    return check


def tcp_check(port: int, host: str = "127.0.0.1") -> Check:
    def check(unit: Unit, timeout_s: float) -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            return False

    return check
