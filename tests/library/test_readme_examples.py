"""The README's "Coming from PyTorch" programs, run as written on a slice of the real data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tapegrad import data

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```python\n(.*?)```", re.S)
EXAMPLES = dict(EXAMPLE.findall(README.read_text()))


def sliced(dataset_class: type, size: int) -> type:
    """The dataset class with only its first `size` images, so that an example runs in seconds."""

    class Slice(dataset_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.data, self.targets = self.data[:size], self.targets[:size]

    return Slice


def test_the_readme_has_the_three_first_programs():
    assert set(EXAMPLES) == {"mnist_mlp", "cifar_cnn", "custom_function"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_readme_example_runs(name, data_root, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TAPEGRAD_DATA", str(data_root))
    monkeypatch.setattr(data, "MNIST", sliced(data.MNIST, 640))
    monkeypatch.setattr(data, "CIFAR10", sliced(data.CIFAR10, 512))
    monkeypatch.chdir(tmp_path)
    exec(compile(EXAMPLES[name], f"README example {name}", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    if name == "mnist_mlp":
        accuracy = float(printed.split("test accuracy")[1])
        assert 0.5 < accuracy <= 1.0  # 640 images, one epoch: well above chance
    elif name == "cifar_cnn":
        assert (tmp_path / "cnn.npz").exists()
        assert "[0.0125]" in printed.replace(" ", "")  # StepLR halved the rate twice
    else:
        assert printed.strip() == "True"
