"""The Locust child process: ``python -m harness.observe.load.locust_main --config <json>``.

Only this process imports Locust (and so gevent's monkey-patching). Every request becomes a
``request`` event in ``<run_dir>/history/locust.jsonl``. Stops on SIGTERM/SIGINT, when the
parent dies (``os.getppid()`` changes) or after ``duration_s``, then exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

_stop_reason: str | None = None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _stop_reason
    _stop_reason = signal.Signals(signum).name


# installed before Locust is imported, so an early SIGTERM still means a clean exit
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)

# read traffic: task -> (request name, path template, weight); {dag_id} is filled per request
_READS: dict[str, tuple[str, str, int]] = {
    "list_dags": ("GET /api/v2/dags", "/api/v2/dags?limit=50", 4),
    "get_dag": ("GET /api/v2/dags/{dag_id}", "/api/v2/dags/{dag_id}", 1),
    "dag_runs": (
        "GET /api/v2/dags/{dag_id}/dagRuns",
        "/api/v2/dags/{dag_id}/dagRuns?limit=25&order_by=-run_after",
        3,
    ),
    "all_dag_runs": ("GET /api/v2/dags/~/dagRuns", "/api/v2/dags/~/dagRuns?limit=25", 2),
    "task_instances": (
        "GET /api/v2/dags/~/dagRuns/~/taskInstances",
        "/api/v2/dags/~/dagRuns/~/taskInstances?limit=50",
        2,
    ),
    "health": ("GET /api/v2/monitor/health", "/api/v2/monitor/health", 2),
    "version": ("GET /api/v2/version", "/api/v2/version", 1),
}
TRIGGER_NAME = "POST /api/v2/dags/{dag_id}/dagRuns"


def build_user_class(config: dict[str, Any]) -> type:
    """An HttpUser subclass whose weighted tasks model API/UI traffic (needs Locust imported)."""
    import random

    from locust import HttpUser, between

    timeout = float(config.get("request_timeout_s", 10.0))
    dag_ids = list(config.get("dag_ids") or ["ha_bench_short"])
    trigger_dag_ids = list(config.get("trigger_dag_ids") or dag_ids)
    headers = {"Accept": "application/json"}

    def read_task(name: str, path: str) -> Callable[[Any], None]:
        def run(user: Any) -> None:
            user.client.get(
                path.format(dag_id=random.choice(dag_ids)),
                name=name,
                headers=headers,
                timeout=timeout,
            )

        run.__name__ = name
        return run

    def trigger(user: Any) -> None:
        user.client.post(
            f"/api/v2/dags/{random.choice(trigger_dag_ids)}/dagRuns",
            json={"logical_date": None},
            name=TRIGGER_NAME,
            headers=headers,
            timeout=timeout,
        )

    tasks: dict[Callable[[Any], None], int] = {
        read_task(name, path): weight for name, path, weight in _READS.values()
    }
    if int(config.get("trigger_weight", 0)) > 0:
        tasks[trigger] = int(config["trigger_weight"])
    low, high = config.get("wait_time", (0.5, 2.0))
    return type(
        "AirflowApiUser",
        (HttpUser,),
        {"tasks": tasks, "wait_time": between(float(low), float(high)), "host": config["host"]},
    )


def make_listener(writer: Any) -> Callable[..., None]:
    """A Locust ``request`` event listener recording each request into ``writer``."""

    def on_request(
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int | None = None,
        response: Any = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        wall_now, mono_now = time.time(), time.monotonic()
        latency_s = (response_time or 0.0) / 1000.0
        start_wall = start_time if start_time is not None else wall_now - latency_s
        # map the start to the monotonic clock through the time elapsed since it
        start_mono = mono_now - max(0.0, wall_now - start_wall)
        status = getattr(response, "status_code", None) or None
        error = None if exception is None else f"{type(exception).__name__}: {exception}"[:500]
        writer.append(
            "request",
            t=(start_wall, start_mono),
            name=name,
            method=request_type,
            ok=exception is None,
            status=status,
            latency_s=latency_s,
            error=error,
            response_length=response_length,
        )

    return on_request


def run(config: dict[str, Any]) -> int:
    """Run the load until stopped; returns the exit code."""
    import gevent
    from locust.env import Environment

    from harness.core.history import HistoryWriter
    from harness.core.netguard import register_hosts, require_loopback

    register_hosts("parent", config.get("own_hosts", ()))  # the parent's cluster's hosts
    require_loopback(config["host"])  # again, before anything is sent
    writer = HistoryWriter(Path(config["run_dir"]), config.get("source", "locust"))
    # the pid of the parent that started us: it may be gone before we get here
    parent = int(config.get("parent_pid") or os.getppid())
    start = time.monotonic()
    duration = config.get("duration_s")
    env = Environment(user_classes=[build_user_class(config)], host=config["host"])
    env.events.request.add_listener(make_listener(writer))
    runner = env.create_local_runner()
    writer.append("marker", name="load_start", detail={"users": config["users"]})
    reason = _stop_reason or (None if os.getppid() == parent else "parent_died")
    if reason is None:
        runner.start(int(config["users"]), spawn_rate=float(config["spawn_rate"]))
    while reason is None:
        gevent.sleep(0.2)
        if _stop_reason is not None:
            reason = _stop_reason
        elif os.getppid() != parent:
            reason = "parent_died"
        elif duration is not None and time.monotonic() - start >= float(duration):
            reason = "duration"
    runner.quit()
    writer.append("marker", name="load_stop", detail={"reason": reason})
    writer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file written by LoadProcess")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
