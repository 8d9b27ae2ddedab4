"""pytest experiments/: the fault catalogue as tests.

Options: --profile smoke|full, --repeat N, --platform local|kubernetes (with
--kube-context / --allow-context), --airflow-version X, --results DIR, --seed N. An SLO
miss fails the test with the measured figure in the message; its results are written first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.cleanup import unwind_on_termination
from harness.report.report import write_run_report
from harness.run.suite import ClusterPool, new_run_id

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ha-bench")
    group.addoption("--profile", choices=("smoke", "full"), default="smoke")
    group.addoption("--repeat", type=int, default=None, help="repetitions per experiment")
    group.addoption("--platform", choices=("local", "kubernetes"), default="local")
    group.addoption("--airflow-version", default=None, help="Airflow version under test")
    group.addoption("--results", type=Path, default=ROOT / "results", help="results root")
    group.addoption("--seed", type=int, default=0, help="seed for fault timing")
    group.addoption(
        "--kube-context",
        default=None,
        help="kubernetes: the context to use (default: the current one)",
    )
    group.addoption("--allow-context", action="append", default=[],
                    help="kubernetes: also allow this context (glob) besides kind-*")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smoke: part of the default smoke profile")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--profile") == "smoke":
        skip = pytest.mark.skip(reason="not in the smoke profile (use --profile full)")
        for item in items:
            if "smoke" not in item.keywords:
                item.add_marker(skip)


REPORT = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def run_dir(request: pytest.FixtureRequest) -> Path:
    path = request.config.getoption("--results") / new_run_id()
    path.mkdir(parents=True)
    yield path
    report = write_run_report(path)
    request.config.stash[REPORT] = report.with_suffix(".html")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """End with where the report is (a fixture's print would be swallowed by capture)."""
    report = config.stash.get(REPORT, None)
    if report is not None:
        terminalreporter.write_sep("-", "ha-bench results")
        terminalreporter.write_line(f"report: {report}")
        terminalreporter.write_line(f"summary: {report.parent}/*/summary.json")


@pytest.fixture(scope="session")
def cluster_pool(request: pytest.FixtureRequest, run_dir: Path):
    with (
        unwind_on_termination(),
        ClusterPool(
            platform=request.config.getoption("--platform"),
            airflow_version=request.config.getoption("--airflow-version"),
            logs_root=run_dir / "logs",
            kube_context=request.config.getoption("--kube-context"),
            allowed_contexts=tuple(request.config.getoption("--allow-context")),
        ) as pool,
    ):
        yield pool


@pytest.fixture(scope="session")
def repeat(request: pytest.FixtureRequest) -> int:
    value = request.config.getoption("--repeat")
    if value is not None:
        return value
    return 6 if request.config.getoption("--profile") == "full" else 1


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--seed")
