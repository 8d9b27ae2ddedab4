"""Open-loop HTTP prober: probes leave on a fixed schedule whatever happened to earlier ones.

Each tick ``k`` fires at ``t0 + k * interval`` (``time.monotonic``); every target x endpoint is
probed once per tick over a fresh connection (no keep-alive, so a dead server shows as
``refused``), bounded by a per-request timeout. A hung request never delays the next tick.
Every probe becomes one ``probe`` event of :mod:`harness.core.history`, stamped with its *send*
time.

Run in-process with :func:`run_probes`, in a separate process with
:class:`~harness.observe.probe.process.ProberProcess`, or as ``ha-bench probe``
(:mod:`harness.observe.probe.command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import math
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness import __version__
from harness.core import history
from harness.core.airflow_api import HEALTH

__all__ = ["HEALTH_ENDPOINT", "ProbeStats", "ProbeTarget", "classify_error", "run_probes"]

HEALTH_ENDPOINT = HEALTH
DEFAULT_INTERVAL_S = 0.05
DEFAULT_TIMEOUT_S = 1.0
_ERROR_MAX_CHARS = 300


@dataclass(frozen=True)
class ProbeTarget:
    """A named server and the endpoints probed on it each tick."""

    name: str
    base_url: str
    endpoints: tuple[str, ...] = ("/api/v2/version",)

    def urls(self) -> list[tuple[str, str]]:
        """(endpoint, absolute URL) pairs."""
        base = self.base_url.rstrip("/")
        out = []
        for endpoint in self.endpoints:
            path = endpoint if endpoint.startswith("/") or not endpoint else "/" + endpoint
            out.append((endpoint, base + path))
        return out


@dataclass
class ProbeStats:
    """What the prober planned and achieved.

    ``planned`` counts probes the schedule called for up to the end (or the stop), ``sent``
    those actually started; ``missed_ticks`` were skipped because the event loop fell more
    than one interval behind; ``overload`` probes were not sent because too many were in flight.
    ``lag_*`` is how late ticks fired versus their scheduled time.
    """

    interval_s: float
    timeout_s: float
    streams: int
    started_wall: float = 0.0
    started_mono: float = 0.0
    schedule_end_mono: float = 0.0
    ended_mono: float = 0.0
    ticks_planned: int = 0
    ticks_fired: int = 0
    missed_ticks: int = 0
    planned: int = 0
    sent: int = 0
    overload: int = 0
    completed: int = 0
    failures: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    lag_p50_s: float = 0.0
    lag_p99_s: float = 0.0
    lag_max_s: float = 0.0
    stopped_early: bool = False

    @property
    def planned_rate_hz(self) -> float:
        return self.streams / self.interval_s

    @property
    def achieved_rate_hz(self) -> float:
        span = self.schedule_end_mono - self.started_mono
        return self.sent / span if span > 0 else 0.0

    @property
    def achieved_fraction(self) -> float:
        """``sent / planned`` (1.0 when nothing was planned)."""
        return self.sent / self.planned if self.planned else 1.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["planned_rate_hz"] = self.planned_rate_hz
        d["achieved_rate_hz"] = self.achieved_rate_hz
        d["achieved_fraction"] = self.achieved_fraction
        return d


# --- error classification -------------------------------------------------------------

_REFUSED_ERRNOS = {errno.ECONNREFUSED}
_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything reachable via __cause__, __context__ and exception groups."""
    out: list[BaseException] = []
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        stack.extend(x for x in (e.__cause__, e.__context__) if x is not None)
        stack.extend(getattr(e, "exceptions", None) or ())
    return out


