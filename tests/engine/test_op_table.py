"""The README's op table (section "## Ops") names only ops that exist, with the right kind."""

import re
from pathlib import Path

import tapegrad as tg
from tapegrad.engine.primitive import PRIMITIVES

README = Path(__file__).resolve().parents[2] / "README.md"


def _table_rows() -> list[tuple[str, str]]:
    """(tapegrad name, kind) for each row of the first table under "## Ops"."""
    section = re.split(r"\n##+ ", README.read_text().split("\n## Ops\n", 1)[1])[0]
    rows = []
    for line in section.splitlines():
        match = re.match(r"\| `([\w.]+)` \|.*\| ([^|]+) \|$", line)
        if match:
            rows.append((match.group(1), match.group(2).strip()))
    return rows


def test_the_table_lists_the_ops():
    names = [name for name, _ in _table_rows()]
    assert len(names) >= 60 and len(names) == len(set(names))
    assert {"tg.tanh", "tg.cat", "tg.var", "tg.embedding", "tg.transpose"} <= set(names)


def test_every_name_in_the_table_exists_and_primitives_are_registered():
    for name, kind in _table_rows():
        owner, _, attribute = name.partition(".")
        assert owner in ("tg", "Tensor"), name
        assert hasattr(tg if owner == "tg" else tg.Tensor, attribute), f"{name} does not exist"
        assert kind.split(" (")[0] in ("primitive", "composition", "no gradient"), kind
        if owner == "tg" and kind == "primitive":
            assert attribute in PRIMITIVES, f"{name} is listed as a primitive but not registered"
        if owner == "tg" and kind.startswith("composition"):
            assert attribute not in PRIMITIVES, f"{name} is registered: it is a primitive"
