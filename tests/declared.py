"""What the built-in checks declare on themselves, read the way pytest reads their markers."""

from __future__ import annotations

import importlib
from pathlib import Path

CHECKS = Path(__file__).parent.parent / "checks"


def declared_topics() -> dict[str, tuple[str, ...]]:
    """Each built-in check's id -> the topics it declares on itself (`@pytest.mark.topics`)."""
    found = {}
    for path in sorted(CHECKS.glob("test_*.py")):
        module = importlib.import_module(f"pytest_opscheck.checks.{path.stem}")
        for name, func in vars(module).items():
            if name.startswith("test_") and callable(func):
                marks = {mark.name: mark for mark in getattr(func, "pytestmark", [])}
                topics = tuple(marks["topics"].args) if "topics" in marks else ()
                found[f"{path.stem.removeprefix('test_')}.{name.removeprefix('test_')}"] = topics
    return found
