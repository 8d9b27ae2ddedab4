"""Airflow as the system under test: one cached virtualenv per Airflow version.

Like a container image, each version is installed once into
``$HA_BENCH_CACHE/airflow/<version>/`` (default cache ``~/.cache/airflow-ha-bench``) and
reused; the harness's own dependencies never share an environment with Airflow's.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError

EXTRAS = "celery,postgres"
# Airflow pins exact versions in constraint files that live outside the package index;
# these pins keep known-broken combinations out instead (celery 5.7 removed
# ``celery.backends.database.retry``, which the celery provider imports).
COMPAT_PINS = ("celery<5.7",)
_COMPLETE = ".ha-bench-complete"
_packages: dict[Path, list[str]] = {}  # environment prefix -> its pip freeze, once per process
_packages_lock = threading.Lock()


def cache_root() -> Path:
    return Path(os.environ.get("HA_BENCH_CACHE", Path.home() / ".cache" / "airflow-ha-bench"))


@dataclass(frozen=True)
class AirflowEnv:
    """An installed Airflow version."""

    version: str
    prefix: Path

    @property
    def bin(self) -> Path:
        return self.prefix / "bin"

    @property
    def airflow(self) -> Path:
        return self.bin / "airflow"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def packages(self) -> list[str]:
        """Every distribution installed in the environment, as ``pip freeze --all`` lines
        (``name==version``), sorted; run once per environment and process, then cached.
        A HarnessError if pip cannot list them."""
        with _packages_lock:
            if self.prefix not in _packages:
                _packages[self.prefix] = _freeze(self.python, self.version)
            return list(_packages[self.prefix])


def _freeze(python: Path, version: str) -> list[str]:
    fix = (
        f"remove {python.parent.parent} and reinstall it "
        f"(`python -m harness.platform.airflow_env {version}`)"
    )
    command = [str(python), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        raise HarnessError(f"`{python} -m pip freeze` could not run: {exc}", fix=fix) from None
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-2:])
        raise HarnessError(
            f"`{python} -m pip freeze` failed (exit {result.returncode}): {tail}",
            fix=fix,
        )
    lines = (line.strip() for line in result.stdout.splitlines())
    return sorted(line for line in lines if line and not line.startswith("#"))


def env_path(version: str) -> Path:
    return cache_root() / "airflow" / version


def is_installed(version: str) -> bool:
    return (env_path(version) / _COMPLETE).is_file()


def ensure_airflow(version: str, *, log=None) -> AirflowEnv:
    """Return the Airflow ``version`` environment, installing it on first use only."""
    prefix = env_path(version)
    if is_installed(version):
        return AirflowEnv(version, prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing the same version
        if is_installed(version):
            return AirflowEnv(version, prefix)
        _install(version, prefix, log=log)
    return AirflowEnv(version, prefix)


def _install(version: str, prefix: Path, *, log=None) -> None:
    say = log or (lambda msg: print(msg, file=sys.stderr))
    if prefix.exists():
        shutil.rmtree(prefix)  # an interrupted earlier install
    started = time.monotonic()
    say(f"installing apache-airflow[{EXTRAS}]=={version} into {prefix} (first use only)")
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
    pip = [str(prefix / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    result = subprocess.run(
        [*pip, f"apache-airflow[{EXTRAS}]=={version}", *COMPAT_PINS],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(prefix, ignore_errors=True)
        if "No matching distribution" in result.stderr or "Could not find a version" in (
            result.stderr
        ):
            raise HarnessError(
                f"Airflow version {version} is not available from the package index",
                fix="choose a released version (`pip index versions apache-airflow`)",
            )
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise HarnessError(
            f"installing Airflow {version} failed: {tail}",
            fix="check network access to PyPI and the pip output above",
        )
    (prefix / _COMPLETE).write_text(f"installed in {time.monotonic() - started:.1f}s\n")
    say(f"Airflow {version} installed in {time.monotonic() - started:.0f}s")


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.platform.airflow_env VERSION``: install (or confirm) one version."""
    args = sys.argv[1:] if argv is None else argv
    from harness.core.topology import DEFAULT_AIRFLOW_VERSION

    version = args[0] if args else DEFAULT_AIRFLOW_VERSION
    try:
        env = ensure_airflow(version)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Airflow {version}: {env.airflow}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
