"""Supervise one replica like a Kubernetes Deployment supervises a pod.

Each :class:`Replica` owns a thread that starts its unit, watches it exit, and restarts
it by its :class:`~harness.core.topology.RestartPolicy`, plus a probe thread running the
readiness and liveness checks. Every transition is an event on the cluster's bus:
``starting``, ``ready``, ``not_ready``, ``exited`` (with exit code; negative = signal),
``restarting`` (with the back-off delay), ``stopped``. ``exited`` and ``not_ready`` carry
the time the death or the failed check was *seen*, not the (later) time they are emitted
after the unit's clean-up.

With a cgroup (:mod:`.cgroups`), the kernel's OOM kills in it are watched: each is an
``oom_kill`` event (the replica may live on, if the killer chose a child), and ``exited``
says ``oom_killed: true`` when the main process died of one (SIGKILL, an OOM kill counted
in its incarnation, no SIGKILL from the harness) — ``oom_killed`` is None without a cgroup
with memory accounting. With :meth:`Replica.set_oom_group` an OOM kill takes the whole
replica, as Kubernetes has it on cgroup v2 (``memory.oom.group``): by the kernel where it
can, else by this supervisor as soon as the kill is seen.

With a pod-network host (``ReplicaSpec.host``), every incarnation runs in the host's
network namespace (entered by the unit's pre-exec step, :mod:`.preexec`), and the ports
it waits to be free are those of that namespace.

When the main process of a unit exits, the rest of the unit is killed too — a container
ends with its PID 1 — and the replacement starts only once no old process is left and
its ports are free again.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.events import EventBus
from harness.core.history import now
from harness.core.polling import poll
from harness.core.topology import Probe, RestartPolicy
from harness.platform.local.cgroups import ReplicaCgroup
from harness.platform.local.clock import SkewableClock
from harness.platform.local.disk import SizedDisk
from harness.platform.local.process import Unit, port_is_free, start_unit

if TYPE_CHECKING:
    from harness.platform.local.net import Host

Check = Callable[[Unit, float], bool]
"""A readiness/liveness check: (current unit, timeout seconds) -> healthy?"""


@dataclass
class ReplicaSpec:
    name: str
    component: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    cluster_id: str
    ports: tuple[int, ...] = ()
    readiness: Check | None = None
    readiness_probe: Probe = field(default_factory=Probe)
    liveness: Check | None = None
    liveness_probe: Probe | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    grace_s: float = 10.0
    stop_signal: int = signal.SIGTERM
    stop_scope: str = "group"  # "group" (dumb-init setsid) or "leader" (DUMB_INIT_SETSID=0)
    user: str | None = None
    cwd: Path | None = None
    registry: Path | None = None
    cgroup: ReplicaCgroup | None = None  # every incarnation runs in it (None: /proc scan)
    clock: SkewableClock | None = None  # its wall clock can be skewed (libfaketime)
    disk: SizedDisk | None = None  # the size-limited filesystem it keeps its data on
    host: Host | None = None  # its pod-network host: every incarnation runs in its namespace

    @property
    def address(self) -> str:
        """Where it listens and is reached: its host's address, else 127.0.0.1."""
        return self.host.address if self.host is not None else "127.0.0.1"

    @property
    def netns(self) -> str | None:
        return self.host.netns if self.host is not None else None


