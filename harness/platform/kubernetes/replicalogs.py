"""The replicas' logs of a :class:`~.cluster.KubernetesCluster` during a repetition.

The kubelet keeps each container's log with a timestamp per line (``timestamps=true``);
there is no byte offset to resume from, so the mark is the wall time and the readers
(:mod:`harness.observe.replica_logs`) keep the lines stamped after it. A replica killed
during the repetition has its previous container's log read too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.events import WatchedState
from harness.platform.kubernetes.safety import GuardedApi

LOG_BYTES = 8 * 1024 * 1024  # per container: the tail a repetition can have written


class ReplicaLogAccess:
    """The replica-log methods of :class:`~.cluster.KubernetesCluster` (a mixin)."""

    api: GuardedApi | None
    state: WatchedState

    def replica_log_mark(self) -> float:
        return time.time()

    def replica_log_lines(self, mark: float) -> Iterator[tuple[str, list[str]]]:
        """Every live pod's log lines (its current and previous container), by replica name
        (the pod's name for a pod that holds none); lines older than ``mark`` included."""
        if self.api is None:
            return
        for pod in self.state.read(lambda t: t.live_pods()):
            uid = pod["metadata"]["uid"]
            name = self.state.read(lambda t, u=uid: t.replica_of(u)) or pod["metadata"]["name"]
            container = pod["spec"]["containers"][0]["name"]
            lines: list[str] = []
            for previous in (True, False):
                try:
                    text = self.api.pod_log(pod, container, previous=previous,
                                            limit_bytes=LOG_BYTES)  # fmt: skip
                except KubeApiError:
                    continue
                lines += (text or "").splitlines()
            yield name, lines
