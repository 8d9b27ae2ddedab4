"""Resource and clock faults on Kubernetes: Chaos Mesh objects and pod resizes for one pod.

The local platform's ``cpu_throttle``, ``clock_skew`` and ``memory_limit`` act on a
replica's cgroup and clock (:mod:`harness.platform.local.cgroups`, ``.clock``). On
Kubernetes the same faults are:

- ``clock_skew`` — a Chaos Mesh **TimeChaos** on the pod: ``timeOffset`` on
  ``CLOCK_REALTIME`` only, so the monotonic clock stays true, as locally;
- ``cpu_throttle`` — a Chaos Mesh **StressChaos** CPU stressor in the pod's container.
  It is not a quota: stress-ng workers compete for the container's CPU limit, so the
  application gets roughly what they leave. The workers (one per core of the limit) are
  loaded so that ``cores`` remain; a container without a CPU limit is refused, since
  there is nothing to compete for. A true quota is the container's CPU limit itself:
  :func:`resize_patch` (in-place resize, Kubernetes >= 1.33);
- ``memory_limit`` — the container's memory limit through an in-place resize of the pod
  (:func:`resize_patch`, the ``pods/resize`` subresource); the kubelet does not shrink
  a limit below the usage, and on cgroup v2 an OOM kill takes the whole container
  (``memory.oom.group``), as the local ``oom_group`` does.

Every object is made in the harness's namespace, carries the harness's labels (so the
guards of :mod:`.safety` let it through) and names exactly one pod; ``duration`` is the
hold plus a margin, so Chaos Mesh itself ends the fault if the harness dies before its
undo (the deletion). Without Chaos Mesh's CRDs, :meth:`ChaosMesh.require` refuses with
one line naming the fix. Nothing here talks to the API server: the caller passes a
:class:`ChaosApi` (the adapter's calls); the objects are tested offline against the CRDs'
schemas (``tests/data/chaosmesh/``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any, Protocol

from harness.core.errors import HarnessError

GROUP = "chaos-mesh.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CRDS = {"StressChaos": f"stresschaos.{GROUP}", "TimeChaos": f"timechaos.{GROUP}"}
INSTALL_FIX = (
    "install Chaos Mesh: `helm repo add chaos-mesh https://charts.chaos-mesh.org && helm "
    "install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh --create-namespace` (on kind add "
    "--set chaosDaemon.runtime=containerd --set "
    "chaosDaemon.socketPath=/run/containerd/containerd.sock), or run on --platform local"
)
HOLD_MARGIN_S = 60.0  # Chaos Mesh ends the fault this long after the hold if nobody does
_names = itertools.count(1)


class ChaosApi(Protocol):
    """What :class:`ChaosMesh` needs of the API adapter."""

    def crd_installed(self, name: str) -> bool:
        """True if the CustomResourceDefinition ``name`` exists."""
        ...

    def create(self, obj: dict[str, Any]) -> None: ...

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete one namespaced object (gone already: no error)."""
        ...


# -- values ------------------------------------------------------------------------------
def go_duration(seconds: float) -> str:
    """A Go ``time.ParseDuration`` string: ``90s``, ``-600s``, ``1.5s``, ``250ms``."""
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        return f"{round(seconds * 1000)}ms"
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def cpu_quantity(cores: float) -> str:
    """A Kubernetes CPU quantity in millicores (``50m`` for 0.05 core)."""
    return f"{max(1, round(cores * 1000))}m"


def parse_cpu(quantity: str | int | float) -> float:
    """Cores of a CPU quantity (``500m``, ``2``, ``1.5``)."""
    text = str(quantity).strip()
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_quantity(limit: int) -> str:
    """A memory quantity: ``Mi`` when whole mebibytes, else bytes."""
    return f"{limit // 2**20}Mi" if limit % 2**20 == 0 else str(limit)


def chaos_name(op: str, pod: str) -> str:
    """A DNS-1123 name for one fault on one pod (at most 63 characters)."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"hab-{op.replace('_', '-')}-{pod}".lower())
    suffix = f"-{next(_names)}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix


# -- objects -----------------------------------------------------------------------------
def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod.get("metadata") or {}


def _container(pod: Mapping[str, Any], container: str | None) -> dict[str, Any]:
    containers = (pod.get("spec") or {}).get("containers") or []
    for c in containers:
        if container is None or c.get("name") == container:
            return c
    raise HarnessError(
        f"pod {_meta(pod).get('name')} has no container {container!r}",
        fix="name one of its containers",
    )


def _object(
    kind: str,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    pod: Mapping[str, Any],
    spec: dict[str, Any],
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, "ha-bench/fault": "true"},
        },
        "spec": {
            "mode": "all",  # of the selected pods, which is exactly one
            "selector": {"pods": {namespace: [str(_meta(pod)["name"])]}},
            **spec,
        },
    }


def time_chaos(
    pod: Mapping[str, Any],
    offset_s: float,
    *,
    namespace: str,
    labels: Mapping[str, str],
    duration_s: float,
    container: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A TimeChaos moving the wall clock of ``pod``'s container by ``offset_s`` (its
    monotonic clocks untouched) for ``duration_s``."""
    c = _container(pod, container)
    return _object(
        "TimeChaos",
        name or chaos_name("clock_skew", _meta(pod)["name"]),
        namespace,
        labels,
        pod,
        {
            "timeOffset": go_duration(offset_s),
            "clockIds": ["CLOCK_REALTIME"],
            "containerNames": [c["name"]],
            "duration": go_duration(duration_s),
        },
    )


