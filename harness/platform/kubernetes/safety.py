"""Guards of the Kubernetes platform: which cluster, which namespace, which pods.

Nothing here talks to the API server. The context allow-list is checked before an API
client even exists; :class:`GuardedApi` sits between the platform's logic and the
adapter (:class:`~harness.platform.kubernetes.api.KubeApi`) and refuses every mutating
call outside the harness's :class:`Scope` — a namespace plus an equality label selector.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.core.errors import HarnessError

DEFAULT_ALLOWED_CONTEXTS = ("kind-*",)
ALLOWED_CONTEXTS_ENV = "HA_BENCH_ALLOWED_CONTEXTS"
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "CSIDriver",
        "VolumeAttachment",
    }
)


def allowed_contexts(
    extra: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> list[str]:
    """Context patterns allowed for chaos: ``kind-*``, ``$HA_BENCH_ALLOWED_CONTEXTS``
    (comma-separated globs) and ``extra`` (e.g. ``--allow-context``), without repeats."""
    env = os.environ if environ is None else environ
    from_env = [p.strip() for p in env.get(ALLOWED_CONTEXTS_ENV, "").split(",")]
    out: list[str] = []
    for pattern in (*DEFAULT_ALLOWED_CONTEXTS, *from_env, *extra):
        if pattern and pattern not in out:
            out.append(pattern)
    return out


def require_allowed_context(name: str | None, allowed: Sequence[str]) -> str:
    """``name`` if it matches one of the ``allowed`` glob patterns, else a HarnessError."""
    if not name:
        raise HarnessError(
            "no Kubernetes context selected",
            fix="pass --context NAME or select one with `kubectl config use-context NAME`",
        )
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed):
        return name
    raise HarnessError(
        f"Kubernetes context {name!r} is not allowed for fault injection "
        f"(allowed: {', '.join(allowed) or 'none'})",
        fix=f"pass --allow-context {name} (or add it to ${ALLOWED_CONTEXTS_ENV}) if this "
        "cluster is meant to have its pods killed",
    )


def current_context(kubeconfig: str | None = None) -> str:
    """The kubeconfig's current context (reads the file only; no API call)."""
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError) as exc:
        raise HarnessError(
            f"cannot read the kubeconfig: {exc}",
            fix="create a cluster with `ha-bench kind up`, or pass --kubeconfig / --context",
        ) from None
    name = (active or {}).get("name")
    return _nonempty(name)


def _nonempty(name: str | None) -> str:
    if not name:
        raise HarnessError(
            "the kubeconfig has no current context",
            fix="pass --context NAME or run `kubectl config use-context NAME`",
        )
    return name


def parse_selector(text: str) -> dict[str, str]:
    """``a=b,c==d`` as a dict; only equality selectors (what a Scope can check offline)."""
    labels: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.replace("==", "=").partition("=")
        if not sep or not key.strip() or "!" in key or any(c in part for c in "()"):
            raise HarnessError(
                f"label selector {text!r} is not a list of key=value pairs",
                fix="pass e.g. release=airflow,tier=airflow",
            )
        labels[key.strip()] = value.strip()
    return labels


def format_selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


@dataclass
class Scope:
    """What the harness may change: objects in ``namespace`` carrying every ``labels`` pair."""

    namespace: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def selector(self) -> str:
        return format_selector(self.labels)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = _meta(obj)
        if obj.get("kind") == "Namespace":
            in_ns = meta.get("name") == self.namespace
        else:
            in_ns = meta.get("namespace") == self.namespace
        have = meta.get("labels") or {}
        return in_ns and all(have.get(k) == v for k, v in self.labels.items())

    def _refuse(self, what: str) -> HarnessError:
        return HarnessError(
            f"refusing to change {what}: outside the harness's scope "
            f"(namespace {self.namespace!r}, selector {self.selector or '<none>'!r})",
            fix="target a replica of the cluster under test (see `replica_names()`)",
        )

    def require_pod(self, pod: Mapping[str, Any]) -> None:
        meta = _meta(pod)
        if pod.get("kind", "Pod") != "Pod" or not meta.get("uid") or not self.matches(pod):
            raise self._refuse(f"pod {meta.get('namespace')}/{meta.get('name')}")

    def require_object(self, obj: Mapping[str, Any]) -> None:
        """An object to apply/create/scale: in the namespace (or the namespace itself),
        labelled with the selector; never another cluster-scoped object."""
        kind, meta = obj.get("kind"), _meta(obj)
        where = f"{kind} {meta.get('namespace') or '-'}/{meta.get('name')}"
        if kind in CLUSTER_SCOPED_KINDS and kind != "Namespace":
            raise self._refuse(f"cluster-scoped {where}")
        if not self.matches(obj):
            raise self._refuse(where)


