"""Shared helpers of the Kubernetes platform tests (no tests here).

:class:`FakeApi` stands in for the thin adapter :class:`~harness.platform.kubernetes.api.KubeApi`
(the only code that talks to a cluster): an in-memory store that records every call, and
with ``forbid_mutations=True`` fails the test on any call that would change a cluster.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.safety import parse_selector

DATA = Path(__file__).resolve().parents[2] / "data" / "k8s"
MUTATING = frozenset(
    {"apply", "create", "delete_pod", "evict_pod", "scale", "exec", "delete_namespace"}
)


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def watch_events(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in fixture["events"] if e["watch"] in ("pods", "endpointslices")]


class FakeApi:
    """A recording fake of KubeApi over an in-memory set of objects."""

    def __init__(
        self,
        *,
        context: str = "kind-ha-bench",
        forbid_mutations: bool = False,
        objects: list[dict[str, Any]] | None = None,
    ) -> None:
        self.context = context
        self.forbid_mutations = forbid_mutations
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.errors: dict[str, KubeApiError] = {}
        self.exec_results: list[tuple[int | None, str, str]] = []
        self.exec_handler: Callable[[str, list[str]], tuple[int | None, str, str]] | None = None
        self.on_delete: Callable[[str, str], None] | None = None
        self.pending: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # kind -> watch events
        self._lock = threading.Lock()
        for obj in objects or []:
            self.put(obj)

    def put(self, obj: dict[str, Any]) -> None:
        self.objects[(obj["kind"], obj["metadata"]["name"])] = copy.deepcopy(obj)

    def mutations(self) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
        return [c for c in self.calls if c[0] in MUTATING]

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        if self.forbid_mutations and name in MUTATING:
            pytest.fail(f"mutating API call made: {name}{args}")
        self.calls.append((name, args, kwargs))
        if name in self.errors:
            raise self.errors[name]

    # reads
    def server_version(self) -> str:
        self._call("server_version")
        return "v1.32.2"

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._call("get", kind, namespace, name)
        obj = self.objects.get((kind, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: str, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        self._call("list", kind, namespace, selector)
        want = parse_selector(selector)
        items = [
            copy.deepcopy(o)
            for (k, _), o in sorted(self.objects.items())
            if k == kind
            and o["metadata"].get("namespace") == namespace
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in want.items())
        ]
        return items, "1"

    def watch(
        self, kind: str, namespace: str, selector: str, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            events, self.pending[kind] = self.pending.get(kind, []), []
        if not events:
            time.sleep(0.05)  # an idle watch: nothing changes
        return iter(events)

    # mutations
    def apply(self, obj: dict[str, Any]) -> None:
        self._call("apply", obj["kind"], obj["metadata"]["name"])
        self.put(obj)

    def create(self, obj: dict[str, Any]) -> None:
        self._call("create", obj["kind"], obj["metadata"]["name"])
        self.put(obj)

    def delete_pod(self, namespace: str, name: str, *, uid: str, grace_s: int | None) -> None:
        self._call("delete_pod", namespace, name, uid=uid, grace_s=grace_s)
        pod = self.objects.pop(("Pod", name), None)
        if pod is not None:
            with self._lock:
                self.pending.setdefault("Pod", []).append(("DELETED", pod))
        if self.on_delete:
            self.on_delete(name, uid)

    def evict_pod(self, namespace: str, name: str, *, uid: str) -> None:
        self._call("evict_pod", namespace, name, uid=uid)
        if self.on_delete:
            self.on_delete(name, uid)

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        self._call("scale", kind, namespace, name, replicas)
        self.objects[(kind, name)]["spec"]["replicas"] = replicas

    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], timeout_s: float
    ) -> tuple[int | None, str, str]:
        self._call("exec", namespace, pod, container, command)
        if self.exec_handler is not None:
            return self.exec_handler(pod, command)
        return self.exec_results.pop(0)

    def delete_namespace(self, name: str) -> None:
        self._call("delete_namespace", name)
        self.objects = {
            k: o
            for k, o in self.objects.items()
            if o["metadata"].get("namespace") != name and k != ("Namespace", name)
        }
