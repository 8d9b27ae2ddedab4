"""The ledger of a :class:`~.cluster.KubernetesCluster`: where the workers' task rows are
read from, and the round trip that decides it.

The ledger is a hostPath file per node (``/var/lib/ha-bench/ledger.jsonl`` in the worker
pods). On kind the node's directory is a host directory too (``ledger_dir``, the
cluster's extraMounts): the ledger is read as a host file. Without one, or when the round
trip at start (owned mode) finds the host directory blind to the node's, it is read by
exec in one running worker pod per node (``wc -c`` for a mark, ``tail -c`` since it).
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.polling import poll
from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.events import WatchedState
from harness.platform.kubernetes.nemesis import running_containers
from harness.platform.kubernetes.safety import GuardedApi

LEDGER_IN_POD = "/var/lib/ha-bench/ledger.jsonl"
LEDGER_ROUND_TRIP_S = 5.0


class LedgerAccess:
    """The ledger methods of :class:`~.cluster.KubernetesCluster` (a mixin: the attributes
    below are set by its constructor)."""

    api: GuardedApi | None
    state: WatchedState
    ledger_dir: Path | None
    ledger_path: str
    ledger_via: str | None
    _ledger_marks: list[tuple[float, dict[str, int]]]
    _say: Callable[[str], None]

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
