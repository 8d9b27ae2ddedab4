"""Recordings of what a live cluster serves, in the fixture format the replay tests read
(``tests/data/k8s/recorded/README.md``): the harness's own watch streams as received, its
fault events and the nemesis's death reports, with the versions of everything involved.

Used by the nightly's live tests (``HA_BENCH_RECORD_DIR``); nothing here runs offline
except the formatting, which the tests check on a fake cluster.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from harness import __version__


def tool_version(command: list[str]) -> str | None:
    """First line of ``command``'s output (``kind version``), None without the tool."""
    if shutil.which(command[0]) is None:
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def versions(server_version: str | None) -> dict[str, str | None]:
    return {
        "kubernetes": server_version,
        "kind": tool_version(["kind", "version"]),
        "kubectl": tool_version(["kubectl", "version", "--client"]),
        "harness": __version__,
    }


class Recorder:
    """Records a cluster's streams while it runs: ``with Recorder(cluster) as rec: ...;
    rec.write(path, description)``. Events carry ``t``, seconds since the recording began
    (monotonic)."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._unsubscribe: Any = None

    def _t(self) -> float:
        return round(time.monotonic() - self._t0, 3)

    def _add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(entry)

    def tap(self, stream: str, event_type: str, obj: Any, rv: str | None) -> None:
        if event_type == "LIST":
            entry = {"t": self._t(), "watch": stream, "type": "LIST", "resourceVersion": rv,
                     "items": copy.deepcopy(obj)}  # fmt: skip
        else:
            entry = {"t": self._t(), "watch": stream, "type": event_type,
                     "object": copy.deepcopy(obj)}  # fmt: skip
        self._add(entry)

    def on_bus(self, event: dict[str, Any]) -> None:
        if event.get("type") == "fault":
            fields = {k: v for k, v in event.items() if k not in ("t_wall", "t_mono", "type")}
            self._add({"t": self._t(), "watch": "harness", "type": "fault", **fields})
        elif event.get("type") == "lifecycle" and event.get("source") == "nemesis":
            self._add({"t": self._t(), "watch": "harness", "type": "death",
                       "uid": event.get("uid"), "pod": event.get("pod"),
                       "container": event.get("container"), "exit_code": event.get("exit_code"),
                       "via": event.get("via")})  # fmt: skip

    def __enter__(self) -> Recorder:
        """Start with a LIST of the pods and the Service's slices (a self-contained
        recording), then every watch event and bus event until the end."""
        self._t0 = time.monotonic()
        self.cluster.stream_taps.append(self.tap)
        self._unsubscribe = self.cluster.bus.subscribe(self.on_bus)
        api = self.cluster.api
        items, version = api.list("Pod")
        self.tap("pods", "LIST", items, version)
        labels = {"kubernetes.io/service-name": self.cluster.api_service}
        items, version = api.list("EndpointSlice", labels, scoped=False)
        self.tap("endpointslices", "LIST", items, version)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tap in self.cluster.stream_taps:
            self.cluster.stream_taps.remove(self.tap)
        if self._unsubscribe is not None:
            self._unsubscribe()

    def relist_after_410(self, timeout_s: int = 5) -> str | None:
        """Watch pods from a resourceVersion long compacted away: the API answers an
        ERROR 410 (or HTTP 410); record it, then a fresh LIST. Returns the ERROR reason."""
        from harness.platform.kubernetes.api import KubeApiError

        api = self.cluster.api
        reason = None
        try:
            for event_type, obj in api.watch("Pod", "1", timeout_s=timeout_s):
                self.tap("pods", event_type, obj, None)
                if event_type == "ERROR":
                    reason = obj.get("reason")
                    break
        except KubeApiError as exc:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "reason": exc.reason, "message": exc.message, "code": exc.status}  # fmt: skip
            self.tap("pods", "ERROR", status, None)
            reason = exc.reason
        items, version = api.list("Pod")
        self.tap("pods", "LIST", items, version)
        return reason

    def write(self, path: Path, description: str) -> Path:
        with self._lock:
            events = sorted(self.events, key=lambda e: e["t"])
        fixture = {
            "source": "recorded",
            "versions": versions(getattr(self.cluster, "server_version", None)),
            "recorded_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "description": description,
            "events": events,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fixture, indent=1, default=str) + "\n")
        return path
