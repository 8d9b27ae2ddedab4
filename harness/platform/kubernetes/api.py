"""The only code that talks to the Kubernetes API: thin calls, plain-dict results.

Every object in and out is the API's JSON shape (``metadata.name``, ``status.conditions``
...), so all logic above this adapter is tested offline on objects of those shapes
(synthetic fixtures in ``tests/data/k8s/synthetic/``; what the nightly records from a live
cluster in ``tests/data/k8s/recorded/``). API errors become :class:`KubeApiError` with the
HTTP status. Callers go through :class:`~harness.platform.kubernetes.safety.GuardedApi`,
never straight to this class.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from harness.core.errors import HarnessError
from harness.platform.kubernetes.safety import allowed_contexts, require_allowed_context

FIELD_MANAGER = "ha-bench"
ERROR_CHANNEL = 3  # the exec websocket's status channel (kubernetes.stream.ws_client)
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")


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


def exec_status(text: str | bytes | None) -> tuple[int | None, str]:
    """(exit code, message) of an exec from its status channel, a ``metav1.Status``.

    ``Success`` is 0; a non-zero exit is ``Failure`` with reason ``NonZeroExitCode`` and
    the code in ``details.causes[reason=ExitCode].message``. Anything else has no exit
    code (None): a Failure without ``details`` (the container is gone, the runtime
    failed), an empty channel (the connection closed before a status: e.g. the process
    was killed with its container), or text that is not a Status. The client's own
    ``returncode`` raises (KeyError, TypeError) on those.
    """
    raw = text.decode(errors="replace") if isinstance(text, bytes) else (text or "")
    if not raw.strip():
        return None, "no exit status (the exec stream closed without one)"
    try:
        status = json.loads(raw)
    except ValueError:
        return None, f"unreadable exec status: {raw.strip()[:200]}"
    if not isinstance(status, dict):
        return None, f"unreadable exec status: {raw.strip()[:200]}"
    if status.get("status") == "Success":
        return 0, ""
    message = str(status.get("message") or status.get("reason") or "exec failed")
    causes = (status.get("details") or {}).get("causes") or []
    for cause in causes:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "")), message
            except ValueError:
                break
    return None, message


def _handshake_status(reason: str) -> int | None:
    """The HTTP status of a refused exec handshake (the client raises status 0)."""
    match = _HANDSHAKE.search(reason)
    return int(match.group(1)) if match else None


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
        self.batch = client.BatchV1Api(self._client)
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
            "Job": self.batch.list_namespaced_job,
            "Event": self.core.list_namespaced_event,
            "PersistentVolumeClaim": self.core.list_namespaced_persistent_volume_claim,
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

    def list_cluster(self, kind: str, selector: str) -> list[dict[str, Any]]:
        """Cluster-scoped objects (``Namespace``, ``Node``) matching ``selector``."""
        fn = {"Namespace": self.core.list_namespace, "Node": self.core.list_node}[kind]
        with _errors(self.context):
            data = _json(
                fn(
                    label_selector=selector or None,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
            )
        return list(data.get("items") or [])

    def pod_log(
        self, namespace: str, name: str, container: str, *, previous: bool, limit_bytes: int
    ) -> str | None:
        """A container's log (``previous``: its last terminated instance, as ``kubectl logs
        -p``), timestamped, at most ``limit_bytes``; None if there is none (HTTP 400/404)."""
        try:
            with _errors(self.context):
                resp = self.core.read_namespaced_pod_log(
                    name,
                    namespace,
                    container=container,
                    previous=previous,
                    timestamps=True,
                    limit_bytes=limit_bytes,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
                try:
                    return bytes(resp.data).decode(errors="replace")
                finally:
                    resp.release_conn()
        except KubeApiError as exc:
            if exc.status in (400, 404):
                return None
            raise

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

    def crd_installed(self, name: str) -> bool:
        """True if the CustomResourceDefinition ``name`` (``networkchaos.chaos-mesh.org``)
        exists."""
        from kubernetes import client

        try:
            with _errors(self.context):
                client.ApiextensionsV1Api(self._client).read_custom_resource_definition(
                    name, _preload_content=False, _request_timeout=self._timeout
                )
            return True
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete one namespaced object of any kind; one already gone is no error."""
        from kubernetes.dynamic.exceptions import DynamicApiError

        resource = {"apiVersion": api_version, "kind": kind}
        try:
            with _errors(self.context):
                self._resource(resource).delete(
                    name=name, namespace=namespace, _request_timeout=self._timeout
                )
        except DynamicApiError as exc:
            if exc.status != 404:
                raise KubeApiError(exc.status, str(exc.reason), exc.summary()) from None

    def patch_pod(
        self, namespace: str, name: str, body: dict[str, Any], *, subresource: str | None = None
    ) -> None:
        """A strategic-merge patch of a pod (``subresource="resize"``: its resources in
        place, Kubernetes >= 1.33)."""
        patch = self.core.patch_namespaced_pod_resize if subresource == "resize" \
            else self.core.patch_namespaced_pod  # fmt: skip
        with _errors(self.context):
            patch(name, namespace, body, _request_timeout=self._timeout)

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
        """Run ``command`` in a container: (exit code, None if unknown; stdout; stderr).

        The code comes from the status channel (:func:`exec_status`); when there is none
        (the stream closed without a status, a failure without details, a timeout) the
        code is None and the reason ends ``stderr`` as ``[exec: ...]``. A refused
        handshake (the pod or container is gone) raises :class:`KubeApiError` with its
        HTTP status."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream
        from websocket import WebSocketException

        with self._exec_lock:
            try:
                with _errors(self.context):
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
            except KubeApiError as exc:
                if exc.status == 0:  # the client's code for a failed websocket handshake
                    raise KubeApiError(
                        _handshake_status(exc.reason), "exec refused", exc.reason[:300]
                    ) from None
                raise
            try:
                ws.run_forever(timeout=timeout_s)
                timed_out = ws.is_open()
                stdout, stderr = ws.read_stdout(timeout=0), ws.read_stderr(timeout=0)
                if timed_out:
                    code, message = None, f"no exit within {timeout_s:g} s"
                else:
                    code, message = exec_status(ws.read_channel(ERROR_CHANNEL))
            except (ApiException, WebSocketException, OSError) as exc:  # broke mid-way
                stdout, stderr, code, message = "", "", None, f"exec stream failed: {exc}"
            finally:
                ws.close()
        if code is None:
            stderr = f"{stderr}[exec: {message}]"
        return code, stdout or "", stderr or ""

    def delete_namespace(self, name: str) -> None:
        with _errors(self.context):
            self.core.delete_namespace(name, _request_timeout=self._timeout)
