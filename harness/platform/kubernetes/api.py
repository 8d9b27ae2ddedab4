"""The only code that talks to the Kubernetes API: thin calls, plain-dict results.

Every object in and out is the API's JSON shape (``metadata.name``, ``status.conditions``
...), so all logic above this adapter is tested offline on recorded objects. API errors
become :class:`KubeApiError` with the HTTP status. Callers go through
:class:`~harness.platform.kubernetes.safety.GuardedApi`, never straight to this class.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from harness.core.errors import HarnessError
from harness.platform.kubernetes.safety import allowed_contexts, require_allowed_context

FIELD_MANAGER = "ha-bench"


class KubeApiError(Exception):
    """An API call failed: ``status`` is the HTTP status (None: no answer at all)."""

    def __init__(self, status: int | None, reason: str, message: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")


def _json(resp: Any) -> dict[str, Any]:
    """The JSON body of a raw (``_preload_content=False``) response, connection released."""
    try:
        return json.loads(resp.data)
    finally:
        resp.release_conn()


@contextmanager
def _errors(context: str) -> Iterator[None]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        message = ""
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = str(exc.body or "")[:200]
        raise KubeApiError(exc.status, str(exc.reason), message) from None
    except (HTTPError, OSError) as exc:
        raise KubeApiError(None, "unreachable", f"context {context}: {exc}") from None


class KubeApi:
    """The Kubernetes API of one kube context (checked against the allow-list first)."""

    def __init__(
        self,
        context: str,
        *,
        kubeconfig: str | None = None,
        allowed: Sequence[str] | None = None,
        request_timeout_s: float = 30.0,
    ) -> None:
        from kubernetes import client, config, dynamic

        require_allowed_context(context, allowed_contexts() if allowed is None else allowed)
        self.context = context
        self._timeout = request_timeout_s
        try:
            self._client = config.new_client_from_config(config_file=kubeconfig, context=context)
            # exec swaps the transport of its ApiClient while it runs: give it its own
            self._exec_client = config.new_client_from_config(
                config_file=kubeconfig, context=context
            )
        except (config.ConfigException, OSError) as exc:
            raise HarnessError(
                f"cannot load kube context {context!r}: {exc}",
                fix="check `kubectl config get-contexts` / pass --kubeconfig",
            ) from None
        self._exec_lock = threading.Lock()
        self.core = client.CoreV1Api(self._client)
        self.apps = client.AppsV1Api(self._client)
        self.discovery = client.DiscoveryV1Api(self._client)
        self.policy = client.PolicyV1Api(self._client)
        self._version_api = client.VersionApi(self._client)
        self._exec_core = client.CoreV1Api(self._exec_client)
        self._dynamic_factory = lambda: dynamic.DynamicClient(self._client)
        self._dynamic: Any = None

    def _list_fn(self, kind: str):
        return {
            "Pod": self.core.list_namespaced_pod,
            "EndpointSlice": self.discovery.list_namespaced_endpoint_slice,
            "Deployment": self.apps.list_namespaced_deployment,
            "StatefulSet": self.apps.list_namespaced_stateful_set,
        }[kind]

    def server_version(self) -> str:
        try:
            with _errors(self.context):
                return str(self._version_api.get_code(_request_timeout=10).git_version)
        except KubeApiError as exc:
            raise HarnessError(
                f"the Kubernetes API of context {self.context!r} is not reachable ({exc})",
                fix="start the cluster (`ha-bench kind up`) or check --context",
            ) from None

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """One object as a dict, or None if it does not exist."""
        read = {
            "Namespace": lambda: self.core.read_namespace(
                name, _preload_content=False, _request_timeout=self._timeout
            ),
            "Pod": lambda: self.core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=self._timeout
            ),
            "Secret": lambda: self.core.read_namespaced_secret(
                name, namespace, _preload_content=False, _request_timeout=self._timeout
            ),
            "Deployment": lambda: self.apps.read_namespaced_deployment(
                name, namespace, _preload_content=False, _request_timeout=self._timeout
            ),
            "StatefulSet": lambda: self.apps.read_namespaced_stateful_set(
                name, namespace, _preload_content=False, _request_timeout=self._timeout
            ),
        }[kind]
        try:
            with _errors(self.context):
                return _json(read())
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        """(items, the list's resourceVersion to watch from)."""
        with _errors(self.context):
            resp = self._list_fn(kind)(
                namespace,
                label_selector=selector or None,
                _preload_content=False,
                _request_timeout=self._timeout,
            )
            data = _json(resp)
        return list(data.get("items") or []), str(data["metadata"].get("resourceVersion", ""))

    def watch(
        self, kind: str, namespace: str, selector: str, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Watch events ``(type, object)`` from ``resource_version`` for ``timeout_s``
        (server side); ``ERROR`` events are passed on (410: list again)."""
        from kubernetes.watch.watch import iter_resp_lines

        with _errors(self.context):
            resp = self._list_fn(kind)(
                namespace,
                label_selector=selector or None,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_s,
                _preload_content=False,
                _request_timeout=(10, timeout_s + 15),
            )
            try:
                for line in iter_resp_lines(resp):
                    if line.strip():
                        event = json.loads(line)
                        yield event["type"], event["object"]
            finally:
                resp.close()
                resp.release_conn()

    def _resource(self, obj: dict[str, Any]) -> Any:
        if self._dynamic is None:
            self._dynamic = self._dynamic_factory()
        return self._dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def apply(self, obj: dict[str, Any]) -> None:
        """Server-side apply, field manager ``ha-bench``, taking over conflicting fields."""
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            with _errors(self.context):
                self._resource(obj).server_side_apply(
                    body=obj,
                    namespace=obj["metadata"].get("namespace"),
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                    _request_timeout=self._timeout,
                )
        except DynamicApiError as exc:
            raise KubeApiError(exc.status, str(exc.reason), exc.summary()) from None

    def create(self, obj: dict[str, Any]) -> None:
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            with _errors(self.context):
                self._resource(obj).create(
                    body=obj,
                    namespace=obj["metadata"].get("namespace"),
                    _request_timeout=self._timeout,
                )
        except DynamicApiError as exc:
            raise KubeApiError(exc.status, str(exc.reason), exc.summary()) from None

    def delete_pod(self, namespace: str, name: str, *, uid: str, grace_s: int | None) -> None:
        """Delete exactly this pod (uid precondition); ``grace_s=0``: at once, no SIGTERM."""
        from kubernetes import client

        body = client.V1DeleteOptions(
            grace_period_seconds=grace_s, preconditions=client.V1Preconditions(uid=uid)
        )
        with _errors(self.context):
            self.core.delete_namespaced_pod(
                name,
                namespace,
                grace_period_seconds=grace_s,
                body=body,
                _request_timeout=self._timeout,
            )

    def evict_pod(self, namespace: str, name: str, *, uid: str) -> None:
        """policy/v1 Eviction: honours PodDisruptionBudgets (429 when one refuses)."""
        from kubernetes import client

        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
        )
        with _errors(self.context):
            self.core.create_namespaced_pod_eviction(
                name, namespace, body, _request_timeout=self._timeout
            )

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        patch = {
            "Deployment": self.apps.patch_namespaced_deployment_scale,
            "StatefulSet": self.apps.patch_namespaced_stateful_set_scale,
        }[kind]
        with _errors(self.context):
            patch(name, namespace, {"spec": {"replicas": replicas}}, _request_timeout=self._timeout)

    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], timeout_s: float
    ) -> tuple[int | None, str, str]:
        """Run ``command`` in a container: (exit code, None if unknown; stdout; stderr)."""
        from kubernetes.stream import stream

        with self._exec_lock, _errors(self.context):
            ws = stream(
                self._exec_core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                command=command,
                container=container,
                stdin=False,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
            )
            try:
                ws.run_forever(timeout=timeout_s)
                stdout, stderr = ws.read_stdout(timeout=1), ws.read_stderr(timeout=1)
                code = ws.returncode
            finally:
                ws.close()
        return code, stdout, stderr

    def delete_namespace(self, name: str) -> None:
        with _errors(self.context):
            self.core.delete_namespace(name, _request_timeout=self._timeout)
