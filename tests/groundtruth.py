"""A ground-truth HTTP server for prober tests: scripted outages with their TRUE times.

The server runs in its own process (``python tests/groundtruth.py``, controlled with JSON
lines over stdin/stdout), so it never competes with the prober for a GIL; it is an asyncio
raw-socket HTTP/1.1 server on 127.0.0.1 (free port). Normal mode answers 200
``{"version": "x"}`` (a health document on ``/api/v2/monitor/health``) and closes the
connection. Outage kinds:

- ``http5xx``: answers ``status`` (503 by default);
- ``killed``: closes the listening socket (connections are refused) and resets every open
  connection (SO_LINGER 0); at the end rebinds the same port (SO_REUSEADDR);
- ``stalled``: accepts and reads requests but never answers them;
- ``reset`` (extra, for classification tests): reads the request, then resets (RST).

:meth:`GroundTruthServer.wait_schedule` returns each outage's true start/end as
``time.time()`` and ``time.monotonic()`` (system-wide on Linux, so comparable with the
prober's): start is taken just before the switch takes effect, end just after normal service
is fully back (for ``killed``: once the port listens again). The server decides how to treat
a request when the request has arrived. The server process exits when its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

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


class GroundTruthServer:
    """Client handle of a scripted-outage server process; use as a context manager."""

    def __init__(self, port: int = 0) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.truth: list[TrueOutage] = []
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> GroundTruthServer:
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.port = self._call("hello")["port"]
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()  # EOF: the server shuts down
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()

    def __enter__(self) -> GroundTruthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, op: str, **args: Any) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        with self._lock:
            proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"ground-truth server died (exit {proc.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"ground-truth server: {reply['error']}")
        return reply

    def set_mode(self, kind: str | None, status: int = 503) -> tuple[float, float]:
        """Switch to outage ``kind`` (None: normal); returns the (wall, mono) it took effect."""
        reply = self._call("mode", kind=kind, status=status)
        return reply["wall"], reply["mono"]

    def run_schedule(self, outages: list[Outage], t0_mono: float | None = None) -> None:
        """Run ``outages`` (offsets from ``t0_mono``, default now) in the background."""
        t0 = time.monotonic() if t0_mono is None else t0_mono
        self._call("schedule", outages=[asdict(o) for o in outages], t0=t0)

    def wait_schedule(self, timeout: float = 30.0) -> list[TrueOutage]:
        """Wait for the schedule to finish; returns (and stores in ``truth``) the true outages."""
        reply = self._call("wait", timeout=timeout)
        self.truth = [TrueOutage(**t) for t in reply["truth"]]
        return list(self.truth)

    @property
    def requests(self) -> int:
        return self._call("stats")["requests"]


# --- the server process ---------------------------------------------------------------


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Server:
    def __init__(self, port: int) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.mode: str | None = None
        self.status = 503
        self.truth: list[dict[str, Any]] = []
        self.requests = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.release = asyncio.Event()  # set at shutdown: releases stalled handlers
        self.schedule: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.server = await asyncio.start_server(self.handle, sock=sock)

    def kill(self) -> None:
        if self.server is not None:
            self.server.close()  # closes the listening socket now: new connects are refused
            self.server = None
        for writer in list(self.writers):
            _rst(writer)
        self.writers.clear()

    async def set_mode(self, kind: str | None, status: int) -> tuple[float, float]:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown outage kind {kind!r}")
        if kind is not None:
            wall, mono = time.time(), time.monotonic()
            self.status = status
            if kind == "killed":
                self.kill()
            self.mode = kind
            self.truth.append({"kind": kind, "start_wall": wall, "start_mono": mono})
            return wall, mono
        if self.mode == "killed":
            await self.listen()
        self.mode = None
        wall, mono = time.time(), time.monotonic()
        if self.truth and "end_mono" not in self.truth[-1]:
            self.truth[-1].update(end_wall=wall, end_mono=mono)
        return wall, mono

    async def run(self, outages: list[dict[str, Any]], t0: float) -> None:
        for o in sorted(outages, key=lambda o: o["start_s"]):
            await asyncio.sleep(max(0.0, t0 + o["start_s"] - time.monotonic()))
            await self.set_mode(o["kind"], o.get("status", 503))
            end = t0 + o["start_s"] + o["duration_s"]
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            await self.set_mode(None, 200)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            mode = self.mode  # decided when the request has arrived
            if mode == "stalled":
                await self.release.wait()
                return
            if mode in ("reset", "killed"):  # killed: raced with the kill
                _rst(writer)
                return
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 2 else "/"
            if mode == "http5xx":
                status, reason = self.status, "Error"
                body = json.dumps({"detail": "scripted outage"}).encode()
            else:
                status, reason = 200, "OK"
                doc = HEALTH_BODY if path.endswith("/monitor/health") else {"version": "x"}
                body = json.dumps(doc).encode()
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            writer.close()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.transport.abort()
        finally:
            self.writers.discard(writer)

    async def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "hello":
            return {"port": self.port}
        if op == "mode":
            wall, mono = await self.set_mode(cmd["kind"], cmd.get("status", 503))
            return {"wall": wall, "mono": mono}
        if op == "schedule":
            if self.schedule is not None and not self.schedule.done():
                raise RuntimeError("a schedule is already running")
            self.schedule = asyncio.create_task(self.run(cmd["outages"], cmd["t0"]))
            return {}
        if op == "wait":
            if self.schedule is not None:
                await asyncio.wait_for(asyncio.shield(self.schedule), cmd.get("timeout", 30))
            return {"truth": self.truth}
        if op == "stats":
            return {"requests": self.requests}
        raise ValueError(f"unknown op {op!r}")

    async def shutdown(self) -> None:
        if self.schedule is not None:
            self.schedule.cancel()
        self.release.set()
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()


async def _serve(port: int) -> None:
    server = _Server(port)
    await server.listen()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def read_stdin() -> None:  # a thread: blocking reads of the control channel
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(commands.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(commands.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()
    while (cmd := await commands.get()) is not None:
        try:
            reply = await server.command(cmd)
        except Exception as exc:  # reported to the test, which raises it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
