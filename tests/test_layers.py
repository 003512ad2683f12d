"""The package's layers: no module imports from a layer above its own."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mer_lightning"
# Bottom to top; a top-level module or package not named here is a tool.
LAYERS = ("core", "recipes", "runs")
TOOLS = len(LAYERS)


def layer_of(module: str) -> int:
    """The layer index of a dotted module name inside mer_lightning."""
    parts = module.split(".")
    if len(parts) < 2:
        return TOOLS
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else TOOLS


def imports_of(path: Path) -> list[str]:
    """The mer_lightning modules a file imports, at any depth (function-level too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.split(".")[0] == "mer_lightning"]


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(part for part in relative.parts if part != "__init__")


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[module_name(p) for p in FILES])
def test_no_import_reaches_up_a_layer(path):
    own = layer_of(module_name(path))
    upward = [name for name in imports_of(path) if layer_of(name) > own]
    assert not upward, f"{module_name(path)} (layer {own}) imports from above: {upward}"


def test_the_layers_are_folders_of_the_package():
    assert all((PACKAGE / layer / "__init__.py").is_file() for layer in LAYERS)
    assert layer_of("mer_lightning.core.data.datamodule") == 0
    assert layer_of("mer_lightning.compare") == TOOLS
