"""Bringing a :class:`~.cluster.KubernetesCluster` up: apply (owned) or adopt (existing),
then wait until every workload and replica is ready.

Owned: stale namespaces of earlier runs are removed, ours is taken over (or refused when
another harness holds its lease), the manifests are rendered and patched from the Topology,
the pre-flight checks the images and the requests, and everything is server-side applied
(the namespace first, with a lease renewed while the harness runs; the ``airflow-secrets``
Secret created once). Existing: the release's Airflow workloads are found by selector and
recorded as they are. A bring-up that cannot succeed stops within seconds with the reason
(:class:`~.diagnostics.BringUpWatch`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.polling import poll
from harness.core.topology import COMPONENTS, Topology
from harness.platform.kubernetes import namespaces
from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.diagnostics import BringUpWatch, requests_problem
from harness.platform.kubernetes.events import WatchedState, expected_replicas
from harness.platform.kubernetes.kind import kind_name_of, kind_nodes_of
from harness.platform.kubernetes.manifests import (
    SECRET,
    WORKLOAD_KINDS,
    Prepared,
    new_secret,
    prepare_manifests,
    render,
)
from harness.platform.kubernetes.pods import COMPONENT_LABEL, KNOWN_COMPONENTS, SERVICES
from harness.platform.kubernetes.safety import GuardedApi, Scope

log = logging.getLogger(__name__)


class BringUpError(HarnessError):
    """The cluster did not become ready."""


def workload_ready(workload: Mapping[str, Any]) -> bool:
    """A Deployment/StatefulSet has observed its spec and all its replicas are updated and ready."""
    meta, spec, status = (workload.get(k) or {} for k in ("metadata", "spec", "status"))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return False
    want = int(spec.get("replicas", 1))
    if want == 0:
        return int(status.get("replicas", 0)) == 0
    ready, updated = int(status.get("readyReplicas", 0)), int(status.get("updatedReplicas", 0))
    return ready >= want and updated >= want


def template_component(workload: Mapping[str, Any]) -> str | None:
    """The component label of a workload's pod template (None without one)."""
    template = (workload.get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL)


