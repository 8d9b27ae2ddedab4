"""The ``kubernetes`` platform: the same Cluster interface as ``local``, on a kube context.

Two modes:

``owned``     the harness owns namespace ``ha-bench``: it renders the manifests
              (``kubectl kustomize``), patches them from the Topology, checks the
              images and the requests (pre-flight), removes stale namespaces of earlier
              runs, creates the ``airflow-secrets`` Secret, server-side applies
              everything (field manager ``ha-bench``; the namespace with an owner and
              a renewed lease), checks the ledger round trip, and in :meth:`stop` keeps
              every pod's logs, events and description, then deletes the namespace
              (unless kept).
``existing``  an official Helm chart release: pods selected by namespace and labels
              (default ``release=<name>``); nothing is applied or deleted, only the
              selected pods are faulted.

Either way the context must be on the allow-list (checked in the constructor, before
any API client exists), a pod watch and an EndpointSlice watch feed
:class:`~harness.platform.kubernetes.events.LifecycleTracker` and its ``lifecycle``
events go to :attr:`bus`, and everything probed is on loopback: the kind NodePort
(``127.0.0.1:30080``) or ``kubectl port-forward`` children (checked by traffic). A
bring-up that cannot succeed (a pull error, a crash loop, an unschedulable pod, a failed
migration Job) stops within seconds with the reason. Use it as a context manager.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.core.cleanup import StartStopContext
from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.core.netguard import require_loopback
from harness.core.polling import poll
from harness.core.topology import COMPONENTS, Topology
from harness.platform.kubernetes import namespaces, safety
from harness.platform.kubernetes.api import KubeApi, KubeApiError
from harness.platform.kubernetes.diagnostics import (
    UNSCHEDULABLE_S,
    BringUpWatch,
    bring_up_problem,
    collect,
    requests_problem,
)
from harness.platform.kubernetes.events import (
    COMPONENT_LABEL,
    KNOWN_COMPONENTS,
    SERVICES,
    LifecycleTracker,
    WatchedState,
    expected_replicas,
    watch_action,
)
from harness.platform.kubernetes.kind import KindNodeRuntime, kind_name_of, kind_nodes_of
from harness.platform.kubernetes.manifests import (
    DEFAULT_OVERLAY,
    NAMESPACE,
    PART_OF,
    RELEASE,
    SECRET,
    WORKLOAD_KINDS,
    Prepared,
    new_secret,
    prepare_manifests,
    render,
)
from harness.platform.kubernetes.nemesis import KubernetesNemesis, running_containers
from harness.platform.kubernetes.portforward import Liveness, PortForward, kubectl_base, port_open
from harness.platform.kubernetes.safety import GuardedApi, Scope

log = logging.getLogger(__name__)
__all__ = ["BringUpError", "KubernetesCluster", "bring_up_problem", "workload_ready"]

MODES = ("owned", "existing")
LB_MODES = ("auto", "nodeport", "port-forward")
KIND_NODEPORT = 30080
API_PORT = 8080
LEDGER_IN_POD = "/var/lib/ha-bench/ledger.jsonl"
WATCH_TIMEOUT_S = 5
FORWARD_CHECK_S = 2.0  # how often each port-forward is checked by traffic
LEDGER_ROUND_TRIP_S = 5.0
LOGS_ENV = "HA_BENCH_K8S_LOGS_DIR"  # logs_dir when the caller passes none


class BringUpError(HarnessError):
    """The cluster did not become ready."""


def workload_ready(workload: Mapping[str, Any]) -> bool:
    """A Deployment/StatefulSet has observed its spec and all its replicas are updated and ready."""
    meta, spec, status = (workload.get(k) or {} for k in ("metadata", "spec", "status"))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return False
    want = int(spec.get("replicas", 1))
    if want == 0:
        return int(status.get("replicas", 0)) == 0
    ready, updated = int(status.get("readyReplicas", 0)), int(status.get("updatedReplicas", 0))
    return ready >= want and updated >= want


def _template_component(workload: Mapping[str, Any]) -> str | None:
    template = (workload.get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL)


class KubernetesCluster(StartStopContext):
    """A cluster under test on Kubernetes; ``with KubernetesCluster(topology, ...) as c:``."""

    platform = "kubernetes"

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        context: str | None = None,
        namespace: str = NAMESPACE,
        mode: str = "owned",
        release: str = RELEASE,
        selector: str | None = None,
        allowed_contexts: Sequence[str] = (),
        kubeconfig: str | None = None,
        overlay: Path = DEFAULT_OVERLAY,
        manifests: list[dict[str, Any]] | None = None,
        lb: str = "auto",
        lb_url: str | None = None,
        api_service: str | None = None,
        api_port: int = API_PORT,
        ledger_dir: Path | None = None,
        ledger_path: str = LEDGER_IN_POD,
        keep_namespace: bool = False,
        logs_dir: Path | None = None,
        forward_api_servers: bool = True,
        ready_timeout_s: float | None = None,
        bus: EventBus | None = None,
        log: Callable[[str], None] | None = None,
        api: safety.ApiAdapter | None = None,
        kill_via: str = "auto",
        runtime: Any = None,
        image_check: Callable[[list[str]], tuple[list[str], list[str]]] | None = None,
        unschedulable_s: float = UNSCHEDULABLE_S,
    ) -> None:
        """Check the context against the allow-list (kind-*, $HA_BENCH_ALLOWED_CONTEXTS,
        ``allowed_contexts``); nothing talks to the cluster before :meth:`start`.

        ``context``: kube context (default: the kubeconfig's current one). ``mode``:
        ``owned`` (apply ``overlay``, or the given rendered ``manifests``, into
        ``namespace``) or ``existing`` (pods of ``namespace`` matching ``selector``,
        default ``release=<release>``). ``lb``: ``auto`` (kind + owned: the NodePort
        127.0.0.1:30080, else a port-forward to ``api_service``), ``nodeport``,
        ``port-forward``; ``lb_url`` overrides it (loopback only). ``ledger_dir``: the host
        directory kind maps to the node's /var/lib/ha-bench (else the ledger is read by
        exec in worker pods). ``keep_namespace``: owned, leave it in :meth:`stop`
        (else ``$HA_BENCH_KEEP_NAMESPACE``: ``1``/``on-failure`` keeps it after a failed
        start or a stop during an exception, ``always``, ``0`` never; it is annotated
        ``ha-bench/kept`` and the next run removes it). ``logs_dir``: where :meth:`stop`
        keeps every pod's object, description, events and logs (current and previous)
        before the namespace goes (``<logs_dir>/kubernetes/<namespace>/``; default
        ``$HA_BENCH_K8S_LOGS_DIR``).
        ``forward_api_servers``: a port-forward per api-server replica. ``api``: an
        adapter to use instead of :class:`KubeApi` (tests). ``kill_via``: how ``kill``
        SIGKILLs (``auto``: the node's runtime on kind, else exec; see the nemesis);
        ``runtime``: a node runtime to use instead of kind's (tests). ``image_check``:
        ``images -> (problems, notes)`` instead of the nodes-then-registry pre-flight
        (:mod:`.images`; with an injected ``api`` there is none unless given).
        ``unschedulable_s``: how long a pod may stay unschedulable before the bring-up
        stops with the scheduler's message.
        """
        if mode not in MODES:
            raise HarnessError(f"unknown mode {mode!r}", fix="use owned or existing")
        if lb not in LB_MODES:
            raise HarnessError(f"unknown lb {lb!r}", fix=f"use one of: {', '.join(LB_MODES)}")
        self.allowed = safety.allowed_contexts(allowed_contexts)
        # the allow-list, before anything can talk to the cluster
        self.context = safety.require_allowed_context(
            context or safety.current_context(kubeconfig), self.allowed
        )
        self.topology = topology or Topology()
        self.bus = bus or EventBus()
        self._say = log or (lambda msg: None)
        self.mode = mode
        self.owned = mode == "owned"
        self.namespace = namespace
        self.release = release
        if self.owned:
            self.scope = Scope(namespace, dict(PART_OF))
        else:
            labels = safety.parse_selector(selector) if selector else {"release": release}
            self.scope = Scope(namespace, labels)
        self.kubeconfig = kubeconfig
        self.overlay = Path(overlay)
        self._manifests = manifests
        self._lb_mode = lb
        if lb == "auto":
            use_nodeport = self.owned and self.context.startswith("kind-")
            self._lb_mode = "nodeport" if use_nodeport else "port-forward"
        self._lb_url = require_loopback(lb_url) if lb_url else None
        self.api_service = api_service or (
            "airflow-api-server" if self.owned else f"{release}-api-server"
        )
        self.api_port = api_port
        self.ledger_dir = Path(ledger_dir) if ledger_dir else None
        self.ledger_path = ledger_path
        self.keep_namespace = keep_namespace
        logs_dir = logs_dir or os.environ.get(LOGS_ENV) or None
        self.logs_dir = Path(logs_dir) if logs_dir else None
        self._start_error: BaseException | None = None
        self._namespace_obj: dict[str, Any] | None = None
        self.forward_api_servers = forward_api_servers
        self.ready_timeout_s = ready_timeout_s or (
            max(self.topology.startup_timeout_s, 600.0)
            if self.owned
            else self.topology.startup_timeout_s
        )
        self._api_arg = api
        self.kill_via = kill_via
        self._runtime = runtime
        self._image_check = image_check
        self.unschedulable_s = unschedulable_s
        self.api: GuardedApi | None = None
        self.state = WatchedState(LifecycleTracker(), emit=self._emit_lifecycle)
        self.workloads: dict[str, tuple[str, str]] = {}
        self.prepared: Prepared | None = None
        self.server_version: str | None = None
        self.timings: dict[str, float] = {}
        self._observed: dict[str, int] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._forwards: dict[str, PortForward] = {}
        self._lb_forward: PortForward | None = None
        self._ledger_marks: list[tuple[float, dict[str, int]]] = []  # (wall time, node sizes)
        self.ledger_via: str | None = None  # "host" | "exec" once the round trip told
        # every raw watch event and LIST as received: (stream, type, object or items, rv)
        self.stream_taps: list[Callable[[str, str, Any, str | None], None]] = []
        self.forward_restarts: dict[str, int] = {}
        self._nemesis: KubernetesNemesis | None = None
        self._applied = False
        self._started = False
        self._stopped = False

    def _emit_lifecycle(self, event: dict[str, Any]) -> None:
        self.bus.emit("lifecycle", **event)

    # -- the Cluster protocol ------------------------------------------------------------
    @property
    def lb_url(self) -> str:
        if self._lb_url:
            return self._lb_url
        if self._lb_mode == "nodeport":
            return f"http://127.0.0.1:{KIND_NODEPORT}"
        if self._lb_forward is None:
            raise RuntimeError("cluster not started")
        return self._lb_forward.url

    @property
    def api_server_urls(self) -> dict[str, str]:
        """Each api-server replica via its own port-forward (re-pointed when it is replaced)."""
        return {name: fw.url for name, fw in self._forwards.items()}

    def replica_names(self, component: str | None = None) -> list[str]:
        return self.state.read(lambda t: t.replica_names(component))

    def is_ready(self, replica: str) -> bool:
        """Is the replica (or the live pod of that name) ready now?"""
        return self.state.read(lambda t: t.is_ready(t.resolve(replica) or replica))

    @property
    def nemesis(self) -> KubernetesNemesis:
        if self.api is None:
            raise RuntimeError("cluster not started")
        if self._nemesis is None:
            self._nemesis = KubernetesNemesis(
                self.api, self.state, self.bus, workloads=self.workloads,
                kill_via=self.kill_via, runtime=self._node_runtime(),
            )  # fmt: skip
        return self._nemesis

    def _node_runtime(self) -> Any:
        """kind's node runtime for ``kill`` (a real SIGKILL of PID 1 too), unless exec only
        or not kind; an injected ``runtime`` (tests) wins."""
        if self._runtime is not None or self.kill_via == "exec":
            return self._runtime
        name = kind_name_of(self.context)
        if name is None or self._api_arg is not None:  # not kind, or a fake adapter
            return None
        return KindNodeRuntime(name)

    def prepare_repetition(self) -> dict[str, int]:
        """Each replica's container restarts so far: the sum of ``restartCount`` over the
        ``containerStatuses`` of the pod holding it now, from the pod watch (0 without a
        pod). A replaced pod (a delete, a kill) starts again at 0; replacements show as
        incarnations in the lifecycle events.

        There is no back-off state to clear: CrashLoopBackOff is the kubelet's, kept per
        container, and cannot be reset through the API (the kubelet itself resets it once
        a container has run for 10 minutes); this only reports."""

        def restarts(tracker: LifecycleTracker) -> dict[str, int]:
            counts = {}
            for name in tracker.replica_names():
                pod = tracker.pod_for(name) or {}
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                counts[name] = sum(int(cs.get("restartCount") or 0) for cs in statuses)
            return counts

        return self.state.read(restarts)

    def metadata(self) -> dict[str, Any]:
        names = self.replica_names()
        components = {n: (self.state.read(lambda t, n=n: t.slot_of(n)) or ("?",))[0] for n in names}
        return {
            "platform": self.platform,
            "mode": self.mode,
            "context": self.context,
            "namespace": self.namespace,
            "selector": self.scope.selector,
            "server_version": self.server_version,
            "airflow_version": self.topology.airflow_version,
            "topology": self.topology.model_dump(),
            "topology_applied": self.owned,
            "observed_replicas": dict(self._observed),
            "airflow_config_overrides": dict(self.topology.airflow_config),
            "harness_version": __version__,
            "replicas": components,
            "workloads": {c: f"{k}/{n}" for c, (k, n) in self.workloads.items()},
            "images": dict(self.prepared.images) if self.prepared else {},
            "lb": {"url": self._lb_url_or_none(), "via": self._lb_via()},
            "api_server_urls": self.api_server_urls,
            "ledger": (
                f"host file {self.ledger_file}"
                if self.ledger_file
                else f"exec in worker pods: {self.ledger_path}"
            ),
            "ledger_round_trip": self.ledger_via,
            "port_forward_restarts": dict(self.forward_restarts),
            "timings": dict(self.timings),
            # the image's packages cannot be listed without pulling and running it
            "airflow_env": {
                "image": self._airflow_image(),
                "packages": None,
                "packages_sha256": None,
            },
        }

    def _airflow_image(self) -> str | None:
        """The Airflow image the api-servers run: from the applied manifests (owned), else
        from the live pod's spec (existing); None if neither is known."""
        workload = self.workloads.get("api-server")
        if self.prepared is not None and workload is not None:
            prefix = f"{workload[0]}/{workload[1]}/"
            for key, image in sorted(self.prepared.images.items()):
                if key.startswith(prefix):
                    return image
        pods = self.state.read(lambda t: t.live_pods("api-server"))
        for pod in pods:
            for container in (pod.get("spec") or {}).get("containers") or []:
                image = container.get("image") or ""
                if "airflow" in image.split("@", 1)[0].rsplit("/", 1)[-1]:
                    return image
        return None

    def _lb_url_or_none(self) -> str | None:
        try:
            return self.lb_url
        except RuntimeError:
            return None

    def _lb_via(self) -> str:
        if self._lb_url:
            return "given URL"
        if self._lb_mode == "nodeport":
            return f"kind NodePort {KIND_NODEPORT} (kube-proxy: the Service's load balancing)"
        return f"kubectl port-forward svc/{self.api_service} (pins one pod: not load-balanced)"

    # -- the ledger ----------------------------------------------------------------------
    @property
    def ledger_file(self) -> Path | None:
        """The node's ledger as a host file (kind extraMounts), if there is one and the
        round trip at start did not find it unreachable."""
        if self.ledger_dir is None or self.ledger_via == "exec":
            return None
        return self.ledger_dir / "ledger.jsonl"

    def check_ledger(self) -> str:
        """The ledger round trip: a token written from a worker pod must appear in the
        host directory (``host``); else the ledger is read by exec in the worker pods
        (``exec``, once a token written there reads back); else a HarnessError."""
        import secrets

        pods = self._ledger_pods()
        if not pods:
            self._say("no running worker pod: the ledger round trip is skipped")
            return self.ledger_via or ("host" if self.ledger_dir else "exec")
        pod = pods[sorted(pods)[0]]
        token = f".ha-bench-roundtrip-{secrets.token_hex(6)}"
        in_pod = shlex.quote(f"{Path(self.ledger_path).parent}/{token}")
        where = f"{pod['metadata']['name']}:{Path(self.ledger_path).parent}"
        try:
            out = self._exec_sh(pod, f"echo {token} > {in_pod} && cat {in_pod}")
        except (HarnessError, KubeApiError) as exc:
            raise HarnessError(
                f"the ledger cannot be written in {where}: {exc}",
                fix="the worker pods need the ledger volume (manifests/base/worker.yaml) "
                "and the context RBAC pods/exec",
            ) from None
        if out.strip() != token:
            raise HarnessError(
                f"the ledger round trip in {where} read back {out.strip()[:80]!r}",
                fix="check the ledger volume of the worker pods",
            )
        via = "exec"
        if self.ledger_dir is not None:
            host = self.ledger_dir / token
            if poll(host.exists, timeout_s=LEDGER_ROUND_TRIP_S, interval_s=0.1):
                via = "host"
                host.unlink(missing_ok=True)
            else:
                self._say(
                    f"the ledger's host directory {self.ledger_dir} does not see the node's "
                    f"{Path(self.ledger_path).parent} (a kind cluster not made by `ha-bench kind "
                    "up`, or another HOME/HA_BENCH_CACHE): reading the ledger by exec instead"
                )
        with contextlib.suppress(HarnessError, KubeApiError):
            self._exec_sh(pod, f"rm -f {in_pod}")
        self.ledger_via = via
        return via

    def _ledger_pods(self) -> dict[str, dict[str, Any]]:
        """One running worker pod per node (the ledger is a hostPath file per node)."""
        pods: dict[str, dict[str, Any]] = {}
        for pod in self.state.read(lambda t: t.live_pods("worker")):
            node = (pod.get("spec") or {}).get("nodeName")
            alive = not pod["metadata"].get("deletionTimestamp") and running_containers(pod)
            if node and alive and node not in pods:
                pods[node] = pod
        return pods

    def _exec_sh(self, pod: dict[str, Any], script: str) -> str:
        assert self.api is not None
        containers = running_containers(pod)
        container = "worker" if "worker" in containers else containers[0]
        code, stdout, stderr = self.api.exec_in_pod(
            pod, container, ["sh", "-c", script], timeout_s=60
        )
        if code != 0:
            raise HarnessError(
                f"reading the ledger in {pod['metadata']['name']} failed (exit {code}): "
                f"{stderr.strip()[-200:]}",
                fix="the worker image needs /bin/sh, wc and tail; the context RBAC pods/exec",
            )
        return stdout

    def ledger_mark(self) -> int:
        if self.ledger_file is not None:
            return self.ledger_file.stat().st_size if self.ledger_file.exists() else 0
        path = shlex.quote(self.ledger_path)
        sizes = {}
        for node, pod in self._ledger_pods().items():
            out = self._exec_sh(pod, f"if [ -f {path} ]; then wc -c < {path}; else echo 0; fi")
            sizes[node] = int(out.strip() or 0)
        self._ledger_marks.append((time.time(), sizes))
        return len(self._ledger_marks) - 1

    def ledger_since(self, mark: int) -> list[dict[str, Any]]:
        from harness.core.ledger import parse_ledger

        if self.ledger_file is not None:
            if not self.ledger_file.exists():
                return []
            with open(self.ledger_file, "rb") as f:
                f.seek(mark)
                return parse_ledger(f.read(), source=str(self.ledger_file))
        marked_at, base = self._ledger_marks[mark]
        path = shlex.quote(self.ledger_path)
        rows: list[dict[str, Any]] = []
        for node, pod in sorted(self._ledger_pods().items()):
            start = base.get(node, 0) + 1
            out = self._exec_sh(pod, f"if [ -f {path} ]; then tail -c +{start} {path}; fi")
            new = parse_ledger(out.encode(), source=f"{node}:{self.ledger_path}")
            if node not in base:  # no worker there at the mark: keep only later rows
                new = [r for r in new if float(r.get("t_wall") or 0.0) >= marked_at]
            rows += new
        return sorted(rows, key=lambda r: float(r.get("t_wall") or 0.0))

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, progress: Callable[[dict[str, bool]], None] | None = None) -> None:
        """Apply (owned) or adopt (existing), watch, wait until ready, open the URLs."""
        if self._started:
            raise RuntimeError("cluster already started")
        self._started = True
        try:
            self._start(progress)
        except BaseException as exc:
            self._start_error = exc
            raise

    def _start(self, progress: Callable[[dict[str, bool]], None] | None) -> None:
        t0 = time.monotonic()
        raw = self._api_arg or KubeApi(
            self.context, kubeconfig=self.kubeconfig, allowed=self.allowed
        )
        self.api = GuardedApi(raw, self.scope, owned=self.owned)
        self.server_version = self.api.server_version()
        self._say(
            f"kube context {self.context} ({self.server_version}), namespace {self.namespace}"
        )
        if self.owned:
            self._apply()
        else:
            self._adopt()
        self.timings["applied_s"] = time.monotonic() - t0
        self._background(
            "watch-Pod", self._watch_loop, "Pod", None, True,
            self.state.pod_event, self.state.resync_pods,
        )  # fmt: skip
        self._background(
            "watch-EndpointSlice", self._watch_loop, "EndpointSlice",
            {"kubernetes.io/service-name": self.api_service}, False,
            self.state.slice_event, self.state.resync_slices,
        )  # fmt: skip
        if self._namespace_obj is not None:
            self._background("namespace-lease", self._renew_lease)
        self._wait_ready(progress)
        self.timings["ready_s"] = time.monotonic() - t0
        if self.owned:  # existing mode writes nothing into the release's pods
            self.check_ledger()
            self.timings["ledger_checked_s"] = time.monotonic() - t0
        self._open_urls()
        self.timings["urls_s"] = time.monotonic() - t0
        self.bus.emit("marker", name="cluster_ready", detail=dict(self.timings))

    def _apply(self) -> None:
        assert self.api is not None
        now = dt.datetime.now(dt.UTC)
        try:  # namespaces a killed harness left behind
            namespaces.gc(self.api, now, skip=(self.namespace,), say=self._say)
        except (KubeApiError, HarnessError) as exc:
            self._say(f"could not look for stale namespaces: {exc}")
        existing = self.api.get("Namespace")
        if existing is not None:
            if not self.scope.matches(existing):
                raise HarnessError(
                    f"namespace {self.namespace!r} exists and is not labelled as owned by "
                    f"ha-bench ({self.scope.selector})",
                    fix="pass another namespace for owned mode, or use mode 'existing' to "
                    "test what runs there without changing it",
                )
            self._take_over(existing, now)
            existing = self.api.get("Namespace")
            if existing is not None and existing["metadata"].get("deletionTimestamp"):
                self._say(f"waiting for namespace {self.namespace} to finish terminating")
                if not self._wait_namespace_gone(180.0):
                    raise HarnessError(
                        f"namespace {self.namespace!r} is still terminating after 180 s",
                        fix=f"wait, or see `kubectl --context {self.context} get namespace "
                        f"{self.namespace} -o yaml` (finalizers)",
                    )
        docs = self._manifests if self._manifests is not None else render(self.overlay)
        self.prepared = prepare_manifests(docs, self.topology, namespace=self.namespace)
        self._preflight(self.prepared.objects)
        self.workloads = dict(self.prepared.workloads)
        expected = {c: self.topology.replicas(c) for c in COMPONENTS}
        expected.update({s: 1 for s in SERVICES if s in self.workloads})
        self.state.read(lambda t: t.expected.update(expected))
        objects = self.prepared.objects
        for obj in objects:
            if obj["kind"] == "Namespace":
                meta = obj["metadata"]
                meta["annotations"] = {**(meta.get("annotations") or {}), **namespaces.lease(now)}
                self._namespace_obj = obj
                self._apply_one(obj)
        self._applied = True  # from here on, stop() removes what was made
        if self.api.get("Secret", SECRET) is None:
            self._apply_one(new_secret(self.namespace), create=True)
        for obj in objects:
            if obj["kind"] != "Namespace":
                self._apply_one(obj)
        self._say(f"applied {len(objects)} objects to namespace {self.namespace}")

    def _take_over(self, existing: dict[str, Any], now: dt.datetime) -> None:
        """Our namespace exists: ours already (this process), stale (delete it first), or
        in use by another harness (refuse)."""
        assert self.api is not None
        notes = existing["metadata"].get("annotations") or {}
        if existing["metadata"].get("deletionTimestamp"):
            return
        if notes.get(namespaces.OWNER) == namespaces.owner_id() and not notes.get(namespaces.KEPT):
            return
        why = namespaces.staleness(existing, now)
        if why is None:
            raise HarnessError(
                f"namespace {self.namespace!r} is in use by {namespaces.in_use_by(existing)}",
                fix="wait for that run to end, pass another namespace, or `ha-bench kind gc` "
                "once it is gone",
            )
        self._say(f"deleting stale namespace {self.namespace} first: {why}")
        self.api.delete_namespace()

    def _renew_lease(self) -> None:
        """Push the namespace's expiry forward while this harness runs."""
        assert self.api is not None and self._namespace_obj is not None
        while not self._stopping.wait(namespaces.RENEW_S):
            obj = self._namespace_obj
            obj["metadata"]["annotations"].update(namespaces.lease(dt.datetime.now(dt.UTC)))
            try:
                self.api.apply(obj)
            except (KubeApiError, HarnessError) as exc:
                log.warning("renewing the lease of namespace %s failed: %s", self.namespace, exc)

    def _preflight(self, objects: list[dict[str, Any]]) -> None:
        """Before anything is applied: every image exists where the nodes pull it from,
        and the manifests do not request more than the nodes can allocate."""
        assert self.api is not None
        images = sorted(
            {
                c["image"]
                for obj in objects
                for template in [((obj.get("spec") or {}).get("template") or {})]
                for key in ("initContainers", "containers")
                for c in (template.get("spec") or {}).get(key) or []
                if c.get("image")
            }
        )
        check = self._image_check
        if check is None and self._api_arg is None:
            check = self._check_images_on_nodes_then_registry
        if check is not None:
            t0 = time.monotonic()
            problems, notes = check(images)
            self.timings["image_check_s"] = round(time.monotonic() - t0, 3)
            for note in notes:
                self._say(f"{note}; a pull failure would show within seconds")
            if problems:
                raise BringUpError(
                    "; ".join(problems),
                    fix="use an Airflow version that has an image (--airflow-version), fix the "
                    "tag in the manifests, or `kind load docker-image IMAGE --name "
                    f"{kind_name_of(self.context) or '<cluster>'}` for a local image",
                )
        try:
            nodes = self.api.nodes()
        except (KubeApiError, HarnessError) as exc:  # no RBAC to list nodes: skip the check
            self._say(f"could not list nodes to check the requests: {exc}")
            return
        problem = requests_problem(objects, nodes)
        if problem:
            raise BringUpError(
                problem,
                fix="a bigger node, or fewer replicas / smaller requests (see "
                "tests/platform/kubernetes/test_manifests.py for the sizing)",
            )

    def _check_images_on_nodes_then_registry(
        self, images: list[str]
    ) -> tuple[list[str], list[str]]:
        from harness.platform.kubernetes.images import missing_images

        runtime = self._node_runtime()
        on_nodes = None
        if runtime is not None:
            nodes = kind_nodes_of(self.context)

            def on_nodes(image: str) -> bool | None:
                found = [runtime.has_image(n, image) for n in nodes]
                return bool(found) and all(found)

        return missing_images(images, on_nodes=on_nodes)

    def _apply_one(self, obj: dict[str, Any], *, create: bool = False) -> None:
        assert self.api is not None
        where = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            if create:
                self.api.create(obj)
            else:
                self.api.apply(obj)
        except KubeApiError as exc:
            kubectl = f"kubectl --context {self.context} -n {self.namespace}"
            if obj["kind"] == "Job" and exc.status == 422:
                raise HarnessError(
                    f"{where} exists with another pod template (immutable): {exc.message}",
                    fix=f"`{kubectl} delete job {obj['metadata']['name']}`, then retry",
                ) from None
            raise HarnessError(
                f"applying {where} failed: {exc}",
                fix="check the manifests and the context's permissions in namespace "
                f"{self.namespace}",
            ) from None

    def _adopt(self) -> None:
        assert self.api is not None
        if self.api.get("Namespace") is None:
            raise HarnessError(
                f"namespace {self.namespace!r} not found in context {self.context}",
                fix="pass the namespace of the Helm release",
            )
        workloads = [w for kind in WORKLOAD_KINDS for w in self.api.list(kind)[0]]
        workloads = [w for w in workloads if _template_component(w) in KNOWN_COMPONENTS]
        if not workloads:
            raise HarnessError(
                f"no Airflow workloads with {self.scope.selector} in namespace {self.namespace}",
                fix="pass the Helm release name (release=<name>) or a --selector that matches",
            )
        for w in workloads:
            component = _template_component(w)
            assert component is not None
            self.workloads.setdefault(component, (w["kind"], w["metadata"]["name"]))
        self._observed = expected_replicas(workloads)
        self.state.read(lambda t: t.expected.update(self._observed))
        wanted = {c: self.topology.replicas(c) for c in COMPONENTS}
        differs = {c: n for c, n in self._observed.items() if c in wanted and wanted[c] != n}
        if differs:
            self._say(f"existing release differs from the topology: {differs} (recorded as is)")

    def _background(self, name: str, target: Callable[..., None], *args: Any) -> None:
        """Run ``target(*args)`` in a daemon thread that :meth:`stop` joins."""
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _watch_loop(
        self,
        kind: str,
        labels: dict[str, str] | None,
        scoped: bool,
        on_event: Callable[[str, dict[str, Any]], Any],
        on_list: Callable[[list[dict[str, Any]]], Any],
    ) -> None:
        """LIST, then WATCH from its resourceVersion; on expiry (an ERROR event, or HTTP
        410 Gone) or an error, LIST again (see :func:`watch_action`). Every event and list
        also goes to :attr:`stream_taps` as received (the recorder's view)."""
        assert self.api is not None
        version: str | None = None
        failures = 0
        stream_name = {"Pod": "pods", "EndpointSlice": "endpointslices"}.get(kind, kind)

        def tap(event_type: str, obj: Any, rv: str | None = None) -> None:
            for sink in list(self.stream_taps):
                try:
                    sink(stream_name, event_type, obj, rv)
                except Exception:  # a recorder must not break the watch
                    log.exception("a stream tap failed")

        while not self._stopping.is_set():
            try:
                if version is None:
                    items, version = self.api.list(kind, labels, scoped=scoped)
                    tap("LIST", items, version)
                    on_list(items)
                stream = self.api.watch(
                    kind, version, timeout_s=WATCH_TIMEOUT_S, labels=labels, scoped=scoped
                )
                for event_type, obj in stream:
                    if self._stopping.is_set():
                        return
                    tap(event_type, obj)
                    action, rv = watch_action(event_type, obj)
                    if action == "relist":
                        version = None  # 410 Expired/Gone or worse: list again
                        break
                    version = rv or version
                    if action == "event":
                        on_event(event_type, obj)
                failures = 0
            except KubeApiError as exc:
                version = None
                if exc.status == 410:  # the version expired before the watch began
                    continue
                failures += 1
                if failures in (1, 10, 100):
                    log.warning("watch of %s failed (%d times): %s", kind, failures, exc)
                self._stopping.wait(min(5.0, 0.5 * failures))
            except (OSError, ValueError) as exc:
                failures += 1
                version = None
                if failures in (1, 10, 100):
                    log.warning("watch of %s failed (%d times): %s", kind, failures, exc)
                self._stopping.wait(min(5.0, 0.5 * failures))

    def _wait_ready(self, progress: Callable[[dict[str, bool]], None] | None) -> None:
        api = self.api
        assert api is not None
        hint = f"kubectl --context {self.context} -n {self.namespace} describe pods"
        pending: list[str] = []
        replicas: dict[str, bool] = {}
        watch = BringUpWatch(unschedulable_s=self.unschedulable_s)

        def all_ready() -> bool:
            nonlocal pending, replicas
            jobs: list[dict[str, Any]] = []
            try:
                workloads = [w for kind in WORKLOAD_KINDS for w in api.list(kind)[0]]
                if self.owned:
                    jobs = api.list("Job")[0]
            except KubeApiError as exc:  # a hiccup of the API server: ask again
                log.warning("listing workloads failed: %s", exc)
                workloads = []
            workloads = [w for w in workloads if _template_component(w) in KNOWN_COMPONENTS]
            pending = [w["metadata"]["name"] for w in workloads if not workload_ready(w)]
            replicas = self.state.read(lambda t: {n: t.is_ready(n) for n in t.replica_names()})
            if progress:
                progress(replicas)
            if workloads and not pending and all(replicas.values()):
                return True
            # every pod of the watch, the migration Job's too; init containers first
            problem = watch.problem(self.state.read(lambda t: t.all_pods()), jobs, workloads)
            if problem:
                raise BringUpError(problem, fix=f"see `{hint}` and the pod logs")
            return False

        if not poll(all_ready, timeout_s=self.ready_timeout_s, interval_s=1.0):
            slow = pending or [n for n, ok in replicas.items() if not ok] or ["(none found)"]
            raise BringUpError(
                f"not ready after {self.ready_timeout_s:.0f}s: {', '.join(slow)}",
                fix=f"see `{hint}`",
            )

    def _open_urls(self) -> None:
        if self._lb_url is None and self._lb_mode == "nodeport":
            if not poll(lambda: port_open(KIND_NODEPORT), timeout_s=30, interval_s=0.5):
                raise HarnessError(
                    f"the api-server Service is not reachable on 127.0.0.1:{KIND_NODEPORT}",
                    fix="create the kind cluster from manifests/kind/cluster.yaml "
                    "(extraPortMappings) or use lb='port-forward'",
                )
        elif self._lb_url is None:
            base = kubectl_base(self.context, self.namespace, self.kubeconfig)
            self._lb_forward = PortForward(base, self.api_port)
            if not self._lb_forward.start(f"svc/{self.api_service}"):
                raise HarnessError(
                    f"kubectl port-forward svc/{self.api_service} failed: "
                    f"{self._lb_forward.output_tail()}",
                    fix="check the Service name (api_service) and the context",
                )
        if not self.forward_api_servers:
            return
        base = kubectl_base(self.context, self.namespace, self.kubeconfig)
        for name in self.replica_names("api-server"):
            forward = PortForward(base, self.api_port)
            self._forwards[name] = forward
            pod = self.state.read(lambda t, name=name: t.pod_for(name))
            if pod is not None:
                forward.start(f"pod/{pod['metadata']['name']}")
        self._background("port-forwards", self._forward_loop)

    def _forward_loop(self) -> None:
        """Keep every forward pointed at the live pod of its replica, and forwarding: a
        kubectl that runs but passes no traffic (checked every FORWARD_CHECK_S while its
        pod is ready) is restarted (best effort)."""
        liveness = Liveness()
        next_check = time.monotonic() + FORWARD_CHECK_S
        while not self._stopping.wait(0.5):
            check = time.monotonic() >= next_check
            if check:
                next_check = time.monotonic() + FORWARD_CHECK_S
            for name, forward in self._forwards.items():
                pod = self.state.read(lambda t, name=name: t.pod_for(name))
                want = None
                if pod is not None and running_containers(pod):
                    want = f"pod/{pod['metadata']['name']}"
                if want is None and forward.target is not None:
                    forward.stop()
                elif want is not None and (want != forward.target or not forward.alive()):
                    forward.start(want, wait_s=0)
                elif (
                    want is not None
                    and check
                    and self.is_ready(name)
                    and liveness.check(name, forward.responds())
                ):
                    self._restart_forward(name, forward, want)
                if self._stopping.is_set():
                    return
            lb = self._lb_forward
            if lb is None or self._stopping.is_set():
                continue
            target = f"svc/{self.api_service}"
            if not lb.alive():
                lb.start(target, wait_s=0)
            elif (
                check
                and any(self.is_ready(n) for n in self.replica_names("api-server"))
                and liveness.check("lb", lb.responds())
            ):
                self._restart_forward("lb", lb, target)

    def _restart_forward(self, name: str, forward: PortForward, target: str) -> None:
        self.forward_restarts[name] = self.forward_restarts.get(name, 0) + 1
        log.warning("port-forward %s to %s passes no traffic: restarted", name, target)
        forward.start(target, wait_s=0)

    def _wait_namespace_gone(self, timeout_s: float) -> bool:
        api = self.api
        assert api is not None
        return bool(poll(lambda: api.get("Namespace") is None, timeout_s=timeout_s, interval_s=2.0))

    def _keep_evidence(self) -> None:
        """Every pod's object, description, events and logs into ``logs_dir`` (the
        watch's pods, Job pods included, and any a fresh list adds)."""
        assert self.api is not None
        if self.logs_dir is None:
            self._say("no logs_dir: the pods' logs are not kept")
            return
        pods = {p["metadata"]["uid"]: p for p in self.state.read(lambda t: t.all_pods())}
        try:
            pods.update({p["metadata"]["uid"]: p for p in self.api.list("Pod")[0]})
        except KubeApiError as exc:
            self._say(f"could not list the pods: {exc}")
        into = self.logs_dir / "kubernetes" / self.namespace
        if into.exists():  # another cluster of this run kept its evidence there
            into = into.with_name(f"{self.namespace}-{time.strftime('%Y%m%dT%H%M%S')}")
        kept = collect(self.api, sorted(pods.values(), key=lambda p: p["metadata"]["name"]), into)
        self._say(f"kept {kept['pods']} pods' logs, descriptions and events in {into}")

    def _keep_reason(self, failure: BaseException | None) -> str | None:
        if self.keep_namespace:
            return "keep_namespace"
        policy = namespaces.keep_policy()
        if policy == "always":
            return f"{namespaces.KEEP_ENV}=always"
        if policy == "on-failure" and failure is not None:
            return f"{type(failure).__name__}: {str(failure)[:200]}"
        return None

    def stop(self) -> None:
        """Keep the evidence (``logs_dir``), stop watches and port-forwards; owned: delete
        the namespace, unless it is kept (then annotated ``ha-bench/kept``)."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        failure = sys.exc_info()[1] or self._start_error
        if self.api is not None and (self._applied or not self.owned):
            try:
                self._keep_evidence()
            except (OSError, HarnessError) as exc:
                self._say(f"could not keep the pods' logs: {exc}")
        self._stopping.set()
        for thread in self._threads:
            if thread.name == "port-forwards":
                thread.join(timeout=15)
        for forward in [*self._forwards.values(), self._lb_forward]:
            if forward is not None:
                forward.close()
        keep = self._keep_reason(failure) if self.owned and self._applied else None
        if keep is not None and self.api is not None and self._namespace_obj is not None:
            obj = self._namespace_obj
            obj["metadata"]["annotations"].update(
                namespaces.lease(dt.datetime.now(dt.UTC), kept=keep)
            )
            try:
                self.api.apply(obj)
            except (KubeApiError, HarnessError) as exc:
                self._say(f"could not mark namespace {self.namespace} as kept: {exc}")
            self._say(
                f"kept namespace {self.namespace} ({keep}): `kubectl --context {self.context} "
                f"-n {self.namespace} get pods`; the next run or `ha-bench kind gc` removes it"
            )
        elif self.owned and self._applied and self.api is not None:
            try:
                self.api.delete_namespace()
                if not self._wait_namespace_gone(180.0):
                    self._say(f"namespace {self.namespace} still terminating after 180 s")
            except (KubeApiError, HarnessError) as exc:
                self._say(f"could not delete namespace {self.namespace}: {exc}")
        for thread in self._threads:
            thread.join(timeout=WATCH_TIMEOUT_S + 20)
        self.bus.emit("marker", name="cluster_stopped")
