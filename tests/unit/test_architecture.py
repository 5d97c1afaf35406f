"""The package's layers (docs/architecture.md): imports go down, never up or sideways.

core ← models ← {http, bulk} ← the composition root and the CLI. Every import counts, those
inside functions and under ``TYPE_CHECKING`` too, since each is a dependency a reader must follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "imagerec" / "imagerec"

# Rank of each part; a module may import its own part and any part of a lower rank.
LAYERS = {
    "core": 0,
    "models": 1,
    "http": 2,
    "bulk": 2,
    "compose": 3,
    "cli": 3,
    "__init__": 3,
    "__main__": 3,
}
# The entry points on top may use each other (``python -m imagerec`` runs the CLI).
TOP = 3


def part_of(module: str) -> str:
    """``imagerec.http.api`` → ``http``; ``imagerec`` itself → ``__init__``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    names = list(relative.parts)
    if names[-1] == "__init__" and len(names) > 1:
        names.pop()
    return ".".join(names)


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """Every ``imagerec`` module that ``source`` (the text of ``module``) imports, with its line."""
    package = module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names = package.split(".")
                base = names[: len(names) - node.level + 1]
                source_module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source_module = node.module or ""
            found.append((node.lineno, source_module))
            # `from imagerec import http` names a part, not just the package.
            if source_module == "imagerec":
                found += [(node.lineno, f"imagerec.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "imagerec"]


def wrong_imports(source: str, module: str) -> list[str]:
    """The imports of ``module`` that go up a layer or sideways to a sibling."""
    importer = part_of(module)
    problems = []
    for line, imported in imported_modules(source, module):
        target = part_of(imported)
        if target in {"__init__", importer}:
            continue
        if LAYERS[target] > LAYERS[importer] or LAYERS[target] == LAYERS[importer] < TOP:
            problems.append(f"{module}:{line} ({importer}) imports {imported}")
    return problems


def module_source(path: Path) -> tuple[str, str]:
    module = module_name(path)
    # A package's __init__ resolves relative imports against the package itself.
    return path.read_text("utf-8"), f"{module}.__init__" if path.name == "__init__.py" else module


def test_every_module_belongs_to_a_layer() -> None:
    parts = {part_of(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert parts <= set(LAYERS), f"modules outside any layer: {sorted(parts - set(LAYERS))}"


def test_imports_only_go_down() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    assert [problem for path in files for problem in wrong_imports(*module_source(path))] == []


@pytest.mark.parametrize(
    ("where", "source", "reason"),
    [
        ("core/intake.py", "from imagerec.models.classifier import Classifier\n", "up"),
        ("models/registry.py", "from imagerec.http import api\n", "up"),
        ("http/api.py", "from imagerec.bulk.local import run\n", "sideways"),
        ("bulk/local.py", "import imagerec.http.server\n", "sideways"),
        ("core/text.py", "def f():\n    from imagerec import compose\n", "up, in a function"),
        ("http/server.py", "from ..compose import load_handler\n", "up, relative"),
    ],
)
def test_a_wrong_import_is_caught(where: str, source: str, reason: str) -> None:
    # Given a real module with one import added that breaks the layering
    text, module = module_source(PACKAGE / where)
    assert wrong_imports(text, module) == []
    # When the rule reads it
    found = wrong_imports(text + "\n" + source, module)
    # Then that import, and only it, is named
    assert len(found) == 1, reason
