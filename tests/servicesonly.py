"""Services-only local clusters for the kernel-state and pod-network tests: PostgreSQL, Redis
and HAProxy as usual, no Airflow (no ``airflow db migrate``), and the test's own small
stand-ins (``_stand_ins(self)``, a list of replica specs) in place of the Airflow replicas.

The same source patches :class:`LocalCluster` in the test process (:func:`patch`, undone by
monkeypatch) and in a harness subprocess (``source + APPLY``, for the SIGKILL tests).
"""

from __future__ import annotations

import textwrap
from typing import Any

from harness.platform.local.cluster import LocalCluster

PRELUDE = textwrap.dedent(
    """
    import sys
    from harness.platform.local import checks
    from harness.platform.local.cluster import LocalCluster

    def _no_airflow(self):  # the services only: no `airflow db migrate`
        pass
    """
)
APPLY = textwrap.dedent(
    """
    LocalCluster._prepare_airflow = _no_airflow
    LocalCluster._airflow_specs = _stand_ins
    """
)


def source(stand_ins: str) -> str:
    """The patch's source: the prelude and the test's ``_stand_ins`` definition."""
    return PRELUDE + textwrap.dedent(stand_ins)


def patch(monkeypatch: Any, code: str, **names: Any) -> None:
    """Apply ``code`` (from :func:`source`) to :class:`LocalCluster` in this process;
    ``names``: what the stand-ins' source refers to (their programs)."""
    space: dict[str, Any] = dict(names)
    exec(code, space)
    monkeypatch.setattr(LocalCluster, "_prepare_airflow", space["_no_airflow"])
    monkeypatch.setattr(LocalCluster, "_airflow_specs", space["_stand_ins"])