class Replica:
    """A supervised replica; thread-safe."""

    def __init__(self, spec: ReplicaSpec, bus: EventBus) -> None:
        self.spec = spec
        self.bus = bus
        self.name = spec.name
        self.component = spec.component
        self.unit: Unit | None = None
        self.incarnation = 0
        self.restarts = 0
        self.ready = False
        self.last_exit_code: int | None = None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._shutdown = threading.Event()  # supervisor thread must end
        self._held = threading.Event()  # do not (re)start until released
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = spec.restart.initial_backoff_s
        self._fresh = False  # the next exit restarts at once (see reset_backoff)
        self._backing_off = False  # waiting out a back-off delay now
        self._oom_group = False  # an OOM kill takes the whole replica (harness-emulated)

    # -- public API -------------------------------------------------------------------
    def start(self) -> None:
        """Start supervising (launches the first incarnation)."""
        self._thread = threading.Thread(target=self._supervise, name=self.name, daemon=True)
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.ready, timeout=timeout_s)

    def signal(self, sig: int) -> int:
        """Signal every process of the current incarnation; returns how many were signalled."""
        unit = self.unit
        if unit is None or (unit.popen.poll() is not None and not unit.members()):
            return 0
        return unit.signal(sig)

    def hold(self, *, grace_s: float | None = None) -> int | None:
        """Stop the replica and keep it stopped (a service taken down); returns exit code."""
        self._held.set()
        return self._terminate(self.spec.grace_s if grace_s is None else grace_s)

    def release(self) -> None:
        """Allow the replica to run again after :meth:`hold`."""
        self._held.clear()
        self._wake.set()

    def stop(self) -> None:
        """Stop supervising and terminate gracefully (SIGTERM, SIGKILL after the grace)."""
        self._shutdown.set()
        self._held.set()
        self._wake.set()
        self._terminate(self.spec.grace_s)
        if self._thread is not None:
            self._thread.join(timeout=self.spec.grace_s + 15)
        unit = self.unit
        if unit is not None:
            unit.kill_all()

    def reset_backoff(self) -> int:
        """Forget the crash-loop history, as a fresh deploy would; returns the restarts so far.

        The back-off delay starts over at ``initial_backoff_s`` and the next exit of the
        running incarnation restarts at once, however short its uptime was; a replica
        waiting out a back-off delay now restarts at once.
        """
        with self._lock:
            self._backoff = self.spec.restart.initial_backoff_s
            if self._backing_off:
                self._wake.set()
            else:
                self._fresh = True
            return self.restarts

    def set_oom_group(self, on: bool) -> str | None:
        """Whether an OOM kill takes the whole replica; returns who does it (``kernel``:
        cgroup v2 ``memory.oom.group``; ``harness``: this supervisor kills the rest once it
        sees the kill) or None when off."""
        cgroup = self.spec.cgroup
        if cgroup is None:
            return None
        by_kernel = cgroup.set_oom_group(on)
        self._oom_group = on and not by_kernel
        return None if not on else ("kernel" if by_kernel else "harness")

    def log_tail(self, lines: int = 20) -> str:
        from harness.platform.local.process import tail

        return tail(self.spec.log_path, lines)

    # -- internals -------------------------------------------------------------------
    def _emit(self, state: str, *, t: tuple[float, float] | None = None, **fields) -> None:
        """A lifecycle event; ``t``: when it happened, if earlier than now."""
        unit = self.unit
        self.bus.emit(
            "lifecycle",
            t=t,
            replica=self.name,
            component=self.component,
            state=state,
            pid=unit.pid if unit else None,
            incarnation=self.incarnation,
            **fields,
        )

    def _set_ready(self, ready: bool, *, t: tuple[float, float] | None = None, **fields) -> None:
        with self._changed:
            if self.ready == ready:
                return
            self.ready = ready
            self._changed.notify_all()
        self._emit("ready" if ready else "not_ready", t=t, **fields)

    def _terminate(self, grace_s: float) -> int | None:
        unit = self.unit
        if unit is None:
            return None
        if unit.popen.poll() is None:
            unit.resume_all()  # a paused or frozen process must see the stop signal
            unit.signal_stop(self.spec.stop_signal, self.spec.stop_scope)
            with contextlib.suppress(subprocess.TimeoutExpired):
                unit.popen.wait(timeout=grace_s)
        if not unit.wait_gone(0.2):
            unit.kill_all()
        return unit.popen.poll()

    def _wait_ports_free(self, timeout_s: float = 30.0) -> None:
        if not poll(
            lambda: all(port_is_free(p, netns=self.spec.netns) for p in self.spec.ports),
            timeout_s=timeout_s,
            interval_s=0.05,
        ):
            busy = [p for p in self.spec.ports if not port_is_free(p, netns=self.spec.netns)]
            self._emit("restarting", detail=f"ports still busy: {busy}")

    def _launch(self) -> Unit:
        self._wait_ports_free()
        with self._lock:
            self.incarnation += 1
            unit_id = f"{self.spec.cluster_id}/{self.name}/{self.incarnation}"
            self.unit = start_unit(
                unit_id,
                self.spec.command,
                env=self.spec.env,
                log_path=self.spec.log_path,
                cwd=self.spec.cwd,
                user=self.spec.user,
                registry=self.spec.registry,
                cgroup=self.spec.cgroup,
                netns=self.spec.netns,
            )
        self._emit("starting")
        return self.unit

    def _supervise(self) -> None:
        while not self._shutdown.is_set():
            if self._held.is_set():
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            unit = self._launch()
            stop_probes = threading.Event()
            prober = threading.Thread(
                target=self._probe_loop, args=(unit, stop_probes), name=f"{self.name}-probe"
            )
            prober.daemon = True
            prober.start()
            oom_watch = None
            if unit.oom_base is not None:
                oom_watch = threading.Thread(target=self._watch_oom, args=(unit, stop_probes),
                                             name=f"{self.name}-oom", daemon=True)  # fmt: skip
                oom_watch.start()
            code = unit.popen.wait()
            seen_dead = now()  # the events below are stamped with this, not their emit time
            exited_mono = seen_dead[1]
            stop_probes.set()
            oom = self._oom_verdict(unit, code)  # before the clean-up's own SIGKILLs
            # like a container ending with its PID 1: nothing of it may linger
            leftovers = len(unit.members())
            unit.kill_all()
            prober.join(timeout=5)  # a check in flight may take its whole timeout
            if oom_watch is not None:
                oom_watch.join(timeout=1)
            self._set_ready(False, t=seen_dead, detail="process exited")
            self.last_exit_code = code
            self._emit("exited", t=seen_dead, exit_code=code, leftover_processes=leftovers,
                       **oom)  # fmt: skip
            if self._shutdown.is_set() or self._held.is_set():
                self._emit("stopped", exit_code=code)
                continue
            if not self.spec.restart.enabled:
                self._emit("stopped", exit_code=code, detail="restart policy disabled")
                return
            uptime = exited_mono - unit.started_mono
            with self._lock:  # one step with reset_backoff
                fresh, self._fresh = self._fresh, False
                if fresh or uptime >= self.spec.restart.stable_after_s:
                    self._backoff = self.spec.restart.initial_backoff_s
                    delay = 0.0
                else:
                    delay = self._backoff
                    self._backoff = min(self._backoff * 2 or 1.0, self.spec.restart.max_backoff_s)
                self.restarts += 1
                self._backing_off = bool(delay)
            self._emit("restarting", delay_s=delay, exit_code=code)
            if delay and self._wake.wait(delay):
                self._wake.clear()
            with self._lock:
                self._backing_off = False

    def _oom_verdict(self, unit: Unit, code: int) -> dict[str, object]:
        """``oom_killed`` (None: unknown) and ``oom_kills`` of an incarnation that ended."""
        kills = unit.oom_kills()
        if kills is None:
            return {"oom_killed": None, "oom_kills": None}
        by_harness = any(sig == signal.SIGKILL for _, sig in unit.signals)
        return {"oom_killed": code == -signal.SIGKILL and kills > 0 and not by_harness,
                "oom_kills": kills}  # fmt: skip

    def _watch_oom(self, unit: Unit, stop: threading.Event) -> None:
        """An ``oom_kill`` event for each OOM kill the kernel counts in the cgroup; with an
        OOM group emulated here, the rest of the replica is killed at once."""
        seen = 0
        while not stop.wait(0.05):
            kills = unit.oom_kills()
            if kills is None or kills <= seen:
                continue
            seen = kills
            whole = self._oom_group and unit.popen.poll() is None
            self._emit("oom_kill", t=now(), oom_kills=kills,
                       group="harness" if whole else None)  # fmt: skip
            if whole:
                unit.kill_all(record=False)  # what memory.oom.group would have done

    def _probe_loop(self, unit: Unit, stop: threading.Event) -> None:
        spec = self.spec
        start = time.monotonic()
        successes = failures = live_failures = 0
        next_ready = start + spec.readiness_probe.initial_delay_s
        live = spec.liveness_probe
        next_live = start + live.initial_delay_s if live and spec.liveness else float("inf")
        while not stop.is_set():
            now_mono = time.monotonic()
            if spec.readiness is not None and now_mono >= next_ready:
                ok = _safe_check(spec.readiness, unit, spec.readiness_probe.timeout_s)
                seen = now()  # when the check's answer (or its timeout) was seen
                if stop.is_set():
                    return
                if ok:
                    successes, failures = successes + 1, 0
                    if successes >= spec.readiness_probe.success_threshold:
                        self._set_ready(True, t=seen)
                else:
                    successes, failures = 0, failures + 1
                    if self.ready and failures >= spec.readiness_probe.failure_threshold:
                        self._set_ready(False, t=seen, detail="readiness probe failed")
                next_ready = now_mono + spec.readiness_probe.period_s
            elif spec.readiness is None and now_mono >= next_ready:
                self._set_ready(True)
                next_ready = float("inf")
            if live is not None and spec.liveness is not None and now_mono >= next_live:
                if _safe_check(spec.liveness, unit, live.timeout_s):
                    live_failures = 0
                else:
                    live_failures += 1
                    if live_failures >= live.failure_threshold:
                        self._emit("restarting", detail="liveness probe failed; killing")
                        unit.kill_all()
                        return
                next_live = now_mono + live.period_s
            stop.wait(min(1.0, max(0.0, min(next_ready, next_live) - time.monotonic())))


def _safe_check(check: Check, unit: Unit, timeout_s: float) -> bool:
    try:
        return bool(check(unit, timeout_s))
    except Exception:
        return False
