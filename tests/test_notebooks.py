"""Notebooks run top to bottom, headless, and are kept in git without outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                f"{path.name}: clear the outputs before committing (Kernel > Restart & Clear Output)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install '.[test]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install '.[test]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install '.[test]')")
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()               # raises CellExecutionError with the cell and its traceback on failure
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    expected = {"quickstart.ipynb": ("quickstart", ("latency_cdf.png", "server_p99_vs_qps.png", "batch_size.png",
                                                    "utilisation.png", "server.trace.json", "sweep.jsonl"), 4),
                "capacity_planning.ipynb": ("capacity_planning", ("plans_power.png", "count_vs_load.png"), 2),
                "procurement.ipynb": ("procurement_nb", ("devices.png", "power_vs_capacity.png",
                                                          "server_p99_vs_qps.png", "comparison.csv"), 3),
                "validation.ipynb": ("validation_nb", (), 1),
                "llm_capacity_planning.ipynb": ("llm_capacity_planning", ("plan_token_latency.png", "plans_power.png"),
                                                2)}
    folder, files, figures = expected[path.name]
    for name in files:
        assert (tmp_path / "out" / folder / name).stat().st_size > 500, name
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= figures, "the figures should show in the notebook"
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if path.name == "capacity_planning.ipynb":
        assert "| rank | device | count |" in text and "impossible: one sample takes" in text
    if path.name == "llm_capacity_planning.ipynb":
        assert "| device | devices | layout |" in text and "fits no layout of l4" in text
        assert "is below one step's time" in text
    if path.name == "validation.ipynb":
        assert "median |error|" in text and ("SingleStream" in text or "not installed" in text)
