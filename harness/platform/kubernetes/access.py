"""How a :class:`~.cluster.KubernetesCluster` is reached from the host, all on loopback.

The load balancer: a given ``lb_url``, the kind NodePort (``127.0.0.1:30080``, kube-proxy
balancing over the Service's endpoints), or a ``kubectl port-forward`` to the api-server
Service (which pins one pod). Each api-server replica also gets a port-forward of its
own, re-pointed by :meth:`ClusterAccess._forward_loop` at the live pod of its slot when
the pod is replaced, and restarted when it runs but passes no traffic.
"""

from __future__ import annotations

import logging
import threading
import time

from harness.core.errors import HarnessError
from harness.core.polling import poll
from harness.platform.kubernetes.events import WatchedState
from harness.platform.kubernetes.nemesis import running_containers
from harness.platform.kubernetes.portforward import Liveness, PortForward, kubectl_base, port_open

log = logging.getLogger(__name__)

KIND_NODEPORT = 30080
API_PORT = 8080
FORWARD_CHECK_S = 2.0  # how often each port-forward is checked by traffic


class ClusterAccess:
    """The URLs and port-forwards of :class:`~.cluster.KubernetesCluster` (a mixin: the
    attributes below are set by its constructor; ``replica_names``, ``is_ready`` and
    ``_background`` are its own)."""

    context: str
    namespace: str
    kubeconfig: str | None
    api_service: str
    api_port: int
    forward_api_servers: bool
    state: WatchedState
    forward_restarts: dict[str, int]
    _lb_url: str | None
    _lb_mode: str
    _lb_forward: PortForward | None
    _forwards: dict[str, PortForward]
    _stopping: threading.Event
    _threads: list[threading.Thread]

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

    def _close_forwards(self) -> None:
        """After ``_stopping`` is set: let the upkeep thread end, then close every forward."""
        for thread in self._threads:
            if thread.name == "port-forwards":
                thread.join(timeout=15)
        for forward in [*self._forwards.values(), self._lb_forward]:
            if forward is not None:
                forward.close()
