"""Taking a :class:`~.cluster.KubernetesCluster` down: the evidence kept, then the owned
namespace kept or deleted.

Before anything goes, every pod's object, description, events and logs (current and
previous) are kept under ``<logs_dir>/kubernetes/<namespace>/``. An owned namespace is
then deleted, unless it is kept (``keep_namespace``, or ``$HA_BENCH_KEEP_NAMESPACE``:
``on-failure`` after a failed start or a stop during an exception, ``always``): a kept
one is annotated ``ha-bench/kept`` and the next run, or ``ha-bench kind gc``, removes it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.platform.kubernetes import namespaces
from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.diagnostics import collect
from harness.platform.kubernetes.events import WatchedState
from harness.platform.kubernetes.safety import GuardedApi


class Teardown:
    """The teardown steps of :class:`~.cluster.KubernetesCluster` (a mixin: the attributes
    below are set by its constructor; ``_wait_namespace_gone`` is its own)."""

    api: GuardedApi | None
    context: str
    namespace: str
    owned: bool
    keep_namespace: bool
    logs_dir: Path | None
    state: WatchedState
    _applied: bool
    _namespace_obj: dict[str, Any] | None
    _say: Callable[[str], None]

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

    def _release_namespace(self, failure: BaseException | None) -> None:
        """Owned and applied: mark the namespace kept (if :meth:`_keep_reason` says so),
        else delete it and wait (180 s at most) until it is gone."""
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
