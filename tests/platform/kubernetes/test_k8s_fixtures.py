"""The watch-stream fixtures are what they say they are: ``synthetic/`` streams in the shapes
a cluster serves (schema-valid, init containers, the pod IP from the sandbox, a grace-0
delete as MODIFIED then DELETED, the manifests' port names), ``recorded/`` streams from a
live cluster with the versions they were recorded on. Both replay the way the watch loop
reads a stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from test_k8s_fakes import RECORDED, SYNTHETIC, replay

from harness.platform.kubernetes.events import LifecycleTracker

ROOT = Path(__file__).resolve().parents[3]
SYNTHETIC_FILES = sorted(SYNTHETIC.glob("*.json"))
RECORDED_FILES = sorted(RECORDED.glob("*.json"))


def objects(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for e in fixture["events"]:
        if e.get("type") in ("ADDED", "MODIFIED", "DELETED"):
            out.append(e["object"])
        out += e.get("items") or []
    return out


def schema_version(fixture: dict[str, Any]) -> str:
    """The kubernetes-validate schema version for the fixture's Kubernetes version."""
    named = (fixture.get("versions") or {}).get("kubernetes") or fixture.get("shapes_of", "")
    digits = named.replace("Kubernetes", "").strip().lstrip("v").split()[0].split(".")[:2]
    return ".".join(digits) + ".0"


def manifest_port_names() -> set[str]:
    names = set()
    for path in (ROOT / "manifests" / "base").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
            for c in spec.get("containers") or []:
                names |= {p["name"] for p in c.get("ports") or []}
            if (doc or {}).get("kind") == "Service":
                names |= {p["name"] for p in doc["spec"]["ports"]}
    return names


@pytest.mark.parametrize("path", SYNTHETIC_FILES + RECORDED_FILES, ids=lambda p: p.name)
def test_every_object_validates_against_the_kubernetes_schema(path: Path) -> None:
    fixture = json.loads(path.read_text())
    version = schema_version(fixture)
    errors = []
    for obj in objects(fixture):
        try:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:  # newer than the package knows
                kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
        except kubernetes_validate.ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path)
            errors.append(f"{obj['kind']} {obj['metadata'].get('name')} at {where}: {e.message}")
    assert not errors, "\n".join(errors[:10])


@pytest.mark.parametrize("path", SYNTHETIC_FILES, ids=lambda p: p.name)
def test_synthetic_streams_have_the_shapes_of_a_cluster(path: Path) -> None:
    fixture = json.loads(path.read_text())
    assert fixture["source"] == "synthetic" and "not recorded" in fixture["shapes_of"]
    ports = manifest_port_names()
    last: dict[str, dict[str, Any]] = {}
    for e in fixture["events"]:
        obj = e.get("object") or {} if e["type"] in ("ADDED", "MODIFIED", "DELETED") else {}
        if obj.get("kind") == "Pod":
            meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
            owner = meta["ownerReferences"][0]["kind"]
            if meta["labels"].get("tier") == "airflow" and owner != "Job":
                assert spec.get("initContainers"), f"{meta['name']}: no init containers"
            sandbox = [
                c
                for c in status.get("conditions") or []
                if c["type"] == "PodReadyToStartContainers"
            ]
            if sandbox and sandbox[0]["status"] == "True":
                assert status.get("podIP"), f"{meta['name']}: sandbox up but no pod IP"
            for c in spec["containers"]:
                assert {p["name"] for p in c.get("ports") or []} <= ports
            if e["type"] == "DELETED" and meta.get("deletionGracePeriodSeconds") == 0:
                before = last.get(meta["uid"])
                marked = before is not None and before["metadata"].get("deletionTimestamp")
                assert marked, f"{meta['name']}: grace 0 is MODIFIED (deletionTimestamp), DELETED"
            last[meta["uid"]] = obj
        if obj.get("kind") == "EndpointSlice":
            assert {p["name"] for p in obj["ports"]} <= ports


def test_the_synthetic_set_covers_bookmarks_410_and_init_container_pull_errors() -> None:
    events = [e for p in SYNTHETIC_FILES for e in json.loads(p.read_text())["events"]]
    types = {e["type"] for e in events}
    assert {"BOOKMARK", "ERROR", "LIST", "death"} <= types
    errors = [e["object"] for e in events if e["type"] == "ERROR"]
    assert all(o["kind"] == "Status" and o["code"] == 410 for o in errors)

    def waiting(key: str) -> set[str]:
        return {
            cs["state"]["waiting"]["reason"]
            for e in events
            if e["type"] in ("ADDED", "MODIFIED") and e["object"]["kind"] == "Pod"
            for cs in e["object"]["status"].get(key) or []
            if "waiting" in cs["state"]
        }

    assert {"ErrImagePull", "ImagePullBackOff"} <= waiting("initContainerStatuses")
    assert "PodInitializing" in waiting("containerStatuses")


def test_recorded_holds_a_readme_and_only_real_recordings() -> None:
    assert (RECORDED / "README.md").is_file()
    for path in RECORDED_FILES:
        fixture = json.loads(path.read_text())
        assert fixture["source"] == "recorded", path.name
        assert fixture["versions"]["kubernetes"] and fixture["versions"]["kind"], path.name


@pytest.mark.parametrize(
    "path",
    RECORDED_FILES
    or [pytest.param(None, marks=pytest.mark.skip(reason="nothing recorded yet (see README)"))],
    ids=lambda p: p.name if p else "none",
)
def test_recorded_streams_replay(path: Path) -> None:
    tracker, events = replay(json.loads(path.read_text()), LifecycleTracker())
    assert events and all(e["replica"] for e in events)
    assert tracker.replica_names()
