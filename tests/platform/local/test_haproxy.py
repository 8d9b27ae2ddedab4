"""The local cluster's HAProxy configuration on a real HAProxy: it is valid, it replays only
idempotent requests (GET/HEAD) after a server failure, and it still moves every method to
another server when a connection cannot be made at all. The backends are tiny HTTP servers
in this process that count what reaches them."""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.platform.local.cluster import (
    find_binary,
    haproxy_config,
    haproxy_version,
    lb_server_states,
)
from harness.platform.local.process import free_port

NOT_IDEMPOTENT = ("POST", "PATCH", "DELETE")


class Backend:
    """An api-server stand-in: healthy to HAProxy's check, 503 on /flaky, 200 elsewhere."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path != "/execution/health":
                    with lock:
                        backend.seen[(self.command, self.path)] += 1
                status = 503 if self.path == "/flaky" else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def backends(n: int) -> Iterator[list[Backend]]:
    started = [Backend() for _ in range(n)]
    try:
        yield started
    finally:
        for backend in started:
            backend.close()


@contextlib.contextmanager
def running_haproxy(config: str, tmp_path, stats_port: int, checked: list[str]) -> Iterator[None]:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    with open(tmp_path / "haproxy.log", "wb") as log:
        proc = subprocess.Popen([find_binary("haproxy"), "-db", "-f", str(path)],
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:  # up, with the health-checked servers in rotation
            with contextlib.suppress(OSError, http.client.HTTPException):
                states = lb_server_states(stats_port)
                if all(states.get(name) for name in checked):
                    break
            assert proc.poll() is None, (tmp_path / "haproxy.log").read_text()
            assert time.monotonic() < deadline, "HAProxy never put its servers in rotation"
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(port: int, method: str, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = b"{}" if method in ("POST", "PATCH") else None
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_the_rendered_config_retries_only_get_and_head_and_haproxy_accepts_it(tmp_path):
    config = haproxy_config(18080, 18081, {"api-server-0": 18100, "api-server-1": 18101})
    lines = [line.strip() for line in config.splitlines()]
    backend = lines[lines.index("backend api_servers") : lines.index("listen stats")]
    assert "http-request disable-l7-retry if !METH_GET !METH_HEAD" in backend
    assert "option redispatch" in lines and "retries 3" in lines  # connection failures: all
    assert "retry-on conn-failure empty-response response-timeout 502 503" in lines
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    check = subprocess.run([find_binary("haproxy"), "-c", "-f", str(path)],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Configuration file is valid" in check.stdout + check.stderr
    assert "WARNING" not in check.stdout + check.stderr
    version = haproxy_version(find_binary("haproxy"))
    assert version and version[0].isdigit()


def test_a_failed_post_is_not_replayed_a_failed_get_is(tmp_path):
    lb, stats = free_port(), free_port()
    with backends(2) as (a, b):
        config = haproxy_config(lb, stats, {"api-server-0": a.port, "api-server-1": b.port})
        with running_haproxy(config, tmp_path, stats, ["api-server-0", "api-server-1"]):
            assert request(lb, "GET", "/flaky") == 503
            for method in NOT_IDEMPOTENT:
                assert request(lb, method, "/flaky") == 503
        seen = a.seen + b.seen
    assert seen[("GET", "/flaky")] == 4  # the first attempt and 3 retries
    for method in NOT_IDEMPOTENT:
        assert seen[(method, "/flaky")] == 1, f"{method} was replayed: {dict(seen)}"


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_refused_connection_is_redispatched_for_every_method(tmp_path, method):
    lb, stats, closed = free_port(), free_port(), free_port()
    with backends(1) as (live,):
        config = haproxy_config(lb, stats, {"api-server-0": closed, "api-server-1": live.port})
        # no health check on the dead one: HAProxy keeps choosing it and must redispatch
        config = config.replace(f"127.0.0.1:{closed} check", f"127.0.0.1:{closed}")
        with running_haproxy(config, tmp_path, stats, ["api-server-1"]):
            statuses = [request(lb, method, "/ok") for _ in range(4)]
    assert statuses == [200] * 4
    assert live.seen[(method, "/ok")] == 4  # each exactly once
