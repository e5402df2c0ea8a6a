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
    "target",
)
MEMORY_HEADER = ("network", "batch", "tapegrad peak MiB", "torch peak MiB", "ratio", "target")

STARTERS = ("mnist_starter", "cifar_starter")
CNNS = (*STARTERS, "airbench")
#: Issue 17's least ratio (tapegrad / PyTorch images/s) of a training row with both cores, by
#: network and batch size; with one thread each side every such row must reach 1.0 instead.
TRAIN_TARGETS = {
    **{(network, batch): 1.5 for network in STARTERS for batch in (4, 16, 64, 256)},
    **{("airbench", batch): ratio for batch, ratio in ((4, 0.8), (16, 0.8), (64, 1.0))},
    **{("airbench", batch): 1.2 for batch in (256, 1024)},
    **{("mlp", batch): 1.0 for batch in (16, 64, 256)},
}
HASWELL_TARGET = 1.2  # the starters' ratio on the AVX2 code path, both cores
EVAL_TARGET = 1.0  # the three CNNs in evaluation at batch 1 and 256
EVAL_BATCHES = (1, 256)


def row_targets(cell: dict[str, Any]) -> list[tuple[str, float, float | None]]:
    """(what, least value, measured value) of each of issue 17's targets for this row."""
    network, batch = cell["network"], cell["batch_size"]
    one_thread = str(cell.get("threads", "all")) == "1"
    haswell = (cell.get("haswell") or {}).get("ratio")
    if cell.get("mode", "train") == "eval":
        if network in CNNS and batch in EVAL_BATCHES:
            return [("ratio", EVAL_TARGET, cell["ratio"])]
        return []
    least = TRAIN_TARGETS.get((network, batch))
    if least is None:
        return []
    if one_thread:
        return [("ratio", 1.0, cell["ratio"])]
    targets = [("ratio", least, cell["ratio"])]
    if network in STARTERS:
        targets.append(("haswell", HASWELL_TARGET, haswell))
    return targets


def verdict(targets: list[tuple[str, float, float | None]], at_most: bool = False) -> str:
    """'>= 1.5: met', '>= 1.5: missed by 12 %' (relative to the target), joined by '; '."""
    parts = []
    for what, bound, value in targets:
        name = "" if what == "ratio" else f"{what} "
        sign = "<=" if at_most else ">="
        if value is None:
            parts.append(f"{name}{sign} {bound:g}: not measured")
        elif (value <= bound) if at_most else (value >= bound):
            parts.append(f"{name}{sign} {bound:g}: met")
        else:
            parts.append(f"{name}{sign} {bound:g}: missed by {100 * abs(value / bound - 1):.0f} %")
    return "; ".join(parts)


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
        verdict(row_targets(cell)),
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
                verdict([("ratio", 1.0, ratio)], at_most=True) if theirs else "",
            ]
        )
    return markdown_table(MEMORY_HEADER, lines)
