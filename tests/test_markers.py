"""The slow marker stays true: what the marker says, the documents say, and tests that train or
convert a model themselves carry it (`pytest -m "not slow"` is the fast suite)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.conftest import SERVER_FIXTURES

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
FAST_SUITE = '-m "not slow"'
# Calls that train a model or convert one to ONNX (save_artifact exports the graph too), and the
# fixture that trains one: a test that uses any of them is slow.
TRAINS_OR_CONVERTS = frozenset({"train", "save_artifact", "save_trained_model", "keras_to_onnx", "export_artifact"})
TRAINING_FIXTURES = frozenset({"tiny_trained"})


def slow_marker_description() -> str:
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    return next(m.split(":", 1)[1].strip() for m in markers if m.startswith("slow:"))


def test_the_slow_marker_says_what_makes_a_test_slow():
    description = slow_marker_description()
    for reason in ("starts a server", "trains or converts a model", "runs a pipeline", "over 10 s of CPU"):
        assert reason in description


@pytest.mark.parametrize("document", ["README.md", "docs/development.md"])
def test_the_documents_name_the_fast_suite_and_what_it_leaves_out(document):
    text = " ".join((ROOT / document).read_text().split())
    assert FAST_SUITE in text, f"{document} does not say how to run the fast suite"
    if document == "docs/development.md":
        for reason in ("starts a server process", "trains or converts a model", "runs a pipeline",
                       "over 10 s of CPU"):
            assert reason in text, f"{document} does not say that a test that {reason} is slow"


def _is_slow_mark(node: ast.expr) -> bool:
    return "mark.slow" in ast.unparse(node)


def _module_is_slow(tree: ast.Module) -> bool:
    return any(
        isinstance(stmt, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in stmt.targets)
        and "mark.slow" in ast.unparse(stmt.value)
        for stmt in tree.body
    )


def fast_tests_that_train_or_convert(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    if _module_is_slow(tree):
        return []
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
            continue
        if any(_is_slow_mark(d) for d in node.decorator_list):
            continue
        called = {
            call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            for call in ast.walk(node) if isinstance(call, ast.Call)
        }
        fixtures = {arg.arg for arg in node.args.args}
        if fixtures & SERVER_FIXTURES:  # marked slow by conftest.py
            continue
        if reasons := sorted((called & TRAINS_OR_CONVERTS) | (fixtures & TRAINING_FIXTURES)):
            found.append(f"{path.name}::{node.name} ({', '.join(reasons)})")
    return found


def test_a_test_that_trains_or_converts_a_model_itself_is_marked_slow():
    found = [name for path in sorted(TESTS.glob("test_*.py")) for name in fast_tests_that_train_or_convert(path)]
    assert not found, "not marked slow:\n" + "\n".join(found)
