"""The package's shape: imports walk one way (no circle, no `_pytest`), probes know nothing of pytest or of
the sweep, and every module can be read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "pytest_opscheck"
# A module is one concept: long when the concept is (pytest's terminal.py is 1,800 lines); this only
# catches a module that has become several.
MAX_LINES = 700


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports (at module level or inside a function), less `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = f"{base}.{node.module}" if node.level and node.module else node.module or base
            found.add(module)
            # `from . import x` / `from .probes import compose`: the submodules are imports too
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_circle_in_the_package() -> None:
    edges = graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_no_private_pytest_import() -> None:
    offenders = sorted(
        module_name(p) for p in PACKAGE.rglob("*.py") if any(m.split(".")[0] == "_pytest" for m in imports_of(p))
    )
    assert offenders == []


def test_probes_know_nothing_of_pytest_or_the_sweep() -> None:
    allowed = ("pytest_opscheck.probes", "pytest_opscheck.config", "pytest_opscheck.model")
    for path in (PACKAGE / "probes").rglob("*.py"):
        for module in imports_of(path):
            assert module.split(".")[0] not in ("pytest", "_pytest"), (module_name(path), module)
            if module.startswith("pytest_opscheck"):
                assert module.startswith(allowed), (module_name(path), module)


def test_probe_layers_import_downward_only() -> None:
    order = {"transport": 0, "resource": 1, "diagnosis": 2}
    for path in (PACKAGE / "probes").rglob("*.py"):
        layer = path.parent.name
        if layer not in order:
            continue
        for module in imports_of(path):
            parts = module.split(".")
            if len(parts) > 2 and parts[:2] == ["pytest_opscheck", "probes"] and parts[2] in order:
                assert order[parts[2]] <= order[layer], (module_name(path), module)


def test_every_module_reads_in_one_sitting() -> None:
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_model_imports_nothing_of_the_product() -> None:
    """The model is the bottom layer: every part may read it, it reads none."""
    own = {m for m in imports_of(PACKAGE / "model.py") if m.startswith("pytest_opscheck")}
    assert own == set()
    assert "pytest" not in {m.split(".")[0] for m in imports_of(PACKAGE / "model.py")}


def test_causes_import_no_reporter_and_nothing_of_pytest() -> None:
    """Attribution is a pure function over typed facts: it reads the model, never a view of it."""
    found = imports_of(PACKAGE / "causes.py")
    assert not {m for m in found if m.startswith(("pytest_opscheck.report", "pytest_opscheck.sweep"))}
    assert not {m for m in found if m.split(".")[0] in ("pytest", "_pytest")}
