"""Shared helpers of the Kubernetes platform tests (no tests here).

:class:`FakeApi` stands in for the thin adapter :class:`~harness.platform.kubernetes.api.KubeApi`
(the only code that talks to a cluster): an in-memory store that records every call, and
with ``forbid_mutations=True`` fails the test on any call that would change a cluster.

Watch streams: ``tests/data/k8s/synthetic/`` holds streams built by its ``make_fixtures.py``
(no cluster was at hand: real shapes, not recordings); ``tests/data/k8s/recorded/`` holds
what the nightly records on a live kind cluster, in the same format. :func:`replay` reads
either the way the cluster's watch loop does (:func:`~harness.platform.kubernetes.events.
watch_action`).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.events import OBJECT_EVENTS, LifecycleTracker, watch_action
from harness.platform.kubernetes.safety import parse_selector

DATA = Path(__file__).resolve().parents[2] / "data" / "k8s"
SYNTHETIC = DATA / "synthetic"
RECORDED = DATA / "recorded"
MUTATING = frozenset(
    {"apply", "create", "delete_pod", "evict_pod", "scale", "exec", "delete_namespace",
     "delete_object", "patch_pod"}
)  # fmt: skip


def load(name: str) -> dict[str, Any]:
    """A fixture: ``synthetic/<name>`` unless ``name`` names its directory."""
    path = DATA / name if "/" in name else SYNTHETIC / name
    return json.loads(path.read_text())


def watch_events(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    """The fixture's object events (ADDED/MODIFIED/DELETED) of the pod and slice watches."""
    return [
        e
        for e in fixture["events"]
        if e["watch"] in ("pods", "endpointslices") and e["type"] in OBJECT_EVENTS
    ]


def replay(
    fixture: dict[str, Any], tracker: LifecycleTracker | None = None, *, harness: bool = False
) -> tuple[LifecycleTracker, list[dict[str, Any]]]:
    """Feed a stream as the watch loop does: object events in, BOOKMARKs skipped, an ERROR
    ends the watch and the next ``LIST`` entry resyncs; the nemesis's ``death`` reports go
    to :meth:`~LifecycleTracker.process_died`. Returns the tracker and its events stamped
    with ``t`` (with ``harness``: the fixture's fault events too, ``type: fault``)."""
    tracker = tracker or LifecycleTracker()
    out: list[dict[str, Any]] = []
    relisting = {"pods": False, "endpointslices": False}
    for e in fixture["events"]:
        stream, kind = e["watch"], e["type"]
        if stream == "harness":
            if kind == "death":
                fields = {"exit_code": e.get("exit_code"), "via": e.get("via")}
                died = tracker.process_died(e["uid"], {e["container"]: 0}, **fields)
                out += [{"t": e["t"], **x} for x in died]
            elif harness and kind == "fault":
                out.append({k: v for k, v in e.items() if k != "watch"})
            continue
        if kind == "LIST":
            resync = tracker.resync_pods if stream == "pods" else tracker.resync_slices
            out += [{"t": e["t"], **x} for x in resync(e["items"])]
            relisting[stream] = False
            continue
        action, _ = watch_action(kind, e["object"])
        if action == "relist":
            relisting[stream] = True
        elif action == "event" and not relisting[stream]:
            feed = tracker.pod_event if stream == "pods" else tracker.slice_event
            out += [{"t": e["t"], **x} for x in feed(kind, e["object"])]
    return tracker, out


def signal_script_result(command: list[str]) -> tuple[int | None, str, str]:
    """What the nemesis's signal script gives in a container whose PID 1 is dumb-init:
    CHECK passes, STOP/CONT signal 7 processes, KILL ends with the container (exit 137,
    as the kubelet reports an exec killed with its PID namespace)."""
    if command[:2] != ["sh", "-c"] or "ha-bench-signal" not in command:
        pytest.fail(f"unexpected exec: {command}")
    signal = command[command.index("ha-bench-signal") + 1]
    if signal == "CHECK":
        return 0, "", ""
    if signal == "KILL":
        return 137, "signalled=7\n", ""
    return 0, "signalled=7\n", ""


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
        self.logs: dict[tuple[str, str, bool], str] = {}  # (pod, container, previous) -> log
        self.node_files: dict[str, str] = {}  # path in the pods -> content (one node)
        self.host_dir: Path | None = None  # where the node's /var/lib/ha-bench shows, if mapped
        self.on_delete: Callable[[str, str], None] | None = None
        self.pending: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # kind -> watch events
        self.crds: set[str] = set()  # installed CustomResourceDefinitions
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

    def list_cluster(self, kind: str, selector: str) -> list[dict[str, Any]]:
        self._call("list_cluster", kind, selector)
        want = parse_selector(selector)
        return [
            copy.deepcopy(o)
            for (k, _), o in sorted(self.objects.items())
            if k == kind
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in want.items())
        ]

    def pod_log(
        self, namespace: str, name: str, container: str, *, previous: bool, limit_bytes: int
    ) -> str | None:
        self._call("pod_log", namespace, name, container, previous=previous)
        return self.logs.get((name, container, previous))

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
        if self.exec_results:
            return self.exec_results.pop(0)
        if self.exec_handler is not None:
            return self.exec_handler(pod, command)
        if "ha-bench-signal" in command:
            return signal_script_result(command)
        return self._shell(command)

    def _shell(self, command: list[str]) -> tuple[int | None, str, str]:
        """The ledger round trip's commands, on one node's /var/lib/ha-bench."""
        script = command[-1]
        write = re.fullmatch(r"echo (\S+) > (\S+) && cat (\S+)", script)
        if write:
            token, path = write.group(1), write.group(2)
            self.node_files[path] = token + "\n"
            if self.host_dir is not None:
                (self.host_dir / Path(path).name).write_text(token + "\n")
            return 0, token + "\n", ""
        remove = re.fullmatch(r"rm -f (\S+)", script)
        if remove:
            self.node_files.pop(remove.group(1), None)
            return 0, "", ""
        pytest.fail(f"unexpected exec: {command}")

    def crd_installed(self, name: str) -> bool:
        self._call("crd_installed", name)
        return name in self.crds

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self._call("delete_object", api_version, kind, namespace, name)
        self.objects.pop((kind, name), None)

    def patch_pod(self, namespace: str, name: str, body: dict[str, Any], *,
                  subresource: str | None = None) -> None:  # fmt: skip
        """Labels merged as a merge patch does (None removes); a resize is recorded."""
        self._call("patch_pod", namespace, name, body, subresource=subresource)
        pod = self.objects.get(("Pod", name))
        if pod is None:
            raise KubeApiError(404, "NotFound", f'pods "{name}" not found')
        labels = pod["metadata"].setdefault("labels", {})
        for k, v in ((body.get("metadata") or {}).get("labels") or {}).items():
            if v is None:
                labels.pop(k, None)
            else:
                labels[k] = v

    def delete_namespace(self, name: str) -> None:
        self._call("delete_namespace", name)
        self.objects = {
            k: o
            for k, o in self.objects.items()
            if o["metadata"].get("namespace") != name and k != ("Namespace", name)
        }
