"""Render the notebooks into one self-contained HTML report, figures embedded.

    python notebooks/export_report.py [--out report.html] [--execute]

The notebooks are joined in the order of their numbers (1_derivations, 2_mnist, 3_cifar10)
with the outputs they carry. `--execute` first runs them again (reading runs/, or in the
quick setting with TAPEGRAD_REPORT_QUICK=1) and saves their new outputs back into them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from tapegrad.io import write_atomically

NOTEBOOKS = Path(__file__).resolve().parent


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    """The report's notebooks, in their order ("1_...", "2_...", ...)."""
    paths = sorted(folder.glob("[0-9]*_*.ipynb"))
    if not paths:
        raise FileNotFoundError(
            f"export_report: no numbered notebooks (1_*.ipynb, ...) in {folder}"
        )
    return paths


def kernel_environment() -> dict[str, str]:
    """This process's environment, with $TAPEGRAD_DATA made absolute.

    A kernel runs in notebooks/, so a relative path (as `export TAPEGRAD_DATA=../shared/data`
    from the repository root) would point elsewhere there; it is resolved here, from the folder
    this command was started in.
    """
    environment = dict(os.environ)
    data = environment.get("TAPEGRAD_DATA")
    if data:
        environment["TAPEGRAD_DATA"] = os.path.abspath(os.path.expanduser(data))
    return environment


def execute(path: Path, timeout: int = 1800) -> None:
    """Run a notebook top to bottom in its own folder and save it with the new outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": path.parent}},
    )
    client.execute(env=kernel_environment())
    write_atomically(path, lambda f: f.write(nbformat.writes(notebook).encode()))


def render(paths: list[Path]) -> str:
    """One HTML page of the notebooks' cells and outputs, one after another."""
    notebooks = [nbformat.read(path, as_version=4) for path in paths]
    report = nbformat.v4.new_notebook(metadata=notebooks[0].metadata)
    for notebook in notebooks:
        report.cells.extend(notebook.cells)
    exporter = HTMLExporter(embed_images=True)
    html, _ = exporter.from_notebook_node(
        report, resources={"metadata": {"name": "tapegrad report"}}
    )
    return html


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("report.html"))
    parser.add_argument("--execute", action="store_true", help="run the notebooks first")
    args = parser.parse_args(argv)
    paths = notebook_paths()
    if args.execute:
        for path in paths:
            print(f"executing {path.name}", flush=True)
            execute(path)
    html = render(paths)
    write_atomically(args.out, lambda f: f.write(html.encode()))
    print(f"wrote {args.out} ({len(html) / 1e6:.1f} MB) from {', '.join(p.name for p in paths)}")
    return args.out


if __name__ == "__main__":
    main()
