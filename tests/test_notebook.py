"""docs/simulation.ipynb runs from top to bottom (nbclient), as a researcher would run it."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "simulation.ipynb"
NEEDED = ("nbclient", "nbformat", "ipykernel", "pandas", "matplotlib")


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in NEEDED),
    reason="needs the test extra's nbclient, ipykernel and the sim extra: pip install -e '.[test]'",
)
def test_the_simulation_notebook_runs(tmp_path: Path) -> None:
    nbformat: Any = importlib.import_module("nbformat")
    nbclient: Any = importlib.import_module("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for o in outputs)
    assert "calibration of gulou-2016" in texts
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # distributions, rounds to a decision, two sweep plots
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "gulou-2016" in html  # the results' rich display
