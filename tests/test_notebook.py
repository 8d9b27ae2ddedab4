"""notebooks/recovery_curves.ipynb runs from top to bottom on the shipped recorded run."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "recovery_curves.ipynb"


def test_recovery_curves_notebook_executes():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",  # ipykernel of this interpreter (jupyter_client: sys.executable)
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # 4 recovery curves + 2 experiments x 2 overlays + repetitions + phases + comparison
    assert len(images) == 4 + 4 + 2 + 1, [o.output_type for o in outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "api-server-kill-a2-s2-w1: 1 repetition(s)" in text
    assert "not significant (n too small)" in text
