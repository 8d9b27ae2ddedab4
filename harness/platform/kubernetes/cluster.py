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

The steps live in mixins of their own modules, sharing the attributes the constructor
sets: :mod:`.bringup` (apply or adopt, pre-flight, wait until ready), :mod:`.ledger`
(the ledger round trip and reads), :mod:`.access` (the load balancer URL and the
port-forwards' upkeep), :mod:`.teardown` (the evidence, then the namespace kept or
deleted); :mod:`.watch` keeps each watch stream up.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.core.cleanup import StartStopContext
from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.core.netguard import require_loopback
from harness.core.polling import poll
from harness.core.topology import Topology
from harness.platform.kubernetes import safety
from harness.platform.kubernetes.access import API_PORT, ClusterAccess
from harness.platform.kubernetes.api import KubeApi
from harness.platform.kubernetes.bringup import BringUp, BringUpError, workload_ready
from harness.platform.kubernetes.diagnostics import UNSCHEDULABLE_S, bring_up_problem
from harness.platform.kubernetes.events import LifecycleTracker, WatchedState
from harness.platform.kubernetes.kind import KindNodeRuntime, kind_name_of
from harness.platform.kubernetes.ledger import LEDGER_IN_POD, LedgerAccess
from harness.platform.kubernetes.manifests import (
    DEFAULT_OVERLAY,
    NAMESPACE,
    PART_OF,
    RELEASE,
    Prepared,
)
from harness.platform.kubernetes.nemesis import KubernetesNemesis
from harness.platform.kubernetes.portforward import PortForward
from harness.platform.kubernetes.replicalogs import ReplicaLogAccess
from harness.platform.kubernetes.safety import GuardedApi, Scope
from harness.platform.kubernetes.teardown import Teardown
from harness.platform.kubernetes.watch import WATCH_TIMEOUT_S, Tap, watch_loop

__all__ = ["BringUpError", "KubernetesCluster", "bring_up_problem", "workload_ready"]

MODES = ("owned", "existing")
LB_MODES = ("auto", "nodeport", "port-forward")
LOGS_ENV = "HA_BENCH_K8S_LOGS_DIR"  # logs_dir when the caller passes none


class KubernetesCluster(
    BringUp, LedgerAccess, ReplicaLogAccess, ClusterAccess, Teardown, StartStopContext
):
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
        self._init_run_state()

    def _init_run_state(self) -> None:
        """What :meth:`start` and :meth:`stop` fill in and read: empty until then."""
        self._start_error: BaseException | None = None
        self._namespace_obj: dict[str, Any] | None = None
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
        self.stream_taps: list[Tap] = []
        self.forward_restarts: dict[str, int] = {}
        self._nemesis: KubernetesNemesis | None = None
        self._applied = False
        self._started = False
        self._stopped = False

    def _emit_lifecycle(self, event: dict[str, Any]) -> None:
        self.bus.emit("lifecycle", **event)

    # -- the Cluster protocol ------------------------------------------------------------
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
        """:func:`~.watch.watch_loop` on this cluster's API until :meth:`stop`; every event
        and list also goes to :attr:`stream_taps` as received (the recorder's view)."""
        assert self.api is not None
        watch_loop(
            self.api, kind, labels, scoped, on_event, on_list,
            stopping=self._stopping, taps=self.stream_taps,
        )  # fmt: skip

    def _wait_namespace_gone(self, timeout_s: float) -> bool:
        api = self.api
        assert api is not None
        return bool(poll(lambda: api.get("Namespace") is None, timeout_s=timeout_s, interval_s=2.0))

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
        self._close_forwards()
        self._release_namespace(failure)
        for thread in self._threads:
            thread.join(timeout=WATCH_TIMEOUT_S + 20)
        self.bus.emit("marker", name="cluster_stopped")
