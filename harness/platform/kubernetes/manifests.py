"""The owned cluster's objects: ``kubectl kustomize`` output, patched from the Topology.

:func:`prepare_manifests` is pure: replicas per component, the Airflow config overrides
in the ``airflow-env`` ConfigMap (plus a hash annotation so changed config rolls the
pods), the image tag set to ``topology.airflow_version``, the termination grace, the
``part-of`` label on every object and pod template. The ``airflow-secrets`` Secret is
never taken from the manifests: :func:`new_secret` makes one with random values, created
once per namespace.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import HarnessError
from harness.core.topology import COMPONENTS, Topology

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_OVERLAY = REPO_ROOT / "manifests" / "overlays" / "kind"
NAMESPACE = "ha-bench"
PART_OF = {"app.kubernetes.io/part-of": "airflow-ha-bench"}
RELEASE = "ha-bench"
ENV_CONFIGMAP = "airflow-env"
SECRET = "airflow-secrets"
CONFIG_HASH_ANNOTATION = "ha-bench/airflow-env-hash"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
APPLY_ORDER = (
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "Service",
    "PodDisruptionBudget",
    "StatefulSet",
    "Deployment",
    "Job",
)
# The base's configMapGenerator takes the benchmark DAGs from the package
# (harness/observe/workload/dags/), outside the kustomize root: kustomize refuses that by default.
KUSTOMIZE_FLAGS = ("--load-restrictor", "LoadRestrictionsNone")
_VERSION_TAG = re.compile(r"^\d+\.\d+\.\d+(?:[a-z]+\d+)?(?P<suffix>-.+)?$")


def render(overlay: Path = DEFAULT_OVERLAY, *, kubectl: str = "kubectl") -> list[dict[str, Any]]:
    """``kubectl kustomize --load-restrictor LoadRestrictionsNone <overlay>`` as a list of
    objects (the flag lets the base load the package's DAG file, outside its root)."""
    binary = shutil.which(kubectl)
    if binary is None:
        raise HarnessError(
            f"{kubectl} not found on PATH",
            fix="install kubectl (https://kubernetes.io/docs/tasks/tools/)",
        )
    if not Path(overlay).is_dir():
        raise HarnessError(
            f"manifests overlay {overlay} not found",
            fix="run from the repository checkout or pass the overlay path",
        )
    result = subprocess.run(
        [binary, "kustomize", *KUSTOMIZE_FLAGS, str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        raise HarnessError(
            f"`kubectl kustomize {' '.join(KUSTOMIZE_FLAGS)} {overlay}` failed: {last}",
            fix="fix the manifests (run that command to see the error)",
        )
    return parse_documents(result.stdout)


def parse_documents(text: str) -> list[dict[str, Any]]:
    """Objects of a multi-document YAML stream (``List`` kinds flattened)."""
    out: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if doc.get("kind") == "List":
            out += [item for item in doc.get("items") or [] if item]
        else:
            out.append(doc)
    return out


def image_with_version(image: str, version: str) -> str | None:
    """``repo:<version>[-suffix]`` for an Airflow image (repo name containing ``airflow``)
    with a version tag; None for other images. A digest is dropped (it pins the old tag)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    repo, tag = (name[:colon], name[colon + 1 :]) if colon > slash else (name, "")
    if "airflow" not in repo.rsplit("/", 1)[-1]:
        return None
    match = _VERSION_TAG.match(tag)
    if match is None:
        raise HarnessError(
            f"image {image!r} has no Airflow version tag to set the topology's version on",
            fix="tag Airflow images in the manifests like apache/airflow:3.3.2",
        )
    return f"{repo}:{version}{match.group('suffix') or ''}"


def _templates(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return [template] if isinstance(template, dict) else []


def _template_labels(template: Mapping[str, Any]) -> dict[str, str]:
    return (template.get("metadata") or {}).get("labels") or {}


def config_hash(data: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()[:16]


def airflow_env_data(topology: Topology) -> dict[str, str]:
    """What the harness writes into ``airflow-env``: topology knobs, then the overrides."""
    return {
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(topology.worker_concurrency),
        "AIRFLOW__API__WORKERS": str(topology.api_server_workers),
        **topology.airflow_env(),
    }


@dataclass
class Prepared:
    """Objects to apply, in order, and what was set on them."""

    objects: list[dict[str, Any]]
    images: dict[str, str] = field(default_factory=dict)  # "Kind/name/container" -> image
    workloads: dict[str, tuple[str, str]] = field(default_factory=dict)  # component -> kind/name
    config_hash: str = ""


def prepare_manifests(
    docs: Iterable[Mapping[str, Any]], topology: Topology, *, namespace: str = NAMESPACE
) -> Prepared:
    """Patch rendered manifests for ``topology``; refuses objects outside ``namespace``."""
    objects: list[dict[str, Any]] = []
    for doc in docs:
        obj = copy.deepcopy(dict(doc))
        kind, meta = obj.get("kind"), obj.setdefault("metadata", {})
        if kind == "Secret" and meta.get("name") == SECRET:
            continue  # the harness makes it, with fresh random values
        where = meta.get("namespace") if kind != "Namespace" else meta.get("name")
        if where not in (None, namespace):
            raise HarnessError(
                f"the manifests put {kind} {meta.get('name')} in namespace {where!r}, "
                f"not {namespace!r}",
                fix=f"use namespace {where!r} for owned mode, or fix the manifests",
            )
        if kind != "Namespace":
            meta["namespace"] = namespace
        meta["labels"] = {**(meta.get("labels") or {}), **PART_OF}
        objects.append(obj)
    if not any(o["kind"] == "Namespace" for o in objects):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": dict(PART_OF)},
            }
        )

    env = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ENV_CONFIGMAP
    ]
    if not env:
        raise HarnessError(
            f"the manifests have no ConfigMap {ENV_CONFIGMAP!r}",
            fix="add it (envFrom of every Airflow container)",
        )
    data = {**(env[0].get("data") or {}), **airflow_env_data(topology)}
    env[0]["data"] = data
    digest = config_hash(data)

    prepared = Prepared(objects=[], config_hash=digest)
    grace = math.ceil(topology.termination_grace_s)
    for obj in objects:
        for template in _templates(obj):
            labels = _template_labels(template)
            component = labels.get("component")
            # the owned pod watch selects on it (selectors stay as they are)
            template.setdefault("metadata", {})["labels"] = {**labels, **PART_OF}
            pod_spec = template.setdefault("spec", {})
            for section in ("initContainers", "containers"):
                for container in pod_spec.get(section) or []:
                    image = image_with_version(container.get("image", ""), topology.airflow_version)
                    if image is not None:
                        container["image"] = image
                        key = f"{obj['kind']}/{obj['metadata']['name']}/{container.get('name')}"
                        prepared.images[key] = image
            if labels.get("tier") == "airflow" and component in COMPONENTS:
                # like local: a worker's warm shutdown gets at least 30 s to finish tasks
                pod_spec["terminationGracePeriodSeconds"] = (
                    max(grace, 30) if component == "worker" else grace
                )
                meta = template.setdefault("metadata", {})
                meta["annotations"] = {
                    **(meta.get("annotations") or {}),
                    CONFIG_HASH_ANNOTATION: digest,
                }
            if obj["kind"] in WORKLOAD_KINDS and component:
                if component in prepared.workloads:
                    raise HarnessError(
                        f"two workloads for component {component!r}",
                        fix="give each workload its own component label",
                    )
                prepared.workloads[component] = (obj["kind"], obj["metadata"]["name"])
                if component in COMPONENTS:
                    obj["spec"]["replicas"] = topology.replicas(component)
    for component in COMPONENTS:
        if topology.replicas(component) and component not in prepared.workloads:
            raise HarnessError(
                f"the manifests have no Deployment/StatefulSet with component={component}",
                fix="add it to the manifests or set its replicas to 0 in the topology",
            )
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    prepared.objects = sorted(objects, key=lambda o: rank.get(o["kind"], len(APPLY_ORDER)))
    return prepared


def new_secret(namespace: str = NAMESPACE) -> dict[str, Any]:
    """``airflow-secrets`` with fresh random values (fernet-key, jwt-secret, api-secret-key)."""
    values = {
        "fernet-key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "jwt-secret": secrets.token_urlsafe(64),
        "api-secret-key": secrets.token_urlsafe(32),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": SECRET,
            "namespace": namespace,
            "labels": {**PART_OF, "release": RELEASE},
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }
