"""The recorder writes what the harness's watches received, its fault events and the
nemesis's death reports in the fixture format, which the replay reads back (offline, on
the fake cluster; the nightly records a live one)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from test_k8s_cluster import FakeCluster, owned_cluster
from test_k8s_fakes import replay

from harness.platform.kubernetes.recorder import Recorder, versions


class ExpiringCluster(FakeCluster):
    """A watch from resourceVersion 1 ends at once with ERROR 410, as the API answers."""

    def watch(
        self, kind: str, namespace: str, selector: str, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if resource_version == "1" and kind == "Pod" and timeout_s == 2:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": "too old resource version: 1 (1502)", "reason": "Expired",
                      "code": 410}  # fmt: skip
            return iter([("ERROR", status)])
        return super().watch(kind, namespace, selector, resource_version, timeout_s)


def test_a_recording_of_a_kill_replays(tmp_path: Path):
    with owned_cluster(ExpiringCluster()) as cluster:
        with Recorder(cluster) as rec:
            time.sleep(0.2)
            cluster.nemesis.kill("api-server-0")
            assert rec.relist_after_410(timeout_s=2) == "Expired"
        path = rec.write(tmp_path / "kill-api-server.json", "api-server-0 killed (fake cluster)")
    fixture = json.loads(path.read_text())
    assert fixture["source"] == "recorded" and fixture["versions"]["kubernetes"] == "v1.32.2"
    assert set(fixture["versions"]) == {"kubernetes", "kind", "kubectl", "harness"}
    kinds = [(e["watch"], e["type"]) for e in fixture["events"]]
    assert ("harness", "fault") in kinds and ("harness", "death") in kinds
    assert ("pods", "ERROR") in kinds and kinds[-1] == ("pods", "LIST")
    phases = [e["phase"] for e in fixture["events"] if e["type"] == "fault"]
    assert phases == ["invoke", "ok"]
    _, events = replay(fixture)
    states = [(e["replica"], e["state"]) for e in events]
    assert ("api-server-0", "exited") in states and ("api-server-0", "deleted") in states
    assert [e["t"] for e in fixture["events"]] == sorted(e["t"] for e in fixture["events"])


def test_versions_name_every_tool_or_none():
    found = versions("v1.32.2")
    assert found["kubernetes"] == "v1.32.2" and found["harness"]
    assert found["kubectl"] is None or "Client Version" in found["kubectl"]
