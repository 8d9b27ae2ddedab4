"""A local kind cluster for the ``kubernetes`` platform: ``kind_up`` / ``kind_down``, and
the container runtime of its nodes (:class:`KindNodeRuntime`).

The cluster config (``manifests/kind/cluster.yaml``) maps the node's ledger directory
``/var/lib/ha-bench`` to a host directory (placeholder ``__HA_BENCH_LEDGER_DIR__``), so the
harness reads the side-effect ledger as a plain file. The kube context of cluster
``<name>`` is ``kind-<name>``. A kind node is a Docker container running containerd:
``docker exec <node> crictl ...`` reaches the runtime the kubelet uses, for a SIGKILL the
container's own PID namespace cannot deliver to its PID 1 and for the images a node has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.core.errors import HarnessError
from harness.platform.kubernetes.manifests import REPO_ROOT

DEFAULT_NAME = "ha-bench"
DEFAULT_CONFIG = REPO_ROOT / "manifests" / "kind" / "cluster.yaml"
LEDGER_PLACEHOLDER = "__HA_BENCH_LEDGER_DIR__"
INSTALL_KIND = "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"


def context_name(name: str = DEFAULT_NAME) -> str:
    return f"kind-{name}"


def default_ledger_dir(name: str = DEFAULT_NAME) -> Path:
    """Where ``kind up`` maps the node's ledger directory (and the harness reads it)."""
    cache = os.environ.get("HA_BENCH_CACHE") or Path.home() / ".cache" / "airflow-ha-bench"
    return Path(cache) / "kind" / name / "ledger"


def kind_name_of(context: str) -> str | None:
    """The kind cluster behind a ``kind-<name>`` context, else None."""
    return context[len("kind-") :] if context.startswith("kind-") else None


def require_kind() -> str:
    """Path of ``kind``, after checking that a Docker engine answers; else a HarnessError."""
    kind = shutil.which("kind")
    if kind is None:
        raise HarnessError("kind not found on PATH", fix=f"{INSTALL_KIND} or use --platform local")
    docker = shutil.which("docker")
    if docker is None:
        raise HarnessError(
            "docker not found on PATH (kind runs its nodes as Docker containers)",
            fix="install and start Docker, or use --platform local",
        )
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        info = None
    if info is None or info.returncode != 0:
        raise HarnessError(
            "Docker engine not reachable", fix="start Docker or use --platform local"
        )
    return kind


def render_kind_config(text: str, ledger_dir: Path) -> str:
    """The kind config with the ledger host directory filled in."""
    if LEDGER_PLACEHOLDER not in text:
        raise HarnessError(
            f"the kind config has no {LEDGER_PLACEHOLDER} placeholder",
            fix="map /var/lib/ha-bench with extraMounts hostPath: " + LEDGER_PLACEHOLDER,
        )
    return text.replace(LEDGER_PLACEHOLDER, str(Path(ledger_dir).resolve()))


def _run(command: list[str], what: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        raise HarnessError(f"{what} failed: {last}", fix=f"run `{' '.join(command)}` to see why")
    return result


def kind_clusters(kind: str | None = None) -> list[str]:
    kind = kind or require_kind()
    out = _run([kind, "get", "clusters"], "kind get clusters", 60).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def kind_up(
    name: str = DEFAULT_NAME,
    config: Path = DEFAULT_CONFIG,
    *,
    ledger_dir: Path,
    wait_s: int = 180,
) -> str:
    """Create kind cluster ``name`` (reused if it exists); returns its kube context.

    ``ledger_dir`` is created world-writable: the Airflow containers (uid 50000) write
    the ledger into it through the node's hostPath.
    """
    kind = require_kind()
    if name in kind_clusters(kind):
        return context_name(name)
    if not Path(config).is_file():
        raise HarnessError(
            f"kind config {config} not found", fix="run from the repository checkout"
        )
    ledger = Path(ledger_dir).resolve()
    ledger.mkdir(parents=True, exist_ok=True)
    ledger.chmod(0o777)
    rendered = render_kind_config(Path(config).read_text(), ledger)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="kind-") as f:
        f.write(rendered)
        f.flush()
        _run(
            [kind, "create", "cluster", "--name", name, "--config", f.name, "--wait", f"{wait_s}s"],
            f"kind create cluster {name}",
            wait_s + 300,
        )
    return context_name(name)


