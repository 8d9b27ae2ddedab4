"""The package layout's rule, enforced: import-linter's contracts (``pyproject.toml``).

Data flows one way — cli > run | report > faults | observe > analysis | check > platform >
core — check and analysis import only core, report only analysis, check and core, and no
package has an import cycle. CI runs this through pytest; ``tox -e lint`` runs it too.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(cwd), "PATH": ""}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_import_contracts_hold():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("core/errors.py", "import harness.platform.base", "data flows one way"),
        ("analysis/stats.py", "import harness.observe.workload", "check and analysis"),
        ("core/events.py", "import harness.core.topology", None),  # allowed: same layer
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, broken):
    shutil.copytree(ROOT / "harness", tmp_path / "harness",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "harness" / module
    target.write_text(target.read_text() + f"\n{line}  # planted by the test\n")
    out = _lint(tmp_path)
    if broken is None:
        assert out.returncode == 0, out.stdout
    else:
        assert out.returncode == 1, out.stdout
        assert broken in out.stdout and "BROKEN" in out.stdout