class ApiAdapter(Protocol):
    """What :class:`GuardedApi` needs of :class:`~harness.platform.kubernetes.api.KubeApi`."""

    context: str

    def server_version(self) -> str: ...
    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...
    def list(
        self, kind: str, namespace: str, selector: str
    ) -> tuple[list[dict[str, Any]], str]: ...
    def list_cluster(self, kind: str, selector: str) -> list[dict[str, Any]]: ...
    def pod_log(
        self, namespace: str, name: str, container: str, *, previous: bool, limit_bytes: int
    ) -> str | None: ...
    def watch(
        self, kind: str, namespace: str, selector: str, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...
    def apply(self, obj: dict[str, Any]) -> None: ...
    def create(self, obj: dict[str, Any]) -> None: ...
    def delete_pod(self, namespace: str, name: str, *, uid: str, grace_s: int | None) -> None: ...
    def evict_pod(self, namespace: str, name: str, *, uid: str) -> None: ...
    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> None: ...
    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], timeout_s: float
    ) -> tuple[int | None, str, str]: ...
    def delete_namespace(self, name: str) -> None: ...
    def crd_installed(self, name: str) -> bool: ...
    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...
    def patch_pod(
        self, namespace: str, name: str, body: dict[str, Any], *, subresource: str | None = None
    ) -> None: ...


FAULT_LABEL = "ha-bench/fault"
FAULT_PREFIX = "hab-"  # the names of the fault objects the harness makes
CUT_PREFIX = "ha-bench/cut-"  # the pod labels a partition sets