def kind_down(name: str = DEFAULT_NAME) -> bool:
    """Delete kind cluster ``name``; False if there was none."""
    kind = require_kind()
    if name not in kind_clusters(kind):
        return False
    _run([kind, "delete", "cluster", "--name", name], f"kind delete cluster {name}", 300)
    return True


def kind_nodes(name: str, kind: str | None = None) -> list[str]:
    kind = kind or require_kind()
    out = _run([kind, "get", "nodes", "--name", name], f"kind get nodes {name}", 60).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def kind_nodes_of(context: str) -> list[str]:
    """The nodes of the kind cluster behind ``context`` (none if it is not kind)."""
    name = kind_name_of(context)
    return kind_nodes(name) if name else []


def container_id(status_id: str) -> str:
    """``containerd://abc...`` (a containerStatuses[].containerID) as crictl takes it."""
    return status_id.split("://", 1)[-1]


class KindNodeRuntime:
    """containerd on the nodes of kind cluster ``name``, through ``docker exec``.

    Only nodes that ``kind get nodes --name <name>`` lists are ever touched, and only
    containers the caller names (from the status of a pod in the harness's scope).
    """

    def __init__(self, name: str, *, timeout_s: float = 60.0) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._nodes: list[str] | None = None
        self._docker: str | None = None

    def _require_node(self, node: str) -> str:
        if self._nodes is None:
            require_kind()
            self._docker = shutil.which("docker")
            self._nodes = kind_nodes(self.name)
        if node not in self._nodes:
            raise HarnessError(
                f"node {node!r} is not a node of kind cluster {self.name} "
                f"({', '.join(self._nodes) or 'none'})",
                fix="use the kind cluster's own context, or kill through exec",
            )
        assert self._docker is not None
        return self._docker

    def crictl(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        docker = self._require_node(node)
        command = [docker, "exec", node, "crictl", *args]
        try:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(
                f"`{' '.join(command)}` did not finish in {self.timeout_s:g} s",
                fix="check the kind node (docker ps) and its containerd",
            ) from None

    def kill(self, node: str, container: str) -> dict[str, object]:
        """SIGKILL the container (``crictl stop --timeout 0``: no SIGTERM first) and return
        what the runtime says of its end: ``finished_at`` (RFC 3339, ns), ``exit_code``."""
        cid = container_id(container)
        stop = self.crictl(node, "stop", "--timeout", "0", cid)
        if stop.returncode != 0:
            last = (stop.stderr.strip().splitlines() or ["?"])[-1]
            raise HarnessError(
                f"crictl stop {cid[:13]} on {node} failed: {last}",
                fix="the container may be gone already; see `kubectl describe pod`",
            )
        inspect = self.crictl(node, "inspect", cid)
        status: dict[str, object] = {}
        if inspect.returncode == 0:
            try:
                status = json.loads(inspect.stdout).get("status") or {}
            except ValueError:
                status = {}
        return {
            "container_id": cid[:13],
            "finished_at": status.get("finishedAt"),
            "exit_code": status.get("exitCode"),
            "state": status.get("state"),
        }

    def has_image(self, node: str, image: str) -> bool | None:
        """Does the node's containerd have ``image``? None if that cannot be told."""
        result = self.crictl(node, "inspecti", image)
        if result.returncode == 0:
            return True
        said = (result.stderr + result.stdout).lower()
        return False if "no such image" in said or "not found" in said else None
