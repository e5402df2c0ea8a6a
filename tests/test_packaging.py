"""The installed layout: kernels only as tapegrad.kernels, every subpackage listed, no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import tapegrad as tg

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_install_only_as_tapegrad_kernels(tmp_path):
    # Run outside the repository, so that its kernels/ folder is not on sys.path.
    probe = (
        "import importlib.util, tapegrad.kernels;"
        "print(importlib.util.find_spec('kernels') is None, tapegrad.kernels.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "tapegrad.kernels"]


def test_pyproject_lists_every_subpackage():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "tapegrad").rglob("__init__.py")
    }
    assert found | {"tapegrad.kernels"} == set(config["packages"])
    assert config["package-dir"] == {"tapegrad.kernels": "kernels"}


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_layers_import_only_downwards():
    # kernels <- engine <- library <- course: no module imports from a layer above its own.
    layer_of = {"kernels": 0, "engine": 1, "course": 3}
    for path in (ROOT / "tapegrad").rglob("*.py"):
        parts = path.relative_to(ROOT / "tapegrad").parts
        own = layer_of.get(parts[0], 2) if len(parts) > 1 else 2
        if path.name == "__init__.py" and len(parts) == 1:
            continue  # the public API gathers every layer
        for module in _imports(path):
            if module.startswith("tapegrad."):
                target = module.split(".")[1]
                assert layer_of.get(target, 2) <= own, f"{path} imports {module}"
    kernels = ROOT / "kernels"
    for path in kernels.glob("*.py"):
        assert not any(m.startswith("tapegrad") for m in _imports(path)), path


def test_tensor_module_imports_no_ops():
    source = _imports(ROOT / "tapegrad" / "engine" / "tensor.py")
    assert not any("ops" in module or "primitive" in module for module in source)


def test_star_import_leaves_out_builtin_shadows_but_keeps_them_callable():
    namespace: dict = {}
    exec("from tapegrad import *", namespace)
    assert {"max", "sum", "pow"}.isdisjoint(namespace)
    assert {"tensor", "nn", "optim", "data", "gradcheck", "as_tensor"} <= set(namespace)
    assert float(tg.max(tg.tensor([1.0, 3.0]))) == 3.0
    assert float(tg.sum(tg.tensor([1.0, 3.0]))) == 4.0
    assert float(tg.pow(tg.tensor(3.0), exponent=2)) == 9.0