class BringUp:
    """The bring-up steps of :class:`~.cluster.KubernetesCluster` (a mixin: the attributes
    below are set by its constructor; ``_node_runtime`` and ``_wait_namespace_gone`` are its
    own)."""

    api: GuardedApi | None
    context: str
    namespace: str
    scope: Scope
    owned: bool
    topology: Topology
    overlay: Path
    state: WatchedState
    workloads: dict[str, tuple[str, str]]
    prepared: Prepared | None
    timings: dict[str, float]
    ready_timeout_s: float
    unschedulable_s: float
    _say: Callable[[str], None]
    _manifests: list[dict[str, Any]] | None
    _namespace_obj: dict[str, Any] | None
    _applied: bool
    _observed: dict[str, int]
    _stopping: threading.Event
    _api_arg: Any
    _image_check: Callable[[list[str]], tuple[list[str], list[str]]] | None

    def _apply(self) -> None:
        assert self.api is not None
        now = dt.datetime.now(dt.UTC)
        try:  # namespaces a killed harness left behind
            namespaces.gc(self.api, now, skip=(self.namespace,), say=self._say)
        except (KubeApiError, HarnessError) as exc:
            self._say(f"could not look for stale namespaces: {exc}")
        existing = self.api.get("Namespace")
        if existing is not None:
            if not self.scope.matches(existing):
                raise HarnessError(
                    f"namespace {self.namespace!r} exists and is not labelled as owned by "
                    f"ha-bench ({self.scope.selector})",
                    fix="pass another namespace for owned mode, or use mode 'existing' to "
                    "test what runs there without changing it",
                )
            self._take_over(existing, now)
            existing = self.api.get("Namespace")
            if existing is not None and existing["metadata"].get("deletionTimestamp"):
                self._say(f"waiting for namespace {self.namespace} to finish terminating")
                if not self._wait_namespace_gone(180.0):
                    raise HarnessError(
                        f"namespace {self.namespace!r} is still terminating after 180 s",
                        fix=f"wait, or see `kubectl --context {self.context} get namespace "
                        f"{self.namespace} -o yaml` (finalizers)",
                    )
        docs = self._manifests if self._manifests is not None else render(self.overlay)
        self.prepared = prepare_manifests(docs, self.topology, namespace=self.namespace)
        self._preflight(self.prepared.objects)
        self.workloads = dict(self.prepared.workloads)
        expected = {c: self.topology.replicas(c) for c in COMPONENTS}
        expected.update({s: 1 for s in SERVICES if s in self.workloads})
        self.state.read(lambda t: t.expected.update(expected))
        objects = self.prepared.objects
        for obj in objects:
            if obj["kind"] == "Namespace":
                meta = obj["metadata"]
                meta["annotations"] = {**(meta.get("annotations") or {}), **namespaces.lease(now)}
                self._namespace_obj = obj
                self._apply_one(obj)
        self._applied = True  # from here on, stop() removes what was made
        if self.api.get("Secret", SECRET) is None:
            self._apply_one(new_secret(self.namespace), create=True)
        for obj in objects:
            if obj["kind"] != "Namespace":
                self._apply_one(obj)
        self._say(f"applied {len(objects)} objects to namespace {self.namespace}")

    def _take_over(self, existing: dict[str, Any], now: dt.datetime) -> None:
        """Our namespace exists: ours already (this process), stale (delete it first), or
        in use by another harness (refuse)."""
        assert self.api is not None
        notes = existing["metadata"].get("annotations") or {}
        if existing["metadata"].get("deletionTimestamp"):
            return
        if notes.get(namespaces.OWNER) == namespaces.owner_id() and not notes.get(namespaces.KEPT):
            return
        why = namespaces.staleness(existing, now)
        if why is None:
            raise HarnessError(
                f"namespace {self.namespace!r} is in use by {namespaces.in_use_by(existing)}",
                fix="wait for that run to end, pass another namespace, or `ha-bench kind gc` "
                "once it is gone",
            )
        self._say(f"deleting stale namespace {self.namespace} first: {why}")
        self.api.delete_namespace()

    def _renew_lease(self) -> None:
        """Push the namespace's expiry forward while this harness runs."""
        assert self.api is not None and self._namespace_obj is not None
        while not self._stopping.wait(namespaces.RENEW_S):
            obj = self._namespace_obj
            obj["metadata"]["annotations"].update(namespaces.lease(dt.datetime.now(dt.UTC)))
            try:
                self.api.apply(obj)
            except (KubeApiError, HarnessError) as exc:
                log.warning("renewing the lease of namespace %s failed: %s", self.namespace, exc)

    def _preflight(self, objects: list[dict[str, Any]]) -> None:
        """Before anything is applied: every image exists where the nodes pull it from,
        and the manifests do not request more than the nodes can allocate."""
        assert self.api is not None
        images = sorted(
            {
                c["image"]
                for obj in objects
                for template in [((obj.get("spec") or {}).get("template") or {})]
                for key in ("initContainers", "containers")
                for c in (template.get("spec") or {}).get(key) or []
                if c.get("image")
            }
        )
        check = self._image_check
        if check is None and self._api_arg is None:
            check = self._check_images_on_nodes_then_registry
        if check is not None:
            t0 = time.monotonic()
            problems, notes = check(images)
            self.timings["image_check_s"] = round(time.monotonic() - t0, 3)
            for note in notes:
                self._say(f"{note}; a pull failure would show within seconds")
            if problems:
                raise BringUpError(
                    "; ".join(problems),
                    fix="use an Airflow version that has an image (--airflow-version), fix the "
                    "tag in the manifests, or `kind load docker-image IMAGE --name "
                    f"{kind_name_of(self.context) or '<cluster>'}` for a local image",
                )
        try:
            nodes = self.api.nodes()
        except (KubeApiError, HarnessError) as exc:  # no RBAC to list nodes: skip the check
            self._say(f"could not list nodes to check the requests: {exc}")
            return
        problem = requests_problem(objects, nodes)
        if problem:
            raise BringUpError(
                problem,
                fix="a bigger node, or fewer replicas / smaller requests (see "
                "tests/platform/kubernetes/test_manifests.py for the sizing)",
            )

    def _check_images_on_nodes_then_registry(
        self, images: list[str]
    ) -> tuple[list[str], list[str]]:
        from harness.platform.kubernetes.images import missing_images

        runtime = self._node_runtime()
        on_nodes = None
        if runtime is not None:
            nodes = kind_nodes_of(self.context)

            def on_nodes(image: str) -> bool | None:
                found = [runtime.has_image(n, image) for n in nodes]
                return bool(found) and all(found)

        return missing_images(images, on_nodes=on_nodes)

    def _apply_one(self, obj: dict[str, Any], *, create: bool = False) -> None:
        assert self.api is not None
        where = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            if create:
                self.api.create(obj)
            else:
                self.api.apply(obj)
        except KubeApiError as exc:
            kubectl = f"kubectl --context {self.context} -n {self.namespace}"
            if obj["kind"] == "Job" and exc.status == 422:
                raise HarnessError(
                    f"{where} exists with another pod template (immutable): {exc.message}",
                    fix=f"`{kubectl} delete job {obj['metadata']['name']}`, then retry",
                ) from None
            raise HarnessError(
                f"applying {where} failed: {exc}",
                fix="check the manifests and the context's permissions in namespace "
                f"{self.namespace}",
            ) from None

    def _adopt(self) -> None:
        assert self.api is not None
        if self.api.get("Namespace") is None:
            raise HarnessError(
                f"namespace {self.namespace!r} not found in context {self.context}",
                fix="pass the namespace of the Helm release",
            )
        workloads = [w for kind in WORKLOAD_KINDS for w in self.api.list(kind)[0]]
        workloads = [w for w in workloads if template_component(w) in KNOWN_COMPONENTS]
        if not workloads:
            raise HarnessError(
                f"no Airflow workloads with {self.scope.selector} in namespace {self.namespace}",
                fix="pass the Helm release name (release=<name>) or a --selector that matches",
            )
        for w in workloads:
            component = template_component(w)
            assert component is not None
            self.workloads.setdefault(component, (w["kind"], w["metadata"]["name"]))
        self._observed = expected_replicas(workloads)
        self.state.read(lambda t: t.expected.update(self._observed))
        wanted = {c: self.topology.replicas(c) for c in COMPONENTS}
        differs = {c: n for c, n in self._observed.items() if c in wanted and wanted[c] != n}
        if differs:
            self._say(f"existing release differs from the topology: {differs} (recorded as is)")

    def _wait_ready(self, progress: Callable[[dict[str, bool]], None] | None) -> None:
        api = self.api
        assert api is not None
        hint = f"kubectl --context {self.context} -n {self.namespace} describe pods"
        pending: list[str] = []
        replicas: dict[str, bool] = {}
        watch = BringUpWatch(unschedulable_s=self.unschedulable_s)

        def all_ready() -> bool:
            nonlocal pending, replicas
            jobs: list[dict[str, Any]] = []
            try:
                workloads = [w for kind in WORKLOAD_KINDS for w in api.list(kind)[0]]
                if self.owned:
                    jobs = api.list("Job")[0]
            except KubeApiError as exc:  # a hiccup of the API server: ask again
                log.warning("listing workloads failed: %s", exc)
                workloads = []
            workloads = [w for w in workloads if template_component(w) in KNOWN_COMPONENTS]
            pending = [w["metadata"]["name"] for w in workloads if not workload_ready(w)]
            replicas = self.state.read(lambda t: {n: t.is_ready(n) for n in t.replica_names()})
            if progress:
                progress(replicas)
            if workloads and not pending and all(replicas.values()):
                return True
            # every pod of the watch, the migration Job's too; init containers first
            problem = watch.problem(self.state.read(lambda t: t.all_pods()), jobs, workloads)
            if problem:
                raise BringUpError(problem, fix=f"see `{hint}` and the pod logs")
            return False

        if not poll(all_ready, timeout_s=self.ready_timeout_s, interval_s=1.0):
            slow = pending or [n for n, ok in replicas.items() if not ok] or ["(none found)"]
            raise BringUpError(
                f"not ready after {self.ready_timeout_s:.0f}s: {', '.join(slow)}",
                fix=f"see `{hint}`",
            )
