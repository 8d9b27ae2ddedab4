"""A size-limited disk on real mounts: filled to ENOSPC, freed again — for a plain writer and
for a tiny PostgreSQL whose data directory lives on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from harness.platform.local.cluster import find_binary
from harness.platform.local.disk import SizedDisk, cluster_mounts, mounts, unmount_cluster
from harness.platform.local.process import free_port

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def disk(tmp_path):
    cluster = f"hab-test-{uuid.uuid4().hex[:8]}"
    made = SizedDisk(tmp_path / "disk", f"{cluster}-data", 16)
    yield made.mount()
    assert unmount_cluster(cluster) == []
    assert cluster_mounts(cluster) == []


def _dd(path) -> subprocess.CompletedProcess:
    return subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=64k", "count=16"],
                          capture_output=True, text=True)  # fmt: skip


@needs_root
def test_fill_gives_enospc_and_free_gives_the_space_back(disk):
    assert disk.mounted()
    assert any(s == disk.source for s, _, _ in mounts()), "named in /proc/mounts"
    assert _dd(disk.mountpoint / "before").returncode == 0
    done = disk.fill()
    assert done["free_after"] < 64 * 1024 and done["written_bytes"] > 10 * 2**20
    full = _dd(disk.mountpoint / "during")
    assert full.returncode != 0 and "No space left on device" in full.stderr
    freed = disk.free()
    assert freed["freed_bytes"] == done["written_bytes"]
    assert _dd(disk.mountpoint / "after").returncode == 0


@needs_root
def test_unmount_of_a_busy_disk_still_unmounts(disk):
    holder = subprocess.Popen(["sleep", "300"], cwd=disk.mountpoint)
    try:
        time.sleep(0.1)
        problem = disk.unmount()  # busy: unmounted lazily, said so
        assert not disk.mounted()
        assert problem is None or "lazily" in problem
    finally:
        holder.kill()
        holder.wait()


def _psql(port: int, sql: str) -> subprocess.CompletedProcess:
    psql = Path(os.path.realpath(find_binary("postgres"))).with_name("psql")
    return subprocess.run(
        [str(psql), "-h", "127.0.0.1", "-p", str(port), "-U", "test", "-d", "postgres",
         "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@needs_root
def test_a_full_data_disk_gives_postgres_enospc_and_freeing_it_recovers():
    cluster = f"hab-test-{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="ha-bench-test-"))  # the postgres user reaches it
    home.chmod(0o755)
    disk = SizedDisk(home / "pgdisk", f"{cluster}-postgres", 64).mount()
    server = None
    try:
        pgdata = disk.mountpoint / "pgdata"
        pgdata.mkdir(mode=0o700)
        shutil.chown(pgdata, "postgres", "postgres")
        initdb = subprocess.run(
            [find_binary("initdb"), "-D", str(pgdata), "-U", "test", "--auth=trust",
             "--no-sync", "--wal-segsize=1"],
            user="postgres", capture_output=True, text=True, cwd="/", timeout=120,
        )  # fmt: skip
        assert initdb.returncode == 0, initdb.stderr
        port = free_port()
        server = subprocess.Popen(
            [find_binary("postgres"), "-D", str(pgdata), "-p", str(port), "-k", str(pgdata),
             "-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=8MB",
             "-c", "max_wal_size=8MB", "-c", "min_wal_size=2MB", "-c", "fsync=off"],
            user="postgres", cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while _psql(port, "SELECT 1").returncode != 0:
            assert time.monotonic() < deadline, "postgres did not start"
            time.sleep(0.2)
        assert _psql(port, "CREATE TABLE t (x text)").returncode == 0
        disk.fill()
        big = "INSERT INTO t SELECT repeat('x', 1000) FROM generate_series(1, 20000)"
        full = _psql(port, big)
        assert full.returncode != 0
        assert "No space left on device" in full.stderr, full.stderr
        disk.free()
        deadline = time.monotonic() + 60  # it may have restarted after a PANIC: wait for it
        while (done := _psql(port, big)).returncode != 0:
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.5)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        assert unmount_cluster(cluster) == []
        shutil.rmtree(home, ignore_errors=True)