def stress_chaos_cpu(
    pod: Mapping[str, Any],
    cores: float,
    *,
    namespace: str,
    labels: Mapping[str, str],
    duration_s: float,
    container: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A StressChaos whose CPU workers leave about ``cores`` of the container's CPU limit
    to the application (one worker per core of the limit, each loaded by the same share)."""
    c = _container(pod, container)
    limit = ((c.get("resources") or {}).get("limits") or {}).get("cpu")
    if limit is None:
        raise HarnessError(
            f"{_meta(pod).get('name')}/{c['name']} has no CPU limit: a StressChaos has "
            "nothing to compete for",
            fix="give the container resources.limits.cpu, or throttle with resize_patch",
        )
    limit_cores = parse_cpu(limit)
    if not 0 < cores < limit_cores:
        raise HarnessError(
            f"cpu_throttle to {cores} cores: the container's limit is {limit_cores:g}",
            fix=f"give 0 < cores < {limit_cores:g}",
        )
    workers = max(1, math.ceil(limit_cores))
    load = round(100 * (limit_cores - cores) / workers)
    return _object(
        "StressChaos",
        name or chaos_name("cpu_throttle", _meta(pod)["name"]),
        namespace,
        labels,
        pod,
        {
            "stressors": {"cpu": {"workers": workers, "load": min(100, load)}},
            "containerNames": [c["name"]],
            "duration": go_duration(duration_s),
        },
    )


def resize_patch(
    container: str, *, cpu_cores: float | None = None, memory_bytes: int | None = None
) -> dict[str, Any]:
    """The body of a ``PATCH pods/<name>/resize`` (strategic merge) setting the container's
    CPU and/or memory limit; None values are left as they are."""
    limits: dict[str, str] = {}
    if cpu_cores is not None:
        limits["cpu"] = cpu_quantity(cpu_cores)
    if memory_bytes is not None:
        limits["memory"] = memory_quantity(memory_bytes)
    if not limits:
        raise HarnessError("a resize needs a CPU or memory limit", fix="give one")
    return {"spec": {"containers": [{"name": container, "resources": {"limits": limits}}]}}


def require_in_scope(pod: Mapping[str, Any], namespace: str, labels: Mapping[str, str]) -> None:
    """A :class:`HarnessError` unless ``pod`` is in ``namespace`` with every one of ``labels``
    (the harness's scope: faults touch only the cluster under test)."""
    meta = _meta(pod)
    have = meta.get("labels") or {}
    if meta.get("namespace") != namespace or any(have.get(k) != v for k, v in labels.items()):
        raise HarnessError(
            f"refusing a fault on pod {meta.get('namespace')}/{meta.get('name')}: outside "
            f"the harness's scope (namespace {namespace!r}, labels {dict(labels)})",
            fix="target a replica of the cluster under test",
        )


# -- the faults ----------------------------------------------------------------------------
class ChaosMesh:
    """Chaos Mesh faults on the harness's pods: objects made in ``namespace`` with
    ``labels`` (the harness's scope), each deleted by :meth:`clear`."""

    def __init__(self, api: ChaosApi, namespace: str, labels: Mapping[str, str]) -> None:
        self.api = api
        self.namespace = namespace
        self.labels = dict(labels)

    def missing(self) -> list[str]:
        """The Chaos Mesh CRDs this cluster lacks."""
        return [crd for crd in CRDS.values() if not self.api.crd_installed(crd)]

    def require(self, kind: str) -> None:
        """A :class:`HarnessError` naming the fix if ``kind``'s CRD is not installed."""
        if not self.api.crd_installed(CRDS[kind]):
            raise HarnessError(
                f"{kind} needs Chaos Mesh, and its CRD {CRDS[kind]} is not installed",
                fix=INSTALL_FIX,
            )

    def _check_pod(self, pod: Mapping[str, Any]) -> None:
        require_in_scope(pod, self.namespace, self.labels)

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.api.create(obj)
        return {"kind": obj["kind"], "name": obj["metadata"]["name"], "spec": obj["spec"]}

    def _fault(self, kind: str, build, pod: Mapping[str, Any], value: float, *,
               hold_s: float, container: str | None) -> dict[str, Any]:  # fmt: skip
        """Check the pod is ours and the CRD installed, then create ``build``'s object."""
        self._check_pod(pod)
        self.require(kind)
        obj = build(pod, value, namespace=self.namespace, labels=self.labels,
                    container=container, duration_s=hold_s + HOLD_MARGIN_S)  # fmt: skip
        return self._create(obj)

    def clock_skew(
        self, pod: Mapping[str, Any], seconds: float, *, hold_s: float, container: str | None = None
    ) -> dict[str, Any]:
        return self._fault("TimeChaos", time_chaos, pod, seconds, hold_s=hold_s,
                           container=container)  # fmt: skip

    def cpu_throttle(
        self, pod: Mapping[str, Any], cores: float, *, hold_s: float, container: str | None = None
    ) -> dict[str, Any]:
        return self._fault("StressChaos", stress_chaos_cpu, pod, cores, hold_s=hold_s,
                           container=container)  # fmt: skip

    def clear(self, made: Mapping[str, Any]) -> None:
        """Delete what :meth:`clock_skew` or :meth:`cpu_throttle` made (the undo)."""
        self.api.delete_object(API_VERSION, str(made["kind"]), self.namespace, str(made["name"]))
