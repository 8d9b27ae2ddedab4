"""The thin adapter against a local HTTP server speaking the Kubernetes REST paths: the
real client's URLs, bodies, content types, watch parsing and error translation."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_k8s_fakes import load, watch_events

from harness.core.errors import HarnessError
from harness.platform.kubernetes.api import KubeApi, KubeApiError

POD = watch_events(load("kill-api-server.json"))[0]["object"]
NAME, UID = POD["metadata"]["name"], POD["metadata"]["uid"]
PODS = "/api/v1/namespaces/ha-bench/pods"
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.2",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2025-02-12T21:19:47Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
RESOURCES = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "configmaps",
                "singularName": "configmap",
                "namespaced": True,
                "kind": "ConfigMap",
                "verbs": ["create", "get", "list", "patch", "delete"],
            },
        ],
    },
}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeApiServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []


class Handler(BaseHTTPRequestHandler):
    server: FakeApiServer

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any, *, lines: list[dict[str, Any]] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        if lines is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in lines:
                data = (json.dumps(line) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        data = json.dumps(body).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        url = url._replace(path=url.path.rstrip("/") or "/")  # the client asks for /version/
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null") if length else None
        self.server.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": query,
                "type": self.headers.get("Content-Type"),
                "body": body,
            }
        )
        route = (self.command, url.path)
        if route == ("GET", "/version"):
            return self._reply(200, VERSION)
        if self.command == "GET" and url.path in RESOURCES:
            return self._reply(200, RESOURCES[url.path])
        if route == ("GET", PODS) and query.get("watch") == ["true"]:
            bookmark = {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "1300"}}
            return self._reply(
                200,
                None,
                lines=[
                    {"type": "ADDED", "object": POD},
                    {"type": "BOOKMARK", "object": bookmark},
                    {"type": "ERROR", "object": status(410, "Expired", "too old resource version")},
                ],
            )
        if route == ("GET", PODS):
            return self._reply(
                200,
                {
                    "kind": "PodList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1234"},
                    "items": [POD],
                },
            )
        if route == ("GET", f"{PODS}/missing"):
            return self._reply(404, status(404, "NotFound", 'pods "missing" not found'))
        if route == ("DELETE", f"{PODS}/{NAME}"):
            return self._reply(200, {**POD, "status": {"phase": "Running"}})
        if route == ("POST", f"{PODS}/{NAME}/eviction"):
            return self._reply(
                429,
                status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                ),
            )
        if route == ("PATCH", "/apis/apps/v1/namespaces/ha-bench/statefulsets/postgres/scale"):
            return self._reply(
                200,
                {
                    "kind": "Scale",
                    "apiVersion": "autoscaling/v1",
                    "metadata": {"name": "postgres"},
                    "spec": {"replicas": 0},
                },
            )
        if route == ("PATCH", "/api/v1/namespaces/ha-bench/configmaps/airflow-env"):
            return self._reply(200, body)
        return self._reply(404, status(404, "NotFound", f"no route {route}"))

    do_GET = do_POST = do_PATCH = do_DELETE = _handle


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    srv = FakeApiServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def kubeconfig(path: Path, port: int) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "kind-fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "kind-fake", "context": {"cluster": "fake", "user": "u"}}],
    }
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture
def api(server: FakeApiServer, tmp_path: Path) -> KubeApi:
    return KubeApi("kind-fake", kubeconfig=kubeconfig(tmp_path / "config", server.server_port))


def test_reads_return_plain_api_dicts(api: KubeApi, server: FakeApiServer):
    assert api.server_version() == "v1.32.2"
    items, version = api.list("Pod", "ha-bench", "app.kubernetes.io/part-of=airflow-ha-bench")
    assert items == [POD] and version == "1234"
    assert server.requests[-1]["query"]["labelSelector"] == [
        "app.kubernetes.io/part-of=airflow-ha-bench"
    ]
    assert api.get("Pod", "ha-bench", "missing") is None


def test_watch_yields_events_and_errors(api: KubeApi, server: FakeApiServer):
    events = list(api.watch("Pod", "ha-bench", "component=api-server", "1234", 5))
    assert [t for t, _ in events] == ["ADDED", "BOOKMARK", "ERROR"]
    assert events[0][1] == POD and events[2][1]["code"] == 410
    query = server.requests[-1]["query"]
    assert (query["watch"], query["resourceVersion"], query["timeoutSeconds"]) == (
        ["true"],
        ["1234"],
        ["5"],
    )
    assert query["allowWatchBookmarks"] == ["true"]


def test_delete_evict_scale_and_apply_requests(api: KubeApi, server: FakeApiServer):
    api.delete_pod("ha-bench", NAME, uid=UID, grace_s=0)
    delete = server.requests[-1]
    assert delete["query"]["gracePeriodSeconds"] == ["0"]
    assert delete["body"]["preconditions"] == {"uid": UID}
    with pytest.raises(KubeApiError) as err:
        api.evict_pod("ha-bench", NAME, uid=UID)
    assert err.value.status == 429 and "disruption budget" in err.value.message
    eviction = server.requests[-1]["body"]
    assert eviction["metadata"] == {"name": NAME, "namespace": "ha-bench"}
    assert eviction["deleteOptions"]["preconditions"] == {"uid": UID}
    api.scale("StatefulSet", "ha-bench", "postgres", 0)
    scale = server.requests[-1]
    assert scale["body"] == {"spec": {"replicas": 0}}
    assert scale["type"] == "application/strategic-merge-patch+json"
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "airflow-env", "namespace": "ha-bench"},
        "data": {"A": "1"},
    }
    api.apply(configmap)
    apply = server.requests[-1]
    assert apply["method"] == "PATCH" and apply["type"] == "application/apply-patch+yaml"
    assert apply["query"]["fieldManager"] == ["ha-bench"] and apply["query"]["force"] == ["true"]
    assert apply["body"] == configmap


def test_unreachable_api(tmp_path: Path):
    api = KubeApi("kind-fake", kubeconfig=kubeconfig(tmp_path / "config", 1))
    with pytest.raises(HarnessError, match=r"not reachable.*fix: start the cluster"):
        api.server_version()
    with pytest.raises(KubeApiError) as err:
        api.list("Pod", "ha-bench", "")
    assert err.value.status is None


def test_a_context_missing_from_the_kubeconfig(tmp_path: Path, server: FakeApiServer):
    path = kubeconfig(tmp_path / "config", server.server_port)
    with pytest.raises(HarnessError, match=re.escape("cannot load kube context 'kind-other'")):
        KubeApi("kind-other", kubeconfig=path)
