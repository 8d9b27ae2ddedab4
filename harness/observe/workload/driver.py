"""Airflow workload driver: trigger DAG runs on a schedule and observe them to the end.

Jepsen-style: each trigger is recorded as ``invoke`` then ``ok`` (acknowledged, with the
run id) | ``fail`` (HTTP 4xx: definitely not created) | ``info`` (timeout, connection error
or 5xx: outcome unknown). The driver chooses the run id itself, so runs whose trigger outcome
is unknown can still be looked up later — and a **409** (the run id exists: a replay of the
request by a load balancer, or a retry whose first attempt created the run) is ``ok`` with
``existed: true``: the run is there and is followed like any other. Triggers arrive every
``trigger_interval_s`` (``arrival="fixed"``) or as a seeded Poisson process with that mean
gap (``arrival="poisson"``). Every observed run/task-instance state change is
recorded as a ``workload`` event (``run_state`` / ``task_state``). API errors never escape:
they become ``poll_error`` / ``driver_error`` events.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.core.airflow_api import TERMINAL_RUN_STATES
from harness.core.cleanup import StartStopContext
from harness.core.history import HistoryWriter
from harness.core.netguard import require_loopback
from harness.core.polling import poll

log = logging.getLogger(__name__)

EVENT = "workload"
ARRIVALS = ("fixed", "poisson")


def arrival_gaps(arrival: str, interval_s: float, seed: int | None = None) -> Iterator[float]:
    """Seconds between trigger *n* and *n+1*: ``fixed``, always ``interval_s``; ``poisson``,
    exponential with mean ``interval_s`` drawn from ``random.Random(seed)`` (the same seed,
    the same gaps)."""
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival must be one of {ARRIVALS}, not {arrival!r}")
    if arrival == "fixed":
        return itertools.repeat(float(interval_s))
    if interval_s <= 0:
        raise ValueError("poisson arrivals need trigger_interval_s > 0")
    rng = random.Random(seed)
    return (rng.expovariate(1.0 / interval_s) for _ in itertools.count())


@dataclass
class _Run:
    dag_id: str
    run_id: str
    acked: bool  # trigger ok; False: trigger outcome unknown (info)
    state: str | None = None
    observed: bool = False
    done: bool = False
    tis: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)


class _RoundAborted(Exception):
    """The API is unreachable: skip the rest of this polling round."""


class WorkloadDriver(StartStopContext):
    """Triggers runs of ``dag_ids`` (round-robin) every ``trigger_interval_s`` and polls them.

    Runs in two daemon threads of the harness (trigger, poll). ``max_triggers`` bounds the
    number of trigger attempts (None: until :meth:`stop_triggering`). ``arrival``: ``fixed``
    gaps, or ``poisson`` — exponential gaps with mean ``trigger_interval_s`` from
    ``random.Random(seed)``, reproducible for a given seed (see :func:`arrival_gaps`).
    Triggers are sent one at a time: a gap shorter than the previous trigger's answer
    starts the next trigger as soon as that answer is in.
    """

    def __init__(
        self,
        api_url: str,
        writer: HistoryWriter,
        dag_ids: Sequence[str] = ("ha_bench_short",),
        trigger_interval_s: float = 2.0,
        poll_interval_s: float = 1.0,
        conf: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        max_triggers: int | None = None,
        headers: Mapping[str, str] | None = None,
        run_id_prefix: str = "hab",
        arrival: str = "fixed",
        seed: int | None = None,
    ) -> None:
        if not dag_ids:
            raise ValueError("dag_ids must not be empty")
        self.arrival = arrival
        self.seed = seed
        self._gaps = arrival_gaps(arrival, trigger_interval_s, seed)  # validates both
        self.api_url = require_loopback(api_url)
        self.writer = writer
        self.dag_ids = tuple(dag_ids)
        self.trigger_interval_s = trigger_interval_s
        self.poll_interval_s = poll_interval_s
        self.conf = dict(conf or {})
        self.max_triggers = max_triggers
        self.run_id_prefix = run_id_prefix
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], _Run] = {}
        self._stop_trigger = threading.Event()
        self._stop_poll = threading.Event()
        self._threads: list[threading.Thread] = []
        self._nonce = uuid.uuid4().hex[:6]
        self._seq = itertools.count(1)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, unpause_timeout_s: float = 120.0) -> bool:
        """Unpause the DAGs (blocking, up to the deadline), then start triggering and polling.

        Returns whether every DAG was unpaused; the workload starts either way.
        """
        unpaused = self.unpause(unpause_timeout_s)
        for name, target in (("trigger", self._trigger_loop), ("poll", self._poll_loop)):
            thread = threading.Thread(target=target, name=f"workload-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return unpaused

    def stop_triggering(self) -> None:
        self._stop_trigger.set()

    def drain(self, timeout_s: float) -> bool:
        """Wait until every acknowledged (or observed) run is terminal; False on timeout."""
        self.stop_triggering()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:  # let an in-flight trigger resolve first
            if thread.name == "workload-trigger":
                thread.join(max(0.0, deadline - time.monotonic()))
        pending: list[tuple[str, str]] = []

        def drained() -> bool:
            nonlocal pending
            pending = self.outstanding()
            return not pending

        interval_s = min(0.2, self.poll_interval_s)
        poll(drained, timeout_s=timeout_s, interval_s=interval_s, deadline=deadline)
        self._event(
            "drain",
            phase="ok" if not pending else "info",
            outstanding=len(pending),
            detail=[f"{d}/{r}" for d, r in pending[:50]],
        )
        return not pending

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop both threads (idempotent)."""
        self._stop_trigger.set()
        self._stop_poll.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---- state -----------------------------------------------------------------------------

    def runs(self) -> dict[tuple[str, str], str | None]:
        """Last observed state of each acknowledged run, by (dag_id, run_id)."""
        with self._lock:
            return {key: run.state for key, run in self._runs.items() if run.acked}

    def outstanding(self) -> list[tuple[str, str]]:
        """Acknowledged (or seen) runs not yet terminal with their final task states read."""
        with self._lock:
            return [
                key
                for key, run in self._runs.items()
                if (run.acked or run.observed) and not run.done
            ]

    # ---- API calls -------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=self._timeout, headers=self._headers)

    def _event(self, event: str, **fields: Any) -> None:
        try:
            self.writer.append(EVENT, event=event, **fields)
        except Exception:  # a closed writer must not kill a thread
            log.exception("could not record workload event %s", event)

    def unpause(self, timeout_s: float = 120.0) -> bool:
        """PATCH ``is_paused: false`` on every DAG, retrying until ``timeout_s`` elapses."""
        deadline = time.monotonic() + timeout_s
        remaining = list(self.dag_ids)
        last: dict[str, Any] = {}
        with self._client() as client:

            def all_unpaused() -> bool:
                for dag_id in list(remaining):
                    try:
                        response = client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
                        last[dag_id] = {"status": response.status_code, "error": None}
                        if response.status_code == 200:
                            remaining.remove(dag_id)
                            self._event("unpause", phase="ok", dag_id=dag_id, status=200)
                    except httpx.HTTPError as e:
                        last[dag_id] = {"status": None, "error": _describe(e)}
                return not remaining

            poll(all_unpaused, timeout_s=timeout_s, interval_s=1.0, deadline=deadline)
        for dag_id in remaining:
            self._event("unpause", phase="fail", dag_id=dag_id, **last.get(dag_id, {}))
        return not remaining

    def trigger_once(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str | None:
        """Trigger one extra run of ``dag_id`` now (tracked like the others); its run id if
        the API acknowledged it, else None."""
        with self._client() as client:
            run_id = f"{self.run_id_prefix}_{self._nonce}_{next(self._seq):05d}"
            phase = self.trigger(client, dag_id, conf=conf, run_id=run_id)
        return run_id if phase == "ok" else None

    def trigger(
        self,
        client: httpx.Client,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Trigger one run; records invoke + ok|fail|info and returns that phase."""
        run_id = run_id or f"{self.run_id_prefix}_{self._nonce}_{next(self._seq):05d}"
        self._event("trigger", phase="invoke", dag_id=dag_id, run_id=run_id)
        body = {"dag_run_id": run_id, "logical_date": None,
                "conf": self.conf if conf is None else dict(conf)}  # fmt: skip
        existed = False
        try:
            response = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        except httpx.HTTPError as e:
            phase, status, error = "info", None, _describe(e)
        else:
            status = response.status_code
            if 200 <= status < 300:
                phase, error = "ok", None
                run_id = _json(response).get("dag_run_id") or run_id
            elif status == 409:  # our run id exists: an earlier attempt of this one created it
                phase, error, existed = "ok", None, True
            elif 400 <= status < 500:
                phase, error = "fail", response.text[:300]
            else:  # 5xx from a proxy or a dying server: it may have been created
                phase, error = "info", response.text[:300]
        extra = {"existed": existed} if phase == "ok" else {}
        self._event(
            "trigger", phase=phase, dag_id=dag_id, run_id=run_id, status=status, error=error,
            **extra,
        )  # fmt: skip
        if phase != "fail":
            with self._lock:
                run = self._runs.setdefault((dag_id, run_id), _Run(dag_id, run_id, acked=False))
                run.acked = run.acked or phase == "ok"
        return phase

    def _trigger_loop(self) -> None:
        with self._client() as client:
            next_at = time.monotonic()  # the gaps count from the first trigger
            for n in itertools.count():
                if self._stop_trigger.is_set() or (
                    self.max_triggers is not None and n >= self.max_triggers
                ):
                    return
                try:
                    self.trigger(client, self.dag_ids[n % len(self.dag_ids)])
                except Exception as e:
                    self._event("driver_error", where="trigger", error=_describe(e))
                next_at = max(next_at + next(self._gaps), time.monotonic())
                if self._stop_trigger.wait(max(0.0, next_at - time.monotonic())):
                    return

    def _poll_loop(self) -> None:
        with self._client() as client:
            while not self._stop_poll.is_set():
                started = time.monotonic()
                try:
                    self.poll_once(client)
                except Exception as e:
                    self._event("driver_error", where="poll", error=_describe(e))
                self._stop_poll.wait(max(0.0, self.poll_interval_s - (time.monotonic() - started)))

    def poll_once(self, client: httpx.Client) -> None:
        """Poll every tracked, unfinished run once; stop the round if the API is unreachable."""
        with self._lock:
            todo = [run for run in self._runs.values() if not run.done]
        for run in todo:
            if self._stop_poll.is_set():
                return
            try:
                self._poll_run(client, run)
            except _RoundAborted:
                return

    def _get(self, client: httpx.Client, run: _Run, what: str, path: str) -> dict[str, Any] | None:
        try:
            response = client.get(path)
        except httpx.HTTPError as e:
            self._event(
                "poll_error", what=what, dag_id=run.dag_id, run_id=run.run_id, error=_describe(e)
            )
            raise _RoundAborted from e
        if response.status_code == 200:
            return _json(response)
        if response.status_code == 404 and not run.acked and not run.observed:
            return None  # an unknown-outcome trigger that (so far) created nothing
        self._event(
            "poll_error",
            what=what,
            dag_id=run.dag_id,
            run_id=run.run_id,
            status=response.status_code,
            error=response.text[:300],
        )
        if response.status_code >= 500:
            raise _RoundAborted
        return None

    def _poll_run(self, client: httpx.Client, run: _Run) -> None:
        base = f"/api/v2/dags/{run.dag_id}/dagRuns/{run.run_id}"
        body = self._get(client, run, "run", base)
        if body is None:
            return
        state = body.get("state")
        with self._lock:
            run.observed = True
            changed = state != run.state
            run.state = state
        if changed:
            self._event("run_state", dag_id=run.dag_id, run_id=run.run_id, state=state)
        tis = self._get(client, run, "task_instances", f"{base}/taskInstances?limit=100")
        if tis is None:
            return
        for ti in tis.get("task_instances", []):
            key = (ti.get("task_id"), ti.get("map_index", -1))
            value = (ti.get("state"), ti.get("try_number"), ti.get("hostname"))
            if run.tis.get(key) != value:
                run.tis[key] = value
                self._event(
                    "task_state",
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    task_id=key[0],
                    map_index=key[1],
                    state=value[0],
                    try_number=value[1],
                    hostname=value[2],
                )
        if state in TERMINAL_RUN_STATES:
            with self._lock:
                run.done = True  # terminal, and the task states read after it


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:300]
