"""The thin adapter against a local HTTP server speaking the Kubernetes REST paths: the
real client's URLs, bodies, content types, watch parsing and error translation, and exec
over a websocket (v4.channel.k8s.io) with the status-channel answers a kubelet gives."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_k8s_fakes import load, watch_events

from harness.core.errors import HarnessError
from harness.platform.kubernetes.api import KubeApi, KubeApiError, exec_status

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


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NONZERO_3 = {
    "metadata": {},
    "status": "Failure",
    "message": "command terminated with non-zero exit code: error executing command "
    "[sh -c exit 3], exit code 3",
    "reason": "NonZeroExitCode",
    "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
}
NO_DETAILS = {
    "metadata": {},
    "status": "Failure",
    "message": 'container not found ("api-server")',
    "reason": "InternalError",
    "code": 500,
}
# the exec command (its first word) -> (stdout, status channel text or None: no status)
EXEC_ANSWERS: dict[str, tuple[str, str | None]] = {
    "ok": ("hello\n", json.dumps({"metadata": {}, "status": "Success"})),
    "three": ("", json.dumps(NONZERO_3)),
    "nodetails": ("", json.dumps(NO_DETAILS)),
    "killed": ("signalled=7\n", None),
}


def ws_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """An unmasked server frame (FIN set)."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


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
        if url.path.endswith("/exec") and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._exec(url.path, query)
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
        if route == ("GET", f"{PODS}/{NAME}/log"):
            if query.get("previous") == ["true"]:
                missing = f'previous terminated container "x" in pod "{NAME}" not found'
                return self._reply(400, status(400, "BadRequest", missing))
            data = b"2026-01-12T09:00:00.000000000Z INFO started\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if route == ("GET", "/api/v1/namespaces"):
            ns = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "ha-bench"}}
            listing = {"kind": "NamespaceList", "apiVersion": "v1", "items": [ns]}
            return self._reply(200, {**listing, "metadata": {"resourceVersion": "9"}})
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

    def _exec(self, path: str, query: dict[str, list[str]]) -> None:
        """The exec websocket: a refused handshake for a pod that is gone, else stdout on
        channel 1, the status on channel 3 (or none), then a close frame."""
        if "/pods/gone/" in path:
            return self._reply(404, status(404, "NotFound", 'pods "gone" not found'))
        stdout, answer = EXEC_ANSWERS[query["command"][0]]
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        self.end_headers()
        if stdout:
            self.wfile.write(ws_frame(b"\x01" + stdout.encode()))
        if answer is not None:
            self.wfile.write(ws_frame(b"\x03" + answer.encode()))
        self.wfile.write(ws_frame(struct.pack("!H", 1000), opcode=0x8))
        self.wfile.flush()
        self.close_connection = True
        return None

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


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"metadata":{},"status":"Success"}', (0, "")),
        (json.dumps(NONZERO_3), (3, NONZERO_3["message"])),
        (json.dumps(NO_DETAILS), (None, 'container not found ("api-server")')),
        ("", (None, "no exit status (the exec stream closed without one)")),
        (None, (None, "no exit status (the exec stream closed without one)")),
        (b'{"status":"Failure","details":{"causes":[{"reason":"ExitCode","message":"x"}]}}',
         (None, "exec failed")),
        ("not json", (None, "unreadable exec status: not json")),
    ],
)  # fmt: skip
def test_exec_status_of_every_shape_the_channel_has(answer, expected):
    assert exec_status(answer) == expected


def test_exec_over_the_websocket(api: KubeApi, server: FakeApiServer):
    assert api.exec("ha-bench", NAME, "api-server", ["ok"], 5) == (0, "hello\n", "")
    assert api.exec("ha-bench", NAME, "api-server", ["three"], 5)[0] == 3
    # a Failure without details, and no status at all (killed with its container): the
    # client's returncode would raise KeyError / TypeError here
    code, _, stderr = api.exec("ha-bench", NAME, "api-server", ["nodetails"], 5)
    assert code is None and stderr == '[exec: container not found ("api-server")]'
    code, stdout, stderr = api.exec("ha-bench", NAME, "api-server", ["killed"], 5)
    assert (code, stdout) == (None, "signalled=7\n") and "no exit status" in stderr
    with pytest.raises(KubeApiError) as err:
        api.exec("ha-bench", "gone", "api-server", ["ok"], 5)
    assert err.value.status == 404


def test_pod_logs_and_cluster_lists(api: KubeApi, server: FakeApiServer):
    log = api.pod_log("ha-bench", NAME, "api-server", previous=False, limit_bytes=1000)
    assert log == "2026-01-12T09:00:00.000000000Z INFO started\n"
    query = server.requests[-1]["query"]
    assert (query["container"], query["timestamps"], query["limitBytes"]) == (
        ["api-server"],
        ["true"],
        ["1000"],
    )
    assert api.pod_log("ha-bench", NAME, "api-server", previous=True, limit_bytes=10) is None
    assert [n["metadata"]["name"] for n in api.list_cluster("Namespace", "a=b")] == ["ha-bench"]
    assert server.requests[-1]["query"]["labelSelector"] == ["a=b"]
