"""Locust API/UI load against Airflow, run as a library in its own process.

gevent monkey-patches whatever imports Locust, so the harness never does: :class:`LoadProcess`
starts ``python -m harness.observe.load.locust_main --config <json>`` in a new session, and
that process
records every request into ``<run_dir>/history/locust.jsonl`` (type ``request``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.core.child import spawn_module, stop_child
from harness.core.cleanup import StartStopContext
from harness.core.netguard import own_hosts, require_loopback

CONFIG_NAME = "locust_config.json"
LOG_NAME = "locust.log"
HISTORY_SOURCE = "locust"


class LoadProcess(StartStopContext):
    """A Locust load generator in a child process (own session), stopped with the run.

    ``trigger_weight`` > 0 adds a user task that triggers runs of ``trigger_dag_ids``;
    ``duration_s`` makes the child stop by itself after that long.
    """

    def __init__(
        self,
        run_dir: Path | str,
        host: str,
        users: int = 10,
        spawn_rate: float = 5,
        duration_s: float | None = None,
        trigger_weight: int = 0,
        wait_time: tuple[float, float] = (0.5, 2.0),
        *,
        dag_ids: tuple[str, ...] = ("ha_bench_short",),
        trigger_dag_ids: tuple[str, ...] = ("ha_bench_short",),
        request_timeout_s: float = 10.0,
    ) -> None:
        self.host = require_loopback(host)
        self.run_dir = Path(run_dir)
        self.config: dict[str, Any] = {
            "run_dir": str(self.run_dir),
            "host": self.host,
            "users": int(users),
            "spawn_rate": float(spawn_rate),
            "duration_s": duration_s,
            "trigger_weight": int(trigger_weight),
            "wait_time": [float(wait_time[0]), float(wait_time[1])],
            "dag_ids": list(dag_ids),
            "trigger_dag_ids": list(trigger_dag_ids),
            "request_timeout_s": float(request_timeout_s),
            "source": HISTORY_SOURCE,
            # the cluster's own hosts the child's guard allows besides loopback (pod network)
            "own_hosts": own_hosts(),
        }
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Write the config and start the Locust child process."""
        if self._proc is not None:
            raise RuntimeError("LoadProcess already started")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.run_dir / CONFIG_NAME
        config = {**self.config, "parent_pid": os.getpid()}
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        with open(self.run_dir / LOG_NAME, "ab") as log:
            self._proc = spawn_module(
                "harness.observe.load.locust_main",
                config_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to ``timeout_s``, then SIGKILL it."""
        if self._proc is None:
            return None
        return stop_child(self._proc, timeout_s)

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait for the child to exit by itself (e.g. after ``duration_s``)."""
        if self._proc is None:
            return None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._proc.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
        return self._proc.returncode
