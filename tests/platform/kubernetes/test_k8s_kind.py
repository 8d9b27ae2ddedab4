"""kind_up / kind_down: clear errors without kind or Docker; the kind CLI calls they make."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.platform.kubernetes.kind import (
    LEDGER_PLACEHOLDER,
    context_name,
    kind_down,
    kind_up,
    render_kind_config,
    require_kind,
)


def stub(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only what the test puts there (plus sh's own directory for stubs)."""
    d = tmp_path / "bin"
    d.mkdir()
    for tool in ("cat", "grep", "echo", "sh"):
        src = Path("/bin") / tool
        if src.exists():
            os.symlink(src, d / tool)
    monkeypatch.setenv("PATH", str(d))
    return d


def test_missing_kind(bin_dir):
    with pytest.raises(HarnessError, match="kind not found on PATH — fix: install kind"):
        require_kind()


def test_missing_docker(bin_dir):
    stub(bin_dir, "kind", "exit 0")
    with pytest.raises(HarnessError, match="docker not found on PATH"):
        kind_up(ledger_dir=bin_dir.parent / "ledger")


def test_docker_engine_not_reachable(bin_dir):
    stub(bin_dir, "kind", "exit 0")
    stub(bin_dir, "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    with pytest.raises(HarnessError) as err:
        kind_up(ledger_dir=bin_dir.parent / "ledger")
    assert str(err.value) == (
        "Docker engine not reachable — fix: start Docker or use --platform local"
    )
    with pytest.raises(HarnessError, match="Docker engine not reachable"):
        kind_down()


def test_kind_up_creates_the_cluster_with_the_ledger_dir_mapped(bin_dir, tmp_path):
    log = tmp_path / "kind.log"
    stub(bin_dir, "docker", "exit 0")
    # `kind get clusters` lists nothing; `kind create` records its args and the config
    stub(bin_dir, "kind", f'echo "$@" >> {log}\n[ "$1" = create ] && cat "$6" >> {log}\nexit 0')
    config = tmp_path / "cluster.yaml"
    config.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
        f"  extraMounts:\n  - hostPath: {LEDGER_PLACEHOLDER}\n"
        "    containerPath: /var/lib/ha-bench\n"
    )
    ledger = tmp_path / "ledger"
    assert kind_up("bench", config, ledger_dir=ledger, wait_s=60) == "kind-bench"
    lines = log.read_text().splitlines()
    assert lines[0] == "get clusters"
    assert lines[1].startswith("create cluster --name bench --config ")
    assert lines[1].endswith(" --wait 60s")
    assert f"  - hostPath: {ledger.resolve()}" in lines
    assert ledger.is_dir() and stat.S_IMODE(ledger.stat().st_mode) == 0o777


def test_kind_up_reuses_and_kind_down_deletes(bin_dir, tmp_path):
    log = tmp_path / "kind.log"
    stub(bin_dir, "docker", "exit 0")
    stub(bin_dir, "kind", f'echo "$@" >> {log}\n[ "$1" = get ] && echo ha-bench\nexit 0')
    assert kind_up(ledger_dir=tmp_path / "ledger") == context_name() == "kind-ha-bench"
    assert kind_down() is True
    assert kind_down("other") is False
    assert log.read_text().splitlines() == [
        "get clusters",
        "get clusters",
        "delete cluster --name ha-bench",
        "get clusters",
    ]


def test_kind_failure_is_reported(bin_dir, tmp_path):
    stub(bin_dir, "docker", "exit 0")
    stub(
        bin_dir,
        "kind",
        '[ "$1" = create ] || exit 0\n'
        'echo "ERROR: failed to create cluster: port 30080 in use" >&2; exit 1',
    )
    with pytest.raises(HarnessError, match=r"kind create cluster ha-bench failed: .*port 30080"):
        kind_up(ledger_dir=tmp_path / "ledger")


def test_kind_config_placeholder(tmp_path):
    assert render_kind_config(f"hostPath: {LEDGER_PLACEHOLDER}\n", tmp_path) == (
        f"hostPath: {tmp_path.resolve()}\n"
    )
    with pytest.raises(HarnessError, match="no __HA_BENCH_LEDGER_DIR__ placeholder"):
        render_kind_config("nodes: []\n", tmp_path)
