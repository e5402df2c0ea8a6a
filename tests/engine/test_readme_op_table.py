"""Every op named in the README's op table for issue 14 exists as tg.<name>."""

import re
from pathlib import Path

import tapegrad as tg

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Ops: convolution, pooling, normalisation, losses, attention"


def test_every_op_in_the_table_exists():
    text = README.read_text().split(SECTION, 1)[1].split("\n#", 1)[0]
    names = re.findall(r"^\| `(\w+)`", text, flags=re.MULTILINE)
    assert len(names) >= 20
    missing = [name for name in names if not callable(getattr(tg, name, None))]
    assert not missing, f"README op table names ops that tapegrad lacks: {missing}"
