"""Dependencies point one way: the core (wordocr) <- components, serving, bench, tools, images <- pipelines.

Read from the source (every import statement, at any depth), so a lazy import inside a function
counts as much as one at the top: the core must run where kfp and kserve are not installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = "wordocr"
MIDDLE = ("components", "serving", "bench", "tools", "images")
TOP = "pipelines"
LAYERS = (CORE, *MIDDLE, TOP)
# What the core may never import, installed or not: the orchestrator, the server and their stacks.
NOT_IN_CORE = ("kfp", "kserve", "fastapi", "starlette", "uvicorn")


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def layer_edges() -> dict[tuple[str, str], list[str]]:
    """``(importing layer, imported layer) -> files`` for every import between the project's layers."""
    edges: dict[tuple[str, str], list[str]] = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            for imported in imports_of(path) & set(LAYERS) - {layer}:
                edges.setdefault((layer, imported), []).append(str(path.relative_to(ROOT)))
    return edges


def upward(edges: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], list[str]]:
    rank = {CORE: 0, **dict.fromkeys(MIDDLE, 1), TOP: 2}
    return {edge: files for edge, files in edges.items() if rank[edge[1]] > rank[edge[0]]}


def test_no_layer_imports_one_above_it():
    assert upward(layer_edges()) == {}


@pytest.mark.parametrize("path", sorted((ROOT / CORE).rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_neither_kfp_nor_kserve(path):
    assert not imports_of(path) & set(NOT_IN_CORE)


def test_the_check_sees_an_upward_import(tmp_path):
    assert upward({("wordocr", "serving"): ["wordocr/x.py"], ("serving", "wordocr"): ["serving/y.py"]}) == {
        ("wordocr", "serving"): ["wordocr/x.py"]
    }
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from kserve import Model\n")
    assert imports_of(module) == {"kserve"}
