"""Airflow REST facts shared by every role: the endpoints probed and the terminal states."""

from __future__ import annotations

LIVENESS = "/api/v2/version"  # no DB access: the cheapest liveness probe
HEALTH = "/api/v2/monitor/health"  # always HTTP 200; the body says who is unhealthy
DB_ENDPOINT = "/api/v2/dags?limit=1"  # served from the metadata DB
EXECUTION_HEALTH = "/execution/health"  # the Execution API that task workers call

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
FAILED_TASK_STATES = frozenset({"failed", "upstream_failed"})
