"""The package's layers depend inwards only, and nothing that functions deploy imports dev-only code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "devgem"

# What each layer may import from devgem (besides itself). Top-level modules (clock, config,
# topology) are shared by all; bootstrap wires everything and only entry points may import it.
ALLOWED = {
    "domain": {"clock"},
    "usecases": {"domain", "adapters", "logs", "clock", "config", "topology"},
    "adapters": {"domain", "clock", "config"},
    "logs": {"domain", "adapters", "clock", "config"},
    "entrypoints": {"domain", "adapters", "usecases", "logs", "bootstrap", "clock", "config", "topology"},
}
DEV_ONLY = ("devstack", "devgem_cli", "localcloud", "tests", "bench")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_inside_it(layer: str) -> None:
    wrong = {}
    for path in (PACKAGE / layer).rglob("*.py"):
        used = {name.split(".")[1] for name in _imports(path) if name.startswith("devgem.")}
        outside = used - ALLOWED[layer] - {layer}
        if outside:
            wrong[path.name] = sorted(outside)
    assert wrong == {}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_deployed_code_never_imports_dev_only_code(path: Path) -> None:
    assert not {name for name in _imports(path) if name.split(".")[0] in DEV_ONLY}


def test_every_module_belongs_to_a_layer_or_is_a_known_top_level_module() -> None:
    top_level = {p.stem for p in PACKAGE.glob("*.py")}
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top_level == {"__init__", "bootstrap", "clock", "config", "topology"}
    assert layers == set(ALLOWED)
