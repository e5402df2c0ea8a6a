"""The report: each notebook runs headless in the quick setting; the committed ones carry the
outputs of the real runs; one command renders them all to one HTML file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9]*_*.ipynb"))
QUICK_NOTICE = "Quick setting"


def _outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(v) for k, v in output.get("data", {}).items() if k.startswith("text"))
    return "\n".join(parts)


def _export_module():
    spec = importlib.util.spec_from_file_location("export_report", NOTEBOOKS / "export_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_report_has_its_three_notebooks():
    assert [p.name for p in PATHS] == ["1_derivations.ipynb", "2_mnist.ipynb", "3_cifar10.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_runs_headless_in_the_quick_setting(path, data_root, monkeypatch):
    # the kernel runs in notebooks/: it gets the data folder as an absolute path, as
    # export_report.py hands it, whatever the (possibly relative) $TAPEGRAD_DATA
    monkeypatch.setenv("TAPEGRAD_DATA", str(data_root))
    monkeypatch.setenv("TAPEGRAD_REPORT_QUICK", "1")
    environment = _export_module().kernel_environment()
    assert Path(environment["TAPEGRAD_DATA"]).is_absolute()
    notebook = nbformat.read(path, as_version=4)
    # raises CellExecutionError, naming the cell, on the first error
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    ).execute(env=environment)
    text = _outputs_text(notebook)
    assert "Traceback" not in text
    if path.name != "1_derivations.ipynb":  # the results notebooks say they trained short runs
        assert QUICK_NOTICE in text
    else:  # every live gradient check passed
        assert text.count(": True") >= 6 and ": False" not in text


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_committed_notebook_carries_the_outputs_of_the_real_runs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code), "not executed"
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors
    assert QUICK_NOTICE not in _outputs_text(notebook)


def test_kernels_get_an_absolute_data_folder_from_a_relative_tapegrad_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAPEGRAD_DATA", "../shared/data")
    environment = _export_module().kernel_environment()
    assert environment["TAPEGRAD_DATA"] == str(tmp_path.parent / "shared" / "data")


def test_export_renders_one_self_contained_html_report(tmp_path):
    out = _export_module().main(["--out", str(tmp_path / "report.html")])
    html = out.read_text()
    for title in ("Exercises 1-5", "Exercise 6", "Exercise 7"):
        assert title in html
    assert html.count("data:image/png;base64") >= 10  # the figures, embedded
    assert not list(tmp_path.glob(".*")), "a temporary file was left behind"
