"""A ground-truth HTTP server for prober tests: scripted outages with their TRUE times.

Runs an asyncio raw-socket HTTP/1.1 server on 127.0.0.1 (free port) in its own thread.
Normal mode answers 200 ``{"version": "x"}`` (a health document on
``/api/v2/monitor/health``) and closes the connection. Outage kinds:

- ``http5xx``: answers ``status`` (503 by default);
- ``killed``: closes the listening socket (connections are refused) and resets every open
  connection (SO_LINGER 0); at the end rebinds the same port (SO_REUSEADDR);
- ``stalled``: accepts and reads requests but never answers them;
- ``reset`` (extra, for classification tests): reads the request, then resets (RST).

:attr:`GroundTruthServer.truth` records each outage's true start/end as ``time.time()`` and
``time.monotonic()``: start is taken just before the switch takes effect, end just after the
normal service is fully back (for ``killed``: after the port listens again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass

KINDS = ("http5xx", "killed", "stalled", "reset")
HEALTH_BODY = {
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": None},
}


@dataclass(frozen=True)
class Outage:
    """An outage ``start_s`` after the schedule starts, lasting ``duration_s``."""

    kind: str
    start_s: float
    duration_s: float
    status: int = 503


@dataclass
class TrueOutage:
    kind: str
    start_wall: float
    start_mono: float
    end_wall: float | None = None
    end_mono: float | None = None

    @property
    def duration_s(self) -> float:
        assert self.end_mono is not None, "outage has not ended"
        return self.end_mono - self.start_mono


def free_port() -> int:
    """A currently unused TCP port on 127.0.0.1 (nothing listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class GroundTruthServer:
    """Scripted-outage HTTP server on 127.0.0.1; use as a context manager."""

    def __init__(self, port: int = 0) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.mode: str | None = None
        self.status = 503
        self.truth: list[TrueOutage] = []
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._release = None  # asyncio.Event set at shutdown: releases stalled handlers
        self._schedule: asyncio.Future | None = None

    # -- lifecycle (called from the test thread) --

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> GroundTruthServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="groundtruth", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("ground-truth server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> GroundTruthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro, timeout: float = 10.0):
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- control --

    def set_mode(self, kind: str | None, status: int = 503) -> tuple[float, float]:
        """Switch to outage ``kind`` (None: normal); returns the (wall, mono) it took effect."""
        return self._call(self._set_mode(kind, status))

    def run_schedule(self, outages: list[Outage], t0_mono: float | None = None) -> None:
        """Run ``outages`` (offsets from ``t0_mono``, default now) in the background."""
        t0 = time.monotonic() if t0_mono is None else t0_mono
        assert self._loop is not None
        self._schedule = asyncio.run_coroutine_threadsafe(self._run(outages, t0), self._loop)

    def wait_schedule(self, timeout: float = 30.0) -> list[TrueOutage]:
        assert self._schedule is not None
        self._schedule.result(timeout)
        return list(self.truth)

    # -- inside the loop --

    async def _listen(self) -> None:
        if self._release is None:
            self._release = asyncio.Event()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._handle, sock=sock)

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()  # closes the listening socket now: new connects are refused
            self._server = None
        for writer in list(self._writers):
            _rst(writer)
        self._writers.clear()

    async def _set_mode(self, kind: str | None, status: int) -> tuple[float, float]:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown outage kind {kind!r}")
        previous = self.mode
        if kind is not None:
            start = (time.time(), time.monotonic())
            self.status = status
            if kind == "killed":
                await self._kill()
            self.mode = kind
            self.truth.append(TrueOutage(kind, *start))
            return start
        if previous == "killed":
            await self._listen()
        self.mode = None
        end = (time.time(), time.monotonic())
        if self.truth and self.truth[-1].end_mono is None:
            self.truth[-1].end_wall, self.truth[-1].end_mono = end
        return end

    async def _run(self, outages: list[Outage], t0: float) -> None:
        for outage in sorted(outages, key=lambda o: o.start_s):
            await asyncio.sleep(max(0.0, t0 + outage.start_s - time.monotonic()))
            await self._set_mode(outage.kind, outage.status)
            await asyncio.sleep(max(0.0, t0 + outage.start_s + outage.duration_s - time.monotonic()))
            await self._set_mode(None, 200)

    async def _shutdown(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
        if self._release is not None:
            self._release.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            mode = self.mode  # decided when the request has arrived
            if mode == "stalled":
                assert self._release is not None
                await self._release.wait()
                return
            if mode == "reset":
                _rst(writer)
                return
            if mode == "killed":  # raced with the kill: treat as reset
                _rst(writer)
                return
            path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
            if mode == "http5xx":
                status, reason = self.status, "Error"
                body = json.dumps({"detail": "scripted outage"}).encode()
            else:
                status, reason = 200, "OK"
                doc = HEALTH_BODY if path.endswith("/monitor/health") else {"version": "x"}
                body = json.dumps(doc).encode()
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
            writer.close()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
