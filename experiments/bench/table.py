"""The benchmark's Markdown tables, through the course's `markdown_table`."""

from __future__ import annotations

from typing import Any

from tapegrad.course.report import markdown_table

SPEED_HEADER = (
    "network",
    "mode",
    "threads",
    "batch",
    "tapegrad img/s",
    "torch img/s",
    "ratio",
    "haswell ratio",
    "tapegrad GFLOP/s",
    "% of sgemm peak",
)
MEMORY_HEADER = ("network", "batch", "tapegrad peak MiB", "torch peak MiB", "ratio")


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def speed_row(cell: dict[str, Any], peaks: dict[str, float] | None = None) -> list[str]:
    """One row of the speed table; `peaks` maps "all" / "1" (threads) to sgemm GFLOP/s."""
    ours, theirs = cell["tapegrad"], cell["torch"]
    threads = str(cell.get("threads", "all"))
    haswell = cell.get("haswell")
    peak = (peaks or {}).get(threads)
    gflops = ours["gflops_per_second"]
    return [
        cell["network"],
        cell.get("mode", "train"),
        threads,
        str(cell["batch_size"]),
        _number(ours["images_per_second"]),
        _number(theirs["images_per_second"] if theirs else None),
        _number(cell["ratio"], 2),
        _number(haswell["ratio"] if haswell else None, 2),
        _number(gflops, 1),
        _number(100 * gflops / peak if peak else None),
    ]


def speed_table(cells: list[dict[str, Any]], peaks: dict[str, float] | None = None) -> str:
    """All speed rows as one Markdown table."""
    return markdown_table(SPEED_HEADER, [speed_row(cell, peaks) for cell in cells])


def memory_table(rows: list[dict[str, Any]]) -> str:
    """Peak resident memory of a training step, each side in its own fresh process."""
    lines = []
    for row in rows:
        ours, theirs = row["tapegrad"]["peak_mib"], (row["torch"] or {}).get("peak_mib")
        ratio = ours / theirs if theirs else None
        lines.append(
            [
                row["network"],
                str(row["batch_size"]),
                _number(ours),
                _number(theirs),
                _number(ratio, 2),
            ]
        )
    return markdown_table(MEMORY_HEADER, lines)