class GuardedApi:
    """The adapter as the platform's logic sees it: namespace fixed, mutations checked.

    In ``owned`` mode the harness may also apply objects, scale its workloads and delete
    its namespace; in ``existing`` mode it may only delete, evict and exec into the
    selected pods.
    """

    def __init__(self, api: ApiAdapter, scope: Scope, *, owned: bool) -> None:
        self.api = api
        self.scope = scope
        self.owned = owned

    @property
    def namespace(self) -> str:
        return self.scope.namespace

    def _selector(self, labels: Mapping[str, str] | None, scoped: bool) -> str:
        return format_selector({**(self.scope.labels if scoped else {}), **(labels or {})})

    # -- reads (namespace fixed) ---------------------------------------------------------
    def server_version(self) -> str:
        return self.api.server_version()

    def get(self, kind: str, name: str | None = None) -> dict[str, Any] | None:
        if kind == "Namespace":
            return self.api.get("Namespace", None, self.namespace)
        assert name is not None
        return self.api.get(kind, self.namespace, name)

    def list(
        self, kind: str, labels: Mapping[str, str] | None = None, *, scoped: bool = True
    ) -> tuple[list[dict[str, Any]], str]:
        return self.api.list(kind, self.namespace, self._selector(labels, scoped))

    def namespaces(self, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Namespaces carrying ``labels`` (default: the scope's labels)."""
        return self.api.list_cluster("Namespace", format_selector(labels or self.scope.labels))

    def nodes(self) -> list[dict[str, Any]]:
        return self.api.list_cluster("Node", "")

    def pod_log(
        self, pod: Mapping[str, Any], container: str, *, previous: bool, limit_bytes: int
    ) -> str | None:
        """A container's log, current or ``previous`` (a pod of the namespace only)."""
        meta = _meta(pod)
        if meta.get("namespace") != self.namespace:
            raise self.scope._refuse(f"logs of pod {meta.get('namespace')}/{meta.get('name')}")
        return self.api.pod_log(
            self.namespace, meta["name"], container, previous=previous, limit_bytes=limit_bytes
        )

    def watch(
        self,
        kind: str,
        resource_version: str,
        *,
        timeout_s: int,
        labels: Mapping[str, str] | None = None,
        scoped: bool = True,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.api.watch(
            kind, self.namespace, self._selector(labels, scoped), resource_version, timeout_s
        )

    # -- pod faults (both modes) ---------------------------------------------------------
    def delete_pod(self, pod: Mapping[str, Any], *, grace_s: int | None) -> None:
        self.scope.require_pod(pod)
        meta = _meta(pod)
        self.api.delete_pod(self.namespace, meta["name"], uid=meta["uid"], grace_s=grace_s)

    def evict_pod(self, pod: Mapping[str, Any]) -> None:
        self.scope.require_pod(pod)
        meta = _meta(pod)
        self.api.evict_pod(self.namespace, meta["name"], uid=meta["uid"])

    def exec_in_pod(
        self, pod: Mapping[str, Any], container: str, command: list[str], *, timeout_s: float
    ) -> tuple[int | None, str, str]:
        """(exit code or None, stdout, stderr) of ``command`` in one of the pod's containers."""
        self.scope.require_pod(pod)
        return self.api.exec(self.namespace, _meta(pod)["name"], container, command, timeout_s)

    # -- fault objects (both modes): Chaos Mesh objects, NetworkPolicies, pod patches -------
    def crd_installed(self, name: str) -> bool:
        return self.api.crd_installed(name)

    def create_fault_object(self, obj: dict[str, Any]) -> None:
        """Create a fault's object: in the namespace, with the scope's labels and
        ``ha-bench/fault``, named ``hab-...`` (so the undo and the guards can tell it)."""
        meta = _meta(obj)
        labels = meta.get("labels") or {}
        if meta.get("namespace") != self.namespace or labels.get(FAULT_LABEL) != "true" or \
                not str(meta.get("name", "")).startswith(FAULT_PREFIX):  # fmt: skip
            raise self.scope._refuse(f"create {obj.get('kind')} {meta.get('name')}")
        self.scope.require_object(obj)
        self.api.create(obj)

    def delete_fault_object(self, api_version: str, kind: str, name: str) -> None:
        """Delete a fault object the harness made (by its name's prefix) in the namespace."""
        if not name.startswith(FAULT_PREFIX):
            raise self.scope._refuse(f"delete {kind} {name}")
        self.api.delete_object(api_version, kind, self.namespace, name)

    def label_pod(self, name: str, labels: Mapping[str, str | None]) -> None:
        """Set or remove (None) a partition's side labels on a pod of the scope; a pod that
        is gone is no error (its replacement never had them)."""
        if any(not k.startswith(CUT_PREFIX) for k in labels):
            raise self.scope._refuse(f"label pod {name} with {sorted(labels)}")
        pod = self.api.get("Pod", self.namespace, name)
        if pod is None:
            return
        self.scope.require_pod(pod)
        self.api.patch_pod(self.namespace, name, {"metadata": {"labels": dict(labels)}})

    def resize_pod(self, pod: Mapping[str, Any], body: dict[str, Any]) -> None:
        """Resize a pod of the scope in place (its containers' resources)."""
        self.scope.require_pod(pod)
        self.api.patch_pod(self.namespace, _meta(pod)["name"], body, subresource="resize")

    # -- owned mode only -----------------------------------------------------------------
    def _require_owned(self, what: str) -> None:
        if not self.owned:
            raise HarnessError(
                f"refusing to {what}: in 'existing' mode the harness touches only the "
                "selected pods",
                fix="use kill/terminate/evict/pause on a replica, or run in 'owned' mode",
            )

    def scale(self, kind: str, name: str, replicas: int) -> int:
        """Scale a workload of the scope; returns its previous ``spec.replicas``."""
        self._require_owned(f"scale {kind} {name}")
        obj = self.api.get(kind, self.namespace, name)
        if obj is None:
            raise HarnessError(
                f"{kind} {self.namespace}/{name} not found", fix="check the manifests"
            )
        self.scope.require_object(obj)
        previous = int((obj.get("spec") or {}).get("replicas", 1))
        self.api.scale(kind, self.namespace, name, replicas)
        return previous

    def apply(self, obj: dict[str, Any]) -> None:
        self._require_owned(f"apply {obj.get('kind')} {_meta(obj).get('name')}")
        self.scope.require_object(obj)
        self.api.apply(obj)

    def create(self, obj: dict[str, Any]) -> None:
        self._require_owned(f"create {obj.get('kind')} {_meta(obj).get('name')}")
        self.scope.require_object(obj)
        self.api.create(obj)

    def delete_namespace(self, name: str | None = None) -> None:
        """Delete the scope's namespace, or (``name``) another one the harness made: only
        a namespace labelled with the scope's labels is ever deleted."""
        name = name or self.namespace
        self._require_owned(f"delete namespace {name}")
        obj = self.api.get("Namespace", None, name)
        if obj is None:
            return
        labels = _meta(obj).get("labels") or {}
        if obj.get("kind", "Namespace") != "Namespace" or not all(
            labels.get(k) == v for k, v in self.scope.labels.items()
        ):
            raise self.scope._refuse(f"namespace {name}")
        self.api.delete_namespace(name)
