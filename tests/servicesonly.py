"""Services-only local clusters for the kernel-state and pod-network tests: PostgreSQL, Redis
and HAProxy as usual, no Airflow (no ``airflow db migrate``), and the test's own small
stand-ins (``_stand_ins(self)``, a list of replica specs) in place of the Airflow replicas.

The same source patches :class:`LocalCluster` in the test process (:func:`patch`, undone by
monkeypatch) and in a harness subprocess (``source + APPLY``, for the SIGKILL tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from harness.core.topology import Topology
from harness.platform.local.cluster import LocalCluster
from harness.platform.local.process import CLUSTER_VAR

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


def start_harness(
    script: Path, template: str, code: str, topology: Topology, *,
    programs: dict[str, str], stderr: int | None = None,
) -> subprocess.Popen:  # fmt: skip
    """A harness subprocess of this checkout running ``template`` (its ``{services_only}``
    filled with ``code`` and the apply lines; ``programs`` defined first) on ``topology``,
    outside any cluster's marker; its stdout is a pipe."""
    root = Path(__file__).resolve().parents[1]  # this checkout's harness, not another
    defined = "".join(f"{name} = {text!r}\n" for name, text in programs.items())
    script.write_text(defined + template.format(services_only=code + APPLY))
    env = {k: v for k, v in os.environ.items() if k != CLUSTER_VAR}
    env["PYTHONPATH"] = f"{root}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(root)
    return subprocess.Popen([sys.executable, str(script), topology.model_dump_json()],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
                            cwd=root)  # fmt: skip