def classify_error(exc: BaseException) -> str:
    """Map a request exception to one of :data:`history.OUTCOMES` (never ``ok``)."""
    chain = _exception_chain(exc)
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) in _REFUSED_ERRNOS:
            return "refused"
    for e in chain:
        if isinstance(e, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return "reset"
        if getattr(e, "errno", None) in _RESET_ERRNOS:
            return "reset"
        if isinstance(e, httpx.RemoteProtocolError):  # closed without (a complete) response
            return "reset"
    for e in chain:
        if isinstance(e, httpx.TimeoutException | TimeoutError):
            return "timeout"
    text = " ".join(str(e) for e in chain).lower()
    if "connection refused" in text:
        return "refused"
    if "connection reset" in text or "server disconnected" in text:
        return "reset"
    return "other"


def _error_text(exc: BaseException) -> str:
    msg = str(exc)
    if not msg:
        # innermost message is usually the informative one (e.g. ReadTimeout(''))
        msg = next((str(e) for e in _exception_chain(exc) if str(e)), "")
    return f"{type(exc).__name__}: {msg}"[:_ERROR_MAX_CHARS]


# --- the open-loop scheduler ----------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    idx = min(len(s) - 1, max(0, math.ceil(q / 100.0 * len(s)) - 1))
    return s[idx]


async def _probe_once(
    client: httpx.AsyncClient,
    target: str,
    endpoint: str,
    url: str,
    timeout_s: float,
) -> dict[str, Any]:
    """One request; returns the event fields (``t`` = send time)."""
    send_wall, send_mono = time.time(), time.monotonic()
    fields: dict[str, Any] = {"target": target, "endpoint": endpoint, "url": url}
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.get(url)
        latency = time.monotonic() - send_mono
        status = response.status_code
        ok = status < 400
        fields.update(
            ok=ok,
            outcome="ok" if ok else "http_error",
            status=status,
            latency_s=latency,
            error=None if ok else f"HTTP {status}",
        )
        if endpoint.rstrip("/").endswith(HEALTH_ENDPOINT):
            with contextlib.suppress(ValueError):
                body = response.json()
                if isinstance(body, dict):
                    fields["body"] = body
    except Exception as exc:  # every failure is an observation
        fields.update(
            ok=False,
            outcome=classify_error(exc),
            status=None,
            latency_s=time.monotonic() - send_mono,
            error=_error_text(exc),
        )
    fields["t"] = (send_wall, send_mono)
    return fields


def _tick_count(duration_s: float, interval_s: float) -> int:
    """Ticks k >= 0 with k * interval < duration (robust to float noise)."""
    return max(1, math.ceil(duration_s / interval_s - 1e-9))


async def _warm_up(streams: Sequence[tuple[str, str, str]]) -> None:
    """Pay one-time costs before t0 so the first ticks are not late: the lazily imported
    anyio backend and the resolver thread pool (each host resolved once; no request sent)."""
    for module in ("anyio._backends._asyncio", "anyio.streams.tls"):
        importlib.import_module(module)

    loop = asyncio.get_running_loop()
    for host, port in sorted(
        {(u.hostname or "", u.port or 0) for u in map(urlsplit, (s[2] for s in streams))}
    ):
        with contextlib.suppress(OSError):
            await loop.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)


