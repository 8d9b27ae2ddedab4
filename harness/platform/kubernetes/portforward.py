"""``kubectl port-forward`` children: loopback URLs for Services and pods.

Each forward is a child process in its own session, on 127.0.0.1 only, stopped with its
whole process group. Note: a port-forward to a Service pins one pod behind it (kubectl
resolves the Service once) — it is not a load balancer; use the kind NodePort for that.

A live kubectl is no live forward: its local listener keeps accepting after the stream to
the pod broke (the pod replaced, the API server restarted), and every connection then
just closes. :meth:`PortForward.responds` checks by traffic (an HTTP answer through the
forward) and :class:`Liveness` decides when repeated silence means "restart it".
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

from harness.core.child import stop_child
from harness.core.errors import HarnessError
from harness.core.polling import poll
from harness.platform.local.process import free_port


def kubectl_base(context: str, namespace: str, kubeconfig: str | None = None) -> list[str]:
    binary = shutil.which("kubectl")
    if binary is None:
        raise HarnessError(
            "kubectl not found on PATH",
            fix="install kubectl (https://kubernetes.io/docs/tasks/tools/)",
        )
    return [
        binary,
        *(["--kubeconfig", kubeconfig] if kubeconfig else []),
        "--context",
        context,
        "--namespace",
        namespace,
    ]


def port_forward_command(
    base: list[str], target: str, local_port: int, remote_port: int
) -> list[str]:
    return [*base, "port-forward", "--address", "127.0.0.1", target, f"{local_port}:{remote_port}"]


def port_open(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_answers(port: int, path: str = "/", timeout_s: float = 1.0) -> bool:
    """Does an HTTP request through 127.0.0.1:``port`` get an HTTP answer (any status)?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as conn:
            conn.settimeout(timeout_s)
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return conn.recv(5) == b"HTTP/"
    except OSError:
        return False


class Liveness:
    """When a forward that stays silent should be restarted: after ``failures``
    consecutive failed checks, at most once per ``min_gap_s`` (a paused pod answers
    nothing either; restarting its forward does no harm, but not in a loop)."""

    def __init__(
        self,
        failures: int = 3,
        min_gap_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.min_gap_s = min_gap_s
        self._clock = clock
        self._misses: dict[str, int] = {}
        self._restarted: dict[str, float] = {}

    def check(self, key: str, answered: bool) -> bool:
        """Record one check of ``key``; True: restart it now."""
        if answered:
            self._misses[key] = 0
            return False
        self._misses[key] = self._misses.get(key, 0) + 1
        now = self._clock()
        last = self._restarted.get(key)
        if self._misses[key] >= self.failures and (last is None or now - last >= self.min_gap_s):
            self._restarted[key] = now
            self._misses[key] = 0
            return True
        return False


class PortForward:
    """One ``kubectl port-forward`` to ``target`` (``svc/x``, ``pod/y``) on a fixed local port."""

    def __init__(self, base: list[str], remote_port: int, local_port: int | None = None) -> None:
        self.base = base
        self.remote_port = remote_port
        self.local_port = local_port or free_port()
        self.target: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def alive(self) -> bool:
        """The kubectl process runs (not that it forwards: see :meth:`responds`)."""
        return self._proc is not None and self._proc.poll() is None

    def responds(self, path: str = "/api/v2/monitor/health", timeout_s: float = 1.0) -> bool:
        """Traffic gets through: an HTTP answer from the far side of the forward."""
        return self.alive() and http_answers(self.local_port, path, timeout_s)

    def start(self, target: str, *, wait_s: float = 10.0) -> bool:
        """(Re)start forwarding to ``target``; True once the local port accepts connections."""
        self.stop()
        self.target = target
        self._proc = subprocess.Popen(
            port_forward_command(self.base, target, self.local_port, self.remote_port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        proc = self._proc

        def settled() -> str | None:
            """``open`` once the local port accepts connections, ``exited`` if kubectl ended."""
            if proc.poll() is not None:
                return "exited"
            return "open" if port_open(self.local_port, 0.2) else None

        # wait_s <= 0 (the forward loop's restarts): start it, do not probe at all
        return wait_s > 0 and poll(settled, timeout_s=wait_s, interval_s=0.1) == "open"

    def output_tail(self, chars: int = 300) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-chars:].strip()

    def stop(self) -> None:
        if self._proc is not None:
            stop_child(self._proc, 3.0)
            self._proc = None
        self.target = None

    def close(self) -> None:
        self.stop()
        self._log.close()