async def run_probes(
    targets: Iterable[ProbeTarget],
    writer: history.HistoryWriter,
    *,
    duration_s: float | None,
    interval_s: float = DEFAULT_INTERVAL_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stop: asyncio.Event | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    max_in_flight: int | None = None,
) -> ProbeStats:
    """Probe every target x endpoint each ``interval_s`` for ``duration_s`` (None: until ``stop``).

    Ticks fire at ``t0 + k * interval_s`` regardless of earlier probes; if the event loop falls
    behind by a whole interval or more, it fires the newest due tick and skips the older ones
    (counted in ``missed_ticks``; probes are never bunched up).
    When ``max_in_flight`` requests are already pending, a probe is recorded as outcome
    ``other`` with error ``overload`` instead of being sent. Returns once every sent probe has
    completed (each is bounded by ``timeout_s``). ``on_result`` gets each recorded event.
    """
    targets = list(targets)
    if interval_s <= 0 or timeout_s <= 0:
        raise ValueError("interval_s and timeout_s must be > 0")
    if duration_s is not None and duration_s <= 0:
        raise ValueError("duration_s must be > 0 or None")
    if duration_s is None and stop is None:
        raise ValueError("duration_s=None needs a stop event")
    streams = [(t.name, ep, url) for t in targets for ep, url in t.urls()]
    if not streams:
        raise ValueError("no target endpoints to probe")
    if max_in_flight is None:
        per_stream = math.ceil(timeout_s / interval_s) + 2
        max_in_flight = max(64, 2 * per_stream * len(streams))

    await _warm_up(streams)
    stats = ProbeStats(interval_s=interval_s, timeout_s=timeout_s, streams=len(streams))
    outcomes: Counter[str] = Counter()
    lags: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    def record(fields: dict[str, Any]) -> None:
        t = fields.pop("t")
        event = writer.append("probe", t=t, **fields)
        outcomes[fields["outcome"]] += 1
        if not fields["ok"]:
            stats.failures += 1
        if on_result is not None:
            on_result(event)

    async def probe_task(client: httpx.AsyncClient, name: str, endpoint: str, url: str) -> None:
        fields = await _probe_once(client, name, endpoint, url, timeout_s)
        stats.completed += 1
        record(fields)

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    headers = {"Connection": "close", "User-Agent": f"airflow-ha-bench-prober/{__version__}"}
    async with httpx.AsyncClient(
        limits=limits,
        timeout=httpx.Timeout(timeout_s),
        headers=headers,
        follow_redirects=False,
        trust_env=False,  # never route through an environment proxy
    ) as client:
        stats.started_wall, t0 = time.time(), time.monotonic()
        stats.started_mono = t0
        end = math.inf if duration_s is None else t0 + duration_s
        # index of the last tick before the end (ticks k with k * interval < duration)
        last_tick = sys.maxsize if duration_s is None else _tick_count(duration_s, interval_s) - 1
        k = 0
        stop_wait = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            while True:
                due = t0 + k * interval_s
                if k > last_tick:
                    stats.schedule_end_mono = end
                    break
                if stop is not None and stop.is_set():
                    stats.stopped_early = True
                    stats.schedule_end_mono = time.monotonic()
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    if stop_wait is not None:
                        await asyncio.wait({stop_wait}, timeout=delay)
                        if stop_wait.done():
                            continue  # loop top records the stop
                    else:
                        await asyncio.sleep(delay)
                now_mono = time.monotonic()
                latest = min(int((now_mono - t0) // interval_s), last_tick)
                if latest > k:
                    # fell behind (loop stalled): fire the newest due tick, skip older ones
                    skip = latest - k
                    stats.missed_ticks += skip
                    stats.ticks_planned += skip
                    stats.planned += skip * len(streams)
                    k = latest
                    due = t0 + k * interval_s
                lags.append(max(0.0, now_mono - due))
                stats.ticks_planned += 1
                stats.ticks_fired += 1
                for name, endpoint, url in streams:
                    stats.planned += 1
                    if len(pending) >= max_in_flight:
                        stats.overload += 1
                        wall, mono = history.now()
                        record(
                            {
                                "t": (wall, mono),
                                "target": name,
                                "endpoint": endpoint,
                                "url": url,
                                "ok": False,
                                "outcome": "other",
                                "status": None,
                                "latency_s": None,
                                "error": "overload",
                            }
                        )
                        continue
                    task = asyncio.create_task(probe_task(client, name, endpoint, url))
                    stats.sent += 1
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                k += 1
            if pending:
                await asyncio.wait(set(pending), timeout=timeout_s + 1.0)
        finally:
            if stop_wait is not None:
                stop_wait.cancel()
            for task in list(pending):
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
    stats.ended_mono = time.monotonic()
    stats.outcomes = dict(sorted(outcomes.items()))
    stats.lag_p50_s = _percentile(lags, 50)
    stats.lag_p99_s = _percentile(lags, 99)
    stats.lag_max_s = max(lags, default=0.0)
    return stats
